"""Compare's sweep grid: every slice of a sweep at once, drawn as one browser element, with a
lightbox that opens a cell in place.

Rows, columns and (for a third axis) the stacked grids follow the axes the person placed. Cells show
thumbnails (URLs the browser keeps, see serving.py); the lightbox shows the full image, the cell's
label and key settings, steps through cells with the arrow keys (Left/Right across columns, Up/Down
across rows, running on into the next slice) and closes with Esc. Its actions (Open in Compose,
Favourite, Retry) reach the page as one trigger value; Download is a plain link to the stored image.

Text reaches the browser as text (``textContent``, ``alt``, ``title``), never as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from flux_core import defaults as D
from flux_core import presentation as P
from flux_core.checks import rank
from flux_core.ledger import checks as checks_table
from flux_core.ledger import sweeps
from flux_core.params import model_name
from flux_ui import serving, versions

KEY = "compare_grid"
PLACES = ("Rows", "Columns", "Stacked")

_HTML = '<div class="fl-sweep" data-testid="fl-sweep"></div>'

_CSS = """
.fl-sweep { font-family: var(--st-font); color: var(--st-text-color); display: flex; flex-wrap: wrap;
  align-items: flex-start; gap: 1rem 1.5rem; }
.fl-slice { margin: 0; min-width: 0; max-width: 100%; flex: 0 0 auto; }
.fl-slice h3 { font-size: 1.05rem; font-weight: 600; margin: .25rem 0 .5rem; }
.fl-scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
.fl-grid { display: grid; gap: .5rem; align-items: start; }
.fl-corner, .fl-colhead, .fl-rowhead { font-size: .85rem; overflow-wrap: anywhere; }
.fl-corner { color: var(--st-text-color); opacity: .7; align-self: end; }
.fl-colhead { font-weight: 600; text-align: center; align-self: end; }
.fl-rowhead { font-weight: 600; position: sticky; left: 0; z-index: 1; align-self: center;
  background: var(--st-background-color); padding-right: .25rem; }
.fl-cell { all: unset; box-sizing: border-box; display: flex; flex-direction: column; gap: .25rem;
  cursor: pointer; min-width: 0; border: 2px solid transparent; border-radius: var(--st-base-radius);
  padding: 2px; }
.fl-cell:hover, .fl-cell:focus-visible { border-color: var(--st-primary-color); }
.fl-cell img, .fl-cell .fl-status { width: 100%; aspect-ratio: 1; object-fit: contain; display: block;
  border-radius: var(--st-base-radius); background: var(--st-secondary-background-color); }
.fl-cell .fl-status { display: flex; align-items: center; justify-content: center; text-align: center;
  font-size: .85rem; padding: .5rem; box-sizing: border-box; overflow: hidden; }
