"""A team at the Compare page: 3 seeds × 2 tolerances, the lower tolerance blocked by moderation."""

from __future__ import annotations

import json

from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import shoot


def test_a_seed_by_tolerance_sweep_resolves_reads_and_exports(app_server, page, artifacts):
    server = app_server(latency=0.5)
    page.goto(f"{server.url}/compare")
    expect(page.get_by_text("Plan a sweep")).to_be_visible()
    page.get_by_label("Base prompt").fill("a bloody zombie in the fog")
    page.get_by_label("Base prompt").press("Tab")
    expect(page.get_by_text("6 cells (3 seeds × 2 safety tolerances)")).to_be_visible()
    # the tolerances axis: 1 (blocked for this prompt) and 4 (passes)
    tolerances = page.get_by_test_id("stMultiSelect").filter(has_text="Safety tolerances")
    tolerances.get_by_role("button", name="Remove 2").click()
    expect(page.get_by_text("3 cells (3 seeds × 1 safety tolerance)")).to_be_visible()
    tolerances.locator("input").click()
    page.get_by_role("option", name="1", exact=True).click()
    page.keyboard.press("Escape")
    expect(page.get_by_text("6 cells (3 seeds × 2 safety tolerances)")).to_be_visible()
    expect(page.get_by_text("estimated cost 0.42 credits")).to_be_visible()
    shoot(page, artifacts, "1-plan")

    page.get_by_role("button", name="Run sweep").click()
    expect(page.get_by_text("3 done · 3 blocked · 0 failed · 0 pending")).to_be_visible()
    expect(page.get_by_text("Blocked at tolerance 1")).to_have_count(3)
    expect(page.get_by_text("lowest tolerance that passed: 4")).to_be_visible()
    images = page.get_by_test_id("stImage")
    expect(images).to_have_count(3 + 2 + 1)  # the grid's thumbnails, A and B, and the overlay
    shoot(page, artifacts, "2-grid", docs_name="compare.png")

    page.get_by_text("A/B", exact=True).scroll_into_view_if_needed()
    expect(page.get_by_test_id("stDataFrame").last).to_be_visible()
    shoot(page, artifacts, "3-ab")

    with page.expect_download() as download:
        page.get_by_role("button", name="Contact sheet (PNG)").click()
    sheet = artifacts / "contact-sheet.png"
    download.value.save_as(sheet)
    with Image.open(sheet) as im:
        assert im.format == "PNG"
        # 3 rows (seeds) and 2 columns (tolerances) of 256 px cells, plus labels
        assert 2 * 256 < im.width < 3 * 256 and 3 * 256 < im.height < 4 * 256


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


def test_on_a_phone_the_grid_keeps_its_column_headers(app_server, page, artifacts):
    page.set_viewport_size({"width": 390, "height": 844})
    server = app_server(latency=0.2)
    page.goto(f"{server.url}/compare")
    page.get_by_label("Base prompt").fill("a quiet harbour at dawn")
    page.get_by_label("Base prompt").press("Tab")
    expect(page.get_by_text("6 cells (3 seeds × 2 safety tolerances)")).to_be_visible()
    page.get_by_role("button", name="Run sweep").click()
    expect(page.get_by_text("6 done · 0 blocked · 0 failed · 0 pending")).to_be_visible()
    expect(page.get_by_role("button", name="Contact sheet (PNG)")).to_be_visible()  # the finished page
    headers = [page.get_by_text(f"tolerance {t}", exact=True).first for t in (2, 4)]
    for header in headers:
        header.scroll_into_view_if_needed()
        expect(header).to_be_in_viewport()
    shoot(page, artifacts, "1-phone-grid")
    # the headers stand side by side above the images of their own columns (not stacked apart from them)
    left, right = (h.bounding_box() for h in headers)
    assert abs(left["y"] - right["y"]) < 4 and left["x"] + left["width"] <= right["x"]
    first_row = (
        page.get_by_test_id("stImage").nth(0).bounding_box(),
        page.get_by_test_id("stImage").nth(1).bounding_box(),
    )
    for header, image in zip((left, right), first_row):
        assert image["y"] > header["y"]
        assert image["x"] - 8 <= header["x"] <= image["x"] + image["width"]
