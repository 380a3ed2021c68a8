"""One prompt fanned out to two models (issue 20, item 4): a sweep over FLUX.2 [max] and [pro] made
on the command line, seen side by side in Compare and filtered by model in History."""

from __future__ import annotations

import re
import subprocess
import sys

from playwright.sync_api import expect

from tests.browser.conftest import shoot


def test_a_sweep_over_two_models_shows_both_and_history_filters_by_model(
    app_server, page, data_dir, artifacts
):
    made = subprocess.run(
        [sys.executable, "-m", "flux_core", "--data-dir", str(data_dir), "sweep", "--emulator"]
        + ["--prompt", "a lighthouse at dusk", "--seeds", "1,2", "--model", "flux-2-max,flux-2-pro"]
        + ["--width", "512", "--height", "512"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert made.returncode == 0, made.stderr
    sweep_id = re.search(r"/compare\?sweep=(\w+)", made.stderr).group(1)

    server = app_server()
    page.goto(f"{server.url}/compare?sweep={sweep_id}")
    expect(page.get_by_text("4 done · 0 blocked · 0 failed · 0 pending")).to_be_visible()
    expect(page.get_by_text("FLUX.2 [pro]").first).to_be_visible()  # the model axis' labels
    expect(page.get_by_text("FLUX.2 [max]").first).to_be_visible()
    expect(page.get_by_test_id("fl-cell").locator("img")).to_have_count(4)
    shoot(page, artifacts, "1-two-models-in-compare")

    page.goto(f"{server.url}/history?h_model=flux-2-pro")
    expect(page.get_by_text("2 run(s) · showing 1–2")).to_be_visible()
    expect(page.get_by_test_id("fl-card")).to_have_count(2)
    expect(page.get_by_test_id("fl-card").locator(".fl-meta").first).to_contain_text("[pro] · seed")
    expect(page.get_by_text("Traceback")).to_have_count(0)  # must not happen: a link's filter breaks the page
    shoot(page, artifacts, "2-history-filtered-by-model")
