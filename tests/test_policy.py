"""Retry, backoff, polling cadence, the shared request budget and error mapping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from flux_core import defaults as D
from flux_core.ledger import store
from flux_core.params import FluxParams
from flux_core.segmind.budget import Grant, RequestBudget
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


def test_a_forced_limit_spreads_requests_over_the_window():
    clock = FakeClock()
    budget = RequestBudget(rpm=3, window_s=60.0, clock=clock)
    assert all(isinstance(budget.try_take(), Grant) for _ in range(3))
    assert budget.try_take() == 60.0  # the 4th waits for the 1st to leave the window
    clock.now += 30
    assert budget.try_take() == 30.0  # and is not planned before then: it asks again


def test_no_limit_still_honours_a_429_pause():
    clock = FakeClock()
    budget = RequestBudget(rpm=0, clock=clock)
    assert isinstance(budget.try_take(), Grant)
    budget.pause_until(datetime.now(timezone.utc) + timedelta(seconds=5))
    assert 4.0 < budget.try_take() <= 5.0
    assert budget.limit is None  # a forced "no limit" learns nothing from it


def test_requests_past_what_the_server_has_taken_go_in_a_slow_start():
    clock = FakeClock()
    budget = RequestBudget(clock=clock)  # learned: starts from the documented Pro limit
    assert budget.limit == D.REQUESTS_PER_MINUTE and budget.confirmed == 0
    first = [budget.try_take() for _ in range(D.BUDGET_RAMP_START)]
    assert all(isinstance(g, Grant) and g.unconfirmed for g in first)
    assert budget.try_take() == D.BUDGET_RECHECK_S  # no more in flight until a reply comes
    budget.settle(first[0], 200)
    assert budget.confirmed == D.BUDGET_RAMP_START  # the window held that many and the server took them
    assert isinstance(budget.try_take(), Grant)


def test_past_the_limit_one_probe_at_a_time_and_a_success_raises_it():
    clock = FakeClock()
    budget = RequestBudget(learned=(4, 4), clock=clock)
    assert all(isinstance(budget.try_take(), Grant) for _ in range(4))
    probe = budget.try_take()
    assert isinstance(probe, Grant) and probe.unconfirmed
    assert budget.try_take() == D.BUDGET_RECHECK_S  # a second probe waits for the first's reply
    budget.settle(probe, 200)
    assert budget.limit == 5 and budget.confirmed == 5


def test_a_429_teaches_the_limit_pauses_and_stops_probing():
    clock = FakeClock()
    learned = []
    budget = RequestBudget(learned=(10, 3), clock=clock)
    budget.on_learn = lambda b: learned.append((b.limit, b.confirmed))
    grants = [budget.try_take() for _ in range(5)]
    assert all(isinstance(g, Grant) for g in grants)
    budget.pause_until(datetime.now(timezone.utc) + timedelta(seconds=20))
    assert (
        budget.limit == 4 and budget.confirmed == 3 and learned == [(4, 3)]
    )  # the refused one is not counted
    assert 19 < budget.try_take() <= 20  # everything waits for the reset
    clock.now += 21
    assert budget.try_take() == 39.0  # past the learned limit: the window must empty, no probe
    clock.now += D.BUDGET_PROBE_COOLDOWN_S
    assert isinstance(budget.try_take(), Grant)


def test_a_key_learned_in_one_process_starts_the_next_there(emulator, data_dir):
    from flux_core.ledger.store import Ledger
    from flux_core.runner import Runner
    from flux_core.segmind.client import SegmindClient
    from flux_core.settings import Connection
    from tests.conftest import TEST_KEY

    server = emulator(latency_s=0.2)
    ledger = Ledger(data_dir / "ledger.db")
    client = SegmindClient(connection=Connection.resolve(api_key=TEST_KEY, base_url=server.url))
    client.budget.limit, client.budget.confirmed = 7, 0  # a fresh budget: nothing known yet
    runner = Runner(ledger, data_dir, client, backend="emulator")
    runner.wait([runner.enqueue(FluxParams.parse(prompt="a red cube", seed=s)) for s in range(3)])
    runner.shutdown()
    kept = ledger.learned_limit(store.key_id(TEST_KEY), server.url)
    assert kept is not None and kept[1] >= 3  # the server took at least the three submits in a window
    assert kept[0] is not None and kept[0] >= kept[1]


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
