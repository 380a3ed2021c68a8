"""The presenter view's stage: one image at a time, as large as the window allows, drawn as one
browser element that steps by itself (no server round trip for a step) and preloads the images on
either side.

Keys: ArrowRight, PageDown and Space step forward, ArrowLeft and PageUp back, Home and End go to the
first and last image, ``s`` or ``i`` shows or hides the settings, ``f`` goes full screen, 1 / 2 / 3
give the viewer's verdict (approve / needs work / reject; the same key again takes it back), Esc
leaves full screen and, outside it, goes back to where the person came from. A step, a verdict and
Back reach the page as trigger values; the tally of everyone's verdicts comes with the data, which
the page's fragment sends again as it changes. In blind mode the tally stays hidden until "Reveal"
is pressed for that image, and no run id reaches the browser.

Text reaches the browser as text (``textContent``, ``alt``, ``title``), never as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from flux_core import deck
from flux_core import defaults as D
from flux_ui import serving, versions

KEY = "present_stage"

_HTML = '<div class="fl-present" data-testid="fl-present"></div>'

_CSS = """
.fl-present { font-family: var(--st-font); color: #f4f4f4; background: #101014; display: flex;
  flex-direction: column; gap: .4rem; padding: .5rem .75rem; box-sizing: border-box;
  border-radius: var(--st-base-radius); height: var(--fl-height, 80vh); }
.fl-present:fullscreen { height: 100vh; border-radius: 0; }
.fl-present:focus { outline: none; }
.fl-p-top, .fl-p-votes { display: flex; align-items: center; gap: .5rem; flex-wrap: wrap; }
.fl-p-title { flex: 1; font-weight: 600; overflow-wrap: anywhere; }
.fl-p-stage { flex: 1; min-height: 0; display: flex; align-items: center; gap: .5rem; }
.fl-p-stage img, .fl-p-stage .fl-p-status { flex: 1; min-width: 0; height: 100%; max-height: 100%;
  object-fit: contain; display: block; }
.fl-p-stage .fl-p-status { display: flex; align-items: center; justify-content: center; text-align: center;
  font-size: 1.3rem; }
.fl-p-caption { display: flex; flex-wrap: wrap; gap: .2rem 1rem; font-size: .95rem; align-items: baseline; }
.fl-p-position { font-weight: 700; font-variant-numeric: tabular-nums; }
.fl-p-label { font-weight: 600; overflow-wrap: anywhere; }
.fl-p-settings { display: contents; }
.fl-p-settings[hidden] { display: none; }
.fl-p-settings span { overflow-wrap: anywhere; }
.fl-p-settings b { opacity: .7; font-weight: 500; margin-right: .3rem; }
.fl-p-tally { opacity: .9; }
.fl-present button { font: inherit; font-size: .9rem; color: inherit; background: rgba(255,255,255,.1);
  border: 1px solid rgba(255,255,255,.35); border-radius: var(--st-button-radius); padding: .3rem .8rem;
  cursor: pointer; }
