"""AppTest of Compose's issue-14 parts: N images per Generate, this session's feed, presets, the
one-click fix an error names and the request as code."""

from __future__ import annotations

import json

import pytest

from flux_core import defaults as D
from flux_core.ledger import store
from flux_core.params import FluxParams
from tests.test_app import finish_current, generate, start, texts
from tests.test_app_history import cards, click_in_gallery, the_gallery

pytestmark = pytest.mark.usefixtures("fast_app")


def gallery_data(at, key: str) -> dict:
    return json.loads(the_gallery(at, key).proto.json)


def query(at, name: str) -> str:
    value = at.query_params[name]
    return value[0] if isinstance(value, list) else value


def test_three_images_run_three_seeds_shown_as_a_strip_and_one_click_shows_one():
    at = start()
    at.checkbox(key="compose_seed_random").uncheck()
    at.number_input(key="compose_count").set_value(3)
    at.run()
    at.number_input(key="compose_seed").set_value(10)
    at = generate(at, "a red cube")
    bench = at.session_state["workbench"]
    batch = query(at, "batch").split(",")
    assert len(batch) == 3 and query(at, "run") == batch[0]
    rows = bench.wait(batch)
    assert [r.seed for r in rows] == [10, 11, 12] and {r.status for r in rows} == {store.COMPLETED}
    at.run()
    strip = gallery_data(at, "compose_strip_cards")
    assert [c["id"] for c in strip["cards"]] == batch and strip["shown"] == batch[0]  # its button: "Shown"
    assert strip["action"] == "Show" and all(c["thumb"] for c in strip["cards"])
    click_in_gallery(at, "open", batch[2], "compose_strip_cards")
    assert query(at, "run") == batch[2] and query(at, "batch") == ",".join(batch)
    assert '"seed": 12' in at.json[0].value


def test_a_double_click_submits_the_whole_batch_once():
    at = start()
    at.number_input(key="compose_count").set_value(4)
    at.text_area(key="prompt").set_value("a red cube")
    at.button(key="compose_generate").click()
    at.run()
    at.button(key="compose_generate").click()
    at.run()
    bench = at.session_state["workbench"]
    bench.wait([r.id for r in bench.recent()])
    assert len(bench.recent()) == 4 and len({r.seed for r in bench.recent()}) == 4


def test_the_images_help_says_how_seeds_are_chosen():
    at = start()
    help_text = at.number_input(key="compose_count").help
    assert "a seed is drawn for each image" in help_text and "N, N+1" in help_text


def test_the_feed_shows_this_sessions_runs_newest_first_across_pages():
    at = generate(start(), "a red cube")
    first = finish_current(at)
    at = generate(at, "a blue ball on a long winding road past the old mill")
    second = finish_current(at)
    at.switch_page("pages/history.py")
    at.run()
    at.switch_page("pages/compose.py")
    at.run()
    assert not at.exception
    assert "This session" in [s.value for s in at.subheader]
    feed = cards(at, "compose_feed_cards")
    assert [c["id"] for c in feed] == [second.id, first.id]
    assert feed[0]["headline"] == "a blue ball on a long winding road past the old mill"  # cut by the card
    assert f"seed {first.seed} · tol" in feed[1]["caption"]
    click_in_gallery(at, "open", first.id, "compose_feed_cards")
    assert query(at, "run") == first.id and '"prompt": "a red cube"' in at.json[0].value


def test_a_preset_is_saved_from_the_form_and_loads_back_into_it():
    at = start()
    at.selectbox(key="compose_aspect").set_value("9:16 tall")
    at.run()
    at.checkbox(key="compose_seed_random").uncheck()
    at.slider(key="compose_tolerance").set_value(5)
    at.run()
    at.number_input(key="compose_seed").set_value(77)
    at.text_area(key="prompt").set_value("a tall tower")
    assert "compose_preset_name" not in [t.key for t in at.text_input]  # drawn once opened
    at.session_state["compose_preset_open"] = True  # as a click on "Save as preset" does
    at.run()
    at.text_input(key="compose_preset_name").set_value("tall <b>tower</b>")
    at.checkbox(key="compose_preset_prompt").check()
    at.run()
    at.button(key="compose_preset_save").click()
    at.run()
    bench = at.session_state["workbench"]
    assert at.selectbox(key="compose_preset").value == "tall <b>tower</b>"  # the new preset is chosen
    assert any(s.value.startswith("Saved preset tall") for s in at.success)
    [saved] = bench.presets()
    assert (saved.name, saved.width, saved.height, saved.seed, saved.safety_tolerance, saved.prompt) == (
        "tall <b>tower</b>",
        768,
        1344,
        77,
        5,
        "a tall tower",
    )
    # change everything, then start from the preset
    at.selectbox(key="compose_aspect").set_value("1:1 square")
    at.slider(key="compose_tolerance").set_value(1)
    at.text_area(key="prompt").set_value("something else")
    at.selectbox(key="compose_preset").set_value("—")
    at.run()
    at.selectbox(key="compose_preset").set_value("tall <b>tower</b>")
    at.run()
    assert (at.number_input(key="compose_width").value, at.number_input(key="compose_height").value) == (
        768,
        1344,
    )
    assert at.slider(key="compose_tolerance").value == 5 and at.number_input(key="compose_seed").value == 77
    assert at.checkbox(key="compose_seed_random").value is False
    assert at.text_area(key="prompt").value == "a tall tower"
    at.button(key="compose_preset_delete").click()
    at.run()
    assert bench.presets() == [] and at.selectbox(key="compose_preset").options == ["—"]


