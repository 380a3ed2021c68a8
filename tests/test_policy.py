"""Retry, backoff, polling cadence, the shared request budget and error mapping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from flux_core import defaults as D
from flux_core.segmind.budget import RequestBudget
from flux_core.errors import (
    AuthError,
    BadRequest,
    ForbiddenError,
    InsufficientCredits,
    JobBlocked,
    JobFailed,
    ModelGone,
    NotFoundError,
    RateLimited,
    ServerError,
    error_from_response,
    failure_from_body,
    parse_reset_at,
)
from flux_core.segmind.retry import DurationEstimate, PollSchedule, backoff, retry_delay


def test_backoff_grows_with_jitter_and_stays_under_the_cap():
    for attempt in range(12):
        ceiling = min(D.RETRY_CAP_S, D.RETRY_BASE_S * 2**attempt)
        values = [backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= v <= ceiling for v in values)
        assert len(set(values)) > 1


def test_retry_delay_honours_the_reset_header():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    error = RateLimited("slow down", reset_at=now + timedelta(seconds=7))
    assert 7.0 < retry_delay(error, 0, now=now) < 7.5
    assert retry_delay(RateLimited("slow down"), 0, now=now) <= D.RETRY_BASE_S


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T00:00:07Z",
        "2026-01-01T00:00:07+00:00",
        "1767225607",
        "1767225607000",
        "Thu, 01 Jan 2026 00:00:07 GMT",
    ],
)
def test_reset_header_formats(value):
    assert parse_reset_at(value) == datetime(2026, 1, 1, 0, 0, 7, tzinfo=timezone.utc)


def test_unreadable_reset_header_is_ignored():
    assert parse_reset_at("soon") is None and parse_reset_at(None) is None


def test_poll_schedule_without_an_estimate_backs_off_to_the_cap():
    schedule = PollSchedule(None)
    delays = [schedule.next_delay(0) for _ in range(10)]
    assert delays[0] == D.POLL_FIRST_S and delays == sorted(delays) and delays[-1] == D.POLL_MAX_S


def test_poll_schedule_with_an_estimate_waits_then_polls_tightly():
    schedule = PollSchedule(20.0)
    elapsed, polls = 0.0, []
    while elapsed < 26.0:
        elapsed += schedule.next_delay(elapsed)
        polls.append(elapsed)
    assert len([t for t in polls if t < 17.0]) <= 3  # few wasted polls before the job can be done
    gaps_after = [b - a for a, b in zip(polls, polls[1:]) if a >= 17.0]
    assert gaps_after[0] <= 1.0 + 1e-9  # and a finished job is noticed quickly


def test_duration_estimate_learns():
    estimate = DurationEstimate(None)
    estimate.observe(10.0)
    estimate.observe(20.0)
    assert 10.0 < estimate.seconds < 20.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_spreads_requests_over_the_window():
    clock = FakeClock()
    budget = RequestBudget(rpm=3, window_s=60.0, clock=clock)
    assert [budget.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.reserve() == 60.0  # the 4th waits for the 1st to leave the window
    clock.now += 30
    assert budget.reserve() == 30.0  # the 5th waits for the 2nd slot


def test_budget_without_a_limit_still_honours_a_429_pause():
    clock = FakeClock()
    budget = RequestBudget(rpm=None, clock=clock)
    assert budget.reserve() == 0.0
    budget.pause_until(datetime.now(timezone.utc) + timedelta(seconds=5))
    assert 4.0 < budget.reserve() <= 5.0


def response(status: int, body=None, text: str | None = None, headers=None) -> httpx.Response:
    if body is not None:
        return httpx.Response(status, json=body, headers=headers)
    return httpx.Response(status, text=text or "", headers=headers)


@pytest.mark.parametrize(
    "status, body, cls",
    [
        (401, {"error": "Unauthorized. API key is invalid"}, AuthError),
        (403, {"error": "team not permitted"}, ForbiddenError),
        (404, {"error": "Request x not found"}, NotFoundError),
        (406, {"error": "Insufficient credits: balance 0.01, required 0.07"}, InsufficientCredits),
        (406, {"error": "Invalid content type"}, BadRequest),
        (410, {"error": "retired"}, ModelGone),
        (429, {"error": "rate_limit_exceeded"}, RateLimited),
        (500, {"error": "boom"}, ServerError),
        (502, None, ServerError),
        (504, None, ServerError),
        (400, {"error": "bad"}, BadRequest),
        (405, None, BadRequest),
    ],
)
def test_status_mapping(status, body, cls):
    error = error_from_response(response(status, body, text="<html>405</html>" if status == 405 else ""))
    assert type(error) is cls and error.status == status


def test_plain_text_credit_errors_keep_their_words():
    error = error_from_response(response(406, text="Insufficient credits"))
    assert isinstance(error, InsufficientCredits) and "Insufficient credits" in error.user_text()


def test_the_key_is_never_echoed():
    key = "SG_deadbeefdeadbeef"
    error = error_from_response(response(401, {"error": f"key {key} is invalid"}), secret=key)
    assert key not in error.user_text() and "***" in error.user_text()


def test_429_carries_its_reset_time():
    error = error_from_response(
        response(429, {"error": "x"}, headers={"x-rate-limit-reset-at-utc": "2026-01-01T00:00:07Z"})
    )
    assert error.reset_at == datetime(2026, 1, 1, 0, 0, 7, tzinfo=timezone.utc)
    assert "00:00:07 UTC" in error.user_text()


def test_moderation_is_a_block_and_other_failures_are_failures():
    blocked = failure_from_body({"status": "FAILED", "error": "Content moderated by safety filter"}, 2)
    assert isinstance(blocked, JobBlocked) and "safety tolerance 2" in blocked.user_text()
    failed = failure_from_body({"status": "FAILED", "error": "CUDA out of memory"})
    assert type(failed) is JobFailed and "CUDA out of memory" in failed.user_text()
