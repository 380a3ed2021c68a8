"""The emulator's request history (protocol 6b) on a real loopback server, read with the client."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import httpx
import pytest

from flux_core import defaults as D
from flux_core.emulator.server import Emulator, EmulatorConfig, EmulatorServer
from flux_core.errors import SubmitUnknown
from flux_core.params import FluxParams
from flux_core.segmind.client import SegmindClient
from flux_core.segmind.records import COMPLETED, FAILED, PENDING, same_request
from tests.conftest import TEST_KEY, client_for

PARAMS = FluxParams.parse(prompt="a red cube", seed=1, width=512, height=256)
OTHER_KEY = "SG_fedcba9876543210"
HISTORY = "/inference-request/request-history"


@pytest.fixture(autouse=True)
def _no_control_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(D.CONTROL_URL_ENV, raising=False)


class Clock:
    """The emulator's wall clock, moved by hand: nothing waits for real."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked():
    """Start an emulator whose clock the test moves: `server, clock = clocked(latency_s=0, ...)`."""
    servers: list[EmulatorServer] = []

    def start(clock: Clock | None = None, port: int = 0, **config) -> tuple[EmulatorServer, Clock]:
        config.setdefault("latency_s", 0.0)
        config.setdefault("latency_spread_s", 0.0)
        config.setdefault("queue_s", 0.0)
        clock = clock or Clock()
        server = EmulatorServer(EmulatorConfig(**config), port=port, clock=clock).start()
        servers.append(server)
        return server, clock

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def connect():
    """Clients for servers, closed afterwards: `connect(server, key=...)`."""
    clients: list[SegmindClient] = []

    def make(server: EmulatorServer, key: str = TEST_KEY) -> SegmindClient:
        clients.append(client_for(server, key=key))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def raw_history(server: EmulatorServer, key: str = TEST_KEY, **params) -> httpx.Response:
    return httpx.get(f"{server.url}{HISTORY}?{urlencode(params)}", headers={"x-api-key": key})


def raw_submit(server: EmulatorServer, body: dict | None = None) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v2/flux-2-max", json=body or PARAMS.payload(), headers={"x-api-key": TEST_KEY}
    )


def test_the_history_lists_a_submitted_job_with_the_payload_as_its_request_body(emulator, connect):
    server = emulator(latency_s=0, queue_s=0)
    client = connect(server)
    job = client.submit(PARAMS)
    outcome = client.wait(job)
    page = client.history()
    [record] = page.records
    assert record.request_id == job.request_id and same_request(record, PARAMS.payload())
    assert record.request_body == PARAMS.payload() and record.model_name == "flux-2-max"
    assert record.status == COMPLETED and record.cost_usd == D.EMULATOR_COST
    assert record.generation_urls == (outcome.image_url,) and record.latency_ms is not None
    assert record.created_at is not None and record.created_at.tzinfo is not None
    assert client.request_record(job.request_id) == record and page.has_more is False


def test_a_request_in_flight_is_pending_and_a_failure_carries_its_error(clocked, connect):
    server, clock = clocked(latency_s=30.0)
    client = connect(server)
    running = client.submit(PARAMS)
    failing = client.submit(FluxParams.parse(prompt="a red cube #fail", seed=2))
    pending = client.request_record(running.request_id)
    assert pending is not None and pending.status == PENDING and pending.generation_urls == ()
    assert pending.cost_usd == 0 and pending.latency_ms is None
    clock.now += 31
    failed = client.request_record(failing.request_id)
    assert failed is not None and failed.status == FAILED and failed.cost_usd == 0
    assert failed.error and "did not finish" in failed.error and failed.generation_url is None
    done = client.request_record(running.request_id)
    assert done is not None and done.status == COMPLETED
    assert {r.request_id for r in client.history(status="FAILED").records} == {failing.request_id}


def test_the_lag_hides_a_new_request_until_it_has_passed(clocked, connect):
    server, clock = clocked(history_lag_s=20.0)
    client = connect(server)
    job = client.submit(PARAMS)
    assert client.history().records == () and client.request_record(job.request_id) is None
    clock.now += 19.5
    assert client.history().records == ()
    clock.now += 0.5
    assert [r.request_id for r in client.history().records] == [job.request_id]
    assert client.request_record(job.request_id) is not None


def test_scripted_submit_faults_create_exactly_the_jobs_they_should(emulator, connect):
    script = ("ok", "lost-reply", "504-before", "500-after", "502-after", "503-after", "drop-before", "")
    server = emulator(submit_script=script, latency_s=0, queue_s=0)
    replies = []
    for _ in script:
        try:
            replies.append(raw_submit(server).status_code)
        except httpx.RemoteProtocolError:
            replies.append("dropped")
    assert replies == [200, "dropped", 504, 500, 502, 503, "dropped", 200]
    assert server.stats.submits == 6 and server.stats.submit_requests == 8 and server.stats.faults == 6
    stats = httpx.get(f"{server.url}/_emulator/stats").json()
    assert stats["submits"] == stats["jobs"] == 6
    assert len(connect(server).history().records) == 6  # each job made is in the history


def test_a_lost_reply_is_a_submit_unknown_to_the_client_while_the_job_exists(emulator, connect):
    server = emulator(submit_script=("lost-reply",), latency_s=0, queue_s=0)
    client = connect(server)
    with pytest.raises(SubmitUnknown):
        client.submit(PARAMS)
    [record] = client.history().records
    assert same_request(record, PARAMS.payload()) and server.stats.submits == 1


