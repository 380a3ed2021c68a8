"""The runner with the real client against the real emulator: what the ledger holds afterwards."""

from __future__ import annotations

import io
import socket

import pytest
from PIL import Image

from flux_core.ledger import store
from flux_core.media.images import read_recipe
from flux_core.params import FluxParams
from flux_core.runner import Runner
from flux_core.segmind.client import SegmindClient
from flux_core.settings import Connection
from flux_core.ledger.store import Ledger
from tests.conftest import TEST_KEY, client_for, left_in_flight


def make_runner(server, data_dir, key=TEST_KEY, concurrency=4) -> Runner:
    return Runner(
        Ledger(data_dir / "ledger.db"),
        data_dir,
        client_for(server, key),
        backend="emulator",
        concurrency=concurrency,
    )


def run_all(runner: Runner, params_list) -> list[dict]:
    ids = [runner.enqueue(p) for p in params_list]
    rows = runner.wait(ids)
    runner.shutdown()
    return rows


def params(prompt="a red cube", seed=1, **kw) -> FluxParams:
    return FluxParams.parse(prompt=prompt, seed=seed, **kw)


def test_a_run_goes_from_written_down_to_stored_image(emulator, data_dir):
    server = emulator()
    [row] = run_all(make_runner(server, data_dir), [params(width=512, height=384, output_format="jpeg")])
    assert row.status == store.COMPLETED and row.request_id and row.error is None
    image = (data_dir / row.image_path).read_bytes()
    with Image.open(io.BytesIO(image)) as im:
        assert im.size == (512, 384) and im.format == "JPEG"
    assert (data_dir / row.thumb_path).exists()
    recipe = read_recipe(image)
    assert recipe["params"] == params(width=512, height=384, output_format="jpeg").payload()
    assert TEST_KEY not in image.decode("latin-1")
    assert row.inference_time > 0 and row.cost > 0 and row.observed_total_s > 0
    events = [e.status for e in Ledger(data_dir / "ledger.db").events(row.id)]
    assert events[:3] == ["CREATED", "SUBMITTING", "QUEUED"] and events[-2:] == ["DOWNLOADING", "COMPLETED"]


def test_the_key_never_reaches_the_ledger(emulator, data_dir):
    server = emulator()
    run_all(make_runner(server, data_dir), [params()])
    assert TEST_KEY.encode() not in (data_dir / "ledger.db").read_bytes()
    wal = data_dir / "ledger.db-wal"
    assert not wal.exists() or TEST_KEY.encode() not in wal.read_bytes()


def test_a_third_of_polls_failing_still_completes_every_run_with_one_submit_each(emulator, data_dir):
    server = emulator(poll_fault_rate=0.34, latency_s=0.3)
    rows = run_all(make_runner(server, data_dir), [params(seed=s) for s in range(6)])
    assert [r.status for r in rows] == [store.COMPLETED] * 6
    assert server.stats.submits == server.stats.submit_requests == 6 and server.stats.faults > 0


def test_a_submit_whose_reply_was_lost_is_adopted_from_the_history_not_repeated(emulator, data_dir):
    server = emulator(submit_fault_rate=1.0, submit_faults=("drop-after",))
    [row] = run_all(make_runner(server, data_dir), [params()])
    assert row.status == store.COMPLETED and row.request_id and row.image_path
    assert server.stats.submits == server.stats.submit_requests == 1
    assert "Segmind received it at" in (row.settlement or "")
    ledger = Ledger(data_dir / "ledger.db")
    walk = [e.status for e in ledger.events(row.id)]
    assert walk[:4] == [store.CREATED, store.SUBMITTING, store.SETTLING, store.QUEUED]


def runner_without_history(server, data_dir) -> Runner:
    """A runner whose control host has no request history (it answers 404 for good)."""
    connection = Connection.resolve(
        api_key=TEST_KEY, base_url=server.url, rpm=0, backend="emulator", control_url=server.url + "/nowhere"
    )
    return Runner(
        Ledger(data_dir / "ledger.db"), data_dir, SegmindClient(connection=connection), backend="emulator"
    )


