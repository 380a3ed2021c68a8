"""A person at History reads each run's checks on its card, as text, and sorts by the text score."""

from __future__ import annotations

from playwright.sync_api import expect

from flux_core import defaults as D
from flux_core.ledger import checks
from flux_core.ledger.store import Ledger
from tests.browser.conftest import shoot
from tests.browser.test_history_journey import seed_ledger

HOSTILE_WORD = "<img src=x onerror=alert(3)>"


def test_history_cards_show_the_check_lines_as_text_and_sort_by_text_score(
    app_server, page, data_dir, artifacts, monkeypatch
):
    monkeypatch.setenv(D.CHECKS_ENV, "0")  # the inserted results are the only ones
    red, blue, _ = seed_ledger(data_dir)
    ledger = Ledger(data_dir / "ledger.db")
    wrong = {
        "score": 0.5,
        "expected": ["SAME", HOSTILE_WORD],
        "found": ["SAME"],
        "misspelt": [HOSTILE_WORD],
        "missing": [],
        "read_as": {HOSTILE_WORD: "<b>img</b>"},
    }
    right = {
        "score": 1.0,
        "expected": ["SAME"],
        "found": ["SAME"],
        "misspelt": [],
        "missing": [],
        "read_as": {},
    }
    checks.save(ledger, red, checks.TEXT, 1, 1.0, right)
    checks.save(ledger, blue, checks.TEXT, 1, 0.5, wrong)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    server = app_server()
    page.goto(f"{server.url}/history?h_sort=text+score")
    cards = page.get_by_test_id("fl-card")
    expect(cards).to_have_count(2)
    expect(cards.nth(0).locator(".fl-check")).to_have_text("text 1/1 right")
    line = f"text 1/2 right: {HOSTILE_WORD!r} misspelt (read '<b>img</b>')"
    expect(cards.nth(1).locator(".fl-check")).to_have_text(line)  # the words, never markup
    expect(cards.nth(1).locator("img[src=x], b")).to_have_count(0)
    shoot(page, artifacts, "history-checks")
    assert dialogs == []
