"""AppTest of organising work in History: boards (the chips, a run's panel), bulk actions on the
selection, and the same changes from the CLI and the page leaving the same ledger rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core import defaults as D
from flux_core.cli import main
from flux_core.ledger.store import Ledger
from tests.test_inert_text import ALL, read_back
from tests.test_app_history import APP, THREE, cards, click_in_gallery, history_page, texts

pytestmark = pytest.mark.usefixtures("fast_app")


def bench(at: AppTest):
    return at.session_state["workbench"]


def errors(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in at.error) + "\n" + "\n".join(str(t.value) for t in at.text)


def gallery_data(at: AppTest) -> dict:
    [element] = [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.gallery"]
    return json.loads(element.proto.json)


def add_to_new_board(at: AppTest, name: str) -> None:
    """Type a new board's name into the bulk bar's Board box and press "Add to board", as the browser
    does (AppTest's selectbox only picks options it already has, and forgets a typed one on the
    next run): the typed name goes with each rerun."""

    def rerun_with(click: bool) -> None:
        box = at.selectbox(key="h_bulk_board")
        states = at._tree.get_widget_states()
        typed = next((w for w in states.widgets if w.id == box.id), None) or states.widgets.add()
        typed.id = box.id
        typed.string_value = name
        if click:
            button = at.button(key="h_bulk_board_add")
            assert not button.disabled
            pressed = states.widgets.add()
            pressed.id = button.id
            pressed.trigger_value = True
        at._run(states)

    rerun_with(click=False)  # typing enables the button
    rerun_with(click=True)


def test_a_board_made_from_the_selection_is_one_click_away_and_bound_to_the_url():
    at, ids = history_page(THREE)
    assert [b.key for b in at.button_group] == ["h_view"]  # no boards yet: no chips
    click_in_gallery(at, "selection", [ids[0], ids[2]])
    add_to_new_board(at, "Client picks")  # a new name, typed
    assert not at.exception
    [board] = bench(at).boards()
    assert (board.name, board.runs) == ("Client picks", 2)
    chips = at.button_group(key="h_board")
    assert chips.options == ["Client picks"]
    chips.set_value("Client picks")
    at.run()
    assert "2 run(s) · showing 1–2" in texts(at)
    assert sorted(c["id"] for c in cards(at)) == sorted([ids[0], ids[2]])

    link = AppTest.from_file(APP, default_timeout=30)  # the same view from a link (?h_board=…)
    link.run()
    link.switch_page("pages/history.py")
    link.query_params["h_board"] = "Client picks"
    link.run()
    assert "2 run(s) · showing 1–2" in texts(link)

    gone = AppTest.from_file(APP, default_timeout=30)  # a link to a board that is not there (any more)
    gone.run()
    gone.switch_page("pages/history.py")
    gone.query_params["h_board"] = "Old picks"
    gone.run()
    assert not gone.exception
    assert "names a board that does not exist" in " ".join(w.value for w in gone.warning)
    assert "Old picks" in [t.value for t in gone.text]  # said as text
    assert "3 run(s) · showing 1–3" in texts(gone)


def test_bulk_actions_change_every_selected_run_and_only_those():
    at, ids = history_page(THREE)
    picked = [ids[0], ids[1]]
    click_in_gallery(at, "selection", picked)
    at.multiselect(key="h_bulk_tags").set_value(["warm", "final"])
    at.run()
    at.button(key="h_bulk_tag").click()
    at.run()
    assert [sorted(r.tags) for r in bench(at).runs(ids)] == [["final", "warm"], ["final", "warm"], []]
    at.selectbox(key="h_bulk_untag").set_value("warm")
    at.run()
    at.button(key="h_bulk_untag_go").click()
    at.run()
    at.selectbox(key="h_bulk_rating").set_value(4)
    at.run()
    at.button(key="h_bulk_rate").click()
    at.run()
    at.button(key="h_bulk_fav").click()
    at.run()
    assert not at.exception
    rows = bench(at).runs(ids)
    assert [(list(r.tags), r.rating, bool(r.favourite)) for r in rows] == [
        (["final"], 4, True),
        (["final"], 4, True),
        ([], None, False),
    ]
    shown = {c["id"]: c["caption"] for c in cards(at)}
    assert shown[ids[0]].endswith("· ★") and not shown[ids[2]].endswith("★")  # the cards show it at once


def test_remove_from_the_current_board_takes_the_selection_off_it():
    at, ids = history_page(THREE)
    bench(at).create_board("Picks", ids)
    at.run()
    at.button_group(key="h_board").set_value("Picks")
    at.run()
    click_in_gallery(at, "selection", [ids[1]])
    at.button(key="h_bulk_board_remove").click()
    at.run()
    assert "2 run(s) · showing 1–2" in texts(at)
    assert ids[1] not in [c["id"] for c in cards(at)] and bench(at).run(ids[1]) is not None


def test_a_bad_new_board_name_is_said_and_changes_nothing():
    at, ids = history_page(THREE[:1])
    click_in_gallery(at, "selection", [ids[0]])
    add_to_new_board(at, "x" * (D.BOARD_NAME_MAX_CHARS + 1))
    assert not at.exception
    assert "Nothing was changed." in errors(at) and "board name: at most" in errors(at)
    assert bench(at).boards() == []


def test_a_runs_panel_shows_its_boards_and_adds_and_removes_it():
    at, ids = history_page(THREE[:1])
    bench(at).create_board("Old", ids)
    at.run()
    click_in_gallery(at, "open", ids[0])
    boards = at.multiselect(key=f"h_boards_{ids[0]}")
    assert boards.value == ["Old"]
    boards.set_value([ALL])  # a new board, its name Markdown and HTML that must stay text
    at.button(key="h_save").click()
    at.run()
    assert not at.exception
    assert [b.name for b in bench(at).boards_of(ids[0])] == [ALL]
    assert [(b.name, b.runs) for b in bench(at).boards()] == [(ALL, 1), ("Old", 0)]
    assert [read_back(o) for o in at.button_group(key="h_board").options] == [ALL, "Old"]  # as text


def test_the_gallery_is_drawn_again_only_when_what_it_shows_changes_and_then_with_a_newer_version(
    monkeypatch,
):
    # no background checks: their results landing between two reruns change the cards (their check lines)
    monkeypatch.setenv(D.CHECKS_ENV, "0")
    at, ids = history_page(THREE)
    first = gallery_data(at)["version"]
    at.run()
    assert gallery_data(at)["version"] == first  # nothing changed: the element is not drawn again
    at.text_input(key="h_q").set_value("tree")
    at.run()
    searched = gallery_data(at)
    assert [c["id"] for c in searched["cards"]] == [ids[2]] and searched["version"] > first


# --- the same change from both front ends ---------------------------------------------------------
def curation_rows(data_dir: Path) -> list[tuple]:
    with Ledger(data_dir / "ledger.db").db() as db:
        runs = [
            (r["prompt"], r["tags_json"], r["rating"], r["favourite"])
            for r in db.query("SELECT * FROM runs ORDER BY prompt")
        ]
        boards = [
            (r["name"], r["prompt"])
            for r in db.query(
                "SELECT b.name, r.prompt FROM board_runs m JOIN boards b ON b.id = m.board_id "
                "JOIN runs r ON r.id = m.run_id ORDER BY b.name, r.prompt"
            )
        ]
    return runs + boards


def test_bulk_curation_and_a_board_leave_the_same_rows_from_the_cli_and_from_history(
    tmp_path, monkeypatch, capsys
):
    found = []
    for name in ("cli", "page"):
        data_dir = tmp_path / name
        monkeypatch.setenv("FLUX_LAB_DATA", str(data_dir))
        at, ids = history_page(THREE)
        picked = [ids[0], ids[2]]
        if name == "cli":
            assert main(["curate", *picked, "--add-tag", "warm", "--rating", "5", "--favourite"]) == 0
            assert main(["board", "add", "Client picks", *picked, "--create"]) == 0
        else:
            click_in_gallery(at, "selection", picked)
            at.multiselect(key="h_bulk_tags").set_value(["warm"])
            at.run()
            at.button(key="h_bulk_tag").click()
            at.run()
            at.selectbox(key="h_bulk_rating").set_value(5)
            at.run()
            at.button(key="h_bulk_rate").click()
            at.run()
            at.button(key="h_bulk_fav").click()
            at.run()
            add_to_new_board(at, "Client picks")
            assert not at.exception
        found.append(curation_rows(data_dir))
    capsys.readouterr()
    assert found[0] == found[1]
    assert ("Client picks", "a red cube") in found[0]
