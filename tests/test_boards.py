"""Boards and curation of many runs at once: the ledger's tables and the service's rules."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from flux_core import defaults as D
from flux_core.errors import UnknownRun
from flux_core.ledger import history, store
from flux_core.ledger.history import Query
from flux_core.params import FluxParams, ParamsError
from flux_core.service import Workbench


@pytest.fixture
def wb(data_dir):
    bench = Workbench(data_dir, emulator="never", background=False)
    yield bench
    bench.shutdown()


def add(wb: Workbench, prompt: str, **fields) -> str:
    return wb.ledger.record_run(
        FluxParams.parse(prompt=prompt, seed=fields.pop("seed", 1)),
        store.COMPLETED,
        backend="emulator",
        base_url="http://x",
        **fields,
    )


def found(wb: Workbench, **query) -> list[str]:
    return [r.id for r in wb.find(Query(**query)).rows]


def test_a_board_holds_the_runs_put_on_it_and_history_filters_by_it(wb):
    a, b, c = add(wb, "a teapot"), add(wb, "a red cube"), add(wb, "a green tree")
    picks = wb.create_board("  Client picks ", [a, c])
    assert (picks.name, picks.runs, picks.owner) == ("Client picks", 2, "")
    assert found(wb, board=picks.id) == [c, a]
    assert found(wb, board=picks.id, text="teapo") == [a]  # with the other filters
    assert wb.add_to_board("client PICKS", [b, a]).runs == 3  # by name, whatever its case; once each
    assert wb.remove_from_board(picks.id, [c]) == 1
    assert found(wb, board=picks.id) == [b, a]
    assert [r.id for r in wb.search(board="Client picks")] == [b, a]  # the CLI's reading


def test_a_run_can_be_on_several_boards_and_its_panel_sets_exactly_them(wb):
    run = add(wb, "a teapot")
    wb.create_board("Warm")
    assert [b.name for b in wb.set_boards(run, ["Warm", "New one"])] == ["New one", "Warm"]
    assert [b.name for b in wb.boards()] == ["New one", "Warm"]
    assert [b.name for b in wb.set_boards(run, ["warm"])] == ["Warm"]  # an existing board, by any case
    assert [(b.name, b.runs) for b in wb.boards()] == [("New one", 0), ("Warm", 1)]
    with pytest.raises(ParamsError, match="board name: at most"):
        wb.set_boards(run, ["Fine", "x" * (D.BOARD_NAME_MAX_CHARS + 1)])
    assert [b.name for b in wb.boards_of(run)] == ["Warm"] and len(wb.boards()) == 2  # nothing changed


@pytest.mark.parametrize(
    "name, words",
    [
        ("   ", "board name: must not be empty"),
        ("x" * (D.BOARD_NAME_MAX_CHARS + 1), f"at most {D.BOARD_NAME_MAX_CHARS} characters"),
        ("two\nlines", "one line of text"),
        ("CLIENT picks", "a board named 'Client picks' exists already"),
        ("Élan", "a board named 'élan' exists already"),  # case folded beyond ASCII
    ],
)
def test_a_bad_or_taken_board_name_is_refused_and_changes_nothing(wb, name, words):
    wb.create_board("Client picks")
    wb.create_board("élan")
    with pytest.raises(ParamsError, match=words):
        wb.create_board(name)
    with pytest.raises(ParamsError, match=words):
        wb.rename_board("Client picks" if "Client" not in words else "élan", name)
    assert [b.name for b in wb.boards()] == ["Client picks", "élan"]


def test_rename_keeps_the_runs_and_delete_leaves_them_in_history(wb):
    run = add(wb, "a teapot")
    board = wb.create_board("Draft", [run])
    assert wb.rename_board("draft", "Final").name == "Final"
    assert wb.rename_board("Final", "FINAL").name == "FINAL"  # its own name in another case
    assert found(wb, board=board.id) == [run]
    wb.delete_board("FINAL")
    assert wb.boards() == [] and wb.run(run) is not None and found(wb) == [run]
    with pytest.raises(ParamsError, match="board: there is no board named 'FINAL'"):
        wb.add_to_board("FINAL", [run])


def test_an_unknown_run_is_named_and_nothing_is_put_on_the_board(wb):
    run = add(wb, "a teapot")
    with pytest.raises(UnknownRun, match="'NOPE'"):
        wb.create_board("Picks", [run, "NOPE"])
    assert wb.boards() == []
    with pytest.raises(UnknownRun):
        wb.add_to_board("Picks", ["NOPE"], create=True)
    assert wb.boards() == []


def test_add_to_a_new_board_makes_it_in_one_step(wb):
    a, b = add(wb, "one"), add(wb, "two")
    made = wb.add_to_board("Fresh", [a, b], create=True)
    assert made.runs == 2 and [x.name for x in wb.boards()] == ["Fresh"]
    assert wb.add_to_board("fresh", [a], create=True).id == made.id  # exists: no second board


def test_purged_runs_leave_their_boards_and_trashed_runs_are_not_counted(wb):
    a, b = add(wb, "one"), add(wb, "two")
    board = wb.create_board("Picks", [a, b])
    wb.delete([a])
    assert wb.board(board.id).runs == 1 and found(wb, board=board.id) == [b]
    wb.purge([a])
    with wb.ledger.db() as db:
        assert [r["run_id"] for r in db.query("SELECT run_id FROM board_runs")] == [b]


def test_curate_many_changes_every_run_in_one_go_and_keeps_their_other_tags(wb):
    a, b = add(wb, "one", tags_json='["old"]'), add(wb, "two")
    assert wb.curate_many([a, b], add_tags=[" warm ", "final"]) == 2
    assert [list(r.tags) for r in wb.runs([a, b])] == [["final", "old", "warm"], ["final", "warm"]]
    wb.curate_many([a, b], remove_tags=["warm"])
    wb.curate_many([a, b], rating=4)
    wb.curate_many([b], favourite=True)
    rows = wb.runs([a, b])
    assert [list(r.tags) for r in rows] == [["final", "old"], ["final"]]
    assert [(r.rating, bool(r.favourite)) for r in rows] == [(4, False), (4, True)]
    assert found(wb, tag="final") == [b, a]  # full-text search sees the new tags


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(rating=6), "rating: a whole number from 1 to 5"),
        (dict(rating=True), "rating: a whole number from 1 to 5"),
        (dict(add_tags=["  "]), "add tags: each tag is one line"),
        (dict(remove_tags=["x" * (D.TAG_MAX_CHARS + 1)]), "remove tags: each tag"),
        ({}, "nothing to change"),
    ],
)
def test_a_bad_bulk_change_names_the_field_and_changes_nothing(wb, change, words):
    run = add(wb, "one")
    before = wb.run(run)
    with pytest.raises(ParamsError, match=words):
        wb.curate_many([run], **change)
    assert wb.run(run) == before


def test_curate_many_with_an_unknown_run_changes_none(wb):
    run = add(wb, "one")
    with pytest.raises(UnknownRun, match="'NOPE'"):
        wb.curate_many([run, "NOPE"], rating=3)
    assert wb.run(run).rating is None


def test_the_export_lists_the_boards_of_each_run(wb):
    a, b = add(wb, "one"), add(wb, "two")
    wb.create_board("Picks", [a])
    wb.add_to_board("Archive", [a], create=True)
    with zipfile.ZipFile(io.BytesIO(wb.export_zip([a, b]))) as zf:
        manifest = json.loads(zf.read("manifest.json"))["runs"]
        table = zf.read("runs.csv").decode()
    assert [m["boards"] for m in manifest] == [["Archive", "Picks"], []]
    assert '"Archive, Picks"' in table


def test_history_facets_and_counts_respect_the_board(wb):
    a, _ = add(wb, "one"), add(wb, "two")
    board = wb.create_board("Picks", [a])
    assert history.find(wb.ledger, Query(board=board.id)).total == 1
    assert history.facets(wb.ledger, Query(board=board.id))["status"]["completed"] == 1