def test_a_lost_submit_is_left_for_a_person_when_the_history_cannot_be_read(emulator, data_dir):
    server = emulator(submit_fault_rate=1.0, submit_faults=("drop-after",))
    [row] = run_all(runner_without_history(server, data_dir), [params()])
    assert row.status == store.SUBMIT_UNKNOWN and "was not repeated" in row.error
    assert "request history could not be read" in row.error and server.stats.submit_requests == 1


def test_a_submit_answered_504_before_any_job_is_sent_again_once_the_history_shows_none(emulator, data_dir):
    server = emulator(submit_script=("504-before",))
    [row] = run_all(make_runner(server, data_dir), [params()])
    assert row.status == store.COMPLETED and row.resent is True
    assert server.stats.submits == 1 and server.stats.submit_requests == 2
    assert "Segmind has no record after 0 s; sent again." in [
        e.detail for e in Ledger(data_dir / "ledger.db").events(row.id)
    ]


def test_a_submit_refused_with_500_is_retried_once_taken(emulator, data_dir):
    server = emulator(submit_fault_rate=0.5, submit_faults=("500",), random_seed=3)
    rows = run_all(make_runner(server, data_dir), [params(seed=s) for s in range(4)])
    assert all(r.status == store.COMPLETED for r in rows)
    assert server.stats.submits == 4 and server.stats.submit_requests > 4


@pytest.mark.parametrize("fault", ["500-after", "502-after", "503-after"])
def test_a_submit_answered_5xx_after_its_job_was_made_is_adopted_not_sent_again(emulator, data_dir, fault):
    server = emulator(submit_script=(fault, fault))
    rows = run_all(make_runner(server, data_dir), [params(seed=1), params(seed=2)])
    assert [r.status for r in rows] == [store.COMPLETED] * 2 and len({r.request_id for r in rows}) == 2
    assert server.stats.submits == server.stats.submit_requests == 2  # no double submit
    assert all("But Segmind had taken it" in (r.settlement or "") for r in rows)


def test_failed_blocked_and_refused_runs_say_why(emulator, data_dir):
    server = emulator(credits=0.0)
    rows = run_all(make_runner(server, data_dir), [params()])
    assert rows[0].status == store.ERROR and rows[0].error_kind == "credits"
    assert "Insufficient credits" in rows[0].error and "Nothing was charged" in rows[0].error

    server = emulator()
    failed, blocked = run_all(
        make_runner(server, data_dir / "b"), [params("a cube #fail"), params("a zombie", safety_tolerance=1)]
    )
    assert failed.status == store.FAILED and "Internal model error" in failed.error
    assert blocked.status == store.BLOCKED and "safety tolerance 1" in blocked.error
    assert blocked.image_path is None


def test_a_rejected_key_is_an_error_without_the_key(emulator, data_dir):
    server = emulator(keys=("SG_other0000000000",))
    [row] = run_all(make_runner(server, data_dir), [params()])
    assert row.status == store.ERROR and row.error_kind == "auth" and TEST_KEY not in row.error


def test_a_run_past_retention_is_completed_from_the_request_history(emulator, data_dir):
    server = emulator(retention_s=0)
    [row] = run_all(make_runner(server, data_dir), [params()])
    assert (
        row.status == store.COMPLETED
        and row.image_path
        and "request history has the result" in row.settlement
    )
    assert server.stats.submits == server.stats.submit_requests == 1


def test_a_run_segmind_has_no_record_of_is_expired(emulator, data_dir):
    server = emulator()
    ledger = Ledger(data_dir / "ledger.db")
    ghost = "00000000-0000-4000-8000-000000000000"
    run_id = ledger.record_run(
        params(),
        store.QUEUED,
        backend="emulator",
        base_url=server.url,
        lease=dead_lease(),
        request_id=ghost,
        status_url=f"{server.url}/v2/requests/{ghost}/status",
        response_url=f"{server.url}/v2/requests/{ghost}",
        submitted_at=store.now_iso(),
    )
    runner = make_runner(server, data_dir)
    runner.wait(runner.resume())
    runner.shutdown()
    row = ledger.get(run_id)
    assert row.status == store.EXPIRED and "Segmind has no record of request" in row.error


