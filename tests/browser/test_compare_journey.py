"""A team at the Compare page: 3 seeds × 2 tolerances × 2 prompt variants, the lower tolerance
blocked by moderation; every cell at once, a lightbox stepped through with the keys."""

from __future__ import annotations

import json
import re

from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import shoot


def test_a_three_axis_sweep_shows_every_cell_and_steps_through_them_in_a_lightbox(
    app_server, page, artifacts
):
    server = app_server(latency=0.5)
    page.goto(f"{server.url}/compare")
    expect(page.get_by_text("Plan a sweep")).to_be_visible()
    page.get_by_label("Base prompt").fill("a bloody zombie in the fog")
    page.get_by_label("Base prompt").press("Tab")
    expect(page.get_by_text("6 cells (3 seeds × 2 safety tolerances)")).to_be_visible()
    axes = page.get_by_test_id("stMultiSelect").filter(has_text="Axes (up to 3)")
    axes.locator("input").click()
    page.get_by_role("option", name="Prompt", exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_text("Whole prompts").click()
    prompts = page.get_by_label("Prompts, separated by a line of ---")
    prompts.fill("a bloody zombie in the fog\n---\na bloody vampire in the fog")
    prompts.press("Tab")
    # the variants are named by the words that differ, and every full prompt is shown before it runs
    expect(page.get_by_text("zombie: a bloody zombie in the fog")).to_be_visible()
    expect(page.get_by_text("vampire: a bloody vampire in the fog")).to_be_visible()
    expect(page.get_by_text("12 cells (3 seeds × 2 safety tolerances × 2 prompts)")).to_be_visible()
    shoot(page, artifacts, "1-plan")

    page.get_by_role("button", name="Run sweep").click()
    expect(page.get_by_text("6 done · 6 blocked · 0 failed · 0 pending")).to_be_visible()
    # the page is drawn once more when the sweep ends (the safety matrix comes with it): scrolled
    # before that redraw, the grid could be moved back down
    expect(page.get_by_role("heading", name="Safety matrix")).to_be_visible()
    cells = page.get_by_test_id("fl-cell")
    expect(cells).to_have_count(12)  # every slice at once: nothing behind a radio
    for n in range(12):
        expect(cells.nth(n)).to_be_visible()
    expect(page.get_by_role("radio", name="zombie")).to_have_count(0)  # no slice behind a radio
    # at 1400x900, with the grid scrolled to the top of the window, all 12 are on the screen at once
    page.set_viewport_size({"width": 1400, "height": 900})
    page.get_by_test_id("fl-sweep").evaluate("el => el.scrollIntoView({ block: 'start' })")
    for n in range(12):
        expect(cells.nth(n)).to_be_in_viewport(ratio=1)
    shoot(page, artifacts, "2-grid-in-view")
    # the README's picture: at 1400x900 the axes' places, the progress and the whole grid at once
    page.get_by_test_id("stSelectbox").filter(has_text="Rows").evaluate(
        "el => el.scrollIntoView({ block: 'start' })"
    )
    shoot(page, artifacts, "2-grid-with-its-controls", docs_name="compare.png")
    page.set_viewport_size({"width": 1400, "height": 1300})
    expect(page.get_by_role("heading", name="Prompt: zombie")).to_be_visible()
    expect(page.get_by_role("heading", name="Prompt: vampire")).to_be_visible()
    expect(page.get_by_text("Blocked at tolerance 2", exact=True)).to_have_count(6)
    expect(cells.locator("img")).to_have_count(6)  # the passed cells' thumbnails
    shoot(page, artifacts, "2-grid")

    # the lightbox opens in place and steps across columns, rows and on into the next slice
    cells.first.click()
    box = page.get_by_test_id("fl-lightbox")
    label = page.get_by_test_id("fl-lightbox-label")
    expect(box).to_be_visible()
    expect(label).to_have_text("seed 1 · tolerance 2 · zombie")
    seen = [label.inner_text()]
    for key in ("ArrowRight", "ArrowDown", "ArrowDown", "ArrowDown", "ArrowLeft", "ArrowUp"):
        page.keyboard.press(key)
        expect(label).not_to_have_text(seen[-1])
        seen.append(label.inner_text())
    assert seen[1:] == [
        "seed 1 · tolerance 4 · zombie",
        "seed 2 · tolerance 4 · zombie",
        "seed 3 · tolerance 4 · zombie",
        "seed 1 · tolerance 4 · vampire",  # past the last row: the next slice
        "seed 1 · tolerance 2 · vampire",
        "seed 3 · tolerance 2 · zombie",
    ]
    expect(box.get_by_role("img")).to_have_count(0)  # a blocked cell: its reason, never a picture
    expect(box.get_by_text("Blocked at tolerance 2", exact=True)).to_be_visible()
    shoot(page, artifacts, "3-lightbox")
    for _ in range(6):  # Tab goes round the lightbox's buttons, never out to the page beneath
        page.keyboard.press("Tab")
        assert box.evaluate("b => b.contains(b.getRootNode().activeElement)")
    page.keyboard.press("Shift+Tab")
    assert box.evaluate("b => b.contains(b.getRootNode().activeElement)")
    page.keyboard.press("Escape")
    expect(box).to_be_hidden()
    # an action reaches the ledger and the lightbox stays open on its cell
    cells.nth(1).click()
    expect(label).to_have_text("seed 1 · tolerance 4 · zombie")
    box.get_by_role("button", name="☆ Favourite").click()
    expect(box.get_by_role("button", name="★ Favourite")).to_be_visible()
    expect(label).to_have_text("seed 1 · tolerance 4 · zombie")
    expect(box.get_by_role("link", name="Download")).to_have_attribute("href", re.compile(r"_flux/images/"))
    page.keyboard.press("Escape")
    expect(box).to_be_hidden()

    # A/B in the browser: the difference view reads both pictures (same-origin image URLs)
    # the wipe moves in the browser, and its line stands exactly at the split of the picture
    stage = page.get_by_test_id("fl-ab-stage")
    stage.scroll_into_view_if_needed()
    stage.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    expect(stage).to_have_attribute("aria-valuenow", "60")
    box, line = stage.bounding_box(), page.get_by_test_id("fl-ab-line").bounding_box()
    assert abs(line["x"] + line["width"] / 2 - (box["x"] + 0.6 * box["width"])) < 1.5
    shoot(page, artifacts, "4-ab-wipe")
    page.get_by_test_id("fl-ab").get_by_role("button", name="Difference").click()
    expect(page.get_by_text("% of pixels differ")).to_be_visible()
    shoot(page, artifacts, "5-ab-difference")

    with page.expect_download() as download:
        page.get_by_role("button", name="Contact sheet (PNG)").click()
    sheet = artifacts / "contact-sheet.png"
    download.value.save_as(sheet)
    with Image.open(sheet) as im:
        assert im.format == "PNG"
        # 3 rows (seeds) and 2 columns (tolerances) of 256 px cells, twice (the prompts), plus labels
        assert 2 * 256 < im.width < 3 * 256 and 6 * 256 < im.height < 8 * 256

    # on a phone the grid scrolls sideways inside itself; its headers stay readable
    page.set_viewport_size({"width": 390, "height": 844})
    header = page.get_by_test_id("fl-colhead").first
    header.scroll_into_view_if_needed()
    expect(header).to_be_in_viewport()
    expect(page.get_by_test_id("fl-rowhead").first).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing pushes the page wide
    shoot(page, artifacts, "6-phone-grid")


def test_a_sweep_survives_a_refresh_and_a_server_restart(app_server, page, data_dir, artifacts):
    server = app_server(latency=5.0)
    page.goto(f"{server.url}/compare")
    page.get_by_label("Base prompt").fill("a quiet harbour at dawn")
    page.get_by_label("Base prompt").press("Tab")
    expect(page.get_by_text("6 cells (3 seeds × 2 safety tolerances)")).to_be_visible()
    page.get_by_role("button", name="Run sweep").click()
    expect(page.get_by_text("6 pending")).to_be_visible()
    page.reload()
    expect(page.get_by_text("3 seeds × 2 safety tolerances (6 cells)")).to_be_visible()
    shoot(page, artifacts, "1-in-flight-after-refresh")

    server.kill()
    server.start()
    page.reload()
    expect(page.get_by_text("6 done · 0 blocked · 0 failed · 0 pending")).to_be_visible()
    shoot(page, artifacts, "2-finished-after-restart")
    state = json.loads((data_dir / "emulator-state.json").read_text())
    assert len(state["jobs"]) == 6  # must not happen: a cell submitted twice
