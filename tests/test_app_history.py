"""AppTest of the History page: search, selection, the diff view, recall, curation, delete and undo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core.params import FluxParams

APP = str(Path(__file__).resolve().parents[1] / "app.py")
pytestmark = pytest.mark.usefixtures("fast_app")


def history_page(runs: list[dict]) -> tuple[AppTest, list[str]]:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    bench = at.session_state["workbench"]
    ids = [bench.submit(FluxParams.parse(**r)) for r in runs]
    bench.default.runner.wait(ids)
    at.switch_page("pages/history.py")
    at.run()
    assert not at.exception
    return at, ids


def the_gallery(at: AppTest, key: str = "h_gallery"):
    """The cards element drawn under `key` (History's gallery unless told; Compose draws its recent
    runs, its feed and a batch's strip as the same element under their own keys)."""
    [gallery] = [
        e
        for e in at.get("bidi_component")
        if e.proto.component_name == "flux_lab.gallery" and e.proto.id.endswith(f"-{key}")
    ]
    return gallery


def cards(at: AppTest, key: str = "h_gallery") -> list[dict]:
    """The cards, as the page sent them to the browser."""
    return json.loads(the_gallery(at, key).proto.json)["cards"]


def click_in_gallery(at: AppTest, event: str, value, key: str = "h_gallery") -> None:
    """Rerun as the browser does after a click in a cards element: with the event the element fired
    ("selection": the whole new selection; "open": a run id). AppTest has no driver for custom
    elements, so this sends the same widget state Streamlit's frontend sends."""
    from streamlit.components.v2.bidi_component.main import _make_trigger_id

    gallery = the_gallery(at, key)
    states = at._tree.get_widget_states()
    trigger = states.widgets.add()
    trigger.id = _make_trigger_id(gallery.proto.id, "events")
    trigger.json_trigger_value = json.dumps([{"event": event, "value": value}])
    at._run(states)


def the_table(at: AppTest):
    [table] = [d for d in at.dataframe if d.key and d.key.startswith("h_table")]
    return table


def pick_in_table(at: AppTest, rows: list[int]) -> None:
    """Rerun as the browser does after rows are ticked in the table view (AppTest has no driver
    for a dataframe's selection)."""
    table = the_table(at)
    states = at._tree.get_widget_states()
    picked = next((w for w in states.widgets if w.id == table.proto.id), None) or states.widgets.add()
    picked.id = table.proto.id
    picked.string_value = json.dumps({"selection": {"rows": rows, "columns": [], "cells": []}})
    at._run(states)


def compare_tables(at: AppTest) -> tuple:
    """The side-by-side tables: (settings, outcomes)."""
    settings, outcomes = [t.value for t in at.table]
    return settings, outcomes


def texts(at: AppTest) -> str:
    return "\n".join(
        str(e.value) for kind in ("text", "caption", "info", "error", "warning") for e in getattr(at, kind)
    )


THREE = [
    dict(prompt="a red cube", seed=1),
    dict(prompt="a blue cube", seed=2, safety_tolerance=5),
    dict(prompt="a green tree", seed=3),
]


def test_search_finds_by_a_word_in_the_prompt():
    at, ids = history_page(THREE)
    assert "3 run(s) · showing 1–3" in texts(at)
    at.text_input(key="h_q").set_value("tree")
    at.run()
    assert "1 run(s) · showing 1–1" in texts(at)
    assert [(c["id"], c["caption"]) for c in cards(at)] == [(ids[2], "[max] · seed 3 · tol 3")]


def test_selecting_two_runs_shows_them_side_by_side_with_exactly_the_differences_marked():
    at, ids = history_page(THREE)
    click_in_gallery(at, "selection", [ids[0]])
    assert "Selected: 1 run(s)" in [s.value for s in at.subheader]
    click_in_gallery(at, "selection", [ids[0], ids[1]])
    at.button(key="h_goto_compare").click()
    at.run()
    [anchor] = [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.scroll_here"]
    assert json.loads(anchor.proto.json)["place"] == "compare"
    assert at.query_params["h_sel"] in (f"{ids[0]},{ids[1]}", [f"{ids[0]},{ids[1]}"])
    settings, outcomes = compare_tables(at)
    # only settings are differences; outcomes (times, cost, status) are shown apart, unmarked
    assert set(settings[settings["differs"] == "≠"]["field"]) == {"prompt", "seed", "safety_tolerance"}
    assert "differs" not in outcomes.columns
    assert list(outcomes["field"]) == ["status", "wait_s", "inference_s", "queue_s", "cost", "cost_usd"]
    assert "#1 → #2" in texts(at)
    at.toggle(key="h_diff_only").set_value(True)
    at.run()
    settings, outcomes = compare_tables(at)
    assert set(settings["differs"]) == {"≠"} and len(outcomes) == 6


def test_a_link_with_the_selection_reopens_the_same_comparison():
    at, ids = history_page(THREE)
    link = AppTest.from_file(APP, default_timeout=30)
    link.query_params["h_sel"] = f"{ids[0]},{ids[2]}"
    link.run()
    link.switch_page("pages/history.py")
    link.query_params["h_sel"] = f"{ids[0]},{ids[2]}"
    link.run()
    assert "Selected: 2 run(s)" in [s.value for s in link.subheader]


def test_recall_opens_compose_and_rerun_sends_an_identical_request():
    at, ids = history_page(
        [
            dict(
                prompt="a red cube",
                seed=11,
                width=512,
                height=768,
                safety_tolerance=5,
                output_format="jpeg",
                image_urls=["https://example.com/ref.png"],
            )
        ]
    )
    click_in_gallery(at, "open", ids[0])
    at.button(key="h_compose").click()
    at.run()
    at.switch_page("pages/compose.py")  # AppTest does not follow a script's own st.switch_page on reruns
    at.run()
    assert not at.exception
    assert at.text_area(key="prompt").value == "a red cube"
    assert (at.number_input(key="compose_width").value, at.number_input(key="compose_height").value) == (
        512,
        768,
    )
    assert (
        at.number_input(key="compose_seed").value == 11 and not at.checkbox(key="compose_seed_random").value
    )
    assert at.text_area(key="compose_ref_urls").value == "https://example.com/ref.png"
    at.button(key="compose_generate").click()
    at.run()
    bench = at.session_state["workbench"]
    newest = bench.recent()[0]
    original = bench.run(ids[0])
    assert newest.id != original.id and newest.request == original.request


def test_rerun_identically_from_history():
    at, ids = history_page([dict(prompt="a blue ball", seed=4)])
    click_in_gallery(at, "open", ids[0])
    at.button(key="h_rerun").click()
    at.run()
    bench = at.session_state["workbench"]
    runs = bench.recent()
    assert len(runs) == 2 and runs[0].request == runs[1].request


def test_curation_is_saved_and_a_note_with_markup_is_text():
    at, ids = history_page([dict(prompt="a cat", seed=1)])
    click_in_gallery(at, "open", ids[0])
    at.toggle(key=f"h_fav_{ids[0]}").set_value(True)
    at.text_area(key=f"h_note_{ids[0]}").set_value("<script>alert(1)</script> lovely")
    at.multiselect(key=f"h_tags_{ids[0]}").set_value(["keeper"])
    at.button(key="h_save").click()
    at.run()
    row = at.session_state["workbench"].run(ids[0])
    assert row.favourite is True and row.tags == ("keeper",)
    assert "<script>alert(1)</script> lovely" in [t.value for t in at.text]
    assert not any("<script>" in str(m.value) for m in at.markdown)


def test_delete_asks_first_and_can_be_undone():
    at, ids = history_page([dict(prompt="a cat", seed=1), dict(prompt="a dog", seed=2)])
    click_in_gallery(at, "open", ids[0])
    assert at.button(key="h_delete").disabled
    at.checkbox(key=f"h_confirm_{ids[0]}").check()
    at.run()
    at.button(key="h_delete").click()
    at.run()
    assert "1 run(s) · showing 1–1" in texts(at)
    bench = at.session_state["workbench"]
    assert bench.run(ids[0]).deleted_at is not None  # kept until the deletion is final
    at.button(key="h_undo_button").click()
    at.run()
    assert "2 run(s) · showing 1–2" in texts(at) and bench.run(ids[0]).deleted_at is None


def test_filters_and_table_view():
    at, ids = history_page(THREE)
    at.toggle(key="h_filters").set_value(True)
    at.run()
    at.multiselect(key="h_tol").set_value([5])
    at.run()
    assert "1 run(s)" in texts(at)
    at.segmented_control(key="h_view").set_value("Table")
    at.run()
    [table] = [d.value for d in at.dataframe if "prompt" in d.value.columns]
    assert list(table["prompt"]) == ["a blue cube"]


def test_insights_draw_from_the_ledger_runs_and_credits_each_on_its_own_axis():
    at, _ = history_page(THREE)  # every run on one day
    at.toggle(key="h_insights").set_value(True)
    at.run()
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    daily = [s for s in specs if s["encoding"]["x"]["field"] == "day"]
    # one day is one bar each (a one-point line is blank), runs and credits never share an axis
    assert [(s["mark"]["type"], s["encoding"]["y"]["field"]) for s in daily] == [
        ("bar", "runs"),
        ("bar", "spend_usd"),
        ("bar", "credits"),
    ]


def test_an_unknown_submit_is_rerun_only_after_the_user_has_checked():
    from flux_core.ledger import store

    at, _ = history_page([])
    bench = at.session_state["workbench"]
    ids = [
        bench.ledger.record_run(
            FluxParams.parse(prompt="a paid-for lighthouse", seed=9),
            store.SUBMIT_UNKNOWN,
            backend="emulator",
            base_url=bench.default.connection.base_url,
            error="The connection broke after sending.",
        )
    ]
    at.run()
    click_in_gallery(at, "open", ids[0])
    assert "Check Segmind's console" in texts(at)
    assert at.button(key="h_rerun").disabled
    at.checkbox(key=f"h_checked_{ids[0]}").check()
    at.run()
    at.button(key="h_rerun").click()
    at.run()
    runs = bench.recent()
    assert len(runs) == 2 and runs[0].request == runs[1].request


def test_an_opened_run_is_brought_into_view_once():
    at, ids = history_page(THREE)
    assert not [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.scroll_here"]
    click_in_gallery(at, "open", ids[1])
    [anchor] = [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.scroll_here"]
    assert json.loads(anchor.proto.json) == {
        "place": "run",
        "token": ids[1],
    }  # scrolls when the token changes
    assert "Run" in [s.value for s in at.subheader]


def test_switching_to_the_table_keeps_the_selection_and_the_table_changes_it():
    at, ids = history_page(THREE)
    click_in_gallery(at, "selection", [ids[0], ids[2]])
    at.segmented_control(key="h_view").set_value("Table")
    at.run()
    assert at.query_params["h_sel"] in (f"{ids[0]},{ids[2]}", [f"{ids[0]},{ids[2]}"])
    assert at.button(key="h_goto_compare").label == "See the 2 selected runs side by side"
    assert "Selected: 2 run(s)" in [s.value for s in at.subheader]
    table = the_table(at)
    newest_first = list(table.value["id"])
    ticked = json.loads(table.proto.selection_default)["selection"]["rows"]
    assert sorted(newest_first[i] for i in ticked) == sorted([ids[0], ids[2]])  # the table shows it

    pick_in_table(at, [newest_first.index(ids[1])])  # a change made in the table reaches the URL
    assert at.query_params["h_sel"] in (ids[1], [ids[1]])
    assert "Selected: 1 run(s)" in [s.value for s in at.subheader]
    assert not [b for b in at.button if b.key == "h_goto_compare"]

    at.button(key="h_clear").click()  # and one made elsewhere reaches the table
    at.run()
    assert "h_sel" not in at.query_params and not [s for s in at.subheader if "Selected" in s.value]
    assert json.loads(the_table(at).proto.selection_default)["selection"]["rows"] == []


def test_deleting_the_selected_runs_asks_first_and_can_be_undone():
    at, ids = history_page(THREE)
    click_in_gallery(at, "selection", [ids[0], ids[1]])
    assert at.button(key="h_delete_selected").disabled
    [confirm] = [c for c in at.checkbox if c.label == "I want to delete the 2 selected run(s)"]
    confirm.check()
    at.run()
    at.button(key="h_delete_selected").click()
    at.run()
    assert "1 run(s) · showing 1–1" in texts(at)
    assert "Deleted 2 run(s): they stay in the trash until deleted for good." in texts(at)
    at.button(key="h_undo_button").click()
    at.run()
    assert "3 run(s) · showing 1–3" in texts(at)


def test_deleting_for_good_asks_first_and_leaves_no_undo_behind():
    at, ids = history_page(THREE)
    bench = at.session_state["workbench"]
    click_in_gallery(at, "selection", [ids[0], ids[1]])
    next(c for c in at.checkbox if c.label.startswith("I want to delete the 2")).check()
    at.run()
    at.button(key="h_delete_selected").click()
    at.run()
    at.toggle(key="h_trash").set_value(True)
    at.run()
    click_in_gallery(at, "selection", [ids[0], ids[1]])
    assert at.button(key="h_purge").disabled
    next(c for c in at.checkbox if c.label == "I want to delete the 2 selected run(s) for good").check()
    at.run()
    at.button(key="h_purge").click()
    at.run()
    assert bench.ledger.get_many([ids[0], ids[1]]) == []
    # must not happen: an offer to undo a deletion that is final
    assert "Deleted 2 run(s)" not in texts(at) and not [b for b in at.button if b.key == "h_undo_button"]


def test_runs_made_elsewhere_are_imported_from_the_history_once():
    at, _ = history_page([{"prompt": "a red cube", "seed": 1}])
    bench = at.session_state["workbench"]
    client = bench.default.client  # the same key, but no ledger: a request made outside Flux Lab
    elsewhere = client.submit(FluxParams.parse(prompt="a harbour at noon", seed=77)).request_id
    at.session_state["h_imp_open"] = True  # as a click on the panel does
    at.run()
    at.button(key="h_imp_go").click()
    at.run()
    assert not at.exception
    assert "Imported 1 run(s) made elsewhere; 1 were in the ledger already." in [s.value for s in at.success]
    [imported] = [r for r in bench.recent(10) if r.request_id == elsewhere]
    bench.default.runner.wait([imported.id])
    row = bench.run(imported.id)
    assert row.origin == "imported" and row.status == "COMPLETED" and row.prompt == "a harbour at noon"
    at.button(key="h_imp_go").click()
    at.run()
    assert "Imported 0 run(s) made elsewhere; 2 were in the ledger already." in [s.value for s in at.success]


def test_the_history_import_refuses_a_teammate_address_that_is_none():
    at, _ = history_page([])
    at.session_state["h_imp_open"] = True
    at.run()
    at.text_input(key="h_imp_email").set_value("not an address")
    at.button(key="h_imp_go").click()
    at.run()
    assert not at.exception and not at.success
    assert any("user_email must be an e-mail address" in e.value for e in at.error)
