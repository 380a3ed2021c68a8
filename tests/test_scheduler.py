"""The request scheduler against the real emulator: every run of a sweep in flight at once, the request
history read as one poll for all of them when it is fit for it, each job polled on its own when it
is not, and what the ledger holds afterwards."""

from __future__ import annotations

from flux_core.ledger import store
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams
from flux_core.runner import Runner
from flux_core.segmind.client import SegmindClient
from flux_core.settings import Connection
from tests.conftest import TEST_KEY, client_for


def sweep(runner: Runner, n: int) -> list:
    ids = [
        runner.enqueue(FluxParams.parse(prompt="a red cube", seed=s, width=512, height=512)) for s in range(n)
    ]
    rows = runner.wait(ids)
    runner.shutdown()
    return rows


def test_a_sweep_is_collected_through_the_history_with_one_result_request_each(emulator, data_dir):
    server = emulator(latency_s=1.0, latency_spread_s=0.3)
    runner = Runner(Ledger(data_dir / "ledger.db"), data_dir, client_for(server), backend="emulator")
    rows = sweep(runner, 8)
    assert [r.status for r in rows] == [store.COMPLETED] * 8 and all(r.image_path for r in rows)
    stats = server.stats
    assert stats.submits == stats.submit_requests == 8
    assert stats.results == 8  # a finished job's result is fetched once, whoever noticed it finished
    assert stats.history_requests > 0 and runner._scheduler.history_mode == "live"
    assert runner._scheduler.stats["history_finds"] > 0


def test_a_history_that_does_not_list_requests_in_flight_is_not_waited_on(emulator, data_dir):
    server = emulator(latency_s=4.0, latency_spread_s=0.5, history_lag_s=120.0)
    runner = Runner(Ledger(data_dir / "ledger.db"), data_dir, client_for(server), backend="emulator")
    rows = sweep(runner, 4)
    assert [r.status for r in rows] == [store.COMPLETED] * 4
    assert server.stats.submits == 4 and server.stats.polls >= 4  # each found finished by its own poll
    assert runner._scheduler.stats["history_finds"] == 0


def test_without_a_request_history_every_run_is_polled_to_its_end(emulator, data_dir):
    server = emulator(latency_s=0.5)
    connection = Connection.resolve(
        api_key=TEST_KEY, base_url=server.url, rpm=0, backend="emulator", control_url=server.url + "/nowhere"
    )
    runner = Runner(Ledger(data_dir / "ledger.db"), data_dir, SegmindClient(connection=connection))
    rows = sweep(runner, 5)
    assert [r.status for r in rows] == [store.COMPLETED] * 5
    assert server.stats.submits == 5 and server.stats.results == 5
    assert runner._scheduler.history_mode == "off"


def test_a_cap_on_runs_in_flight_still_drives_every_run(emulator, data_dir):
    server = emulator(latency_s=0.3)
    runner = Runner(
        Ledger(data_dir / "ledger.db"), data_dir, client_for(server), backend="emulator", concurrency=2
    )
    rows = sweep(runner, 5)
    assert [r.status for r in rows] == [store.COMPLETED] * 5 and server.stats.submits == 5


def test_runs_left_by_a_runner_that_stopped_at_once_are_resumed_and_finished(emulator, data_dir):
    server = emulator(latency_s=2.0)
    ledger = Ledger(data_dir / "ledger.db")
    first = Runner(ledger, data_dir, client_for(server), backend="emulator")
    ids = [first.enqueue(FluxParams.parse(prompt="a red cube", seed=s)) for s in range(4)]
    first.shutdown(wait=False)  # Ctrl+C: whatever was in flight stays as the ledger has it
    assert all(r.status != store.COMPLETED for r in ledger.get_many(ids))
    second = Runner(ledger, data_dir, client_for(server), backend="emulator")
    taken = second.resume()
    rows = second.wait(ids)
    second.shutdown()
    assert set(taken) == set(ids) and [r.status for r in rows] == [store.COMPLETED] * 4
    assert server.stats.submits == len({r.request_id for r in rows}) == 4  # none paid for twice


def test_requests_waiting_for_a_slot_go_by_priority_as_slots_free():
    import asyncio

    from flux_core import defaults as D
    from flux_core.segmind.budget import RequestBudget
    from flux_core.segmind.scheduler import _Gate

    now = [1000.0]
    budget = RequestBudget(rpm=1, clock=lambda: now[0])  # one request a minute, forced
    order: list[str] = []

    async def scenario() -> None:
        gate = _Gate(budget, asyncio.get_running_loop())
        await gate.acquire(D.PRIORITY_POLL)  # takes the only slot

        async def want(priority: int, name: str) -> None:
            await gate.acquire(priority)
            order.append(name)

        waiting = [
            asyncio.create_task(want(D.PRIORITY_POLL, "poll")),
            asyncio.create_task(want(D.PRIORITY_SUBMIT, "submit")),
            asyncio.create_task(want(D.PRIORITY_RESULT, "result")),
        ]
        await asyncio.sleep(0)
        assert gate.queued() == 3 and order == []
        for _ in range(3):  # a minute passes: one slot frees, the best waiter takes it
            now[0] += 60.0
            gate.pump()
            await asyncio.sleep(0)
        await asyncio.gather(*waiting)

    asyncio.run(scenario())
    assert order == ["result", "submit", "poll"]
