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
