"""A person at the History page in a real browser: a narrow phone screen, Back after a re-run, and
text from links and prompts that must stay text."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from flux_core import defaults as D

from tests.browser.conftest import shoot
from tests.browser.test_history_journey import seed_ledger


def test_back_after_rerun_identically_restores_the_filtered_history(
    app_server, page, data_dir, artifacts, monkeypatch
):
    # the one journey with the app's background checks on: their landing redraws Compose (below)
    monkeypatch.setenv(D.CHECKS_ENV, "1")
    seed_ledger(data_dir)
    server = app_server()
    page.goto(f"{server.url}/history")
    expect(page.get_by_text("3 run(s) · showing 1–3")).to_be_visible()
    search = page.get_by_label("Search prompts, notes and tags")
    search.fill("cube")
    search.press("Enter")
    expect(page.get_by_text("2 run(s) · showing 1–2")).to_be_visible()
    page.get_by_text("Filters", exact=True).click()
    seed = page.get_by_label("Seed", exact=True)
    seed.fill("2")
    seed.press("Enter")
    expect(page.get_by_text("1 run(s) · showing 1–1")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]h_seed=2(&|$)"))
    page.get_by_test_id("fl-card").first.get_by_role("button", name="Open").click()
    page.get_by_role("button", name="Re-run identically").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a blue cube")
    expect(page).to_have_url(re.compile(r"/\?run="))
    # Back once the re-run has landed and its checks are drawn: each of those redraws Compose,
    # and a redraw still on its way when Back is pressed takes the page back to Compose
    expect(page.get_by_text("Done · You waited")).to_be_visible()
    expect(page.get_by_text("Checking the image…")).to_have_count(0)

    page.go_back()  # the same filters, now matching the re-run as well
    expect(page.get_by_text("2 run(s) · showing 1–2")).to_be_visible()
    expect(page.get_by_label("Search prompts, notes and tags")).to_have_value("cube")
    expect(page.get_by_label("Seed", exact=True)).to_have_value("2")
    expect(page).to_have_url(re.compile(r"/history\?.*h_seed=2"))
    shoot(page, artifacts, "1-back-to-the-filtered-history")
    # must not happen: Back landing on the unfiltered History
    assert page.get_by_text("4 run(s) · showing 1–4").count() == 0


def test_on_a_phone_the_gallery_reflows_and_select_never_overlaps_open(app_server, page, data_dir, artifacts):
    seed_ledger(data_dir)
    page.set_viewport_size({"width": 390, "height": 844})
    server = app_server()
    page.goto(f"{server.url}/history")
    cards = page.get_by_test_id("fl-card")
    expect(cards).to_have_count(3)
    shoot(page, artifacts, "1-phone")
    tops = set()
    for i in range(3):
        card = cards.nth(i)
        select = card.locator("label").bounding_box()
        open_ = card.get_by_role("button", name="Open").bounding_box()
        # must not happen: the Select label and the Open button on top of each other
        assert select["x"] + select["width"] <= open_["x"] or open_["x"] + open_["width"] <= select["x"]
        tops.add(round(card.bounding_box()["y"]))
    assert len(tops) >= 2  # fewer cards a row: three cards take more than one row


PAYLOADS = ["**bold**", "![s](http://host/x)", "<img src=x>", "http://auto.link"]


def no_markup_from_the_payloads(page) -> None:
    assert page.locator('img[src*="host/x"], img[src="x"]').count() == 0
    assert page.locator('a[href*="host/x"], a[href*="auto.link"]').count() == 0
    assert page.locator("strong", has_text="bold").count() == 0


def test_text_from_a_link_or_a_prompt_never_becomes_markup(app_server, page, data_dir, artifacts):
    from flux_core.emulator.server import EmulatorConfig, EmulatorServer
    from flux_core.params import FluxParams
    from flux_core.runner import Runner
    from flux_core.ledger.store import Ledger
    from tests.conftest import client_for

    with EmulatorServer(EmulatorConfig(latency_s=0.1, latency_spread_s=0, queue_s=0)) as emulator:
        runner = Runner(Ledger(data_dir / "ledger.db"), data_dir, client_for(emulator), backend="emulator")
        runner.wait(
            [
                runner.enqueue(FluxParams.parse(prompt=f"a cat {' '.join(PAYLOADS)}", seed=1)),
                runner.enqueue(FluxParams.parse(prompt="a dog", seed=2)),
            ]
        )
        runner.shutdown()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    server = app_server()
    page.goto(f"{server.url}/history?h_seed=![s](http://host/x)")
    expect(page.get_by_text("Seed must be a whole number. The Seed filter holds:")).to_be_visible()
    expect(page.get_by_text("![s](http://host/x)", exact=True)).to_be_visible()
    shoot(page, artifacts, "1-seed-from-a-link")
    no_markup_from_the_payloads(page)

    page.goto(f"{server.url}/history")
    cards = page.get_by_test_id("fl-card")
    expect(cards).to_have_count(2)
    cards.nth(0).get_by_label("Select").check()
    expect(page.get_by_text("Selected: 1 run(s)")).to_be_visible()
    cards.nth(1).get_by_label("Select").check()
    table = page.get_by_test_id("stTable").first
    prompt_row = table.locator("tr", has=page.locator("td", has_text="prompt")).first
    expect(prompt_row).to_be_visible()
    shown = prompt_row.evaluate("tr => tr.innerText.replaceAll('\\u2060', '')")
    assert f"a cat {' '.join(PAYLOADS)}" in shown  # exactly the prompt, as text
    table.scroll_into_view_if_needed()
    shoot(page, artifacts, "2-comparison")
    no_markup_from_the_payloads(page)
    assert dialogs == []
