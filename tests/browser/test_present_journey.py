"""A demo (issue 17): a finished 2 × 3 sweep opened from Compare's "Present", stepped through with
the keyboard, voted on with a key and a click, its settings hidden and shown, left with Esc."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from flux_core.ledger import reviews
from flux_core.ledger.store import Ledger
from tests.browser.conftest import cli_sweep, shoot


def test_a_sweep_is_presented_stepped_through_with_the_keys_and_voted_on(
    app_server, page, data_dir, artifacts
):
    sweep_id = cli_sweep(data_dir, "lighthouse", "1,2,3", "2,5")

    server = app_server()
    page.set_viewport_size({"width": 1400, "height": 900})
    # tolerances as rows, seeds as columns: each step shows another seed's picture
    page.goto(f"{server.url}/compare?sweep={sweep_id}&layout=safety_tolerance,seed")
    expect(page.get_by_text("6 done · 0 blocked · 0 failed · 0 pending")).to_be_visible()
    page.get_by_role("button", name="Present").click()
    expect(page).to_have_url(re.compile(r"/present\?sweep="))
    stage = page.get_by_test_id("fl-present")
    position, label = page.get_by_test_id("fl-present-position"), page.get_by_test_id("fl-present-label")
    image, tally = page.get_by_test_id("fl-present-image"), page.get_by_test_id("fl-present-tally")
    expect(position).to_have_text("1 / 6")
    expect(label).to_have_text("seed 1 · tolerance 2")
    expect(page.get_by_test_id("stSidebar")).to_be_hidden()  # the stage takes the window

    seen = [image.get_attribute("src")]
    for key, where, cell in (
        ("ArrowRight", "2 / 6", "seed 2 · tolerance 2"),
        ("Space", "3 / 6", "seed 3 · tolerance 2"),
        ("ArrowLeft", "2 / 6", "seed 2 · tolerance 2"),
        ("End", "6 / 6", "seed 3 · tolerance 5"),
        ("Home", "1 / 6", "seed 1 · tolerance 2"),
    ):
        page.keyboard.press(key)
        expect(position).to_have_text(where)
        expect(label).to_have_text(cell)
        expect(image).not_to_have_attribute("src", seen[-1])  # another picture each step
        seen.append(image.get_attribute("src"))
    assert seen[-1] == seen[0]
    expect(page).to_have_url(re.compile(r"[?&]i=1(&|$)"))  # the URL follows: a link shows this image
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 0

    # a vote with a key, another with a click; the tally follows
    page.keyboard.press("1")
    expect(tally).to_have_text("1 approve")
    expect(page.get_by_test_id("fl-present-vote-1")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("ArrowRight")
    expect(tally).to_have_text("no verdicts yet")
    page.get_by_test_id("fl-present-vote-2").click()
    expect(tally).to_have_text("1 needs work")
    shoot(page, artifacts, "1-presenting", docs_name="present.png")
    ledger = Ledger(data_dir / "ledger.db")
    with ledger.db() as db:
        ids = [row["run_id"] for row in db.query("SELECT run_id FROM verdicts")]
    found = reviews.verdicts(ledger, ids)
    assert sorted(v.verdict for items in found.values() for v in items) == ["approve", "needs work"]

    # the settings hide and show again (s, then the toggle)
    settings = page.get_by_test_id("fl-present-settings")
    expect(settings).to_contain_text("Seed")
    page.keyboard.press("s")
    expect(settings).to_be_hidden()
    expect(label).to_be_hidden()
    expect(position).to_have_text("2 / 6")  # the position stays
    page.get_by_test_id("fl-present-toggle").click()
    expect(settings).to_contain_text("Tolerance")

    # full screen; Esc leaves it, a second Esc leaves the page for the sweep in Compare
    page.get_by_test_id("fl-present-full").click()
    page.wait_for_function("() => Boolean(document.fullscreenElement)")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.fullscreenElement")
    expect(stage).to_be_visible()
    page.wait_for_function(
        "() => { const r = [...document.querySelectorAll('*')].flatMap(e => e.shadowRoot ? "
        "[...e.shadowRoot.querySelectorAll('.fl-present')] : [...(e.matches('.fl-present') ? [e] : [])])[0];"
        " return r && Date.now() - r.flLeftFull > r.flData.esc_grace_ms; }"
    )
    page.keyboard.press("Escape")
    expect(page).to_have_url(re.compile(r"/compare\?sweep=.*layout=safety_tolerance"))
    expect(page.get_by_text("6 done · 0 blocked · 0 failed · 0 pending")).to_be_visible()

    # and Back, from a link shared for a blind demo: no settings, no run id, the tally behind Reveal
    page.goto(f"{server.url}/present?sweep={sweep_id}&blind=1&i=1")
    expect(position).to_have_text("1 / 6")
    expect(settings).to_be_hidden()
    expect(tally).to_have_text("Verdicts hidden until revealed")
    page.get_by_test_id("fl-present-reveal").click()
    expect(tally).to_have_text("1 approve")
    page.keyboard.press("s")  # settings asked for: still no run id
    expect(settings).to_contain_text("Seed")
    expect(page.get_by_test_id("fl-present-run")).to_have_count(0)
    expect(page.get_by_text("Traceback")).to_have_count(0)
    page.get_by_test_id("fl-present-back").click()
    expect(page).to_have_url(re.compile(r"/compare\?sweep="))
