"""AppTest of the Compare page: planning, confirmation, reuse, a sweep on the emulator, reading it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core.ledger import sweeps

APP = str(Path(__file__).resolve().parents[1] / "app.py")
pytestmark = pytest.mark.usefixtures("fast_app")


def compare_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("pages/compare.py")
    at.run()
    assert not at.exception
    return at


def texts(at: AppTest) -> str:
    return "\n".join(
        str(e.value)
        for kind in ("info", "warning", "error", "text", "caption", "success")
        for e in getattr(at, kind)
    )


def plan(at: AppTest, prompt: str = "a zombie at dusk") -> AppTest:
    at.text_area(key="compare_prompt").set_value(prompt)
    at.run()
    assert not at.exception
    return at


def run_and_finish(at: AppTest) -> sweeps.SweepView:
    at.button(key="compare_run").click()
    at.run()
    sweep_id = at.query_params["sweep"]
    sweep_id = sweep_id[0] if isinstance(sweep_id, list) else sweep_id
    bench = at.session_state["workbench"]
    view = sweeps.load(bench.ledger, sweep_id)
    bench.default.runner.wait([c.run.id for c in view.cells])
    at.run()
    assert not at.exception
    return sweeps.load(bench.ledger, sweep_id)


def the_grid(at: AppTest) -> dict:
    """The sweep grid as the page sent it to the browser."""
    [grid] = [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.sweep_grid"]
    return json.loads(grid.proto.json)


def act_in_grid(at: AppTest, what: str, idx: int) -> None:
    """Rerun as the browser does after an action in the grid's lightbox (AppTest has no driver for
    custom elements, so this sends the trigger Streamlit's frontend sends)."""
    from streamlit.components.v2.bidi_component.main import _make_trigger_id

    [grid] = [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.sweep_grid"]
    states = at._tree.get_widget_states()
    trigger = states.widgets.add()
    trigger.id = _make_trigger_id(grid.proto.id, "events")
    trigger.json_trigger_value = json.dumps([{"event": "action", "value": {"do": what, "idx": idx, "at": 1}}])
    at._run(states)


def cell_words(at: AppTest) -> list[str]:
    return [c["words"] for c in the_grid(at)["cells"]]


def test_the_plan_shows_cells_time_and_cost_before_anything_runs():
    at = plan(compare_page())
    [summary] = [i.value for i in at.info if "cells" in i.value]
    assert summary.startswith("6 cells (3 seeds × 2 safety tolerances) · 6 new, 0 reused from the ledger")
    assert "about 30 s" in summary and "estimated cost 0.42 credits" in summary
    assert at.session_state["workbench"].recent() == []  # planning sends nothing


def test_an_invalid_plan_says_why_and_offers_no_run(monkeypatch):
    at = plan(compare_page())
    at.multiselect(key="compare_axes").set_value(["Prompt"])
    at.run()
    at.text_input(key="compare_phrase").set_value("vampire")
    at.run()
    assert "the phrase 'vampire' does not occur in the base prompt" in texts(at)
    assert not [b for b in at.button if b.key == "compare_run"]


def test_above_the_cap_the_sweep_needs_confirmation(monkeypatch):
    monkeypatch.setenv("FLUX_LAB_SWEEP_CAP", "4")
    at = plan(compare_page())
    assert at.button(key="compare_run").disabled
    at.checkbox(key="compare_confirm").check()
    at.run()
    assert not at.button(key="compare_run").disabled


def test_a_sweep_fills_its_grid_and_reads_as_a_safety_matrix_and_ab():
    at = plan(compare_page(), "a bloody zombie")
    at.multiselect(key="compare_tolerances").set_value([1, 3])
    at.run()
    view = run_and_finish(at)
    assert view.progress() == {"done": 3, "blocked": 3, "failed": 0, "pending": 0}
    assert sorted(cell_words(at)) == [""] * 3 + ["Blocked at tolerance 1"] * 3
    assert "the prompt: lowest tolerance that passed: 3" in texts(at)
    assert [d.proto.label for d in at.get("download_button")] == [
        "Contact sheet (PNG)",
        "Images and manifest (ZIP)",
        "Download report",
    ]
    diff = diff_table(at)
    assert "seed" in set(diff[diff["differs"] == "≠"]["field"])
    assert set(diff[diff["differs"] == "≠"]["field"]) <= {"seed", "inference_time"}
    at.toggle(key="compare_diff_only").set_value(True)
    at.run()
    assert set(diff_table(at)["differs"]) == {"≠"}


def diff_table(at: AppTest):
    [table] = [t.value for t in at.table if list(t.value.columns) == ["field", "A", "B", "differs"]]
    return table


def test_completed_cells_are_reused_unless_run_again():
    at = plan(compare_page())
    run_and_finish(at)
    at.session_state["workbench"].settle_costs()  # what the app's scan does every 30 s
    at.button(key="compare_new").click()
    at.run()
    [summary] = [i.value for i in at.info if "cells" in i.value]
    # the six runs' real costs are in the ledger now: the estimate is learned from them, in dollars
    assert "0 new, 6 reused from the ledger" in summary and "estimated cost $0" in summary
    at.checkbox(key="compare_run_again").check()
    at.run()
    [summary] = [i.value for i in at.info if "cells" in i.value]
    assert "6 new, 0 reused" in summary


def test_a_blind_vote_is_recorded_and_revealed():
    at = plan(compare_page())
    at.multiselect(key="compare_axes").set_value(["Seed"])
    at.run()
    view = run_and_finish(at)
    at.text_input(key="compare_voter").set_value("Ana")
    at.run()
    assert "0 of 3 pairs judged" in texts(at)
    at.button(key="compare_vote_left").click()
    at.run()
    assert "1 of 3 pairs judged" in texts(at)
    at.toggle(key="compare_reveal").set_value(True)
    at.run()
    tallies = [d.value for d in at.dataframe if "wins" in d.value.columns]
    assert sum(tallies[0]["wins"]) == 1 and len(tallies[0]) == len(view.axes[0].values)


def test_failed_cells_can_be_retried_alone():
    at = plan(compare_page(), "a cube #fail")
    at.multiselect(key="compare_axes").set_value(["Seed"])
    at.run()
    view = run_and_finish(at)
    assert view.progress()["failed"] == 3
    at.button(key="compare_retry").click()
    at.run()
    bench = at.session_state["workbench"]
    after = sweeps.load(bench.ledger, view.id)
    assert {c.run.id for c in after.cells}.isdisjoint({c.run.id for c in view.cells})


def test_a_skipped_pair_is_not_counted_as_judged():
    at = plan(compare_page())
    at.multiselect(key="compare_axes").set_value(["Seed"])
    at.run()
    run_and_finish(at)
    at.text_input(key="compare_voter").set_value("Ana")
    at.run()
    at.button(key="compare_vote_skip").click()
    at.run()
    assert "0 of 3 pairs judged · 1 skipped" in texts(at)
    at.button(key="compare_vote_left").click()
    at.run()
    assert "1 of 3 pairs judged · 1 skipped" in texts(at)


def test_take_from_compose_keeps_its_reference_images():
    import io

    from PIL import Image

    picture = io.BytesIO()
    Image.new("RGB", (32, 32), "teal").save(picture, "PNG")
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.text_area(key="prompt").set_value("a cat with a hat")
    at.text_area(key="compose_ref_urls").set_value("https://example.com/a.png\n/etc/hosts")
    at.file_uploader(key="compose_ref_files").upload("ref.png", picture.getvalue(), "image/png")
    at.run()
    at.switch_page("pages/compare.py")
    at.run()
    at.button(key="compare_from_compose").click()
    at.run()
    assert "Reference images: 1 URL(s) and 1 file(s) from Compose" in texts(at)
    assert (
        "Not taken from Compose: image URL 2 must be an http:// or https:// URL (got '/etc/hosts')"
        in texts(at)
    )
    at.multiselect(key="compare_axes").set_value(["Seed"])
    at.run()
    view = run_and_finish(at)
    for cell in view.cells:
        urls = cell.run.params.image_urls
        assert len(urls) == 2 and urls[0] == "https://example.com/a.png"
    assert len({c.run.params.image_urls[1] for c in view.cells}) == 1  # uploaded once


def test_from_a_past_run_keeps_its_reference_images():
    from flux_core.ledger import store
    from flux_core.params import FluxParams

    at = compare_page()
    bench = at.session_state["workbench"]
    run_id = bench.ledger.record_run(
        FluxParams.parse(prompt="a dog", seed=3, image_urls=["https://example.com/ref.jpg"]),
        store.COMPLETED,
        backend="emulator",
        base_url=bench.default.connection.base_url,
    )
    at.run()
    at.selectbox(key="compare_base_run").set_value(run_id)
    at.run()
    assert "Reference images: 1 URL(s)" in texts(at) and "https://example.com/ref.jpg" in texts(at)
    at.multiselect(key="compare_axes").set_value(["Seed"])
    at.run()
    view = run_and_finish(at)
    assert {c.run.params.image_urls for c in view.cells} == {("https://example.com/ref.jpg",)}


def test_every_bad_seed_is_named_on_the_compare_page():
    at = plan(compare_page())
    at.text_input(key="compare_seeds").set_value("-5, 99999999999")
    at.run()
    shown = texts(at)
    assert "seed -5 must be from 0 to" in shown and "seed 99999999999 must be from 0 to" in shown


def three_axis_sweep(at: AppTest, prompts: str) -> sweeps.SweepView:
    at.multiselect(key="compare_axes").set_value(["Seed", "Safety tolerance", "Prompt"])
    at.run()
    at.radio(key="compare_prompt_mode").set_value("Whole prompts")
    at.run()
    at.text_area(key="compare_prompts").set_value(prompts)
    at.run()
    return run_and_finish(at)


def test_whole_prompts_are_named_by_their_words_and_previewed_before_the_run():
    at = plan(compare_page())
    at.multiselect(key="compare_axes").set_value(["Seed", "Prompt"])
    at.run()
    at.radio(key="compare_prompt_mode").set_value("Whole prompts")
    at.run()
    at.text_area(key="compare_prompts").set_value("a red cube on marble\n---\na blue cube on marble")
    at.run()
    shown = texts(at)
    assert "The sweep sends these 2 prompt(s):" in shown
    assert "red: a red cube on marble" in shown and "blue: a blue cube on marble" in shown
    assert "prompt 1" not in shown
    view = run_and_finish(at)
    assert view.axes[1].labels == ("red", "blue")
    assert [s["title"] for s in the_grid(at)["slices"]] == [""]


def test_every_slice_is_one_grid_and_the_axes_go_where_they_are_placed():
    at = plan(compare_page(), "a cube")
    view = three_axis_sweep(at, "a red cube\n---\na blue cube")
    grid = the_grid(at)
    assert [s["title"] for s in grid["slices"]] == ["Prompt: red", "Prompt: blue"]
    assert (
        grid["rows"]["labels"] == ["seed 1", "seed 2", "seed 3"]
        and len(grid["cells"]) == len(view.cells) == 12
    )
    assert not at.radio  # nothing hidden behind a radio
    at.selectbox(key="compare_place_0").set_value("prompt")
    at.run()
    assert not at.exception and not at.warning
    assert at.query_params["layout"] in ("prompt,safety_tolerance,seed", ["prompt,safety_tolerance,seed"])
    grid = the_grid(at)
    assert grid["rows"]["labels"] == ["red", "blue"]
    assert [s["title"] for s in grid["slices"]] == ["Seed: seed 1", "Seed: seed 2", "Seed: seed 3"]
    assert at.selectbox(key="compare_place_2").value == "seed"  # the rows' old axis took the stacked place


def test_a_failed_cell_says_why_and_is_retried_alone_from_its_lightbox():
    at = plan(compare_page(), "a cube #fail")
    at.multiselect(key="compare_axes").set_value(["Seed"])
    at.run()
    view = run_and_finish(at)
    words = cell_words(at)
    assert all(w.startswith("Failed: ") and len(w) > len("Failed: ") for w in words)
    assert all(c["retry"] for c in the_grid(at)["cells"])
    act_in_grid(at, "retry", 1)
    assert not at.exception
    bench = at.session_state["workbench"]
    after = sweeps.load(bench.ledger, view.id)
    assert after.cells[1].run.id != view.cells[1].run.id
    assert [c.run.id for i, c in enumerate(after.cells) if i != 1] == [
        c.run.id for i, c in enumerate(view.cells) if i != 1
    ]
    bench.default.runner.wait([after.cells[1].run.id])


def test_a_cell_is_favourited_and_opened_in_compose_from_its_lightbox():
    at = plan(compare_page(), "a teapot on a table")
    at.multiselect(key="compare_axes").set_value(["Seed"])
    at.run()
    view = run_and_finish(at)
    act_in_grid(at, "favourite", 2)
    bench = at.session_state["workbench"]
    assert bench.run(view.cells[2].run.id).favourite
    assert [c["favourite"] for c in the_grid(at)["cells"]] == [False, False, True]
    act_in_grid(at, "favourite", 2)
    assert not bench.run(view.cells[2].run.id).favourite
    act_in_grid(at, "compose", 2)
    assert not at.exception
    assert at.text_area(key="prompt").value == "a teapot on a table"  # Compose, with the cell's recipe
    assert at.query_params["run"] in (view.cells[2].run.id, [view.cells[2].run.id])


def test_saved_sweeps_are_cards_with_a_picture_a_name_and_a_size():
    at = plan(compare_page(), "a lamp")
    at.multiselect(key="compare_axes").set_value(["Seed"])
    at.run()
    at.text_input(key="compare_name").set_value("lamps *at* night")
    at.run()
    view = run_and_finish(at)
    at.button(key="compare_new").click()
    at.run()
    shown = texts(at)
    assert "lamps *at* night" in [t.value for t in at.text]  # the name as text, never markup
    assert "3 seeds (3 cells)" in shown
    assert len(at.get("image")) == 1  # the first done cell's picture
    at.button(key=f"compare_open_{view.id}").click()
    at.run()
    assert at.query_params["sweep"] in (view.id, [view.id])
