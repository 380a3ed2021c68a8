"""Runs as cards, drawn as one browser element: History's gallery, and on Compose the recent runs,
this session's feed and a batch's strip.

Sixty runs as Streamlit elements are some 400 widgets; as one element they are one small message (the
thumbnails are URLs a browser fetches once and keeps: see serving.py), drawn at once. Twelve recent
runs as images, captions and buttons in columns were 43 of Compose's 115 messages, each element's
own code for the browser to load and draw (bench/page_breakdown.py). The element says what the
person did (the whole new selection, or the run to open) and the page acts on it.

Text reaches the browser as text (``textContent``, ``alt``, ``title``), never as markup.

Every page of cards carries a version (see versions.py), so a search's cards are never replaced by
the previous search's when an older call of the element finishes late.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import streamlit as st

from flux_core import defaults as D
from flux_core import presentation as P
from flux_ui import serving, versions
from flux_core.ledger import store
from flux_core.ledger.records import Run
from flux_core.params import model_tag

KEY = "h_gallery"

_HTML = '<div class="fl-gallery" data-testid="fl-gallery" role="list"></div>'

_CSS = """
/* --fl-columns cards a row, or fewer where that would make a card narrower than --fl-card-min */
.fl-gallery { display: grid; gap: 1rem; font-family: var(--st-font); color: var(--st-text-color);
  grid-template-columns: repeat(auto-fill, minmax(max(var(--fl-card-min, 160px),
    calc((100% - (var(--fl-columns, 6) - 1) * 1rem) / var(--fl-columns, 6))), 1fr)); }
.fl-card { margin: 0; display: flex; flex-direction: column; gap: .35rem; min-width: 0;
  border-radius: var(--st-base-radius); padding: .25rem; border: 2px solid transparent; }
.fl-card[data-selected="true"] { border-color: var(--st-primary-color); }
.fl-card img, .fl-card .fl-status { width: 100%; aspect-ratio: 1; object-fit: contain;
  border-radius: var(--st-base-radius); background: var(--st-secondary-background-color); }
.fl-card .fl-status { display: flex; align-items: center; justify-content: center; text-align: center;
  font-size: .85rem; padding: .5rem; box-sizing: border-box; }
