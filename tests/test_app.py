"""Streamlit AppTest: every page renders; the Compose flow against the embedded emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core.ledger import store
from flux_core.params import FluxParams
from flux_ui.templates import MAGAZINE_SHOOT
from tests.test_app_history import cards, click_in_gallery

APP = str(Path(__file__).resolve().parents[1] / "app.py")
pytestmark = pytest.mark.usefixtures("fast_app")


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("success", "info", "warning", "error", "text", "caption", "markdown")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def generate(at: AppTest, prompt: str) -> AppTest:
    at.text_area(key="prompt").set_value(prompt)
    at.button(key="compose_generate").click()
    at.run()
    assert not at.exception
    return at


def finish_current(at: AppTest) -> dict:
    """Block until the run on screen reaches its final state (the runner's own wait), then redraw."""
    bench = at.session_state["workbench"]
    run_id = at.query_params["run"]
    run_id = run_id[0] if isinstance(run_id, list) else run_id
    row = bench.default.runner.wait([run_id])[0]
    at.run()
    assert not at.exception
    return row


@pytest.mark.parametrize("page", ["pages/compose.py", "pages/compare.py", "pages/history.py"])
def test_every_page_renders(page):
    at = start()
    at.switch_page(page)
    at.run()
    assert not at.exception and at.title


def test_the_sidebar_says_it_is_the_offline_emulator():
    at = start()
    assert "Offline emulator: preview images, not FLUX" in [i.value for i in at.sidebar.info]


def test_a_prompt_becomes_an_image_with_its_recipe():
    at = generate(start(), "a red cube")
    row = finish_current(at)
    assert row.status == store.COMPLETED
    assert any(s.value.startswith("Done · You waited ") for s in at.success)
    assert len(at.image) >= 1
    recipe = at.json[0].value
    assert '"prompt": "a red cube"' in recipe and row.request_id in recipe
    assert [d.proto.label for d in at.get("download_button")] == ["Download image"]


def test_a_moderation_block_shows_as_a_block_not_an_image():
    at = start()
    at.slider(key="compose_tolerance").set_value(0)
    at = generate(at, "a bloody sword")
    row = finish_current(at)
    assert row.status == store.BLOCKED
    assert [w.value for w in at.warning] == ["Blocked by the safety filter at tolerance 0"]
    assert len(at.image) == 0  # (no thumbnails yet either: the only run was blocked)
    assert "higher safety tolerance is more permissive" in texts(at)


def test_a_validation_error_names_the_field_and_sends_nothing():
    at = start()
    at.number_input(key="compose_width").set_value(1000)
    at = generate(at, "a red cube")
    assert "width must be a multiple of 16: try 992 or 1008" in texts(at)
    assert [e.value for e in at.error] == ["Nothing was sent. Fix these first:"]
    bench = at.session_state["workbench"]
    assert bench.recent() == [] and "run" not in at.query_params


def test_a_blank_prompt_is_refused():
    at = generate(start(), "   ")
    assert "prompt is required and must not be blank" in texts(at)


def test_a_double_click_submits_once():
    at = start()
    at.text_area(key="prompt").set_value("a red cube")
    at.button(key="compose_generate").click()
    at.run()
    at.button(key="compose_generate").click()
    at.run()
    finish_current(at)
    assert len(at.session_state["workbench"].recent()) == 1


def test_the_magazine_template_fills_the_prompt():
    at = start()
    at.selectbox(key="compose_template").set_value("Magazine shoot (structured)")
    at.run()
    assert at.text_area(key="prompt").value == MAGAZINE_SHOOT


def test_a_fixed_seed_and_size_are_sent_as_chosen():
    at = start()
    at.selectbox(key="compose_aspect").set_value("16:9 wide")
    at.run()
    assert (at.number_input(key="compose_width").value, at.number_input(key="compose_height").value) == (
        1344,
        768,
    )
    at.checkbox(key="compose_seed_random").uncheck()
    at.run()
    at.number_input(key="compose_seed").set_value(42)
    at = generate(at, "a red cube")
    row = finish_current(at)
    assert (row.seed, row.seed_random, row.width, row.height) == (42, 0, 1344, 768)


def test_edit_and_rerun_loads_the_recipe_and_vary_seed_runs_again():
    at = start()
    at.checkbox(key="compose_seed_random").uncheck()
    at.run()
    at.number_input(key="compose_seed").set_value(7)
    at.slider(key="compose_tolerance").set_value(5)
    at = generate(at, "a green tree")
    first = finish_current(at)
    at.text_area(key="prompt").set_value("something else")
    at.slider(key="compose_tolerance").set_value(1)
    at.button(key="compose_edit").click()
    at.run()
    assert at.text_area(key="prompt").value == "a green tree"
    assert at.slider(key="compose_tolerance").value == 5 and at.number_input(key="compose_seed").value == 7
    at.button(key="compose_vary").click()
    at.run()
    second = finish_current(at)
    assert second.id != first.id and second.prompt == "a green tree" and second.seed_random == 1


def test_favourite_and_note_are_kept_in_the_ledger():
    at = generate(start(), "a red cube")
    row = finish_current(at)
    at.button(key="compose_favourite").click()
    at.run()
    at.text_area(key=f"compose_note_{row.id}").set_value("<b>keep</b> this")
    at.button(key="compose_save_note").click()
    at.run()
    saved = at.session_state["workbench"].run(row.id)
    assert saved.favourite == 1 and saved.notes == "<b>keep</b> this"


def test_recent_runs_reopen_a_run_with_its_recipe():
    at = generate(start(), "a red cube")
    first = finish_current(at)
    at = generate(at, "a blue ball")
    finish_current(at)
    recent = cards(at, "compose_recent_cards")
    assert [c["id"] for c in recent][1] == first.id and "seed" in recent[1]["caption"]
    click_in_gallery(at, "open", first.id, "compose_recent_cards")
    assert at.query_params["run"] in (first.id, [first.id])
    assert at.text_area(key="prompt").value == "a red cube"


def test_a_session_key_is_shown_only_by_its_last_four_characters(emulator, monkeypatch):
    monkeypatch.setenv("SEGMIND_BASE_URL", emulator().url)
    # (AppTest in Streamlit 1.67 drops the sidebar of reruns under st.navigation, so the key is
    # put in the session before the first run rather than typed into the widget.)
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["sidebar_api_key"] = "SG_abcdef0123456789"
    at.run()
    assert not at.exception
    shown = " ".join(s.value for s in at.sidebar.success)
    assert "…6789" in shown and "abcdef0123" not in shown
    assert shown == "Segmind · key …6789 · verified"  # the credits call succeeded with it


def test_a_rejected_session_key_says_so_and_what_to_do(emulator, monkeypatch):
    monkeypatch.setenv("SEGMIND_BASE_URL", emulator(keys=("SG_valid0000000000",)).url)
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["sidebar_api_key"] = "SG_wrongwrong5678"
    at.run()
    assert not at.exception
    assert at.sidebar.success.len == 0  # must not happen: a refused key shown as if it were fine
    [error] = [e.value for e in at.sidebar.error]
    assert error == (
        "Segmind rejected the key …5678 (HTTP 401). Correct it in the field above, or empty the field "
        "to use the offline emulator."
    )


def test_a_key_nobody_could_check_yet_is_called_unchecked(monkeypatch):
    monkeypatch.setenv("SEGMIND_BASE_URL", "http://127.0.0.1:9")  # nothing listens: no answer
    monkeypatch.setenv("SEGMIND_RPM", "0")
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["sidebar_api_key"] = "SG_abcdef0123455678"
    at.run()
    assert not at.exception
    assert [w.value for w in at.sidebar.warning] == [
        "Segmind · key …5678 · not checked yet: it is verified when a call with it succeeds."
    ]


def unknown_run(at: AppTest) -> str:
    """A run whose submit may have reached Segmind (the connection broke after the body was sent)."""

    bench = at.session_state["workbench"]
    return bench.ledger.record_run(
        FluxParams.parse(prompt="a paid-for lighthouse", seed=9),
        store.SUBMIT_UNKNOWN,
        backend="emulator",
        base_url=bench.default.connection.base_url,
        error="The connection broke after the request was sent.",
    )


def test_an_unknown_submit_is_sent_again_only_when_the_user_has_checked():
    at = start()
    run_id = unknown_run(at)
    at.query_params["run"] = run_id
    at.run()
    bench = at.session_state["workbench"]
    assert "Submit outcome unknown" in texts(at) and "Check Segmind's console" in texts(at)
    assert at.button(key="compose_resubmit").disabled
    at.checkbox(key=f"compose_checked_{run_id}").check()
    at.run()
    at.button(key="compose_resubmit").click()
    at.run()
    newest, original = bench.recent()[0], bench.run(run_id)
    assert newest.id != run_id and newest.request == original.request
    assert original.status == store.SUBMIT_UNKNOWN  # the unknown one stays on the record
    assert finish_current(at).status == store.COMPLETED


def test_a_damaged_ledger_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    data = tmp_path / "damaged"
    data.mkdir()
    (data / "ledger.db").write_bytes(b"not a database at all " * 200)
    monkeypatch.setenv("FLUX_LAB_DATA", str(data))
    store.Ledger._migrated.clear()
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    assert "Flux Lab cannot open its ledger" in texts(at)
    assert "is damaged" in texts(at) and "Move the file aside" in texts(at)


def png_bytes(size: tuple[int, int] = (32, 32), colour: str = "orange") -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def test_a_server_path_or_plain_text_as_an_image_url_is_refused_and_nothing_is_opened(tmp_path):
    secret = tmp_path / "ref.png"
    secret.write_bytes(png_bytes())
    at = start()
    at.text_area(key="compose_ref_urls").set_value(f"{secret}\na red cube\nhttps://example.com/ok.png")
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert f"image URL 1 must be an http:// or https:// URL (got '{secret}')" in errors
    assert "image URL 2 must be an http:// or https:// URL (got 'a red cube')" in errors
    assert [i.proto.imgs[0].url for i in at.image] == [
        "https://example.com/ok.png"
    ]  # the server path: no preview
    at = generate(at, "a red cube")
    assert "Nothing was sent. Fix these first:" in [e.value for e in at.error]
    assert at.session_state["workbench"].recent() == []


def test_a_file_that_is_not_an_image_gets_a_message_not_a_traceback():
    at = start()
    at.file_uploader(key="compose_ref_files").upload("notanimage.png", b"just some text", "image/png")
    at.run()
    assert not at.exception
    assert any(e.value.startswith("notanimage.png is not a readable image") for e in at.error)
    assert len(at.image) == 0
    at = generate(at, "a red cube")
    assert "Nothing was sent. Fix these first:" in [e.value for e in at.error]
    assert at.session_state["workbench"].recent() == []


def test_an_oversized_reference_is_refused_naming_the_limit_and_nothing_is_billed():
    from flux_core.media.images import MAX_REFERENCE_BYTES

    at = start()
    big = png_bytes() + b"\0" * MAX_REFERENCE_BYTES  # a real PNG header, too many bytes
    at.file_uploader(key="compose_ref_files").upload("huge.png", big, "image/png")
    at.run()
    assert f"the limit is {MAX_REFERENCE_BYTES // 2**20} MB" in " ".join(e.value for e in at.error)
    at = generate(at, "a red cube")
    assert "Nothing was sent. Fix these first:" in [e.value for e in at.error]
    assert at.session_state["workbench"].recent() == []


def test_a_good_reference_file_is_previewed_and_sent():
    at = start()
    at.file_uploader(key="compose_ref_files").upload("ref.png", png_bytes(), "image/png")
    at.run()
    assert len(at.image) == 1 and not at.error
    row = finish_current(generate(at, "a cat"))
    assert row.status == store.COMPLETED and len(row.params.image_urls) == 1


def test_the_aspect_ratio_says_what_the_size_is():
    at = start()
    assert at.selectbox(key="compose_aspect").value == "1:1 square"
    at.number_input(key="compose_width").set_value(768)
    at.run()
    assert at.selectbox(key="compose_aspect").value == "Custom"
    at.number_input(key="compose_height").set_value(1344)
    at.run()
    assert at.selectbox(key="compose_aspect").value == "9:16 tall"


def test_the_whole_draft_survives_a_trip_to_history():
    at = start()
    at.text_area(key="prompt").set_value("a draft not yet generated")
    at.number_input(key="compose_width").set_value(768)
    at.checkbox(key="compose_seed_random").uncheck()
    at.run()
    at.number_input(key="compose_seed").set_value(1234)
    at.radio(key="compose_format").set_value("jpeg")
    at.slider(key="compose_tolerance").set_value(5)
    at.text_area(key="compose_ref_urls").set_value("https://example.com/a.png")
    at.run()
    at.switch_page("pages/history.py")
    at.run()
    at.switch_page("pages/compose.py")
    at.run()
    assert not at.exception
    assert at.text_area(key="prompt").value == "a draft not yet generated"
    assert (at.number_input(key="compose_width").value, at.number_input(key="compose_seed").value) == (
        768,
        1234,
    )
    assert at.radio(key="compose_format").value == "jpeg" and at.slider(key="compose_tolerance").value == 5
    assert at.checkbox(key="compose_seed_random").value is False
    assert at.text_area(key="compose_ref_urls").value == "https://example.com/a.png"


def test_a_reload_brings_back_the_whole_draft_from_the_url():
    """Every field of the draft is bound to the URL (the browser journey checks the URL is written)."""
    at = AppTest.from_file(APP, default_timeout=30)
    for key, value in {
        "prompt": "a draft not yet generated",
        "compose_width": "768",
        "compose_height": "1024",
        "compose_seed": "1234",
        "compose_seed_random": "false",
        "compose_format": "jpeg",
        "compose_tolerance": "5",
        "compose_ref_urls": "https://example.com/a.png",
    }.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    assert at.text_area(key="prompt").value == "a draft not yet generated"
    assert (at.number_input(key="compose_width").value, at.number_input(key="compose_seed").value) == (
        768,
        1234,
    )
    assert at.checkbox(key="compose_seed_random").value is False
    assert at.radio(key="compose_format").value == "jpeg" and at.slider(key="compose_tolerance").value == 5
    assert at.text_area(key="compose_ref_urls").value == "https://example.com/a.png"
    assert at.selectbox(key="compose_aspect").value == "Custom"  # 768 x 1024 is no preset


def test_a_failed_call_gives_a_browser_user_advice_for_the_app():
    from flux_core.errors import NetworkError

    at = start()
    bench = at.session_state["workbench"]
    failure = NetworkError("Could not reach the server after 8 attempts.")
    run_id = bench.ledger.record_run(
        FluxParams.parse(prompt="a lighthouse", seed=9),
        store.ERROR,
        backend="emulator",
        base_url=bench.default.connection.base_url,
        error=failure.user_text(),
        error_kind=failure.kind,
    )
    at.query_params["run"] = run_id
    at.run()
    shown = texts(at)
    assert "Could not reach the server after 8 attempts." in shown
    assert "SEGMIND_BASE_URL" not in shown and "try again in a minute" in shown


def test_a_prompt_over_the_limit_is_refused_naming_the_field():
    at = generate(start(), "x" * 10_001)
    assert "prompt must be at most 10,000 characters (got 10,001)" in texts(at)
    assert at.session_state["workbench"].recent() == []


def test_an_error_in_a_page_is_a_short_message_and_a_logged_traceback(monkeypatch, tmp_path):
    from flux_core.service import Workbench

    def broken(self, *args, **kwargs):
        raise ZeroDivisionError("a bug in a page")

    monkeypatch.setattr(Workbench, "recent", broken)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    [message] = [e.value for e in at.error]
    assert message.startswith("Something went wrong on this page (incident ")
    assert "Reload the page" in message and "ZeroDivisionError" not in message
    log_file = at.session_state["workbench"].data_dir / "logs" / "flux-lab.log"
    import logging

    for handler in logging.getLogger("flux_lab").handlers:
        handler.flush()
    text = log_file.read_text()
    assert "Traceback" in text and "ZeroDivisionError: a bug in a page" in text


def test_streamlit_shows_visitors_no_error_details():
    import tomllib

    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"


def test_a_run_being_settled_says_what_segmind_s_record_shows_so_far():
    at = start()
    bench = at.session_state["workbench"]
    words = "Looking in Segmind's request history: no such request yet (2 look(s) so far)."
    run_id = bench.ledger.record_run(
        FluxParams.parse(prompt="a red cube", seed=5),
        store.SETTLING,
        backend="emulator",
        base_url=bench.default.connection.base_url,
        lease="another-host:1:live",  # another host drives it: this page only shows it
        settlement=words,
    )
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception
    shown = texts(at)
    assert "Reply lost; checking Segmind's record" in shown and words in shown