def test_a_bad_preset_names_the_field_and_saves_nothing():
    at = start()
    at.number_input(key="compose_width").set_value(1000)
    at.session_state["compose_preset_open"] = True
    at.run()
    at.button(key="compose_preset_save").click()
    at.run()
    assert not at.exception
    assert "The preset was not saved. Fix these first:" in [e.value for e in at.error]
    shown = texts(at)
    assert "name is required" in shown and "width must be a multiple of 16: try 992 or 1008" in shown
    assert at.session_state["workbench"].presets() == []


def test_a_blocked_run_offers_the_next_tolerance_and_one_click_runs_it_there():
    at = start()
    at.slider(key="compose_tolerance").set_value(0)
    at = generate(at, "a bloody sword")
    blocked = finish_current(at)
    assert blocked.status == store.BLOCKED
    assert at.button(key="compose_fix").label == "Retry at tolerance 1"
    assert at.selectbox(key=f"compose_fix_tolerance_{blocked.id}").options == [str(t) for t in range(1, 7)]
    at.selectbox(key=f"compose_fix_tolerance_{blocked.id}").set_value(3)
    at.run()
    assert at.button(key="compose_fix").label == "Retry at tolerance 3"
    at.button(key="compose_fix").click()
    at.run()
    again = finish_current(at)
    assert again.id != blocked.id and again.safety_tolerance == 3 and again.status == store.COMPLETED
    assert again.seed == blocked.seed and again.prompt == blocked.prompt
    bench = at.session_state["workbench"]
    assert f"Run again from run {blocked.id} with safety_tolerance 3." in [
        e.detail for e in bench.events(again.id)
    ]
    assert at.slider(key="compose_tolerance").value == 3  # the form keeps the fix for the next Generate


def record(at, status: str, **fields) -> str:
    bench = at.session_state["workbench"]
    run_id = bench.ledger.record_run(
        FluxParams.parse(prompt="a lighthouse", seed=9),
        status,
        backend="emulator",
        base_url=bench.default.connection.base_url,
        **fields,
    )
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception
    return run_id


def test_a_transient_failure_offers_retry_and_a_bad_key_or_no_credits_do_not():
    at = start()
    failed = record(at, store.ERROR, error="Server trouble (HTTP 502).", error_kind="server")
    assert at.button(key="compose_fix").label == "Retry"
    at.button(key="compose_fix").click()
    at.run()
    again = finish_current(at)
    assert (
        again.id != failed
        and again.status == store.COMPLETED
        and again.request == at.session_state["workbench"].run(failed).request
    )
    for kind in ("auth", "credits"):
        record(at, store.ERROR, error="Do this first.", error_kind=kind)
        assert not [b for b in at.button if b.key == "compose_fix"]
        assert "Do this first." in texts(at)


def test_an_unknown_submit_keeps_its_confirm_first_flow_and_no_one_click_retry():
    at = start()
    record(at, store.SUBMIT_UNKNOWN, error="The connection broke after the request was sent.")
    assert not [b for b in at.button if b.key == "compose_fix"]
    assert at.button(key="compose_resubmit").disabled


def test_the_request_as_code_in_three_languages_without_the_key():
    at = generate(start(), "a red cube")
    row = finish_current(at)
    assert [c.value for c in at.code] == []  # the snippets are made once the panel is opened
    at.session_state["compose_code_open"] = True
    at.run()
    codes = [c.value for c in at.code]
    assert len(codes) == 3
    curl, httpx_code, sdk = codes
    assert curl.startswith("# Submit") and f"/v2/{D.MODEL_SLUG}" in curl and '"a red cube"' in curl
    assert "import httpx" in httpx_code and "from segmind import SegmindClient" in sdk
    for code in codes:
        assert D.EMULATOR_KEY not in code and "SEGMIND_API_KEY" in code
        assert str(row.seed) in code
