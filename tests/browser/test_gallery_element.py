"""The gallery element's own script in Chromium, without a Streamlit server: what a card shows, and
that a page of cards drawn late never replaces a newer one."""

from __future__ import annotations

from playwright.sync_api import expect

from flux_ui import gallery


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
