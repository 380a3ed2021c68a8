"""The run lifecycle table, and the ledger holding every run to it (a stateful property test)."""

from __future__ import annotations

import os
import re
import tempfile
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from flux_core import cli, lifecycle, presentation
from flux_core.ledger import history
from flux_core.ledger import store
from flux_core.ledger import sweeps
from flux_core.errors import IllegalTransition, JobFailed, JobTimedOut
from flux_core.lifecycle import STATES
from flux_core.params import FluxParams
from flux_core.runner import Runner
from flux_core.ledger.store import Ledger
from tests.conftest import client_for

PARAMS = FluxParams.parse(prompt="a red cube", seed=1)
STATUSES = list(STATES)
# The machine writes a thousand transactions: in memory where the system has it (a commit on disk
# waits for the disk, tens of milliseconds on a busy machine), so the test takes seconds.
MEMORY = "/dev/shm" if os.path.isdir("/dev/shm") else None
NOT_STATUSES = ["TIMED_OUT", "completed", ""]


def test_every_state_is_fully_described():
    assert set(STATES) == set(store.ACTIVE) | {s for s in STATES if STATES[s].terminal}
    for name, state in STATES.items():
        assert state.name == name
        assert state.group in lifecycle.GROUPS
        assert state.words.strip() and state.words == presentation.STATUS_WORDS[name]
        assert state.billed in ("no", "maybe", "yes")
        assert state.exit_code in (cli.EXIT_OK, cli.EXIT_JOB_FAILED, cli.EXIT_CALL_FAILED)
        assert set(state.then) <= set(STATES)
        assert state.terminal == (not state.then)  # a state that goes nowhere is an end, and vice versa
        assert lifecycle.path_to(name)[0] == store.CREATED  # every state can be reached
        if not state.terminal:  # and every run can end
            assert any(STATES[s].terminal for s in STATES if _reachable(name, s))
        assert sweeps.outcome(name) in sweeps.OUTCOMES
    assert sorted(s for members in history.STATUS_GROUPS.values() for s in members) == sorted(STATES)