.fl-cell[data-outcome="blocked"] .fl-status { background: #fff1dc; color: #7a4b00; }
.fl-cell[data-outcome="failed"] .fl-status { background: #ffe3e3; color: #8a1c1c; }
.fl-cell[data-outcome="pending"] .fl-status { font-style: italic; }
.fl-cell .fl-fav { font-size: .8rem; min-height: 1em; }
.fl-box { position: fixed; inset: 0; z-index: 999999; background: rgba(12, 12, 16, .96); color: #f4f4f4;
  display: flex; flex-direction: column; padding: .75rem; box-sizing: border-box; gap: .5rem; }
.fl-box[hidden] { display: none; }
.fl-box:focus { outline: none; }
.fl-box-top { display: flex; align-items: center; gap: .75rem; }
.fl-cell { position: relative; }
.fl-badge { position: absolute; left: 4px; bottom: 4px; color: #fff; font-size: .7rem;
  padding: 0 4px; border-radius: 3px; pointer-events: none; }
.fl-box-label { flex: 1; font-weight: 600; font-size: 1rem; overflow-wrap: anywhere; }
.fl-box-main { flex: 1; min-height: 0; display: flex; align-items: center; gap: .5rem; }
.fl-box-main img, .fl-box-main .fl-status { flex: 1; min-width: 0; max-height: 100%; object-fit: contain;
  height: 100%; }
.fl-box-main .fl-status { display: flex; align-items: center; justify-content: center; text-align: center;
  font-size: 1.1rem; padding: 1rem; }
.fl-box-info { display: flex; flex-wrap: wrap; gap: .25rem 1rem; font-size: .85rem; max-height: 30%;
  overflow: auto; }
.fl-box-info span { overflow-wrap: anywhere; }
.fl-box-info b { opacity: .7; font-weight: 500; margin-right: .3rem; }
.fl-box-actions { display: flex; flex-wrap: wrap; gap: .5rem; }
.fl-box button, .fl-box a { font: inherit; font-size: .9rem; color: inherit; background: rgba(255,255,255,.1);
  border: 1px solid rgba(255,255,255,.35); border-radius: var(--st-button-radius); padding: .3rem .8rem;
  cursor: pointer; text-decoration: none; }
.fl-box button:hover, .fl-box a:hover, .fl-box button:focus-visible { border-color: #fff; }
.fl-box .fl-step { font-size: 1.6rem; padding: .2rem .6rem; }
"""

_JS = (
    """
const NAV = { ArrowLeft: "left", ArrowRight: "right", ArrowUp: "up", ArrowDown: "down" };

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function picture(cell, full) {
  const url = full ? cell.full : cell.thumb;
  if (url) {
    const img = element("img");
    img.src = url;
    img.alt = cell.label;
    img.decoding = "async";
    return img;
  }
  const status = element("div", "fl-status", cell.words);
  status.title = cell.words;
  return status;
}

// The cells' size. "Large": the columns share the page's width. "Fit": as large as they can be with
// every slice in the window at once, slices side by side where that gives larger cells. A slice's
// width and height are a fixed part (headers, gaps) plus one cell size per column and per row: both
// parts are measured once at two trial sizes, so fonts and labels count as drawn.
function size(root, data, nRows, nCols, nSlices) {
  const slice = root.querySelector(".fl-slice");
  if (!slice || !root.clientWidth) return;
  const grid = slice.querySelector(".fl-grid");
  const measure = (px) => {
    root.style.setProperty("--fl-cell", `${px}px`);
    return [grid.scrollWidth, slice.offsetHeight];
  };
  const [w1, h1] = measure(100);
  const [w2, h2] = measure(200);
  const perCol = (w2 - w1) / 100, perRow = (h2 - h1) / 100;
  const fixedW = w1 - 100 * perCol, fixedH = h1 - 100 * perRow;
  const gap = parseFloat(getComputedStyle(root).columnGap) || 0;
  const rowGap = parseFloat(getComputedStyle(root).rowGap) || 0;
  const width = root.clientWidth;
  let px = (width - fixedW) / Math.max(1, perCol);
  if (data.fit) {
    const height = window.innerHeight - 16;
    let best = 0;
    for (let k = 1; k <= nSlices; k++) {
      const lines = Math.ceil(nSlices / k);
      const byWidth = (width - (k - 1) * gap - k * fixedW) / (k * Math.max(1, perCol));
      const byHeight = (height - (lines - 1) * rowGap - lines * fixedH) / (lines * Math.max(1, perRow));
      best = Math.max(best, Math.min(byWidth, byHeight));
    }
    px = Math.max(best, data.fit_min_px);
  } else {
    px = Math.max(px, data.cell_min_px);
  }
  root.style.setProperty("--fl-cell", `${Math.floor(Math.min(px, data.cell_max_px))}px`);
  root.dataset.cell = String(Math.floor(Math.min(px, data.cell_max_px)));
}

export default function ({ data, parentElement, setTriggerValue }) {
  const root = parentElement.querySelector(".fl-sweep");
"""
    + versions.STALE_JS
    + """  const cells = new Map(data.cells.map((c) => [c.idx, c]));
  // positions in reading order: slice, row, column
  const where = new Map();
  data.slices.forEach((slice, s) => slice.grid.forEach((line, r) => line.forEach((idx, c) => {
    if (idx !== null) where.set(idx, [s, r, c]);
  })));
  const nRows = data.rows.labels.length;
  const nCols = Math.max(1, data.cols.labels.length);
  const nSlices = data.slices.length;
  const at = (s, r, c) => data.slices[s].grid[r][c];

  function step(idx, way) {
    let [s, r, c] = where.get(idx);
    if (way === "right" || way === "left") {
      let flat = (s * nRows + r) * nCols + c + (way === "right" ? 1 : -1);
      const total = nSlices * nRows * nCols;
      flat = (flat + total) % total;
      c = flat % nCols; r = Math.floor(flat / nCols) % nRows; s = Math.floor(flat / (nCols * nRows));
    } else {
      let flat = s * nRows + r + (way === "down" ? 1 : -1);
      const total = nSlices * nRows;
      flat = (flat + total) % total;
      r = flat % nRows; s = Math.floor(flat / nRows);
    }
    const next = at(s, r, c);
    return next === null ? idx : next;
  }

  // the lightbox: one element, kept across redraws, so a favourite or a live refresh leaves it open
  let box = root.querySelector(".fl-box");
  if (!box) {
    box = element("div", "fl-box");
    box.hidden = true;
    box.tabIndex = -1;
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.dataset.testid = "fl-lightbox";
  }

  function close() {
    box.hidden = true;
    root.dataset.open = "";
    const cell = root.querySelector(`.fl-cell[data-idx="${box.dataset.idx}"]`);
    if (cell) cell.focus();
  }

  function show(idx) {
    const cell = cells.get(idx);
    if (!cell) { close(); return; }
    root.dataset.open = String(idx);
    box.dataset.idx = String(idx);
    box.setAttribute("aria-label", cell.label);
    const top = element("div", "fl-box-top");
    const label = element("div", "fl-box-label", cell.label);
    label.dataset.testid = "fl-lightbox-label";
    const shut = element("button", "", "Close");
    shut.type = "button";
    shut.title = "Close (Esc)";
    shut.onclick = close;
    top.append(label, shut);
    const main = element("div", "fl-box-main");
    const prev = element("button", "fl-step", "‹");
    prev.type = "button";
    prev.setAttribute("aria-label", "Previous cell");
    prev.onclick = () => show(step(idx, "left"));
    const next = element("button", "fl-step", "›");
    next.type = "button";
    next.setAttribute("aria-label", "Next cell");
    next.onclick = () => show(step(idx, "right"));
    main.append(prev, picture(cell, true), next);
    const info = element("div", "fl-box-info");
    for (const [name, value] of cell.settings) {
      const item = element("span");
      item.append(element("b", "", name), document.createTextNode(value));
      info.append(item);
    }
    const actions = element("div", "fl-box-actions");
    const act = (what) => setTriggerValue("action", { do: what, idx, at: Date.now() });
    const compose = element("button", "", "Open in Compose");
    compose.type = "button";
    compose.onclick = () => act("compose");
    actions.append(compose);
    if (cell.outcome === "done" && cell.can_favourite) {
      const fav = element("button", "", cell.favourite ? "★ Favourite" : "☆ Favourite");
      fav.type = "button";
      fav.setAttribute("aria-pressed", String(cell.favourite));
      fav.onclick = () => act("favourite");
      actions.append(fav);
    }
    if (cell.full) {
      const down = element("a", "", "Download");
      down.href = cell.full;
      down.download = cell.download;
      actions.append(down);
    }
    if (cell.retry) {
      const retry = element("button", "", "Retry");
      retry.type = "button";
      retry.onclick = () => act("retry");
      actions.append(retry);
    }
    box.replaceChildren(top, main, info, actions);
    box.hidden = false;
    box.focus({ preventScroll: true });  // the keys go to the lightbox, whichever button was pressed
  }

  box.onkeydown = (event) => {
    if (event.key === "Escape") { event.preventDefault(); close(); return; }
    if (event.key === "Tab") {  // the focus stays in the lightbox while it is open
      const stops = [...box.querySelectorAll("button, a[href]")];
      if (!stops.length) return;
      const first = stops[0], last = stops[stops.length - 1];
      const here = stops.indexOf(box.getRootNode().activeElement);
      if (event.shiftKey && (here <= 0)) { event.preventDefault(); last.focus(); }
      else if (!event.shiftKey && (here === -1 || here === stops.length - 1)) { event.preventDefault(); first.focus(); }
      return;
    }
    const way = NAV[event.key];
    if (way) {
      event.preventDefault();
      show(step(Number(box.dataset.idx), way));
    }
  };

  const slices = data.slices.map((slice) => {
    const section = element("section", "fl-slice");
    section.dataset.testid = "fl-slice";
    if (slice.title) section.append(element("h3", "", slice.title));
    const scroll = element("div", "fl-scroll");
    const grid = element("div", "fl-grid");
    grid.style.gridTemplateColumns = `fit-content(9rem) repeat(${nCols}, var(--fl-cell, ${data.cell_min_px}px))`;
    grid.append(element("div", "fl-corner", data.corner));
    for (let c = 0; c < nCols; c++) {
      const head = element("div", "fl-colhead", data.cols.labels[c] || "");
      head.dataset.testid = "fl-colhead";
      grid.append(head);
    }
    slice.grid.forEach((line, r) => {
      const head = element("div", "fl-rowhead", data.rows.labels[r]);
      head.dataset.testid = "fl-rowhead";
      grid.append(head);
      line.forEach((idx) => {
        if (idx === null) { grid.append(element("div", "fl-status", "—")); return; }
        const cell = cells.get(idx);
        const button = element("button", "fl-cell");
        button.type = "button";
        button.dataset.testid = "fl-cell";
        button.dataset.idx = String(idx);
        button.dataset.outcome = cell.outcome;
        button.title = cell.words ? `${cell.label}: ${cell.words}` : cell.label;
        button.setAttribute("aria-label", button.title);
        button.append(picture(cell, false), element("div", "fl-fav", cell.favourite ? "★" : ""));
        if (cell.badge) {  // coloured by a check: red (0) to green (1), its score in words
          const hue = Math.round(120 * cell.tint);
          const badge = element("div", "fl-badge", cell.badge);
          badge.dataset.testid = "fl-badge";
          badge.style.background = `hsl(${hue} 70% 40%)`;
          button.style.outline = `3px solid hsl(${hue} 70% 45%)`;
          button.append(badge);
        }
        button.onclick = () => show(idx);
        grid.append(button);
      });
    });
    scroll.append(grid);
    section.append(scroll);
    return section;
  });
  root.replaceChildren(...slices, box);
  root.flFit = () => size(root, data, nRows, nCols, nSlices);
  root.flFit();
  if (!root.flWatch) {  // the cells follow the page's width and the window's height
    let seen = "";
    const again = () => {
      const now = `${root.clientWidth}x${window.innerHeight}`;
      if (now !== seen) { seen = now; root.flFit(); }
    };
    root.flWatch = new ResizeObserver(again);
    root.flWatch.observe(root);
    window.addEventListener("resize", again);
  }
  const open = root.dataset.open;
  if (open) show(Number(open));
}
"""
)

_component = st.components.v2.component("flux_lab.sweep_grid", html=_HTML, css=_CSS, js=_JS)


def place(order_names: list[str], slot: int, name: str) -> list[str]:
    """The axes' order after `name` is put in place `slot`: the axis there takes its old place."""
    new = list(order_names)
    j = new.index(name)
    new[j], new[slot] = new[slot], new[j]
    return new


def words(cell: sweeps.Cell) -> str:
    """What a cell without its picture says: why it failed, that it was blocked, or its state."""
    return P.no_picture_words(cell.run)


def _anything(what: str, run: Any) -> bool:
    return True


def variants(view: sweeps.SweepView) -> list[tuple[str, list[sweeps.Cell]]]:
    """The sweep's prompt variants (label, their done cells), in the axis' order; a sweep without a
    prompt axis is one variant, labelled ''."""
    done = [c for c in view.cells if c.outcome == "done"]
    at = next((i for i, ax in enumerate(view.axes) if ax.name == "prompt"), None)
    if at is None:
        return [("", done)]
    return [(label, [c for c in done if c.coords[at] == i]) for i, label in enumerate(view.axes[at].labels)]


def score_words(found: dict[str, Any]) -> str:
    """ "text 6/6, palette 0.91": what a best seed is best by."""
    parts = []
    text = found.get(checks_table.TEXT) or {}
    if text.get("expected") and not text.get("error"):
        parts.append(f"text {len(text.get('found') or [])}/{len(text['expected'])}")
    palette = found.get(checks_table.PALETTE) or {}
    if palette.get("score") is not None and not palette.get("error"):
        parts.append(f"palette {palette['score']:.2f}")
    return ", ".join(parts)


def badge(found: dict[str, Any], by: str) -> tuple[str, float | None]:
    """A cell's badge when the grid is coloured by a check: its words and its score (0..1), or
    ("", None) when the grid is not coloured or the check is not in."""
    if by not in ("text", "palette"):
        return "", None
    key = rank.score(found, by)
    if key is None:
        return "", None
    value = max(0.0, min(1.0, key[0]))
    return f"{by} {value:.2f}", value


def cell_data(
    view: sweeps.SweepView,
    cell: sweeps.Cell,
    data_dir: Path,
    may: Callable[[str, Any], bool] = _anything,
    found: dict[str, Any] | None = None,
    by: str = "none",
    review: str = "",
) -> dict[str, Any]:
    """What the grid and its lightbox show of one cell; `may(action, run)` leaves out the actions
    (favourite, retry) the person may not do; `found` (its checks) gives it a badge coloured by its
    score when the grid is coloured `by` a check; `review` is its verdicts' tally, in the lightbox."""
    run = cell.run
    done = cell.outcome == "done"
    thumb = run.thumb_path if done and run.thumb_path and (data_dir / run.thumb_path).is_file() else None
    full = run.image_path if done and run.image_path and (data_dir / run.image_path).is_file() else None
    said = words(cell) or ("" if thumb else "Image file missing")
    outcome = P.headline(run)
    settings = [
        ("Model", model_name(run.model)),
        ("Seed", str(run.seed)),
        ("Tolerance", str(run.safety_tolerance)),
        ("Size", f"{run.width}×{run.height}"),
        ("Format", run.output_format),
        ("Outcome", said or outcome.title),
        ("Times", P.times(run)),  # the person's wait, and Segmind's own figures apart
        *([("Cost", f"${run.cost_usd:.4g}")] if run.cost_usd is not None else []),
        ("Prompt", " ".join(run.prompt.split())),
    ]
    if review:
        settings.insert(5, ("Verdicts", review))
    ext = Path(run.image_path or "").suffix
    said_badge, tint = badge(found or {}, by)
    return {
        "badge": said_badge,
        "tint": tint,
        "idx": cell.idx,
        "label": view.label(cell),
        "outcome": cell.outcome,
        "words": said,
        "thumb": serving.thumbnail_url(thumb) if thumb else None,
        "full": serving.image_url(full) if full else None,
        "download": f"sweep-{view.id}-cell-{cell.idx:03d}{ext}",
        "favourite": bool(run.favourite),
        "can_favourite": may("favourite", run),
        "retry": bool(run.state.retryable or cell.outcome == "blocked") and may("retry", run),
        "settings": [list(pair) for pair in settings],
    }


def data(
    view: sweeps.SweepView,
    order: list[int],
    data_dir: Path,
    *,
    fit: bool = True,
    may: Callable[[str, Any], bool] = _anything,
    checks: dict[str, dict[str, Any]] | None = None,
    by: str = "none",
    reviews: dict[str, str] | None = None,
    marks: dict[str, tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """The whole grid for the browser: axes placed by `order` (rows, columns, stacked), one grid of
    cell indices per slice of the stacked axis. A sweep of one axis is one row across the width.
    `fit`: cells sized so every slice is in the window at once; else as large as the width allows.
    `reviews`: each run's verdict tally in words (presentation.verdict_tally), for the lightbox.
    `marks`: a badge (words, tint 0 red .. 1 green) on these runs' cells, over a check's (a hunt's
    hits and misses)."""
    found, said = checks or {}, reviews or {}
    cells = [
        cell_data(view, cell, data_dir, may, found.get(cell.run.id), by, said.get(cell.run.id, ""))
        for cell in view.cells
    ]
    for cell, row in zip(cells, view.cells):
        if marks and row.run.id in marks:
            cell["badge"], cell["tint"] = marks[row.run.id]
    common = {
        "cells": cells,
        "cell_min_px": D.SWEEP_GRID_CELL_MIN_PX,
        "cell_max_px": D.SWEEP_GRID_CELL_MAX_PX,
        "fit_min_px": D.SWEEP_GRID_FIT_MIN_PX,
        "fit": fit,
    }
    placed = sweeps.layout(view, order)
    return {
        "rows": {
            "title": placed.rows.title if placed.rows else "",
            "labels": list(placed.rows.labels) if placed.rows else [""],
        },
        "cols": {"title": placed.cols.title, "labels": list(placed.cols.labels)},
        "corner": placed.corner,
        "slices": [{"title": title, "grid": [list(line) for line in grid]} for title, grid in placed.slices],
        **common,
    }


def draw(
    view: sweeps.SweepView,
    order: list[int],
    data_dir: Path,
    *,
    on_action: Callable[[str, int], None],
    fit: bool = True,
    may: Callable[[str, Any], bool] = _anything,
    checks: dict[str, dict[str, Any]] | None = None,
    by: str = "none",
    reviews: dict[str, str] | None = None,
    marks: dict[str, tuple[str, float]] | None = None,
) -> None:
    """Draw the grid; an action in the lightbox (compose, favourite, retry) reaches `on_action`
    with the cell's index before the page is drawn again."""

    def acted() -> None:
        value = st.session_state[KEY].get("action")
        if isinstance(value, dict) and isinstance(value.get("idx"), int) and isinstance(value.get("do"), str):
            on_action(value["do"], value["idx"])

    _component(
        key=KEY,
        data=versions.versioned(
            KEY,
            data(view, order, data_dir, fit=fit, may=may, checks=checks, by=by, reviews=reviews, marks=marks),
        ),
        on_action_change=acted,
    )
