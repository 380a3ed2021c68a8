"""A person at the Compose page, in a real browser, with no key (the embedded emulator)."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from flux_core.ledger import store
from flux_core.ledger.store import Ledger
from tests.browser.conftest import IDLE, shoot


def runs(data_dir) -> list[dict]:
    return Ledger(data_dir / "ledger.db").search(None, limit=100)


def generate(page, prompt: str) -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate").click()


def rect(locator) -> dict:
    return locator.evaluate(
        "e => { const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, left: r.left, right: r.right} }"
    )


def scrolled(page) -> float:
    """How far the page was scrolled: the window, and Streamlit's own scroll container."""
    return page.evaluate(
        "() => window.scrollY + [...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppScrollToBottomContainer]')]"
        ".reduce((sum, e) => sum + e.scrollTop, 0)"
    )


def test_type_generate_see_the_image_reload_still_there(app_server, page, data_dir, artifacts):
    page.set_viewport_size({"width": 1400, "height": 900})  # a laptop: the result beside the form
    server = app_server()
    page.goto(server.url)
    expect(page.get_by_text("Offline emulator: preview images, not FLUX")).to_be_visible()
    shoot(page, artifacts, "1-open")
    generate(page, "a red cube on a blue ball near a green mountain")
    expect(page.get_by_text("Done · You waited")).to_be_visible()
    image = page.locator(".st-key-compose_main_image img")
    expect(image).to_be_visible()
    expect(page.get_by_role("button", name="Download image")).to_be_visible()
    shoot(page, artifacts, "2-result", docs_name="compose.png")
    # must not happen: the image below the fold, or a scroll to reach it
    box = rect(image)
    assert scrolled(page) == 0
    assert 0 <= box["top"] < box["bottom"] <= 900 and 0 <= box["left"] < box["right"] <= 1400, box

    page.reload()
    expect(page.get_by_text("Done · You waited")).to_be_visible()
    expect(page.get_by_test_id("stImage").first).to_be_visible()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(
        "a red cube on a blue ball near a green mountain"
    )
    shoot(page, artifacts, "3-after-reload")
    # must not happen: a reload submitting again
    assert [r.status for r in runs(data_dir)] == [store.COMPLETED]

    page.set_viewport_size({"width": 390, "height": 844})  # a phone: one column, the result after Generate
    expect(image).to_be_visible()
    generate_box = rect(page.get_by_role("button", name="Generate"))
    width_box = rect(page.get_by_label("Width"))
    assert generate_box["bottom"] <= rect(image)["top"] < width_box["top"]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # nothing cut off sideways
    assert rect(page.get_by_role("heading", name="Compose"))["right"] <= 390
    shoot(page, artifacts, "4-phone")


def test_a_prompt_with_markup_is_shown_as_text_and_runs_no_script(app_server, page, data_dir, artifacts):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    server = app_server()
    page.goto(server.url)
    hostile = "<img src=x onerror=alert(1)> a red cube"
    # the shortcut belongs to the Generate button: pressed before the page has drawn it (a fast server
    # streams the prompt first), it would find nothing to press
    expect(page.get_by_role("button", name="Generate")).to_be_visible()
    expect(page.locator(IDLE)).to_have_count(1)
    page.get_by_label("Prompt", exact=True).fill(hostile)
    page.get_by_label("Prompt", exact=True).press("Control+Enter")  # the keyboard shortcut submits, too
    expect(page.get_by_text("Done · You waited")).to_be_visible()
    expect(page.get_by_test_id("stJson").get_by_text(hostile, exact=False)).to_be_visible()
    shoot(page, artifacts, "1-markup-as-text")
    assert page.locator('img[src="x"]').count() == 0
    assert dialogs == []  # must not happen: the prompt's markup running


def test_restarting_the_server_mid_run_loses_nothing(app_server, page, data_dir, artifacts):
    server = app_server(latency=6.0)
    page.goto(server.url)
    generate(page, "a slow purple pyramid")
    expect(page.get_by_text("so far (since Generate) · request ")).to_be_visible()  # submitted, not finished
    shoot(page, artifacts, "1-in-flight")
    [run] = runs(data_dir)
    assert run.request_id  # submitted before the crash

    server.kill()  # a crash, not a clean shutdown
    server.start()
    page.reload()
    expect(page.get_by_text("Done · You waited")).to_be_visible()
    expect(page.get_by_test_id("stImage").first).to_be_visible()
    shoot(page, artifacts, "2-finished-after-restart")
    [after] = runs(data_dir)
    assert after.id == run.id and after.status == store.COMPLETED
    state = json.loads((data_dir / "emulator-state.json").read_text())
    assert len(state["jobs"]) == 1  # must not happen: the run submitted a second time
