"""The client against injected transports: nothing leaves the process, nothing waits."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from flux_core.segmind.budget import RequestBudget
from flux_core.segmind.client import AsyncSegmindClient, SegmindClient
from flux_core.errors import (
    AuthError,
    SubmitServerError,
    InsufficientCredits,
    JobBlocked,
    JobExpired,
    JobFailed,
    JobTimedOut,
    MissingKey,
    NetworkError,
    SubmitUnknown,
)
from flux_core.segmind.jobs import Job
from flux_core.params import FluxParams
from flux_core.settings import Connection

KEY = "SG_0123456789abcdef"
BASE = "https://api.segmind.test"
PARAMS = FluxParams.parse(prompt="a red cube", seed=1)
RID = "2c7f59ea-13f1-402c-9353-915a2b5a2124"
SUBMIT_BODY = {
    "request_id": RID,
    "status": "QUEUED",
    "poll_url": f"{BASE}/v1/requests/{RID}",
    "status_url": f"{BASE}/v2/requests/{RID}/status",
    "response_url": f"{BASE}/v2/requests/{RID}",
}
DONE = {"status": "COMPLETED", "request_id": RID, "metrics": {"inference_time": 13.06}}
RESULT = {
    "status": "COMPLETED",
    "error": None,
    "output": "https://images.segmind.test/g/1.png",
    "metrics": {"inference_time": 13.06, "cost": 0.07, "remaining_credits": 9.9},
}


class Script:
    """A transport that answers each route from a list of responses (or exceptions), in order."""

    def __init__(self, routes: dict[str, list]):
        self.routes = {k: list(v) for k, v in routes.items()}
        self.calls: list[httpx.Request] = []

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        key = f"{request.method} {request.url.path}"
        queue = self.routes.get(key)
        if not queue:
            raise AssertionError(f"unexpected request {key}")
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        if isinstance(item, httpx.Response):
            return item
        status, body = item
        if isinstance(body, (dict, list)):
            return httpx.Response(status, json=body)
        return httpx.Response(status, content=body)

    def count(self, key: str) -> int:
        return sum(1 for r in self.calls if f"{r.method} {r.url.path}" == key)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._answer)


SUBMIT = "POST /v2/flux-2-max"
STATUS = f"GET /v2/requests/{RID}/status"
RESULT_ROUTE = f"GET /v2/requests/{RID}"


def make(script: Script, sleeps=None, key: str | None = KEY) -> SegmindClient:
    connection = Connection.resolve(api_key=key, base_url=BASE, rpm=0)
    return SegmindClient(
        connection=connection,
        transport=script.transport(),
        budget=RequestBudget(0),
        sleep=sleeps if sleeps is not None else (lambda s: None),
    )


def test_submit_sends_the_key_header_and_the_flat_body():
    script = Script({SUBMIT: [(200, SUBMIT_BODY)]})
    job = make(script).submit(PARAMS)
    assert job == Job(RID, SUBMIT_BODY["status_url"], SUBMIT_BODY["response_url"], SUBMIT_BODY["poll_url"])
    sent = script.calls[0]
    assert sent.headers["x-api-key"] == KEY and sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == PARAMS.payload()


def test_a_full_job_polls_until_completed_then_fetches_the_result(sleeps):
    script = Script(
        {
            SUBMIT: [(200, SUBMIT_BODY)],
            STATUS: [(200, {"status": "QUEUED"}), (200, {"status": "PROCESSING"}), (200, DONE)],
            RESULT_ROUTE: [(200, RESULT)],
        }
    )
    client = make(script, sleeps)
    seen = []
    outcome = client.wait(client.submit(PARAMS), on_status=lambda s, b: seen.append(s))
    assert outcome.image_url == RESULT["output"] and outcome.metrics["cost"] == 0.07
    assert seen == ["QUEUED", "PROCESSING", "COMPLETED"]
    assert script.count(SUBMIT) == 1 and script.count(STATUS) == 3 and len(sleeps) >= 3


def test_a_storm_of_bad_polls_is_ridden_out_with_one_submit(sleeps):
    storm = [
        (429, {"error": "rate_limit_exceeded"}),
        (500, {"error": "x"}),
        (502, b""),
        (503, b"busy"),
        httpx.ReadError("reset"),
        (200, b"<html>not json</html>"),
        httpx.RemoteProtocolError("eof"),
        (200, {"status": "PROCESSING"}),
        (200, DONE),
    ]
    script = Script(
        {
            SUBMIT: [(200, SUBMIT_BODY)],
            STATUS: storm,
            RESULT_ROUTE: [(502, b""), httpx.ConnectError("no"), (200, RESULT)],
        }
    )
    client = make(script, sleeps)
    outcome = client.wait(client.submit(PARAMS))
    assert outcome.image_url == RESULT["output"]
    assert script.count(SUBMIT) == 1 and script.count(STATUS) == len(storm)


def test_429_on_a_poll_waits_for_the_reset_time(sleeps):
    limited = httpx.Response(
        429,
        json={"error": "rate_limit_exceeded"},
        headers={"x-rate-limit-reset-at-utc": "2999-01-01T00:00:00Z"},
    )
    script = Script(
        {SUBMIT: [(200, SUBMIT_BODY)], STATUS: [limited, (200, DONE)], RESULT_ROUTE: [(200, RESULT)]}
    )
    client = make(script, sleeps)
    client.wait(client.submit(PARAMS))
    assert max(sleeps) >= 60.0  # bounded wait until the (far) reset, never a hammering loop


def test_failed_comes_under_422_with_the_servers_words():
    failed = {
        "status": "FAILED",
        "error": "Prompt is Mandatory and must be string",
        "metrics": {"inference_time": 0.007},
    }
    script = Script({SUBMIT: [(200, SUBMIT_BODY)], STATUS: [(422, failed)]})
    client = make(script)
    with pytest.raises(JobFailed) as info:
        client.wait(client.submit(PARAMS))
    assert type(info.value) is JobFailed and "Prompt is Mandatory" in info.value.user_text()
    assert script.count(RESULT_ROUTE) == 0


def test_moderation_is_reported_as_a_block():
    script = Script(
        {
            SUBMIT: [(200, SUBMIT_BODY)],
            STATUS: [(422, {"status": "FAILED", "error": "Request moderated: NSFW content"})],
        }
    )
    client = make(script)
    with pytest.raises(JobBlocked):
        client.wait(client.submit(PARAMS), safety_tolerance=1)


def test_404_on_a_poll_means_expired():
    script = Script({SUBMIT: [(200, SUBMIT_BODY)], STATUS: [(404, {"error": f"Request {RID} not found"})]})
    client = make(script)
    with pytest.raises(JobExpired):
        client.wait(client.submit(PARAMS))


def test_a_deadline_ends_waiting_without_losing_the_job():
    script = Script({STATUS: [(200, {"status": "PROCESSING"})]})
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    client = SegmindClient(
        connection=Connection.resolve(api_key=KEY, base_url=BASE, rpm=0),
        transport=script.transport(),
        sleep=sleep,
        clock=lambda: now[0],
        budget=RequestBudget(0),
    )
    with pytest.raises(JobTimedOut) as info:
        client.wait(Job.from_request_id(RID, BASE), timeout=30)
    assert "resume" in info.value.user_text()


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
        httpx.ReadError("reset"),
        httpx.WriteError("broken"),
    ],
)
def test_an_ambiguous_submit_is_never_repeated(failure):
    script = Script({SUBMIT: [failure, (200, SUBMIT_BODY)]})
    with pytest.raises(SubmitUnknown):
        make(script).submit(PARAMS)
    assert script.count(SUBMIT) == 1


@pytest.mark.parametrize("reply", [(200, b"<html>gateway</html>"), (200, {"status": "QUEUED"}), (504, b"")])
def test_an_unreadable_or_timed_out_submit_reply_is_unknown_not_retried(reply):
    script = Script({SUBMIT: [reply, (200, SUBMIT_BODY)]})
    with pytest.raises(SubmitUnknown):
        make(script).submit(PARAMS)
    assert script.count(SUBMIT) == 1


@pytest.mark.parametrize("first", [httpx.ConnectError("refused"), (429, {"error": "rate"})])
def test_a_submit_that_provably_did_not_land_is_retried(first, sleeps):
    script = Script({SUBMIT: [first, (200, SUBMIT_BODY)]})
    assert make(script, sleeps).submit(PARAMS).request_id == RID
    assert script.count(SUBMIT) == 2 and len(sleeps) == 1


@pytest.mark.parametrize("first", [(500, {"error": "x"}), (502, b""), (503, b"")])
def test_a_submit_answered_5xx_is_not_sent_again_by_the_client(first):
    """Segmind says a 5xx'd submit was not taken, but a job may exist: the caller checks the
    request history before anything is sent again (the runner does)."""
    script = Script({SUBMIT: [first, (200, SUBMIT_BODY)]})
    with pytest.raises(SubmitServerError) as caught:
        make(script).submit(PARAMS)
    assert script.count(SUBMIT) == 1 and caught.value.status == first[0]


def test_connect_errors_give_up_after_the_retry_budget():
    script = Script({SUBMIT: [httpx.ConnectError("refused")]})
    with pytest.raises(NetworkError):
        make(script).submit(PARAMS)
    assert script.count(SUBMIT) == 4


@pytest.mark.parametrize(
    "status, body, cls",
    [
        (401, {"error": "Unauthorized"}, AuthError),
        (406, {"error": "Insufficient credits"}, InsufficientCredits),
    ],
)
def test_refusals_are_not_retried(status, body, cls):
    script = Script({SUBMIT: [(status, body)]})
    with pytest.raises(cls):
        make(script).submit(PARAMS)
    assert script.count(SUBMIT) == 1


def test_no_key_means_nothing_is_sent():
    script = Script({})
    with pytest.raises(MissingKey) as info:
        make(script, key=None).submit(PARAMS)
    assert "SEGMIND_API_KEY" in info.value.user_text() and script.calls == []


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"output": ["https://x.test/a.png", "https://x.test/b.png"]}, "https://x.test/a.png"),
        ({"output": None, "images": [{"url": "https://x.test/c.png"}]}, "https://x.test/c.png"),
        ({"output": "data:image/png;base64,AAAA"}, "data:image/png;base64,AAAA"),
    ],
)
def test_result_shapes_are_read_liberally(body, expected):
    script = Script({RESULT_ROUTE: [(200, {"status": "COMPLETED", **body})]})
    assert make(script).result(Job.from_request_id(RID, BASE)).image_url == expected


def test_data_uri_images_are_decoded_locally():
    png = b"\x89PNG\r\n\x1a\nrest"
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    script = Script({})
    assert make(script).download(uri) == (png, "image/png") and script.calls == []


def test_downloads_from_the_image_host_do_not_carry_the_key():
    script = Script(
        {"GET /g/1.png": [httpx.Response(200, content=b"img", headers={"content-type": "image/png"})]}
    )
    assert make(script).download("https://images.segmind.test/g/1.png") == (b"img", "image/png")
    assert "x-api-key" not in script.calls[0].headers


def test_upload_accepts_either_reply_key():
    for key in ("file_urls", "urls"):
        script = Script({"POST /upload-asset": [(200, {key: ["https://s.test/a.png"]})]})
        assert make(script).upload([(b"\x89PNG", "image/png")]) == ["https://s.test/a.png"]
        sent = json.loads(script.calls[0].content)
        assert sent["data_urls"][0].startswith("data:image/png;base64,")


def test_the_upload_url_defaults_to_segminds_storage_host_for_the_real_api():
    assert Connection.resolve(api_key=KEY).upload_url == "https://workflows-api.segmind.com/upload-asset"
    assert (
        Connection.resolve(api_key=KEY, base_url="http://127.0.0.1:9/v1").upload_url
        == "http://127.0.0.1:9/upload-asset"
    )


def test_run_sync_returns_the_image_bytes_and_accounting_headers():
    reply = httpx.Response(
        200,
        content=b"\xff\xd8jpeg",
        headers={"content-type": "image/jpeg", "x-cost": "0.07", "x-remaining-credits": "9"},
    )
    script = Script({"POST /v1/flux-2-max": [reply]})
    out = make(script).run_sync(PARAMS)
    assert (
        out.content == b"\xff\xd8jpeg"
        and out.content_type == "image/jpeg"
        and out.headers["x-cost"] == "0.07"
    )


def test_the_async_twin_speaks_the_same_protocol():
    script = Script(
        {
            SUBMIT: [(200, SUBMIT_BODY)],
            STATUS: [(500, b""), (200, {"status": "PROCESSING"}), (200, DONE)],
            RESULT_ROUTE: [(200, RESULT)],
        }
    )

    async def no_sleep(seconds: float) -> None:
        return None

    async def scenario():
        async with AsyncSegmindClient(
            connection=Connection.resolve(api_key=KEY, base_url=BASE, rpm=0),
            transport=httpx.MockTransport(script._answer),
            sleep=no_sleep,
            budget=RequestBudget(0),
        ) as client:
            job = await client.submit(PARAMS)
            return await client.wait(job)

    outcome = asyncio.run(scenario())
    assert outcome.image_url == RESULT["output"] and script.count(SUBMIT) == 1


def test_the_connection_never_shows_the_key():
    connection = Connection.resolve(api_key=KEY)
    assert KEY not in repr(connection) and "cdef" in repr(connection)
