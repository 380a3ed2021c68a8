"""A person at the Compose page, in a real browser, with no key (the embedded emulator)."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from flux_core.ledger import store
from flux_core.ledger.store import Ledger
from tests.browser.conftest import shoot


def runs(data_dir) -> list[dict]:
    return Ledger(data_dir / "ledger.db").search(None, limit=100)


def generate(page, prompt: str) -> None:
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_role("button", name="Generate").click()


def test_type_generate_see_the_image_reload_still_there(app_server, page, data_dir, artifacts):
    server = app_server()
    page.goto(server.url)
    expect(page.get_by_text("Offline emulator: preview images, not FLUX")).to_be_visible()
    shoot(page, artifacts, "1-open")
    generate(page, "a red cube on a blue ball near a green mountain")
    expect(page.get_by_text("Done in")).to_be_visible()
    expect(page.get_by_test_id("stImage").first).to_be_visible()
    expect(page.get_by_role("button", name="Download image")).to_be_visible()
    shoot(page, artifacts, "2-result", docs_name="compose.png")

    page.reload()
    expect(page.get_by_text("Done in")).to_be_visible()
    expect(page.get_by_test_id("stImage").first).to_be_visible()
    expect(page.get_by_label("Prompt")).to_have_value("a red cube on a blue ball near a green mountain")
    shoot(page, artifacts, "3-after-reload")
    # must not happen: a reload submitting again
    assert [r.status for r in runs(data_dir)] == [store.COMPLETED]


def test_a_prompt_with_markup_is_shown_as_text_and_runs_no_script(app_server, page, data_dir, artifacts):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    server = app_server()
    page.goto(server.url)
    hostile = "<img src=x onerror=alert(1)> a red cube"
    page.get_by_label("Prompt").fill(hostile)
    page.get_by_label("Prompt").press("Control+Enter")  # the keyboard shortcut submits, too
    expect(page.get_by_text("Done in")).to_be_visible()
    expect(page.get_by_test_id("stJson").get_by_text(hostile, exact=False)).to_be_visible()
    shoot(page, artifacts, "1-markup-as-text")
    assert page.locator('img[src="x"]').count() == 0
    assert dialogs == []  # must not happen: the prompt's markup running


def test_restarting_the_server_mid_run_loses_nothing(app_server, page, data_dir, artifacts):
    server = app_server(latency=6.0)
    page.goto(server.url)
    generate(page, "a slow purple pyramid")
    expect(page.get_by_text("elapsed · request ")).to_be_visible()  # submitted, not finished
    shoot(page, artifacts, "1-in-flight")
    [run] = runs(data_dir)
    assert run.request_id  # submitted before the crash

    server.kill()  # a crash, not a clean shutdown
    server.start()
    page.reload()
    expect(page.get_by_text("Done in")).to_be_visible()
    expect(page.get_by_test_id("stImage").first).to_be_visible()
    shoot(page, artifacts, "2-finished-after-restart")
    [after] = runs(data_dir)
    assert after.id == run.id and after.status == store.COMPLETED
    state = json.loads((data_dir / "emulator-state.json").read_text())
    assert len(state["jobs"]) == 1  # must not happen: the run submitted a second time
