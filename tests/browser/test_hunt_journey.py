"""A person hunts for seeds on the Compare page: the poster's two strings spelt right, two hits wanted.
The hunt runs on the app's emulator, each image checked as it lands; the page shows the hits, misses,
hit rate and cost per hit above the grid, each cell marked HIT or miss. Must not happen: a cell marked
HIT whose image the emulator drew misspelt."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from flux_core.emulator import render
from tests.browser.conftest import IDLE, shoot

POSTER = "A poster with the words 'FLUX LAB' and the headline 'Seed Hunt' in red and navy"


def test_a_seed_hunt_started_on_compare_stops_at_its_hits_and_marks_them(app_server, page, artifacts):
    server = app_server(latency=0.5)
    page.goto(f"{server.url}/compare")
    expect(page.get_by_text("Plan a sweep")).to_be_visible()
    page.get_by_text("Seed hunt", exact=True).click()
    expect(page.get_by_text("Checks an image must pass")).to_be_visible()
    page.get_by_label("Base prompt").fill(POSTER)
    page.get_by_label("Base prompt").press("Tab")
    for label, value in (("Width", "256"), ("Height", "256"), ("Hits wanted", "2")):
        page.get_by_label(label, exact=True).fill(value)
        page.get_by_label(label, exact=True).press("Tab")
    page.get_by_label("Seeds in order (1-100, 1,5,9)").fill("1-20")
    page.get_by_label("Seeds in order (1-100, 1,5,9)").press("Tab")
    expect(page.get_by_text("It stops submitting at 2 hit(s): the text all right.")).to_be_visible()
    shoot(page, artifacts, "1-hunt-plan")

    page.get_by_role("button", name="Start hunt").click()
    expect(page.get_by_text("Done: enough hits.")).to_be_visible(timeout=90_000)
    # the hunt's last cell ends the live grid with a run of the whole page, which draws the grid anew
    # (empty until its element mounts): read the cells once that page is drawn and its grid filled
    expect(page.get_by_text("Seeds by their checks")).to_be_visible()
    expect(page.locator(IDLE)).to_have_count(1)
    hits = page.get_by_test_id("fl-badge").filter(has_text=re.compile("^HIT$"))
    expect(hits.nth(1)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^HIT · seed \d+$")).first).to_be_visible()
    cells = page.get_by_test_id("fl-cell").evaluate_all(
        "cells => cells.map((c) => [c.title, c.querySelector('[data-testid=fl-badge]')?.innerText])"
    )
    assert sum(marked == "HIT" for _, marked in cells) >= 2
    for title, marked in cells:
        seed = int(re.search(r"seed (\d+)", title).group(1))
        # the must-not: a misspelt image marked HIT (or a right one marked miss)
        assert marked == ("miss" if render.truth(POSTER, seed).misspelt else "HIT"), seed
    expect(page.get_by_test_id("stMetric").filter(has_text="Cost per hit")).to_contain_text("$")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.get_by_text("Seed hunt", exact=True).evaluate("el => el.scrollIntoView({ block: 'start' })")
    shoot(page, artifacts, "2-hunt-done", docs_name="hunt.png")
