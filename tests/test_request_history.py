"""The request-history client against injected transports: envelopes, fields, retries, the key."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timezone
from urllib.parse import parse_qs

import httpx
import pytest

from flux_core import defaults as D
from flux_core.errors import AuthError, MissingKey
from flux_core.segmind.budget import RequestBudget
from flux_core.segmind.client import AsyncSegmindClient, SegmindClient
from flux_core.segmind.records import (
    COMPLETED,
    FAILED,
    PENDING,
    RequestRecord,
    record_from,
    records_from,
    same_request,
)
from flux_core.settings import Connection, settle_5xx_wait_s, settle_grace_s
from tests.test_client import BASE, KEY, PARAMS, Script

CONTROL = "https://control.segmind.test"
LIST = "GET /inference-request/request-history"
RID = "2c7f59ea-13f1-402c-9353-915a2b5a2124"
ONE = f"GET /inference-request/request-history/{RID}"
ROW = {
    "request_id": RID,
    "model_name": "flux-2-max",
    "model_status": "COMPLETED",
    "credits_deduction": 0.07,
    "request_body": {"prompt": "a red cube", "seed": 1},
    "generation_url": "https://images.segmind.test/g/1.png",
    "latency_ms": 25300,
    "created_at": "2026-12-01T10:00:00Z",
}


@pytest.fixture(autouse=True)
def _no_control_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (D.CONTROL_URL_ENV, D.SETTLE_GRACE_ENV, D.SETTLE_5XX_WAIT_ENV):
        monkeypatch.delenv(name, raising=False)


def make(script: Script, sleeps=None, key: str | None = KEY, **kwargs) -> SegmindClient:
    connection = Connection.resolve(api_key=key, base_url=BASE, rpm=0, control_url=CONTROL)
    return SegmindClient(
        connection=connection,
        transport=script.transport(),
        budget=RequestBudget(0),
        control_budget=kwargs.pop("control_budget", RequestBudget(0)),
        sleep=sleeps if sleeps is not None else (lambda s: None),
        **kwargs,
    )


def query(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}


# --- the request ------------------------------------------------------------------------------
def test_history_sends_the_sdks_parameter_names_and_omits_unset_ones():
    script = Script({LIST: [(200, {"data": [ROW]})]})
    make(script).history()
    sent = script.calls[0]
    assert sent.url.host == "control.segmind.test" and query(sent) == {"page": "1", "per_page": "100"}
    script = Script({LIST: [(200, {"data": []})]})
    make(script).history(
        page=3,
        per_page=20,
        from_date=date(2026, 11, 1),
        to_date="2026-11-30",
        model_name="flux-2-max",
        status="failed",
        user_email="ana@example.test",
    )
    assert query(script.calls[0]) == {
        "page": "3",
        "per_page": "20",
        "from_date": "2026-11-01",
        "to_date": "2026-11-30",
        "model_name": "flux-2-max",
        "status": "FAILED",
        "user_email": "ana@example.test",
    }


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
        ({"page": 0}, "page"),
        ({"from_date": "1 Dec"}, "from_date"),
        ({"to_date": "2026-13-01"}, "to_date"),
        ({"status": "DONE"}, "status"),
    ],
)
def test_bad_history_arguments_name_the_parameter_and_send_nothing(kwargs, field):
    script = Script({})
    with pytest.raises(ValueError, match=field):
        make(script).history(**kwargs)
    assert script.calls == []


def test_one_record_is_asked_for_by_its_quoted_id():
    odd = "a/b c"
    script = Script({"GET /inference-request/request-history/a/b c": [(200, {**ROW, "request_id": odd})]})
    record = make(script).request_record(odd)
    assert record is not None and record.request_id == odd
    assert script.calls[0].url.raw_path == b"/inference-request/request-history/a%2Fb%20c"


def test_no_key_means_no_history_request():
    script = Script({})
    with pytest.raises(MissingKey):
        make(script, key=None).history()
    assert script.calls == []


# --- envelopes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("envelope", ["data", "items", "results", "rows", "requests", "generations"])
def test_every_envelope_is_read(envelope):
    script = Script({LIST: [(200, {envelope: [ROW], "page": 1})]})
    page = make(script).history()
    assert [r.request_id for r in page.records] == [RID] and page.records[0].status == COMPLETED


def test_a_bare_list_and_a_nested_envelope_are_read():
    for body in ([ROW], {"data": {"rows": [ROW], "total": 1}}, {"result": {"items": [ROW]}}):
        script = Script({LIST: [(200, body)]})
        assert [r.request_id for r in make(script).history().records] == [RID]


def test_an_unknown_envelope_is_an_empty_page_not_an_error():
    script = Script({LIST: [(200, {"message": "ok"})]})
    page = make(script).history()
    assert page.records == () and page.has_more is False


@pytest.mark.parametrize(
    "body, per_page, more",
    [
        ({"data": [ROW]}, 1, True),  # a full page
        ({"data": [ROW]}, 2, False),
        ({"data": [ROW], "total": 5}, 2, True),
        ({"data": [ROW], "total": 1}, 2, False),
        ({"data": [ROW], "pages": 2}, 2, True),
        ({"data": [ROW], "has_more": True}, 2, True),
        ({"data": [ROW], "next": "/inference-request/request-history?page=2"}, 2, True),
        ({"data": [ROW], "next": None}, 2, False),
        ({"data": {"rows": [ROW], "total_pages": 3}}, 2, True),
    ],
)
def test_whether_a_next_page_may_exist(body, per_page, more):
    script = Script({LIST: [(200, body)]})
    assert make(script).history(per_page=per_page).has_more is more


def test_one_record_may_be_the_row_itself_or_wrapped():
    for body in (ROW, {"data": ROW}, {"request": ROW}, {"result": ROW}, {"data": [ROW, ROW]}):
        script = Script({ONE: [(200, body)]})
        record = make(script).request_record(RID)
        assert record is not None and record.request_id == RID and record.cost_usd == 0.07


def test_a_404_for_one_record_is_an_answer_not_an_error():
    script = Script({ONE: [(404, {"error": f"Request {RID} not found"})]})
    assert make(script).request_record(RID) is None and len(script.calls) == 1


def test_other_refusals_of_the_history_raise():
    script = Script({LIST: [(401, {"error": "Unauthorized"})]})
    with pytest.raises(AuthError):
        make(script).history()


# --- fields ---------------------------------------------------------------------------------------
def test_every_field_of_a_full_row():
    [record] = records_from([{**ROW, "updated_at": "2026-12-01T10:00:25+00:00", "user_email": "a@x.test"}])
    assert record == RequestRecord(
        request_id=RID,
        status=COMPLETED,
        model_name="flux-2-max",
        cost_usd=0.07,
        request_body={"prompt": "a red cube", "seed": 1},
        generation_urls=("https://images.segmind.test/g/1.png",),
        latency_ms=25300.0,
        created_at=datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc),
        updated_at=datetime(2026, 12, 1, 10, 0, 25, tzinfo=timezone.utc),
        error=None,
        user_email="a@x.test",
    )
    assert record.generation_url == "https://images.segmind.test/g/1.png"


def test_a_row_with_nothing_but_an_id_is_a_pending_record():
    for key in ("request_id", "id", "requestId"):
        [record] = records_from([{key: RID}])
        assert record == RequestRecord(request_id=RID, status=PENDING)
    assert records_from([{"model_status": "COMPLETED"}, "junk", None, 7]) == []


@pytest.mark.parametrize(
    "row, status",
    [
        ({"model_status": "completed"}, COMPLETED),
        ({"status": "SUCCEEDED"}, COMPLETED),
        ({"status": "success"}, COMPLETED),
        ({"model_status": "Failed"}, FAILED),
        ({"status": "ERROR"}, FAILED),
        ({"status": "failure"}, FAILED),
        ({"status": "QUEUED"}, PENDING),
        ({"status": "processing"}, PENDING),
        ({"status": "IN_PROGRESS"}, PENDING),
        ({"status": "running"}, PENDING),
        ({"status": "pending"}, PENDING),
        ({"status": "SOMETHING_NEW"}, PENDING),
        ({"status": 3}, PENDING),
        ({"model_status": "COMPLETED", "status": "QUEUED"}, COMPLETED),  # model_status first
    ],
)
def test_status_is_normalized(row, status):
    assert records_from([{"request_id": RID, **row}])[0].status == status


@pytest.mark.parametrize(
    "value, cost",
    [
        (0.07, 0.07),
        ("0.07", 0.07),
        (0, 0.0),
        ("", None),
        ("free", None),
        (None, None),
        (True, None),
        ("nan", None),
    ],
)
def test_cost_is_a_number_or_a_numeric_string(value, cost):
    assert records_from([{"request_id": RID, "credits_deduction": value}])[0].cost_usd == cost


def test_a_stringified_request_body_is_parsed_and_junk_is_none():
    body = {"prompt": "a red cube", "seed": 1}
    assert records_from([{"request_id": RID, "request_body": json.dumps(body)}])[0].request_body == body
    for junk in ("{not json", "[1, 2]", 5, ["a"]):
        assert records_from([{"request_id": RID, "request_body": junk}])[0].request_body is None


@pytest.mark.parametrize(
    "row",
    [
        {"created_at": "2026-12-01T10:00:00Z"},
        {"created_at": "2026-12-01T10:00:00"},  # naive: UTC
        {"created_at": "2026-12-01 10:00:00"},
        {"created_at": "2026-12-01T11:00:00+01:00"},
        {"created_at": "2026-12-01T10:00:00.000000000Z"},
        {"model_created": 1796119200},  # epoch seconds
        {"createdAt": 1796119200000},  # epoch milliseconds
        {"created": "1796119200"},
        {"timestamp": 1796119200.0},
        {"requested_at": "2026-12-01T10:00:00Z"},
        {"start_time": "2026-12-01T10:00:00Z"},
        {"created_at": "yesterday", "model_created": "2026-12-01T10:00:00Z"},  # the first that parses
    ],
)
def test_created_at_is_an_aware_utc_time_whatever_the_form(row):
    record = records_from([{"request_id": RID, **row}])[0]
    assert record.created_at == datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)


def test_an_unreadable_time_is_none():
    for value in ("soon", "", None, True, -5, {"t": 1}):
        assert records_from([{"request_id": RID, "created_at": value}])[0].created_at is None


def test_generation_urls_a_string_a_list_or_absent():
    def urls(value):
        return records_from([{"request_id": RID, "generation_url": value}])[0].generation_urls

    assert urls("https://a.test/1.png") == ("https://a.test/1.png",)
    assert urls(["https://a.test/1.png", {"url": "https://a.test/2.png"}, 3]) == (
        "https://a.test/1.png",
        "https://a.test/2.png",
    )
    assert urls(None) == () and records_from([{"request_id": RID}])[0].generation_url is None


def test_an_error_is_text_with_any_key_redacted():
    row = {"request_id": RID, "model_status": "FAILED", "error": f"bad key {KEY} and SG_ffffffffffffffff"}
    error = records_from([row])[0].error
    assert error is not None and KEY not in error and "SG_ffff" not in error and error.startswith("bad key")
    assert records_from([{"request_id": RID, "error": {"message": "moderated"}}])[0].error == "moderated"


def test_rows_of_one_request_merge_with_the_cost_counted_once():
    rows = [
        {**ROW, "generation_url": "https://a.test/1.png"},
        {"request_id": "other", "credits_deduction": 0.05},
        {**ROW, "generation_url": "https://a.test/2.png", "created_at": "2026-12-01T09:59:59Z"},
    ]
    script = Script({LIST: [(200, {"data": rows})]})
    page = make(script).history(per_page=10)
    first, other = page.records
    assert first.generation_urls == ("https://a.test/1.png", "https://a.test/2.png")
    assert sum(r.cost_usd or 0 for r in page.records) == pytest.approx(0.12)
    assert first.created_at == datetime(2026, 12, 1, 9, 59, 59, tzinfo=timezone.utc)
    assert page.has_more is False  # 3 rows of 10


def test_a_record_found_by_id_takes_that_id_when_the_row_names_another():
    record = record_from({"data": {"id": 17, "model_status": "COMPLETED"}}, RID)
    assert record is not None and record.request_id == RID


# --- matching a payload ---------------------------------------------------------------------------
def test_same_request_ignores_key_order_and_stringified_numbers():
    payload = PARAMS.payload()
    shuffled = dict(reversed(list(payload.items())))
    stringified = {
        k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in payload.items()
    }
    for body in (payload, shuffled, stringified, json.dumps(shuffled)):
        assert same_request(records_from([{"request_id": RID, "request_body": body}])[0], payload)


def test_same_request_tells_different_payloads_apart():
    payload = {"prompt": "a red cube", "seed": 42, "image_urls": ["https://a.test/1", "https://a.test/2"]}

    def record(body):
        return RequestRecord(RID, request_body=body)

    assert same_request(record({**payload, "seed": "42"}), payload)
    assert not same_request(record({**payload, "seed": 43}), payload)
    assert not same_request(record({**payload, "image_urls": payload["image_urls"][::-1]}), payload)
    assert not same_request(record({**payload, "extra": 1}), payload)
    assert not same_request(record({**payload, "seed": True}), {**payload, "seed": 1})
    assert not same_request(RequestRecord(RID), payload)


# --- retries, budget, the key ---------------------------------------------------------------------
def test_429_then_success_waits_for_the_reset_through_the_control_budget(sleeps):
    limited = httpx.Response(
        429,
        json={"error": "rate_limit_exceeded"},
        headers={"x-rate-limit-reset-at-utc": "2999-01-01T00:00:00Z"},
    )
    script = Script({LIST: [limited, (200, {"data": [ROW]})]})
    now = [0.0]
    budget = RequestBudget(0, clock=lambda: now[0])
    page = make(script, sleeps, control_budget=budget).history()
    assert [r.request_id for r in page.records] == [RID] and len(script.calls) == 2
    assert max(sleeps) >= 60.0  # bounded wait until the (far) reset, never a hammering loop
    assert budget.try_take() >= 60.0  # every later request to the control host waits too


def test_5xx_and_network_errors_are_retried(sleeps):
    script = Script(
        {
            ONE: [
                (500, b""),
                (502, b"<html>bad gateway</html>"),
                httpx.ReadError("reset"),
                (200, b"<html>not json</html>"),
                (503, b"busy"),
                (200, ROW),
            ]
        }
    )
    record = make(script, sleeps).request_record(RID)
    assert record is not None and record.status == COMPLETED and len(script.calls) == 6 and len(sleeps) == 5


def test_the_key_goes_to_the_api_and_control_hosts_and_nowhere_else():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.startswith("/inference-request"):
            return httpx.Response(200, json={"data": [ROW]})
        if request.url.path == "/v1/get-user-credits":
            return httpx.Response(200, json={"credits": 1.0})
        return httpx.Response(200, content=b"img", headers={"content-type": "image/png"})

    connection = Connection.resolve(api_key=KEY, base_url=BASE, rpm=0, control_url=CONTROL)
    client = SegmindClient(
        connection=connection,
        transport=httpx.MockTransport(answer),
        budget=RequestBudget(0),
        control_budget=RequestBudget(0),
        sleep=lambda s: None,
    )
    client.history()
    client.request_record(RID)
    client.credits()
    client.download("https://images.segmind.test/g/1.png")
    client.download("https://control.segmind.test.evil.test/x.png")
    client.download("http://control.segmind.test/x.png")  # another scheme is another origin
    keyed = {(r.url.scheme, r.url.host) for r in seen if r.headers.get("x-api-key") == KEY}
    assert keyed == {("https", "control.segmind.test"), ("https", "api.segmind.test")}
    assert len(seen) == 6


def test_the_control_url_comes_from_the_argument_then_the_environment_then_the_default(monkeypatch):
    assert Connection.resolve(api_key=KEY).control_url == "https://api.spotprod.segmind.com"
    assert Connection.resolve(api_key=KEY, base_url="https://api.segmind.com/v1").control_url == D.CONTROL_URL
    assert (
        Connection.resolve(api_key=KEY, base_url="http://127.0.0.1:9/v1").control_url == "http://127.0.0.1:9"
    )
    monkeypatch.setenv("SEGMIND_CONTROL_URL", "https://env.control.test/")
    assert Connection.resolve(api_key=KEY).control_url == "https://env.control.test"
    assert (
        Connection.resolve(api_key=KEY, base_url="http://127.0.0.1:9").control_url
        == "https://env.control.test"
    )
    assert Connection.resolve(api_key=KEY, control_url="https://arg.test").control_url == "https://arg.test"
    connection = Connection.resolve(api_key=KEY)
    assert KEY not in repr(connection) and "env.control.test" in repr(connection)


def test_the_settling_waits_come_from_the_argument_then_the_environment_then_the_default(monkeypatch):
    assert settle_grace_s() == 600.0 and settle_5xx_wait_s() == 20.0
    monkeypatch.setenv("FLUX_LAB_SETTLE_GRACE_S", "3")
    monkeypatch.setenv("FLUX_LAB_SETTLE_5XX_WAIT_S", "0")
    assert settle_grace_s() == 3.0 and settle_5xx_wait_s() == 0.0 and settle_grace_s(7) == 7.0
    for bad in ("soon", "-1", "inf", "nan"):
        monkeypatch.setenv("FLUX_LAB_SETTLE_GRACE_S", bad)
        with pytest.raises(ValueError, match="FLUX_LAB_SETTLE_GRACE_S"):
            settle_grace_s()


def test_the_async_twin_gives_the_same_results():
    rows = {"data": [ROW, {**ROW, "generation_url": "https://a.test/2.png"}], "total": 2}
    script = Script({LIST: [(500, b""), (200, rows)], ONE: [(200, {"data": ROW})]})
    missing = Script({ONE: [(404, {"error": "not found"})]})

    async def no_sleep(seconds: float) -> None:
        return None

    async def scenario(script: Script):
        async with AsyncSegmindClient(
            connection=Connection.resolve(api_key=KEY, base_url=BASE, rpm=0, control_url=CONTROL),
            transport=httpx.MockTransport(script._answer),
            sleep=no_sleep,
            budget=RequestBudget(0),
            control_budget=RequestBudget(0),
        ) as client:
            return await client.history(per_page=5), await client.request_record(RID)

    async def absent():
        async with AsyncSegmindClient(
            connection=Connection.resolve(api_key=KEY, base_url=BASE, rpm=0, control_url=CONTROL),
            transport=httpx.MockTransport(missing._answer),
            sleep=no_sleep,
            budget=RequestBudget(0),
        ) as client:
            return await client.request_record(RID)

    page, record = asyncio.run(scenario(script))
    sync_script = Script({LIST: [(200, rows)], ONE: [(200, {"data": ROW})]})
    sync = make(sync_script)
    assert page == sync.history(per_page=5) and record == sync.request_record(RID)
    assert asyncio.run(absent()) is None
