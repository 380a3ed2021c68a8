"""Prompt lineage in a real browser (issue 17, part 4): generate in Compose, open the run in Compose
from History, edit the prompt and generate, edit again and generate; History's open run shows the
chain of three with both word diffs, the prompts as text."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from flux_core.ledger.store import Ledger
from tests.browser.conftest import shoot

PROMPTS = (
    "a red cube on a table",
    "a red cube on a wooden table",
    "a blue cube on a wooden table <img src=x onerror=alert(1)>",
)


def newest(data_dir) -> str:
    return Ledger(data_dir / "ledger.db").search(None, limit=1)[0].id


def generate(page, prompt: str, shown: str | None) -> None:
    """Type the prompt, Generate, and wait until the new run (not `shown`) is done."""
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate").click()
    if shown is not None:
        expect(page).not_to_have_url(re.compile(f"run={shown}"))
    expect(page.get_by_text("Done · You waited")).to_be_visible()


def test_edit_twice_in_compose_and_see_the_lineage_with_both_diffs(app_server, page, data_dir, artifacts):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    server = app_server(latency=0.2)
    page.goto(server.url)
    generate(page, PROMPTS[0], None)
    first = newest(data_dir)

    page.goto(f"{server.url}/history?h_run={first}")
    page.get_by_role("button", name="Open in Compose").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(PROMPTS[0])
    generate(page, PROMPTS[1], first)
    second = newest(data_dir)
    generate(page, PROMPTS[2], second)
    third = newest(data_dir)

    page.goto(f"{server.url}/history?h_run={third}")
    lineage = page.locator(".st-key-h_lineage")
    expect(lineage.get_by_role("heading", name="Lineage")).to_be_visible()
    edges = lineage.get_by_test_id("fl-lineage-edge")
    expect(edges).to_have_count(2)
    expect(edges.nth(0).locator("span", has_text="wooden")).to_have_css(
        "background-color", "rgb(211, 249, 216)"
    )
    expect(edges.nth(1).locator("span", has_text="red")).to_have_css("text-decoration-line", "line-through")
    expect(edges.nth(1)).to_contain_text("<img src=x onerror=alert(1)>")  # the prompt's words, as text
    expect(lineage.get_by_text("← this run")).to_be_visible()
    lineage.scroll_into_view_if_needed()
    shoot(page, artifacts, "1-lineage", docs_name="lineage.png")

    ledger = Ledger(data_dir / "ledger.db")
    chain = [(r.parent_run_id, r.lineage) for r in ledger.get_many([first, second, third])]
    assert chain == [(None, None), (first, "edit"), (second, "edit")]
    # must not happen: markup from a prompt made into an element, or a script run
    assert page.locator('img[src="x"]').count() == 0 and dialogs == []
