"""One request budget per (server, key): every request made with a key draws from it.

A sliding window of `rpm` requests per BUDGET_WINDOW_S seconds, shared by every thread and
coroutine in the process, so a sweep of many runs does not trip the server's rate limit. When
the server answers 429 anyway, `pause_until` holds every request until its reset time.
"""

from __future__ import annotations

import hashlib
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
    ):
        self.rpm = rpm
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()
        self._paused_until = 0.0

    def reserve(self) -> float:
        """Take the next free slot; return the seconds to wait before sending (0 = now)."""
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until)
            if self.rpm:
                while self._slots and self._slots[0] <= now - self.window_s:
                    self._slots.popleft()
                if len(self._slots) >= self.rpm:
                    start = max(start, self._slots[-self.rpm] + self.window_s)
                self._slots.append(start)
            return max(0.0, start - now)

    def pause_until(self, reset_at: datetime) -> None:
        """The server said 429 with a reset time: hold every request until then (bounded)."""
        wait = (reset_at - datetime.now(timezone.utc)).total_seconds()
        wait = min(max(wait, 0.0), 2 * self.window_s)
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + wait)
        log.warning("rate limited: every request with this key waits %.1f s (until %s)", wait, reset_at)


_registry: dict[tuple[str, str], RequestBudget] = {}
_registry_lock = threading.Lock()


def budget_for(base_url: str, api_key: str | None, rpm: int | None) -> RequestBudget:
    """The process-wide budget of one key at one server."""
    digest = hashlib.sha256((api_key or "").encode()).hexdigest()
    with _registry_lock:
        budget = _registry.get((base_url, digest))
        if budget is None:
            budget = _registry[(base_url, digest)] = RequestBudget(rpm)
        elif rpm != budget.rpm:
            budget.rpm = rpm
        return budget
