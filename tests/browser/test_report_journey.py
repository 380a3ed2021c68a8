"""A demo's report that travels (issue 17, item 2): a small sweep finished and voted on in Compare, a
cell commented on in History, the report downloaded from Compare and opened from disk in Chromium
with the network cut off: every picture shows, the votes show once revealed, and a comment holding a
script is text that never runs."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from flux_core.ledger.store import Ledger
from tests.browser.conftest import shoot

SCRIPT = "<script>window.hacked=1</script>"


def test_a_sweeps_report_opens_offline_with_every_picture_the_votes_and_inert_comments(
    app_server, page, data_dir, artifacts
):
    server = app_server(latency=0.3)
    page.goto(f"{server.url}/compare")
    page.get_by_label("Base prompt").fill("a red teapot on a wooden table")
    page.get_by_label("Base prompt").press("Tab")
    expect(page.get_by_text("6 cells (3 seeds × 2 safety tolerances)")).to_be_visible()
    page.get_by_role("button", name="Run sweep").click()
    expect(page.get_by_text("6 done · 0 blocked · 0 failed · 0 pending")).to_be_visible()
    expect(page.get_by_role("heading", name="Safety matrix")).to_be_visible()
    sweep_url = page.url
    sweep_id = sweep_url.split("sweep=")[1].split("&")[0]

    page.get_by_text("Blind vote (for demos)").click()
    left = page.get_by_role("button", name="Left is better")
    for _ in range(
        3
    ):  # a name sent while the live grid redraws (the checks landing) can be lost: say it again
        page.get_by_label("Your name").fill("Bea")
        page.get_by_label("Your name").press("Enter")
        try:
            expect(left).to_be_visible(timeout=10_000)
            break
        except AssertionError:
            page.get_by_label("Your name").fill("")
    left.click()
    expect(page.get_by_text("1 of 3 pairs judged")).to_be_visible()  # two tolerances, one picture

    with Ledger(data_dir / "ledger.db").db() as db:
        [cell] = [
            r[0]
            for r in db.execute("SELECT run_id FROM sweep_cells WHERE sweep_id = ? AND idx = 0", [sweep_id])
        ]
    page.goto(f"{server.url}/history?h_run={cell}")
    page.get_by_label("Comment", exact=True).fill(f"{SCRIPT} too dark")
    page.get_by_role("button", name="Comment", exact=True).click()
    expect(page.get_by_label("Comment", exact=True)).to_have_value("")  # posted: the box starts afresh
    expect(page.get_by_text(f"{SCRIPT} too dark")).to_be_visible()  # the page shows it as text too
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(re.compile(r"^local:.+: approve$"))).to_be_visible()
    shoot(page, artifacts, "1-commented")

    page.goto(sweep_url)
    expect(page.get_by_text("approved 1 of 6")).to_be_visible()  # Compare's review line
    with page.expect_download() as download:
        page.get_by_role("button", name="Download report").click()
    saved = artifacts / "report.html"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"flux-lab-report-sweep-{sweep_id}.html"

    # opened from disk with the network cut off: nothing but the file itself may load
    offline = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    offline.set_offline(True)
    asked: list[str] = []
    offline.route(
        "**/*", lambda route: route.abort() if not route.request.url.startswith("file:") else route.fallback()
    )
    report = offline.new_page()
    report.on("request", lambda request: asked.append(request.url))
    report.goto(saved.as_uri())
    expect(report.get_by_role("heading", name="Pictures")).to_be_visible()
    images = report.locator("img")
    expect(images).to_have_count(6)
    report.wait_for_function("() => [...document.images].every(i => i.complete)")
    assert report.evaluate("[...document.images].map(i => i.naturalWidth > 0)") == [True] * 6
    shoot(report, artifacts, "2-report", docs_name="report.png")

    reveal = report.locator("details#reveal")
    standing = reveal.get_by_role("table").first
    expect(standing).to_be_hidden()  # a blind demo shows the pictures first
    reveal.get_by_text("Reveal the votes").click()
    expect(standing).to_be_visible()
    expect(reveal.get_by_role("heading", name="Seed")).to_be_visible()
    expect(report.get_by_text("1 vote on pairs of pictures, by 1 voter")).to_be_visible()
    expect(report.get_by_text(f"{SCRIPT} too dark")).to_be_visible()  # literally, as text
    expect(report.locator("ul.verdicts li")).to_have_text(re.compile(r"^local:.+: approve$"))
    shoot(report, artifacts, "3-revealed")
    # must not happen: the comment's script running, or the page reaching for anything beyond itself
    assert report.evaluate("typeof window.hacked") == "undefined"
    assert report.locator("script").count() == 0
    assert all(url.startswith(("file:", "data:")) for url in asked), asked
    offline.close()
