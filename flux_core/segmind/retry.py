"""When to try again: backoff with jitter, the server's reset header, and the poll cadence."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timezone

from flux_core import defaults as D
from flux_core.errors import CallFailed, RateLimited


def backoff(attempt: int, *, base: float = D.RETRY_BASE_S, cap: float = D.RETRY_CAP_S) -> float:
    """Exponential backoff with jitter: between half and all of min(cap, base * 2**attempt)."""
    ceiling = min(cap, base * (2**attempt))
    return ceiling * (0.5 + random.random() / 2)


def seconds_until(moment: datetime, now: datetime | None = None) -> float:
    now = now or datetime.now(timezone.utc)
    return max(0.0, (moment - now).total_seconds())


def retry_delay(error: CallFailed, attempt: int, now: datetime | None = None) -> float:
    """How long to wait before trying again after `error`; honours `x-rate-limit-reset-at-utc`."""
    if isinstance(error, RateLimited) and error.reset_at is not None:
        wait = seconds_until(error.reset_at, now)
        return min(wait, D.BUDGET_WINDOW_S * 2) + random.uniform(0.05, 0.25)
    return backoff(attempt)


class DurationEstimate:
    """A running estimate of how long a job takes from submit to COMPLETED (thread-safe)."""

    def __init__(self, seconds: float | None = D.EXPECTED_INFERENCE_S):
        self._lock = threading.Lock()
        self._value = seconds

    @property
    def seconds(self) -> float | None:
        return self._value

    def observe(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self._value = seconds if self._value is None else 0.7 * self._value + 0.3 * seconds


class PollSchedule:
    """The delay before each status poll.

    Nothing known: start at POLL_FIRST_S and grow by POLL_GROWTH up to POLL_MAX_S.
    A duration expected: poll sparsely until ~85 % of it, then every POLL_NEAR_EXPECTED_S,
    growing slowly, so a finished job is noticed about a second after it finishes.
    """

    def __init__(self, expected_s: float | None = None):
        self.expected_s = expected_s
        self._interval = D.POLL_FIRST_S
        self._late = D.POLL_NEAR_EXPECTED_S

    def next_delay(self, elapsed_s: float) -> float:
        if self.expected_s:
            target = 0.85 * self.expected_s
            if elapsed_s < target:
                return min(D.POLL_MAX_S, max(D.POLL_MIN_S, target - elapsed_s))
            delay, self._late = self._late, min(D.POLL_MAX_S, self._late * 1.25)
            return delay
        delay, self._interval = self._interval, min(D.POLL_MAX_S, self._interval * D.POLL_GROWTH)
        return delay
