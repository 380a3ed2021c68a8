"""A person at the History page: find a run by a word typed in part, compare two side by side, put
them on a new board and pick it, read a note; and the page at a phone's width."""

from __future__ import annotations

from playwright.sync_api import expect

from flux_core.emulator.server import EmulatorConfig, EmulatorServer
from flux_core.params import FluxParams
from flux_core.runner import Runner
from flux_core.ledger import history
from flux_core.ledger.store import Ledger
from tests.browser.conftest import shoot
from tests.conftest import client_for

HOSTILE_NOTE = "<img src=x onerror=alert(1)> client loved it"
HOSTILE_PROMPT = "a green teapot <img src=x onerror=alert(2)>"


def seed_ledger(data_dir) -> list[str]:
    """Three finished runs in the ledger the app will open (made by the real runner and emulator)."""
    with EmulatorServer(EmulatorConfig(latency_s=0.1, latency_spread_s=0, queue_s=0)) as server:
        ledger = Ledger(data_dir / "ledger.db")
        runner = Runner(ledger, data_dir, client_for(server), backend="emulator")
        ids = [
            runner.enqueue(FluxParams.parse(prompt=p, seed=s, width=512, height=512))
            for p, s in [("a red cube", 1), ("a blue cube", 2), (HOSTILE_PROMPT, 3)]
        ]
        runner.wait(ids)
        runner.shutdown()
    history.curate(ledger, ids[0], actor="test", notes=HOSTILE_NOTE)
    return ids


def test_find_compare_and_read_notes_as_text(app_server, page, data_dir, artifacts):
    red, blue, _ = seed_ledger(data_dir)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    server = app_server()
    page.goto(f"{server.url}/history")
    expect(page.get_by_text("3 run(s) · showing 1–3")).to_be_visible()

    search = page.get_by_label("Search prompts, notes and tags")
    search.fill("teapo")  # a word typed in part finds the teapot
    search.press("Enter")
    expect(page.get_by_text("1 run(s) · showing 1–1")).to_be_visible()
    cards = page.get_by_test_id("fl-card")
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_attribute("title", HOSTILE_PROMPT)  # the prompt, as text
    expect(cards.first.locator(".fl-headline")).to_have_text(HOSTILE_PROMPT)  # the card leads with it
    shoot(page, artifacts, "1-search")
    search.fill("cub")  # a word typed in part finds the longer word
    search.press("Enter")
    expect(page.get_by_text("2 run(s) · showing 1–2")).to_be_visible()
    search.fill("cube")
    search.press("Enter")
    expect(page.get_by_text("2 run(s) · showing 1–2")).to_be_visible()

    expect(cards).to_have_count(2)
    cards.nth(0).get_by_label("Select").check()
    expect(page.get_by_text("Selected: 1 run(s)")).to_be_visible()
    cards.nth(1).get_by_label("Select").check()
    expect(page.get_by_text("Selected: 2 run(s)")).to_be_visible()
    expect(cards.nth(1)).to_have_attribute("data-selected", "true")
    page.get_by_role("button", name="See the 2 selected runs side by side").click()
    settings = page.get_by_test_id("stTable").first  # then the outcomes, apart
    expect(settings).to_be_in_viewport()
    seed_row = settings.locator("tr", has=page.locator("td", has_text="seed")).first
    expect(seed_row).to_be_visible()
    # the differing field's values stand out on a highlight; an equal field's do not
    expect(seed_row.locator("td").nth(3)).to_have_text("≠")
    marked = seed_row.locator("td").nth(1).locator(".stMarkdownColoredBackground")
    expect(marked).to_have_css("background-color", "rgb(255, 232, 163)")
    width_row = settings.locator("tr", has=page.locator("td", has_text="width")).first
    expect(width_row.locator("td").nth(1)).to_be_visible()
    expect(width_row.locator(".stMarkdownColoredBackground")).to_have_count(0)
    expect(page.get_by_role("button", name="Open in Compose")).to_have_count(2)
    shoot(page, artifacts, "2-side-by-side")

    # the two selected runs go on a new board, and picking the board shows exactly them
    board_box = page.locator(".st-key-h_bulk_board input")
    board_box.click()
    board_box.fill("Cubes")
    board_box.press("Enter")
    add = page.get_by_role("button", name="Add to board")
    expect(add).to_be_enabled()
    add.click()
    chip = page.get_by_role("radiogroup", name="Board").get_by_role("radio", name="Cubes")
    expect(chip).to_be_visible()
    search.fill("")
    search.press("Enter")
    expect(page.get_by_text("3 run(s) · showing 1–3")).to_be_visible()
    page.get_by_role("heading", name="History").evaluate("el => el.scrollIntoView({ block: 'start' })")
    shoot(page, artifacts, "3-board-made", docs_name="history.png")
    chip.click()
    expect(page.get_by_text("2 run(s) · showing 1–2")).to_be_visible()
    expect(cards).to_have_count(2)
    assert sorted(cards.evaluate_all("cards => cards.map(c => c.dataset.run)")) == sorted([red, blue])
    assert "h_board=Cubes" in page.url  # the board is in the link

    search.fill("red cube")
    search.press("Enter")
    expect(page.get_by_text("1 run(s) · showing 1–1")).to_be_visible()
    cards.first.get_by_role("button", name="Open").click()
    expect(page.get_by_text(HOSTILE_NOTE).first).to_be_visible()
    shoot(page, artifacts, "4-note-as-text")
    assert page.locator('img[src="x"]').count() == 0 and dialogs == []

    # a phone: two cards a row, nothing wider than the screen, the selection bar wrapped within it
    page.set_viewport_size({"width": 390, "height": 844})
    chip.click()  # the board off again
    search.fill("cube")
    search.press("Enter")
    expect(page.get_by_text("2 run(s) · showing 1–2")).to_be_visible()
    expect(cards).to_have_count(2)
    first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
    assert first and second and abs(first["y"] - second["y"]) < 2 and second["x"] + second["width"] <= 390
    for name in ("Clear selection", "Add to board", "Favourite"):  # the bar wraps: every button on the screen
        button = page.get_by_role("button", name=name)
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (name, box)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shoot(page, artifacts, "5-phone-bar")
    page.get_by_role("heading", name="History", level=1).scroll_into_view_if_needed()
    shoot(page, artifacts, "6-phone-top")


def test_a_saved_image_file_gives_back_its_recipe_in_compose(app_server, page, data_dir, artifacts):
    red, *_ = seed_ledger(data_dir)
    saved = data_dir / Ledger(data_dir / "ledger.db").get(red).image_path  # the file as downloaded
    server = app_server()
    page.goto(f"{server.url}/history")
    expect(page.get_by_text("3 run(s) · showing 1–3")).to_be_visible()
    expect(page.get_by_text("An image Flux Lab saved (PNG or JPEG)")).to_have_count(0)  # drawn once opened
    page.get_by_text("Recall a recipe from an image file").click()
    page.locator("input[type=file]").set_input_files(str(saved))
    expect(page.get_by_test_id("stJson")).to_contain_text("a red cube")
    shoot(page, artifacts, "1-recalled")
    page.get_by_role("button", name="Open in Compose").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a red cube")
    expect(page.get_by_role("heading", name="Compose")).to_be_visible()