def test_an_unknown_scripted_fault_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown submit fault 'lose-it'"):
        Emulator(EmulatorConfig(submit_script=("ok", "lose-it")))


def test_the_random_submit_faults_keep_working_and_share_the_names(emulator):
    server = emulator(submit_fault_rate=1.0, submit_faults=("lost-reply",))
    with pytest.raises(httpx.RemoteProtocolError):
        raw_submit(server)
    assert server.stats.submits == 1 and server.stats.faults == 1


def test_the_record_outlives_the_status_retention_and_its_file_downloads_for_7_days(
    clocked, tmp_path, connect
):
    state = str(tmp_path / "emulator-state.json")
    server, clock = clocked(state_path=state)
    client = connect(server)
    job = client.submit(PARAMS)
    outcome = client.wait(job)
    clock.now += D.RETENTION_S + 1
    assert httpx.get(job.status_url, headers={"x-api-key": TEST_KEY}).status_code == 404
    assert httpx.get(job.response_url, headers={"x-api-key": TEST_KEY}).status_code == 404
    record = client.request_record(job.request_id)
    assert record is not None and record.status == COMPLETED and record.generation_url == outcome.image_url
    image, mime = client.download(record.generation_urls[0])
    assert mime == "image/png" and image.startswith(b"\x89PNG")
    port = server.port
    server.stop()
    again, _ = clocked(clock=clock, port=port, state_path=state)  # the app restarted: kept on disk
    kept = connect(again).request_record(job.request_id)
    assert kept == record and connect(again).history().records == (record,)
    assert httpx.get(outcome.image_url).content == image
    clock.now += D.OUTPUT_RETENTION_S
    assert httpx.get(outcome.image_url).status_code == 404  # outputs live 7 days
    assert connect(again).request_record(job.request_id) == record  # the record, of any age


def test_another_keys_requests_are_not_found_and_not_listed(emulator, connect):
    server = emulator(latency_s=0, queue_s=0)
    job = connect(server).submit(PARAMS)
    stranger = connect(server, key=OTHER_KEY)
    assert stranger.request_record(job.request_id) is None and stranger.history().records == ()
    reply = httpx.get(f"{server.url}{HISTORY}/{job.request_id}", headers={"x-api-key": OTHER_KEY})
    assert reply.status_code == 404 and reply.json() == {"error": f"Request {job.request_id} not found"}
    assert httpx.get(f"{server.url}{HISTORY}/{job.request_id}").status_code == 401


def test_inside_a_team_user_email_lists_a_members_rows_but_one_record_stays_their_own(emulator, connect):
    team = ((TEST_KEY, "ana@example.test"), (OTHER_KEY, "bo@example.test"))
    server = emulator(latency_s=0, queue_s=0, emails=team)
    job = connect(server).submit(PARAMS)
    mate = connect(server, key=OTHER_KEY)
    [record] = mate.history(user_email="ana@example.test").records
    assert record.request_id == job.request_id and record.user_email == "ana@example.test"
    assert mate.history().records == () and mate.request_record(job.request_id) is None
    outsider = connect(server, key="SG_0000000000000042")
    assert outsider.history(user_email="ana@example.test").records == ()


def test_filters_sorting_and_pages(clocked, connect):
    server, clock = clocked()
    client = connect(server)
    old = client.submit(FluxParams.parse(prompt="old", seed=1))
    clock.now += 10 * 86400
    first = client.submit(FluxParams.parse(prompt="first", seed=2))
    clock.now += 1
    second = client.submit(FluxParams.parse(prompt="second", seed=3))
    clock.now += 1
    third = client.submit(FluxParams.parse(prompt="third", seed=4))
    page = client.history(per_page=2)
    assert [r.request_id for r in page.records] == [third.request_id, second.request_id] and page.has_more
    page2 = client.history(page=2, per_page=2)
    assert [r.request_id for r in page2.records] == [first.request_id] and not page2.has_more
    asc = raw_history(server, sort_order="asc").json()
    assert [r["request_id"] for r in asc["data"]] == [first.request_id, second.request_id, third.request_id]
    assert asc["total"] == 3  # the old one is outside the default 7 days
    moment = time.gmtime(clock.now - 10 * 86400)
    day = time.strftime("%Y-%m-%d", moment)
    assert [r.request_id for r in client.history(from_date=day, to_date=day).records] == [old.request_id]
    assert client.history(model_name="2-max").records and client.history(model_name="flux-1").records == ()


@pytest.mark.parametrize(
    "params, name",
    [
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
        ({"per_page": "lots"}, "per_page"),
        ({"page": 0}, "page"),
        ({"from_date": "2026-01-01", "to_date": "2026-03-01"}, "from_date..to_date"),
        ({"from_date": "2026-03-02", "to_date": "2026-03-01"}, "from_date"),
        ({"from_date": "01/03/2026"}, "from_date"),
        ({"to_date": "2026-02-30"}, "to_date"),
        ({"status": "DONE"}, "status"),
        ({"sort_by": "prompt"}, "sort_by"),
        ({"sort_order": "up"}, "sort_order"),
    ],
)
def test_a_bad_query_is_a_400_naming_the_parameter(emulator, params, name):
    reply = raw_history(emulator(), **params)
    assert reply.status_code == 400 and reply.json()["error"].startswith(name)


def test_a_31_day_window_is_accepted(emulator):
    reply = raw_history(emulator(), from_date="2026-01-01", to_date="2026-02-01")
    assert reply.status_code == 200 and reply.json()["data"] == []
