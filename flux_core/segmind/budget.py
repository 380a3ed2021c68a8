"""One request budget per (server, key): every request made with a key draws from it.

A sliding window of `rpm` requests per BUDGET_WINDOW_S seconds, shared by every thread and
coroutine in the process, so a sweep of many runs does not trip the server's rate limit. When
the server answers 429 anyway, `rate_limited` holds every request until its reset time.

A budget whose limit nobody set (SEGMIND_RPM unset) is `adaptive`: it starts from the documented
plan limit (or what an earlier process learned for the key) and learns the server's. While no 429
has come, a full window raises the limit by half (at most every BUDGET_PROBE_EVERY_S); a 429 sets
it just under what was sent in the window, and it is probed upward again, by a tenth, only after
BUDGET_PROBE_QUIET_S without one. A set limit is never changed.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Callable

from flux_core import defaults as D
from flux_core.logs import logger

log = logger(__name__)


class RequestBudget:
    def __init__(
        self,
        rpm: int | None,
        window_s: float = D.BUDGET_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        *,
        adaptive: bool = False,
    ):
        self.rpm = rpm
        self.window_s = window_s
        self.adaptive = adaptive and rpm is not None
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()
        self._paused_until = 0.0
        self._limited_at: float | None = None  # the last 429
        self._probed_at: float | None = None  # the last raise of the limit
        self.changed = False  # the limit moved since it was set or saved

    def reserve(self) -> float:
        """Take the next free slot; return the seconds to wait before sending (0 = now)."""
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until)
            if self.rpm:
                while self._slots and self._slots[0] <= now - self.window_s:
                    self._slots.popleft()
                if len(self._slots) >= self.rpm and self._may_probe(now):
                    step = D.BUDGET_PROBE_STEP if self._limited_at is None else D.BUDGET_PROBE_STEP_AFTER_429
                    raised = min(D.BUDGET_PROBE_MAX_RPM, math.ceil(self.rpm * step))
                    if raised > self.rpm:
                        log.info("no 429 at %d requests a minute: trying %d", self.rpm, raised)
                        self.rpm, self._probed_at, self.changed = raised, now, True
                if len(self._slots) >= self.rpm:
                    start = max(start, self._slots[-self.rpm] + self.window_s)
                self._slots.append(start)
            return max(0.0, start - now)

    def _may_probe(self, now: float) -> bool:
        if not self.adaptive:
            return False
        if self._probed_at is not None and now - self._probed_at < D.BUDGET_PROBE_EVERY_S:
            return False
        return self._limited_at is None or now - self._limited_at >= D.BUDGET_PROBE_QUIET_S

    def rate_limited(self, reset_at: datetime | None) -> None:
        """The server said 429: an adaptive limit drops to just under what this key sent in the
        window; every request waits for the reset time when the server gave one."""
        with self._lock:
            now = self._clock()
            if self.adaptive and self.rpm:
                sent = sum(1 for t in self._slots if now - self.window_s < t <= now)
                lowered = max(D.BUDGET_MIN_RPM, int(sent * D.BUDGET_BACKOFF) if sent else self.rpm // 2)
                if lowered < self.rpm:
                    log.warning(
                        "rate limited after %d requests in the window: %d a minute from now", sent, lowered
                    )
                    self.rpm, self.changed = lowered, True
                self._limited_at = now
        if reset_at is not None:
            self.pause_until(reset_at)

    def start_from(self, rpm: int) -> None:
        """Begin from a limit an earlier process learned for this key (an adaptive budget only)."""
        with self._lock:
            if self.adaptive and not self.changed and rpm >= D.BUDGET_MIN_RPM:
                self.rpm = min(rpm, D.BUDGET_PROBE_MAX_RPM)

    def pause_until(self, reset_at: datetime) -> None:
        """The server said 429 with a reset time: hold every request until then (bounded)."""
        wait = (reset_at - datetime.now(timezone.utc)).total_seconds()
        wait = min(max(wait, 0.0), 2 * self.window_s)
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + wait)
        log.warning("rate limited: every request with this key waits %.1f s (until %s)", wait, reset_at)


_registry: dict[tuple[str, str], RequestBudget] = {}
_registry_lock = threading.Lock()


def budget_for(
    base_url: str, api_key: str | None, rpm: int | None, *, adaptive: bool = False
) -> RequestBudget:
    """The process-wide budget of one key at one server. A limit someone set replaces the one in
    use; an adaptive budget keeps what it has learned."""
    digest = hashlib.sha256((api_key or "").encode()).hexdigest()
    with _registry_lock:
        budget = _registry.get((base_url, digest))
        learns = adaptive and rpm is not None
        if budget is None:
            budget = _registry[(base_url, digest)] = RequestBudget(rpm, adaptive=learns)
        elif not learns or not budget.adaptive:  # a set limit, or the first to learn one
            budget.rpm, budget.adaptive = rpm, learns
        return budget