.fl-card figcaption { font-size: .85rem; display: flex; flex-direction: column; min-width: 0; }
.fl-card figcaption span { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.fl-card .fl-meta { opacity: .75; font-size: .8rem; }
.fl-card .fl-check, .fl-card .fl-review { font-size: .75rem; }
.fl-actions { display: flex; align-items: center; justify-content: space-between; gap: .5rem;
  font-size: .9rem; }
.fl-actions label { display: flex; align-items: center; gap: .35rem; cursor: pointer; }
.fl-actions input { accent-color: var(--st-primary-color); width: 1rem; height: 1rem; margin: 0; }
.fl-actions button { font: inherit; color: inherit; background: var(--st-background-color);
  border: 1px solid var(--st-border-color); border-radius: var(--st-button-radius);
  padding: .2rem .75rem; cursor: pointer; }
.fl-actions button:hover:enabled, .fl-actions button:focus-visible { border-color: var(--st-primary-color);
  color: var(--st-primary-color); }
.fl-actions button:disabled { cursor: default; opacity: .6; }
/* a phone: two cards a row, whatever the narrowest card would allow */
@media (max-width: 480px) {
  .fl-gallery { grid-template-columns: repeat(2, minmax(0, 1fr)); gap: .5rem; }
  .fl-actions { flex-wrap: wrap; gap: .25rem; }
}
"""

_JS = (
    """
export default function ({ data, parentElement, setTriggerValue }) {
  const root = parentElement.querySelector(".fl-gallery");
"""
    + versions.STALE_JS
    + """  const chosen = new Set(data.selected);
  root.style.setProperty("--fl-columns", String(data.columns));
  root.style.setProperty("--fl-card-min", `${data.card_min_px}px`);
  root.replaceChildren(...data.cards.map((card) => {
    const figure = document.createElement("figure");
    figure.className = "fl-card";
    figure.setAttribute("role", "listitem");
    figure.dataset.testid = "fl-card";
    figure.dataset.run = card.id;
    figure.dataset.selected = String(chosen.has(card.id));
    figure.title = card.prompt;
    let picture;
    if (card.thumb) {
      picture = document.createElement("img");
      picture.src = card.thumb;
      picture.alt = card.headline;
      picture.decoding = "async";
    } else {
      picture = document.createElement("div");
      picture.className = "fl-status";
      picture.textContent = card.status;
    }
    const caption = document.createElement("figcaption");
    const headline = document.createElement("span");
    headline.className = "fl-headline";
    headline.textContent = card.headline;
    const meta = document.createElement("span");
    meta.className = "fl-meta";
    meta.textContent = card.caption;
    caption.append(headline, meta);
    if (card.review) {  // its verdicts counted and its comments, as text
      const review = document.createElement("span");
      review.className = "fl-review";
      review.dataset.testid = "fl-card-review";
      review.textContent = card.review;
      review.title = card.review;
      caption.append(review);
    }
    for (const said of card.checks || []) {  // one line a check, as text
      const line = document.createElement("span");
      line.className = "fl-check";
      line.textContent = said;
      line.title = said;
      caption.append(line);
    }
    const actions = document.createElement("div");
    actions.className = "fl-actions";
    if (data.selectable) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = chosen.has(card.id);
      box.addEventListener("change", () => {
        if (box.checked) chosen.add(card.id); else chosen.delete(card.id);
        figure.dataset.selected = String(box.checked);
        setTriggerValue("selection", [...chosen]);  // the whole selection: quick clicks cannot lose one
      });
      label.append(box, document.createTextNode("Select"));
      actions.append(label);
    }
    const open = document.createElement("button");
    open.type = "button";
    const shown = card.id === data.shown;  // the run the page shows already
    open.textContent = shown ? "Shown" : data.action;
    open.disabled = shown;
    if (data.action_help) open.title = data.action_help;
    open.addEventListener("click", () => setTriggerValue("open", card.id));
    actions.append(open);
    figure.append(picture, caption, actions);
    return figure;
  }));
}
"""
)


# Scrolls the page to where it is drawn when its token changes (a run just opened far below the
# gallery), and not on the reruns after that (saving a note must not move the page). Each place
# remembers its own token.
_SCROLL_JS = """
const shown = {};
export default function ({ data, parentElement }) {
  if (shown[data.place] === data.token) return;
  shown[data.place] = data.token;
  const target = parentElement.host || parentElement;
  // The page may still be laying out (a rerun's elements, pictures loading above): scroll again
  // until the place stays at the top, for up to 3 s, unless the person scrolls first.
  const until = Date.now() + 3000;
  let stop = false;
  const yours = () => { stop = true; };
  for (const kind of ["wheel", "touchstart", "keydown"]) window.addEventListener(kind, yours, { once: true });
  const settle = () => {
    if (stop) return;
    target.scrollIntoView({ block: "start" });
    const top = target.getBoundingClientRect().top;
    if ((top < -4 || top > 48) && Date.now() < until) setTimeout(settle, 100);
  };
  requestAnimationFrame(settle);
}
"""

# Defined once, when the page first imports this module (Streamlit warns when a name is defined twice).
_component = st.components.v2.component("flux_lab.gallery", html=_HTML, css=_CSS, js=_JS)
_scroll = st.components.v2.component("flux_lab.scroll_here", js=_SCROLL_JS)


def scroll_here(place: str, token: str) -> None:
    """Bring this place on the page into view once for each new token."""
    _scroll(key=f"scroll_{place}", data={"place": place, "token": token}, height=0)


def card(row: Run, thumb: Path | None, checks: Iterable[str] = (), review: str = "") -> dict[str, Any]:
    """What one gallery card shows of a run: its thumbnail (never the full image), or its outcome in
    words when there is no picture, its checks' lines (flux_core.checks.report.lines) and its review
    (presentation.review_words: the verdicts counted, the comments)."""
    image = None
    status = P.STATUS_WORDS[row.status]
    if row.status == store.COMPLETED:
        if thumb is not None and row.thumb_path and thumb.is_file():
            image, status = serving.thumbnail_url(row.thumb_path), ""
        else:  # a thumbnail removed by hand: the card says so instead of breaking the page
            status = "Image file missing"
    favourite = " · ★" if row.favourite else ""
    favourite += " · 📌 pinned" if row.pinned else ""  # the best of its lineage (flux_core/ledger/lineage.py)
    words = row.prompt.split()
    headline = " ".join(words[: D.CARD_PROMPT_WORDS]) + ("…" if len(words) > D.CARD_PROMPT_WORDS else "")
    return {
        "id": row.id,
        "thumb": image,
        "status": status,
        "headline": headline,  # the first line: the prompt's first words (the card cuts it to one line)
        "caption": f"{model_tag(row.model)} · seed {row.seed} · tol {row.safety_tolerance}{favourite}",
        "prompt": " ".join(words),
        "checks": list(checks),
        "review": review,
    }


def draw(
    rows: Iterable[Run],
    thumb_of: Callable[[Run], Path | None],
    selected: list[str] | None = None,
    *,
    on_selection: Callable[[list[str]], None] | None = None,
    on_open: Callable[[str], None],
    key: str = KEY,
    columns: int = D.HISTORY_COLUMNS,
    action: str = "Open",
    action_help: str = "",
    shown: str | None = None,
    checks_of: Callable[[Run], list[str]] | None = None,
    review_of: Callable[[Run], str] | None = None,
) -> None:
    """Draw runs as cards, `columns` a row. Each card's button (`action`; "Shown" and disabled on
    the card of the run `shown`) reaches `on_open`; with `on_selection`, each card has a Select box
    too and a change of selection reaches it. Both come before the page is drawn again, so the rest
    of the page already shows them."""

    def selection_changed() -> None:
        value = st.session_state[key].get("selection")
        if isinstance(value, list) and on_selection is not None:
            on_selection([str(i) for i in value])

    def open_clicked() -> None:
        value = st.session_state[key].get("open")
        if isinstance(value, str):
            on_open(value)

    _component(
        key=key,
        data=versions.versioned(
            key,
            {
                "cards": [
                    card(
                        row,
                        thumb_of(row),
                        checks_of(row) if checks_of else [],
                        review_of(row) if review_of else "",
                    )
                    for row in rows
                ],
                "selectable": on_selection is not None,
                "selected": list(selected or []),
                "action": action,
                "action_help": action_help,
                "shown": shown,
                "columns": columns,
                "card_min_px": D.HISTORY_CARD_MIN_PX,
            },
        ),
        on_selection_change=selection_changed,
        on_open_change=open_clicked,
    )