def test_rate_limits_are_ridden_out_with_one_submit_per_run(emulator, data_dir):
    server = emulator(rpm=6, rate_window_s=1.0, latency_s=0.2)
    rows = run_all(make_runner(server, data_dir, concurrency=8), [params(seed=s) for s in range(8)])
    assert all(r.status == store.COMPLETED for r in rows)
    assert server.stats.submits == 8 and server.stats.rate_limited > 0


def dead_lease() -> str:
    return f"{socket.gethostname()}:999999999:dead"


def test_runs_of_a_killed_process_are_finished_on_resume(emulator, data_dir):
    server = emulator(latency_s=0.3)
    ledger = Ledger(data_dir / "ledger.db")
    client = client_for(server)
    ids = []
    for seed in range(3):  # what a process killed right after its submits leaves behind
        ids.append(left_in_flight(ledger, server, client, params(seed=seed), backend="emulator"))
    unsent = ledger.create_run(params(seed=9), backend="emulator", base_url=server.url, lease=dead_lease())
    in_flight = ledger.create_run(
        params(seed=10), backend="emulator", base_url=server.url, lease=dead_lease()
    )
    ledger.transition(in_flight, store.SUBMITTING)
    client.close()

    runner = make_runner(server, data_dir)
    taken = runner.resume()
    rows = runner.wait(taken)
    runner.shutdown()
    assert sorted(taken) == sorted(ids + [unsent, in_flight])
    assert all(r.status == store.COMPLETED for r in rows)
    # the three from before, the one never sent, and the one caught in flight: the history had no
    # job for it, so it was sent again; none twice
    assert server.stats.submits == 5
    orphan = ledger.get(in_flight)
    assert orphan.resent is True and "in flight" in " ".join(e.detail or "" for e in ledger.events(in_flight))


def test_resume_leaves_runs_of_a_live_runner_alone(emulator, data_dir):
    server = emulator(latency_s=0.2)
    ledger = Ledger(data_dir / "ledger.db")
    alive = make_runner(server, data_dir)
    run_id = ledger.create_run(params(), backend="emulator", base_url=server.url, lease=alive.owner)
    other = make_runner(server, data_dir)
    assert other.resume() == []
    alive.shutdown()
    other.shutdown()
    assert ledger.get(run_id).status == store.CREATED


def test_resume_ignores_runs_of_another_server(emulator, data_dir):
    server = emulator()
    ledger = Ledger(data_dir / "ledger.db")
    ledger.create_run(params(), backend="segmind", base_url="https://api.segmind.com", lease=dead_lease())
    runner = make_runner(server, data_dir)
    assert runner.resume() == []
    runner.shutdown()


def test_the_app_picks_up_runs_nobody_drives(emulator, data_dir, monkeypatch):
    from flux_core.service import Workbench

    server = emulator(latency_s=0.1, keys=("SG_right000000000000",))
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_RPM", "0")
    bench = Workbench(data_dir, api_key="SG_right000000000000", emulator_port=0)
    try:
        client = client_for(server, key="SG_right000000000000")
        job = client.submit(params())
        client.close()
        run_id = bench.ledger.record_run(
            params(),
            store.QUEUED,
            backend="segmind",
            base_url=server.url,
            request_id=job.request_id,
            status_url=job.status_url,
            response_url=job.response_url,
            submitted_at=store.now_iso(),
            error="Segmind rejected the API key (HTTP 401).",
            error_kind="auth",
        )
        assert bench.resume_orphans(min_interval_s=3600) == []  # not due yet
        assert bench.resume_orphans(min_interval_s=0) == [run_id]
        [row] = bench.default.runner.wait([run_id])
        assert row.status == store.COMPLETED and row.error is None
    finally:
        bench.shutdown(wait=True)