.fl-present button:hover, .fl-present button:focus-visible { border-color: #fff; }
.fl-present button[aria-pressed="true"] { background: var(--st-primary-color); border-color: #fff; }
.fl-present button:disabled { opacity: .4; cursor: default; }
.fl-present .fl-p-step { font-size: 1.8rem; padding: .2rem .6rem; }
"""

_JS = (
    """
function element(tag, className, text, testid) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  if (testid) el.dataset.testid = testid;
  if (tag === "button") el.type = "button";
  return el;
}

export default function ({ data, parentElement, setTriggerValue }) {
  const root = parentElement.querySelector(".fl-present");
"""
    + versions.STALE_JS
    + """  root.flData = data;
  const n = data.slides.length;
  if (!root.flBuilt) {
    root.flBuilt = true;
    root.tabIndex = -1;
    root.dataset.i = String(Math.max(0, Math.min(data.start, n - 1)));
    root.dataset.settings = data.show_settings ? "1" : "";
    root.flRevealed = new Set();
    root.flLeftFull = 0;
    const parts = {};
    parts.back = element("button", "", "‹ Back", "fl-present-back");
    parts.back.title = "Back to where you came from (Esc)";
    parts.title = element("div", "fl-p-title", data.title, "fl-present-title");
    parts.toggle = element("button", "", "Settings", "fl-present-toggle");
    parts.toggle.title = "Show or hide the settings (s)";
    parts.full = element("button", "", "Full screen", "fl-present-full");
    parts.full.title = "Full screen (f); Esc leaves it";
    const top = element("div", "fl-p-top");
    top.append(parts.back, parts.title, parts.toggle, parts.full);
    parts.prev = element("button", "fl-p-step", "‹");
    parts.prev.setAttribute("aria-label", "Previous image");
    parts.next = element("button", "fl-p-step", "›");
    parts.next.setAttribute("aria-label", "Next image");
    parts.picture = element("div", "fl-p-status");
    const stage = element("div", "fl-p-stage");
    stage.append(parts.prev, parts.picture, parts.next);
    parts.position = element("span", "fl-p-position", "", "fl-present-position");
    parts.label = element("span", "fl-p-label", "", "fl-present-label");
    parts.settings = element("span", "fl-p-settings", undefined, "fl-present-settings");
    const caption = element("div", "fl-p-caption", undefined, "fl-present-caption");
    caption.append(parts.position, parts.label, parts.settings);
    const votes = element("div", "fl-p-votes");
    parts.verdicts = [["1", "approve", "Approve"], ["2", "needs work", "Needs work"], ["3", "reject", "Reject"]]
      .map(([key, verdict, words]) => {
        const b = element("button", "", `${words} (${key})`, `fl-present-vote-${key}`);
        b.dataset.verdict = verdict;
        b.onclick = () => vote(verdict);
        votes.append(b);
        return b;
      });
    parts.tally = element("span", "fl-p-tally", "", "fl-present-tally");
    parts.reveal = element("button", "", "Reveal", "fl-present-reveal");
    votes.append(parts.reveal, parts.tally);
    root.replaceChildren(top, stage, caption, votes);
    root.flParts = parts;

    const go = (i) => show(Math.max(0, Math.min(root.flData.slides.length - 1, i)), true);
    root.flGo = go;
    parts.prev.onclick = () => go(Number(root.dataset.i) - 1);
    parts.next.onclick = () => go(Number(root.dataset.i) + 1);
    parts.back.onclick = () => setTriggerValue("back", { at: Date.now() });
    parts.toggle.onclick = () => toggle();
    parts.full.onclick = () => full();
    parts.reveal.onclick = () => { root.flRevealed.add(Number(root.dataset.i)); show(Number(root.dataset.i), false); };
    // the document's listeners are the latest stage's: one set, however often the page is visited
    window.flPresentFull = () => {
      if (!document.fullscreenElement) root.flLeftFull = Date.now();
      parts.full.textContent = document.fullscreenElement ? "Leave full screen" : "Full screen";
    };
    if (window.flPresentKeys) document.removeEventListener("keydown", window.flPresentKeys);
    window.flPresentKeys = (event) => {
      if (!root.isConnected) return;
      const target = event.composedPath()[0];
      if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const i = Number(root.dataset.i);
      const key = event.key;
      let done = true;
      if (key === "ArrowRight" || key === "PageDown" || key === " ") go(i + 1);
      else if (key === "ArrowLeft" || key === "PageUp") go(i - 1);
      else if (key === "Home") go(0);
      else if (key === "End") go(root.flData.slides.length - 1);
      else if (key === "s" || key === "i") toggle();
      else if (key === "f") full();
      else if (key === "1" || key === "2" || key === "3") vote(parts.verdicts[Number(key) - 1].dataset.verdict);
      else if (key === "Escape") {
        if (document.fullscreenElement) document.exitFullscreen();
        else if (Date.now() - root.flLeftFull > root.flData.esc_grace_ms) setTriggerValue("back", { at: Date.now() });
      } else done = false;
      if (done) event.preventDefault();
    };
    document.addEventListener("keydown", window.flPresentKeys);
    const fit = () => {
      if (!root.isConnected) return;
      const top = root.getBoundingClientRect().top + window.scrollY;
      root.style.setProperty("--fl-height", `${Math.max(240, window.innerHeight - top - 12)}px`);
    };
    root.flFit = fit;
    window.flPresentFit = fit;
    if (!window.flPresentWatch) {
      window.flPresentWatch = new ResizeObserver(() => window.flPresentFit());
      window.flPresentWatch.observe(document.body);
      window.addEventListener("resize", () => window.flPresentFit());
      document.addEventListener("fullscreenchange", () => window.flPresentFull());
    }
  }

  function toggle() {
    root.dataset.settings = root.dataset.settings ? "" : "1";
    show(Number(root.dataset.i), false);
  }

  function full() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (root.requestFullscreen) root.requestFullscreen().catch(() => {});
  }

  function vote(verdict) {
    const d = root.flData;
    if (!d.can_vote) return;
    const i = Number(root.dataset.i);
    const slide = d.slides[i];
    const mine = slide.mine === verdict ? null : verdict;  // the same verdict again takes it back
    slide.mine = mine;
    setTriggerValue("verdict", { i, verdict: mine, at: Date.now() });
    show(i, false);
  }

  function show(i, stepped) {
    const d = root.flData;
    const p = root.flParts;
    const slide = d.slides[i];
    if (!slide) return;
    root.dataset.i = String(i);
    const url = slide.full;
    if (url) {
      let img = p.picture.tagName === "IMG" ? p.picture : null;
      if (!img) {
        img = element("img", "", undefined, "fl-present-image");
        p.picture.replaceWith(img);
        p.picture = img;
      }
      if (img.getAttribute("src") !== url) img.src = url;
      img.alt = slide.label || `Image ${i + 1}`;
    } else {
      const status = element("div", "fl-p-status", slide.words, "fl-present-image");
      p.picture.replaceWith(status);
      p.picture = status;
    }
    for (const j of [i + 1, i - 1]) {  // the images on either side, so a step is instant
      const near = d.slides[j];
      if (near && near.full) { const pre = new Image(); pre.src = near.full; }
    }
    p.position.textContent = `${i + 1} / ${d.slides.length}`;
    const shown = Boolean(root.dataset.settings);
    p.toggle.setAttribute("aria-pressed", String(shown));
    p.label.textContent = shown ? slide.label : "";
    p.label.hidden = !shown || !slide.label;
    const items = [];
    if (shown) {
      for (const [name, value] of slide.settings) {
        const item = element("span");
        item.append(element("b", "", name), document.createTextNode(value));
        items.push(item);
      }
      if (slide.run) {
        const item = element("span", "", undefined, "fl-present-run");
        item.append(element("b", "", "Run"), document.createTextNode(slide.run));
        items.push(item);
      }
    }
    p.settings.replaceChildren(...items);
    p.settings.hidden = !shown;
    p.prev.disabled = i === 0;
    p.next.disabled = i === d.slides.length - 1;
    for (const b of p.verdicts) {
      b.hidden = !d.can_vote;
      b.setAttribute("aria-pressed", String(slide.mine === b.dataset.verdict));
    }
    const hidden = d.blind && !root.flRevealed.has(i);
    p.reveal.hidden = !hidden;
    p.tally.textContent = hidden ? "Verdicts hidden until revealed" : slide.tally;
    root.flFit();  // the stage fills the window below whatever is drawn above it
    if (stepped) setTriggerValue("step", { i, at: Date.now() });
  }

  show(Number(root.dataset.i) < n ? Number(root.dataset.i) : Math.max(0, n - 1), false);
}
"""
)

_component = st.components.v2.component("flux_lab.presenter", html=_HTML, css=_CSS, js=_JS)


def slide_data(
    slide: deck.Slide, *, full: str | None, words: str, blind: bool, tally: str, mine: str | None
) -> dict[str, Any]:
    """What the browser gets of one image: its URL (or why there is none), its caption's parts,
    everyone's verdicts in words and the viewer's own. Blind: no run id."""
    return {
        "full": serving.image_url(full) if full else None,
        "words": words,
        "label": slide.label,
        "settings": [list(pair) for pair in slide.settings],
        "run": "" if blind else slide.run.id,
        "tally": tally,
        "mine": mine,
    }


def draw(
    title: str,
    slides: list[dict[str, Any]],
    *,
    start: int,
    blind: bool,
    can_vote: bool,
    on_step: Callable[[int], None],
    on_verdict: Callable[[int, str | None], None],
    on_back: Callable[[], None],
) -> None:
    """Draw the stage; a step, a verdict (index, verdict or None to take it back) and Back reach
    the callbacks before the page (or its fragment) is drawn again."""

    def value(name: str) -> dict[str, Any] | None:
        found = st.session_state[KEY].get(name)
        return found if isinstance(found, dict) else None

    def stepped() -> None:
        found = value("step")
        if found and isinstance(found.get("i"), int):
            on_step(found["i"])

    def verdict() -> None:
        found = value("verdict")
        if found and isinstance(found.get("i"), int):
            given = found.get("verdict")
            on_verdict(found["i"], given if isinstance(given, str) else None)

    data = {
        "title": title,
        "slides": slides,
        "start": start,
        "blind": blind,
        "show_settings": not blind,
        "can_vote": can_vote,
        "esc_grace_ms": D.PRESENT_ESC_GRACE_MS,
    }
    _component(
        key=KEY,
        data=versions.versioned(KEY, data),
        on_step_change=stepped,
        on_verdict_change=verdict,
        on_back_change=on_back,
    )
