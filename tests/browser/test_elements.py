"""Flux Lab's browser elements' own scripts in Chromium, without a Streamlit server: what a gallery card
shows, and that data drawn late (a page of cards, a live grid) never replaces newer data."""

from __future__ import annotations

from playwright.sync_api import expect

from flux_ui import gallery, sweep_grid


def card(run_id: str, headline: str, prompt: str | None = None) -> dict:
    return {
        "id": run_id,
        "thumb": None,
        "status": "Generating",
        "headline": headline,
        "caption": "seed 1 · tol 2 · ★",
        "prompt": prompt or headline,
    }


def page_of(version: int, *cards: dict) -> dict:
    return {"cards": list(cards), "selected": [], "columns": 6, "card_min_px": 160, "version": version}


DRAW = """async ([js, html, css, calls]) => {
  const url = URL.createObjectURL(new Blob([js], { type: "text/javascript" }));
  const element = await import(url);
  const host = document.getElementById("host");
  host.innerHTML = html;
  const style = document.createElement("style");
  style.textContent = css;
  host.append(style);
  for (const data of calls) element.default({ data, parentElement: host, setTriggerValue: () => {} });
}"""


def draw(page, *calls: dict) -> None:
    page.set_content('<div id="host" style="width: 400px"></div>')
    page.evaluate(DRAW, [gallery._JS, gallery._HTML, gallery._CSS, list(calls)])


def test_an_older_page_drawn_after_a_newer_one_leaves_the_newer_cards(page):
    """Streamlit may finish an earlier call of the element after a later one (its imports resolve in
    no set order): the search's one card stays, not the previous search's three."""
    three = page_of(1, card("A", "a red cube"), card("B", "a blue cube"), card("C", "a green tree"))
    one = page_of(2, card("C", "a green tree"))
    draw(page, one, three)
    cards = page.get_by_test_id("fl-card")
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_attribute("data-run", "C")
    draw(page, three, one)  # in order: the newer page is drawn
    expect(cards).to_have_count(1)


def test_a_card_shows_the_prompts_first_words_over_seed_and_tolerance_as_text(page):
    hostile = "<img src=x onerror=alert(1)> a teapot on a very long table by the sea at dawn"
    draw(page, page_of(1, card("A", hostile[:40] + "…", hostile)))
    figure = page.get_by_test_id("fl-card")
    expect(figure).to_have_attribute("title", hostile)
    expect(figure.locator(".fl-headline")).to_have_text(hostile[:40] + "…")
    expect(figure.locator(".fl-meta")).to_have_text("seed 1 · tol 2 · ★")
    assert page.locator('img[src="x"]').count() == 0
    box = figure.locator(".fl-headline").evaluate(
        "e => [e.scrollHeight <= e.clientHeight + 1, getComputedStyle(e).textOverflow]"
    )
    assert box == [True, "ellipsis"]  # one line, cut with an ellipsis


def grid_of(version: int, outcome: str) -> dict:
    """A one-row sweep of two cells, both `outcome`."""
    cells = [
        {
            "idx": i,
            "label": f"seed {i + 1}",
            "outcome": outcome,
            "words": "" if outcome == "done" else "Queued at the server",
            "thumb": None,
            "full": None,
            "download": f"cell-{i}.png",
            "favourite": False,
            "retry": False,
            "settings": [["Seed", str(i + 1)]],
        }
        for i in range(2)
    ]
    return {
        "cells": cells,
        "rows": {"title": "", "labels": [""]},
        "cols": {"title": "Seed", "labels": ["seed 1", "seed 2"]},
        "corner": "Seed →",
        "slices": [{"title": "", "grid": [[0, 1]]}],
        "cell_min_px": 150,
        "cell_max_px": 480,
        "fit_min_px": 96,
        "fit": True,
        "version": version,
    }


def test_a_sweep_grid_drawn_late_never_puts_back_an_older_state(page):
    """The live grid is drawn again as cells land: a late call with the pending grid leaves the
    finished one (the same versions guard every element: flux_ui/versions.py)."""
    page.set_content('<div id="host" style="width: 800px"></div>')
    finished, pending = grid_of(2, "done"), grid_of(1, "pending")
    page.evaluate(DRAW, [sweep_grid._JS, sweep_grid._HTML, sweep_grid._CSS, [finished, pending]])
    cells = page.get_by_test_id("fl-cell")
    expect(cells).to_have_count(2)
    for n in range(2):
        expect(cells.nth(n)).to_have_attribute("data-outcome", "done")