def _reachable(start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        for nxt in STATES[todo.pop()].then:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return goal in seen


def test_the_table_holds_what_the_runner_does_and_nothing_more():
    does = {
        (store.CREATED, store.SUBMITTING),
        (store.CREATED, store.ERROR),
        (store.SUBMITTING, store.QUEUED),
        (store.SUBMITTING, store.ERROR),
        (store.SUBMITTING, store.SETTLING),  # its reply was lost, or it was in flight on resume
        (store.SETTLING, store.QUEUED),  # the history holds the job it made: adopted
        (store.SETTLING, store.SUBMITTING),  # the history holds none after the grace window: sent again
        (store.SETTLING, store.SUBMIT_UNKNOWN),  # the history cannot be read: a person checks
        (store.DOWNLOADING, store.COMPLETED),
        (store.DOWNLOADING, store.UNUSABLE),
        (store.DOWNLOADING, store.EXPIRED),  # its key was never entered again in seven days
    }
    for status in (store.QUEUED, store.PROCESSING):
        does |= {(status, store.DOWNLOADING), (status, store.PROCESSING)}
        does |= {(status, end) for end in (store.FAILED, store.BLOCKED, store.EXPIRED, store.UNUSABLE)}
    repeats = {(s, s) for s in store.ACTIVE}
    table = {(name, then) for name, state in STATES.items() for then in state.then}
    assert table == does | repeats
    # how a job can fail is a state it can reach from the queue (a timeout is written as EXPIRED)
    failures = [JobFailed, *(c for c in JobFailed.__subclasses__() if c is not JobTimedOut)]
    assert all(lifecycle.allowed(store.QUEUED, c.status_name) for c in failures)
    # issue 12 (settling lost submits and late results from Segmind's history) adds these, not yet
    assert not lifecycle.allowed(store.SUBMIT_UNKNOWN, store.QUEUED)
    assert not lifecycle.allowed(store.EXPIRED, store.DOWNLOADING)


def test_the_ledger_index_of_open_runs_lists_exactly_the_active_states(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    with ledger.db() as db:
        [sql] = [r["sql"] for r in db.query("SELECT sql FROM sqlite_master WHERE name = 'runs_active'")]
    assert set(re.findall(r"'([A-Z_]+)'", sql)) == set(lifecycle.ACTIVE)


def test_the_cli_exit_code_is_the_most_serious_of_its_runs():
    assert lifecycle.exit_code([]) == cli.EXIT_OK
    assert lifecycle.exit_code([store.COMPLETED, store.BLOCKED]) == cli.EXIT_JOB_FAILED
    assert (
        lifecycle.exit_code([store.UNUSABLE, store.SUBMIT_UNKNOWN, store.COMPLETED]) == cli.EXIT_CALL_FAILED
    )
    assert lifecycle.exit_code([store.QUEUED]) == cli.EXIT_CALL_FAILED  # left unfinished here


def test_an_illegal_transition_is_refused_with_what_is_allowed(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    run_id = ledger.create_run(PARAMS, backend="emulator", base_url="http://x")
    with pytest.raises(IllegalTransition) as caught:
        ledger.transition(run_id, store.COMPLETED, image_path="x.png")
    assert caught.value.message == (
        f"Run {run_id} cannot go from CREATED to COMPLETED; from CREATED it can become SUBMITTING, ERROR."
    )
    assert ledger.get(run_id).status == store.CREATED and ledger.get(run_id).image_path is None
    done = ledger.record_run(PARAMS, store.COMPLETED, backend="emulator", base_url="http://x")
    with pytest.raises(IllegalTransition, match="is COMPLETED, which is final: it cannot become FAILED"):
        ledger.transition(done, store.FAILED)
    assert ledger.transition(done, notes="still curated")  # fields alone always change


def test_a_recorded_run_has_the_history_of_a_walk_the_table_allows(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    run_id = ledger.record_run(
        PARAMS,
        store.UNUSABLE,
        backend="emulator",
        base_url="http://x",
        detail="imported",
        error="The output was an HTML page. Key SG_0123456789abcdef",
        request_id="r-1",
    )
    row = ledger.get(run_id)
    assert row.status == store.UNUSABLE and row.request_id == "r-1"
    assert row.error.startswith("The output was an HTML page. Key ")
    assert "0123456789abcdef" not in row.error  # redacted like any transition
    assert [(e.status, e.detail) for e in ledger.events(run_id)] == [
        ("CREATED", None),
        ("SUBMITTING", None),
        ("QUEUED", None),
        ("UNUSABLE", "imported"),
    ]
    with pytest.raises(ValueError, match="TIMED_OUT"):
        ledger.record_run(PARAMS, "TIMED_OUT", backend="emulator", base_url="http://x")


def test_an_illegal_transition_inside_the_runner_leaves_the_run_as_it_is(emulator, data_dir):
    """Another writer ends the run while its submit is in flight: the runner's next step (QUEUED)
    is refused, and the run stays as that writer left it, its lease given back."""
    server = emulator()
    ledger = Ledger(data_dir / "ledger.db")

    def another_writer(row: dict) -> None:
        if row.status == store.SUBMITTING:
            ledger.transition(row.id, store.ERROR, error="Stopped by another writer.")

    runner = Runner(ledger, data_dir, client_for(server), backend="emulator", on_update=another_writer)
    try:
        run_id = runner.enqueue(PARAMS)
        [row] = runner.wait([run_id])
    finally:
        runner.shutdown()
    assert row.status == store.ERROR and row.error == "Stopped by another writer."
    assert row.lease is None
    assert [e.status for e in ledger.events(run_id)] == ["CREATED", "SUBMITTING", "ERROR"]
    assert "is ERROR, which is final: it cannot become QUEUED" in runner.problem(run_id)


class LedgerLifecycle(RuleBasedStateMachine):
    """Random sequences of legal and illegal status changes, field edits and fenced writes, through
    a real ledger on a temporary file, checked against a model of where each run must be."""

    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory(dir=MEMORY)
        self.ledger = Ledger(Path(self.folder.name) / "ledger.db")
        self.status: dict[str, str] = {}

    def teardown(self) -> None:
        self.folder.cleanup()

    @rule(target=runs)
    def write_down(self) -> str:
        run_id = self.ledger.create_run(PARAMS, backend="emulator", base_url="http://x")
        self.status[run_id] = store.CREATED
        return run_id

    @rule(target=runs, status=st.sampled_from(STATUSES))
    def record(self, status: str) -> str:
        run_id = self.ledger.record_run(PARAMS, status, backend="emulator", base_url="http://x")
        self.status[run_id] = status
        return run_id

    @rule(run_id=runs, new=st.sampled_from(STATUSES + NOT_STATUSES))
    def change_status(self, run_id: str, new: str) -> None:
        current = self.status[run_id]
        before, events = self.ledger.get(run_id), self.ledger.events(run_id)
        if STATES[current].terminal:
            assert not lifecycle.allowed(current, new)  # a finished run stays finished
        if lifecycle.allowed(current, new):
            assert self.ledger.transition(run_id, new, detail="a step", error=f"now {new}")
            after = self.ledger.get(run_id)
            assert after.status == new and after.error == f"now {new}"
            now = self.ledger.events(run_id)
            assert now[:-1] == events and (now[-1].status, now[-1].detail) == (new, "a step")
            self.status[run_id] = new
        else:
            with pytest.raises(IllegalTransition) as caught:
                self.ledger.transition(run_id, new, detail="a step", error=f"now {new}")
            assert (caught.value.run_id, caught.value.current, caught.value.wanted) == (run_id, current, new)
            assert self.ledger.get(run_id) == before and self.ledger.events(run_id) == events

    @rule(run_id=runs, notes=st.text(max_size=20))
    def change_fields_only(self, run_id: str, notes: str) -> None:
        events = self.ledger.events(run_id)
        assert self.ledger.transition(run_id, notes=notes)
        row = self.ledger.get(run_id)
        assert row.notes == notes and row.status == self.status[run_id]
        assert self.ledger.events(run_id) == events

    @rule(run_id=runs, new=st.sampled_from(STATUSES))
    def write_without_the_lease(self, run_id: str, new: str) -> None:
        before, events = self.ledger.get(run_id), self.ledger.events(run_id)
        assert not self.ledger.transition(run_id, new, owner="another-host:1:gone")
        assert self.ledger.get(run_id) == before and self.ledger.events(run_id) == events

    @invariant()
    def every_history_is_a_walk_the_table_allows(self) -> None:
        with self.ledger.db() as db:
            rows = {r["id"]: r["status"] for r in db.query("SELECT id, status FROM runs")}
            walks: dict[str, list[str]] = {}
            for event in db.query("SELECT run_id, status FROM run_events ORDER BY id"):
                walks.setdefault(event["run_id"], []).append(event["status"])
        assert rows == self.status
        for run_id, walk in walks.items():
            assert walk[0] == store.CREATED and walk[-1] == rows[run_id]
            assert all(lifecycle.allowed(a, b) for a, b in pairwise(walk))


TestLedgerLifecycle = LedgerLifecycle.TestCase
TestLedgerLifecycle.settings = settings(
    max_examples=50,
    stateful_step_count=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
