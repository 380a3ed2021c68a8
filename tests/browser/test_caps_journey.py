"""A person at Compose, in a real browser, with a team's daily spend cap (the embedded emulator)."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from flux_core import defaults as D
from flux_core.ledger import store
from flux_core.ledger.store import Ledger
from tests.browser.conftest import shoot
from tests.browser.test_compose_journeys import generate


def test_a_cap_blocks_the_next_generate_with_its_message(app_server, page, data_dir, artifacts, monkeypatch):
    monkeypatch.setenv(D.CAP_TEAM_DAY_ENV, "0.10")  # the emulator's image costs $0.07: one fits
    server = app_server()
    emulator_stats = f"http://127.0.0.1:{server.env['FLUX_LAB_EMULATOR_PORT']}/_emulator/stats"
    page.goto(server.url)
    expect(page.get_by_text("Spend today: $0.00 of $0.10 (team)")).to_be_visible()
    generate(page, "a red cube")
    expect(page.get_by_text("Done · You waited")).to_be_visible()
    # the form's line (Compose's "Check reproducibility" under the result says the same standing)
    expect(page.get_by_text("Spend today: $0.07 of $0.10 (team)").first).to_be_visible()
    generate(page, "a blue cube")
    refusal = page.get_by_text("This run (about $0.07) would go past the team's daily cap of $0.10")
    expect(refusal).to_be_visible()
    expect(page.get_by_text("$0.07 spent today, $0.03 left")).to_be_visible()
    expect(page.get_by_text("An admin can raise it: set FLUX_LAB_CAP_TEAM_DAY_USD")).to_be_visible()
    shoot(page, artifacts, "refused")
    # must not happen: the refused run reaching the emulator, or written to the ledger
    assert httpx.get(emulator_stats, timeout=5).json()["submit_requests"] == 1
    rows = Ledger(data_dir / "ledger.db").search(None, limit=10)
    assert [(r.prompt, r.status) for r in rows] == [("a red cube", store.COMPLETED)]

    # the admin raises the cap in the sidebar's panel (its fields drawn once it is opened)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_label("The team's daily cap (USD)", exact=True)).to_have_count(0)
    sidebar.get_by_text("Spend caps").click()
    field = sidebar.get_by_label("The team's daily cap (USD)", exact=True)
    expect(field).to_have_value("0.10")
    expect(sidebar.get_by_text("from FLUX_LAB_CAP_TEAM_DAY_USD")).to_be_visible()
    field.fill("1.00")
    field.press("Tab")
    sidebar.get_by_role("button", name="Save caps").click()
    expect(sidebar.get_by_text("Caps saved")).to_be_visible()
    expect(page.get_by_text("Spend today: $0.07 of $1.00 (team)").first).to_be_visible()
    page.get_by_role("button", name="Generate").click()
    # the blue cube's own picture in the session's cards (the red cube's "Done" line is still on
    # screen until the page draws the new run: it says nothing about this one)
    expect(page.get_by_role("img", name="a blue cube").first).to_be_visible()
    expect(page.get_by_text("Done · You waited")).to_be_visible()
    assert httpx.get(emulator_stats, timeout=5).json()["submit_requests"] == 2
