"""One request budget per (server, key): every request made with a key draws from it, and it learns
the server's limit.

Segmind documents 5 (Free) and 50 (Pro) requests a minute, not whether status polls count, and
other sources give higher pooled limits. So the limit is learned, not assumed:

- `SEGMIND_RPM` forces a limit (0: none) and nothing is learned.
- Otherwise the budget starts from what this key showed before (kept in the ledger) or from the
  documented Pro limit, and counts requests in a sliding window of BUDGET_WINDOW_S.
- Requests beyond what the server has already taken in one window (`confirmed`) go out in a slow
  start: at most `ramp` of them in flight at once, doubling with each success; beyond `limit` one at
  a time (a probe). So a server with a tighter limit answers at most a few 429s, never a storm.
- A 429 teaches the limit (what the window held when it came), pauses every request until the
  server's reset time, and stops probing for BUDGET_PROBE_COOLDOWN_S.

`try_take` hands out a slot or says how long to wait; the scheduler queues its waiters by priority and
asks again whenever a reply comes back, so nothing waits on a slot planned before the facts changed.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from flux_core import defaults as D
from flux_core.logs import logger

log = logger(__name__)
LearnCallback = Callable[["RequestBudget"], None]


@dataclass(frozen=True)
class Grant:
    """A slot handed out: `unconfirmed` when it goes past what the server has been seen to take."""

    unconfirmed: bool = False


class RequestBudget:
    def __init__(
        self,
        rpm: int | None = None,
        *,
        learned: tuple[int | None, int] | None = None,
        window_s: float = D.BUDGET_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`rpm`: a forced limit (0: none); None: learned, from `learned` = (limit, confirmed) as this
        key showed them before, else the documented REQUESTS_PER_MINUTE."""
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._last_429 = float("-inf")
        self._unconfirmed = 0  # requests past `confirmed` in flight
        self._ramp = D.BUDGET_RAMP_START
        self.on_learn: LearnCallback | None = None
        self._told: tuple[int | None, int] | None = None  # what on_learn last heard
        self._listeners: list[Callable[[], None]] = []  # told when a slot may have freed
        self.rate_limited = 0  # 429s seen
        self.forced = False
        self.limit: int | None = D.REQUESTS_PER_MINUTE
        self.confirmed = 0
        if learned is not None:
            self.adopt(learned)
        if rpm is not None:
            self.force(rpm)

    def adopt(self, learned: tuple[int | None, int]) -> None:
        """Start from what this key showed in an earlier process: (limit, confirmed)."""
        with self._lock:
            if not self.forced:
                self.limit, self.confirmed = learned[0], max(0, learned[1])

    def force(self, rpm: int | None) -> None:
        """Set a limit by hand (SEGMIND_RPM): 0 or None = none at all. Nothing is learned after."""
        with self._lock:
            self.forced = True
            self.limit = rpm or None
            self.confirmed = rpm or 0

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from any thread) whenever a reply or a 429 may have changed what is free."""
        self._listeners.append(listener)

    def _tell(self) -> None:
        for listener in list(self._listeners):
            listener()

    # --- handing out slots --------------------------------------------------------------------
    def try_take(self) -> Grant | float:
        """A slot now (a Grant), or the seconds after which asking again may succeed."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return self._paused_until - now
            sent = len(self._window(now))
            if self.forced:
                if self.limit is None or sent < self.limit:
                    return self._record(now, False)
                return max(0.001, self._sent[sent - self.limit] + self.window_s - now)
            if sent < self.confirmed:
                return self._record(now, False)
            cooling = now - self._last_429 < D.BUDGET_PROBE_COOLDOWN_S
            beyond = self.limit is not None and sent >= self.limit
            if beyond and cooling:
                assert self.limit is not None
                return max(0.001, self._sent[max(0, sent - self.limit)] + self.window_s - now)
            allowed = 1 if beyond else self._ramp
            if self._unconfirmed < allowed:
                self._unconfirmed += 1
                return self._record(now, True)
            return D.BUDGET_RECHECK_S  # a reply in flight decides; the scheduler asks again on it

    def take_after(self) -> Grant:
        """For a caller that just slept as long as try_take said (the plain clients): its slot."""
        with self._lock:
            now = self._clock()
            return self._record(now, False)

    def _window(self, now: float) -> deque[float]:
        while self._sent and self._sent[0] <= now - self.window_s:
            self._sent.popleft()
        return self._sent

    def _record(self, now: float, unconfirmed: bool) -> Grant:
        self._sent.append(now)
        return Grant(unconfirmed)

    # --- what the reply taught ----------------------------------------------------------------
    def settle(self, grant: Grant | None, status: int | None) -> None:
        """A request's reply came (status None: no reply at all). A success past `confirmed` raises
        it, and past `limit` raises that; a 429 was already taken by `pause_until`."""
        if grant is None or not grant.unconfirmed:
            return
        try:
            self._settle(status)
        finally:
            self._tell()

    def _settle(self, status: int | None) -> None:
        learned = False
        with self._lock:
            self._unconfirmed = max(0, self._unconfirmed - 1)
            if status is not None and status != 429:
                seen = len(self._window(self._clock()))
                if seen > self.confirmed:
                    self.confirmed, learned = seen, True
                    self._ramp = min(self._ramp * 2, D.BUDGET_RAMP_MAX)
                if self.limit is not None and seen > self.limit:
                    self.limit = seen
        if learned:
            self._learned()

    def pause_until(self, reset_at: datetime | None) -> None:
        """The server said 429: the limit is what this window held, every request with this key
        waits until the reset (bounded; a window when the server names none)."""
        wait = (
            D.BUDGET_WINDOW_S if reset_at is None else (reset_at - datetime.now(timezone.utc)).total_seconds()
        )
        wait = min(max(wait, 0.0), 2 * self.window_s)
        with self._lock:
            now = self._clock()
            self.rate_limited += 1
            self._paused_until = max(self._paused_until, now + wait)
            self._last_429 = now
            self._ramp = D.BUDGET_RAMP_START
            if not self.forced:
                took = max(1, len(self._window(now)) - 1)  # the refused request is not the server's
                self.limit = took if self.limit is None else min(self.limit, took)
                self.confirmed = min(self.confirmed, self.limit)
        log.warning(
            "rate limited: every request with this key waits %.1f s; limit now %s a window",
            wait,
            self.limit,
        )
        self._learned(always=True)
        self._tell()

    def _learned(self, *, always: bool = False) -> None:
        """Tell on_learn (the ledger) what was learned: every 429, and a limit or a confirmed count
        that grew by a quarter since it was last told (not every request of a growing window)."""
        if self.on_learn is None or self.forced:
            return
        now = (self.limit, self.confirmed)
        if not always and self._told is not None:
            limit, confirmed = self._told
            grown = now[1] >= 1.25 * confirmed + 1 or (
                now[0] is not None and limit is not None and now[0] >= 1.25 * limit + 1
            )
            if not grown:
                return
        self._told = now
        try:
            self.on_learn(self)
        except Exception:  # the ledger is busy or full: the next lesson is written instead
            log.warning("could not keep the learned request limit", exc_info=True)

    def flush(self) -> None:
        """Tell on_learn the latest, however little it grew (a runner that stops calls it)."""
        if self._told != (self.limit, self.confirmed):
            self._learned(always=True)

    def scarce(self) -> bool:
        """Whether requests are short now: the window is over half used of a known limit, or paused."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return True
            limit = self.limit if self.forced or now - self._last_429 < D.BUDGET_PROBE_COOLDOWN_S else None
            return limit is not None and len(self._window(now)) * 2 >= limit


_registry: dict[tuple[str, str], RequestBudget] = {}
_registry_lock = threading.Lock()


def budget_for(base_url: str, api_key: str | None, rpm: int | None) -> RequestBudget:
    """The process-wide budget of one key at one server. `rpm` not None forces a limit (0: none)."""
    digest = hashlib.sha256((api_key or "").encode()).hexdigest()
    with _registry_lock:
        budget = _registry.get((base_url, digest))
        if budget is None:
            budget = _registry[(base_url, digest)] = RequestBudget(rpm)
        elif rpm is not None and (not budget.forced or rpm != budget.limit):
            budget.force(rpm)
        return budget
