"""The run lifecycle table, and the ledger holding every run to it (a stateful property test)."""

from __future__ import annotations

import re

from flux_core import cli, history, lifecycle, presentation, store, sweeps
from flux_core.lifecycle import STATES
from flux_core.store import Ledger


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
        assert sweeps.outcome({"status": name}) in sweeps.OUTCOMES
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
        (store.SUBMITTING, store.SUBMIT_UNKNOWN),  # on resume: the submit was in flight
        (store.DOWNLOADING, store.COMPLETED),
        (store.DOWNLOADING, store.UNUSABLE),
        (store.DOWNLOADING, store.EXPIRED),  # its key was never entered again
    }
    for status in (store.QUEUED, store.PROCESSING):
        does |= {(status, store.DOWNLOADING), (status, store.PROCESSING)}
        does |= {(status, end) for end in (store.FAILED, store.BLOCKED, store.EXPIRED, store.UNUSABLE)}
    repeats = {(s, s) for s in store.ACTIVE}
    table = {(name, then) for name, state in STATES.items() for then in state.then}
    assert table == does | repeats
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
