"""Pages that follow the ledger (issue 19, item 5): a run the CLI makes, in another process writing
the same data directory, appears on a History page already open, without a reload."""

from __future__ import annotations

import subprocess
import sys

from playwright.sync_api import expect

from tests.browser.conftest import shoot


def test_a_run_made_by_the_cli_appears_on_an_open_history_page(app_server, page, data_dir, artifacts):
    server = app_server()
    page.goto(f"{server.url}/history")
    expect(page.get_by_text("No runs yet.")).to_be_visible()
    page.evaluate("() => { window.__same_page = true; }")  # a reload would forget it

    made = subprocess.run(
        [sys.executable, "-m", "flux_core", "--data-dir", str(data_dir), "generate", "--emulator"]
        + ["--prompt", "a kingfisher over still water", "--seed", "7", "--width", "512", "--height", "512"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert made.returncode == 0, made.stderr

    card = page.get_by_test_id("fl-card")
    expect(card).to_have_count(1)
    expect(card.locator("img")).to_have_count(1)  # its thumbnail, as the run landed done
    expect(page.get_by_text("1 run(s) · showing 1–1")).to_be_visible()
    expect(page.get_by_text("No runs yet.")).to_have_count(0)
    assert page.evaluate("() => window.__same_page === true"), "the page was reloaded"
    expect(page.get_by_text("Traceback")).to_have_count(0)
    shoot(page, artifacts, "1-cli-run-on-open-history")


def test_seven_tabs_open_at_once_each_load_and_follow_the_ledger_on_a_socket(app_server, page, artifacts):
    """A browser opens at most six HTTP connections to one server. The change feed was a long poll,
    one held per tab, so with six tabs of Flux Lab open a seventh did not load (nor did a thumbnail)
    until one was answered. Each tab follows the ledger on a WebSocket of its own instead."""
    server = app_server()
    polled: list[str] = []
    page.context.on("request", lambda r: polled.append(r.url) if "/_flux/changes" in r.url else None)
    tabs = [page] + [page.context.new_page() for _ in range(6)]
    for tab in tabs:
        tab.set_default_timeout(30_000)
        with tab.expect_websocket(lambda socket: "/_flux/changes" in socket.url):
            tab.goto(f"{server.url}/history")
        expect(tab.get_by_text("No runs yet.")).to_be_visible()
    last = page.context.new_page()  # an eighth, while seven follow the ledger
    last.goto(f"{server.url}/compose")
    expect(last.get_by_role("button", name="Generate")).to_be_visible()
    assert polled == [], "the change feed went over plain HTTP requests"
    expect(last.get_by_text("Traceback")).to_have_count(0)
    shoot(last, artifacts, "2-an-eighth-tab-loads")
