"""A/B of two stored images, entirely in the browser: a wipe, a flicker and a difference view.

The two full images are loaded once (same-origin URLs, see serving.py); moving the split, flickering
and computing the difference happen in the page with no round trip to the server. The wipe's line
and knob are drawn at the very split the picture uses (both are the same share of the picture's
width), so they always line up. The difference view draws |A − B| on a canvas, amplified so small
changes show; B is scaled to A's size when their sizes differ.

Text reaches the browser as text (``textContent``), never as markup.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from flux_core import defaults as D
from flux_core.checks import report
from flux_ui import serving, versions

MODES = ("wipe", "flicker", "difference")

_HTML = '<div class="fl-ab" data-testid="fl-ab"></div>'

_CSS = """
.fl-ab { font-family: var(--st-font); color: var(--st-text-color); max-width: 100%; }
.fl-ab-modes { display: flex; flex-wrap: wrap; gap: .4rem; margin-bottom: .5rem; }
.fl-ab-modes button { font: inherit; font-size: .9rem; color: inherit; cursor: pointer;
  background: var(--st-background-color); border: 1px solid var(--st-border-color);
  border-radius: var(--st-button-radius); padding: .25rem .8rem; }
.fl-ab-modes button[aria-pressed="true"] { border-color: var(--st-primary-color);
  color: var(--st-primary-color); }
.fl-ab-stage { position: relative; width: 100%; user-select: none; touch-action: none; cursor: ew-resize;
  line-height: 0; outline: none; }
.fl-ab-stage:focus-visible { box-shadow: 0 0 0 2px var(--st-primary-color); }
.fl-ab-stage[data-mode="flicker"] { cursor: pointer; }
.fl-ab-stage img { width: 100%; height: auto; display: block; pointer-events: none; }
.fl-ab-stage .fl-ab-a { position: absolute; inset: 0; height: 100%; object-fit: fill; }
.fl-ab-line { position: absolute; top: 0; bottom: 0; width: 0; pointer-events: none; }
.fl-ab-line::before { content: ""; position: absolute; top: 0; bottom: 0; left: -1px; width: 2px;
  background: #fff; box-shadow: 0 0 2px rgba(0,0,0,.8); }
.fl-ab-knob { position: absolute; top: 50%; left: 0; width: 28px; height: 28px; margin: -14px 0 0 -14px;
  border-radius: 50%; background: #fff; box-shadow: 0 0 3px rgba(0,0,0,.8); }
.fl-ab-stage canvas { position: absolute; inset: 0; width: 100%; height: 100%; }
.fl-ab-tag { position: absolute; top: .4rem; line-height: 1.2; font-size: .8rem; padding: .1rem .4rem;
  background: rgba(0,0,0,.6); color: #fff; border-radius: 4px; max-width: 45%; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; pointer-events: none; }
.fl-ab-tag.a { left: .4rem; }
.fl-ab-tag.b { right: .4rem; }
.fl-ab-note { font-size: .85rem; opacity: .75; margin-top: .35rem; }
"""

_JS = (
    """
function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

export default function ({ data, parentElement }) {
  const root = parentElement.querySelector(".fl-ab");
"""
    + versions.STALE_JS
    + """  root.style.maxWidth = `${data.max_px}px`;
  let mode = root.dataset.mode || data.mode;
  let split = Number(root.dataset.split || 50);
  let showing = "a";
  clearInterval(root.flTimer);  // a redraw (a new pair) stops the last flicker

  const modes = element("div", "fl-ab-modes");
  const buttons = {};
  for (const [name, words] of [["wipe", "Wipe"], ["flicker", "Flicker"], ["difference", "Difference"]]) {
    const b = element("button", "", words);
    b.type = "button";
    b.onclick = () => setMode(name);
    buttons[name] = b;
    modes.append(b);
  }
  const stage = element("div", "fl-ab-stage");
  stage.tabIndex = 0;
  stage.dataset.testid = "fl-ab-stage";
  const imgB = element("img", "fl-ab-b");
  imgB.src = data.b.url;
  imgB.alt = `B: ${data.b.label}`;
  const imgA = element("img", "fl-ab-a");
  imgA.src = data.a.url;
  imgA.alt = `A: ${data.a.label}`;
  const line = element("div", "fl-ab-line");
  line.dataset.testid = "fl-ab-line";
  line.append(element("span", "fl-ab-knob"));
  const canvas = element("canvas");
  canvas.hidden = true;
  canvas.dataset.testid = "fl-ab-diff";
  const tagA = element("span", "fl-ab-tag a", `A: ${data.a.label}`);
  const tagB = element("span", "fl-ab-tag b", `B: ${data.b.label}`);
  stage.append(imgB, imgA, canvas, line, tagA, tagB);
  const note = element("div", "fl-ab-note");

  function drawSplit() {
    imgA.style.clipPath = `inset(0 ${100 - split}% 0 0)`;  // A left of the split, B right of it
    line.style.left = `${split}%`;  // the same share of the same width: the line is the split
    stage.setAttribute("aria-valuenow", String(Math.round(split)));
    root.dataset.split = String(split);
  }

  function flick(to) {
    showing = to || (showing === "a" ? "b" : "a");
    imgA.style.clipPath = "none";
    imgA.style.visibility = showing === "a" ? "visible" : "hidden";
    tagA.hidden = showing !== "a";
    tagB.hidden = showing !== "b";
    stage.dataset.showing = showing;
  }

  async function difference() {
    try {
      await Promise.all([imgA.decode(), imgB.decode()]);
    } catch (e) {
      note.textContent = "The pictures could not be read for the difference view.";
      return;
    }
    const scale = Math.min(1, data.diff_max_px / Math.max(imgA.naturalWidth, imgA.naturalHeight));
    const w = Math.max(1, Math.round(imgA.naturalWidth * scale));
    const h = Math.max(1, Math.round(imgA.naturalHeight * scale));
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(imgA, 0, 0, w, h);
    const a = ctx.getImageData(0, 0, w, h);
    ctx.drawImage(imgB, 0, 0, w, h);
    const b = ctx.getImageData(0, 0, w, h);
    const out = ctx.createImageData(w, h);
    let changed = 0;
    for (let i = 0; i < a.data.length; i += 4) {
      let any = 0;
      for (let k = 0; k < 3; k++) {
        const d = Math.abs(a.data[i + k] - b.data[i + k]);
        out.data[i + k] = Math.min(255, d * data.gain);
        any |= d;
      }
      out.data[i + 3] = 255;
      if (any) changed++;
    }
    ctx.putImageData(out, 0, 0);
    const share = (100 * changed) / (w * h);
    note.textContent = `|A − B| × ${data.gain}: ${share.toFixed(1)} % of pixels differ (black: the same).`;
    stage.dataset.differ = share.toFixed(1);
  }

  function setMode(next) {
    mode = next;
    root.dataset.mode = mode;
    stage.dataset.mode = mode;
    clearInterval(root.flTimer);
    for (const [name, b] of Object.entries(buttons)) b.setAttribute("aria-pressed", String(name === mode));
    canvas.hidden = mode !== "difference";
    line.hidden = mode !== "wipe";
    imgA.style.visibility = "visible";
    tagA.hidden = tagB.hidden = false;
    if (mode === "wipe") {
      stage.setAttribute("role", "slider");
      stage.setAttribute("aria-label", "Split between A and B");
      stage.setAttribute("aria-valuemin", "0");
      stage.setAttribute("aria-valuemax", "100");
      drawSplit();
      note.textContent = "Drag, or use the arrow keys: A is left of the line, B right of it.";
    } else {
      stage.removeAttribute("role");
      stage.removeAttribute("aria-valuenow");
    }
    if (mode === "flicker") {
      flick("a");
      root.flTimer = setInterval(() => flick(), data.flicker_ms);
      note.textContent = "A and B take turns; click or press a key to switch by hand.";
    }
    if (mode === "difference") difference();
  }

  function splitAt(clientX) {
    const box = stage.getBoundingClientRect();
    split = Math.min(100, Math.max(0, ((clientX - box.left) / box.width) * 100));
    drawSplit();
  }
  stage.onpointerdown = (event) => {
    if (mode === "wipe") {
      stage.setPointerCapture(event.pointerId);
      splitAt(event.clientX);
    } else if (mode === "flicker") {
      clearInterval(root.flTimer);
      flick();
    }
  };
  stage.onpointermove = (event) => {
    if (mode === "wipe" && stage.hasPointerCapture(event.pointerId)) splitAt(event.clientX);
  };
  stage.onkeydown = (event) => {
    if (mode === "wipe" && (event.key === "ArrowLeft" || event.key === "ArrowRight")) {
      event.preventDefault();
      split = Math.min(100, Math.max(0, split + (event.key === "ArrowRight" ? 1 : -1) * (event.shiftKey ? 10 : 2)));
      drawSplit();
    } else if (mode === "flicker" && event.key !== "Tab") {
      event.preventDefault();
      clearInterval(root.flTimer);
      flick();
    }
  };

  root.replaceChildren(modes, stage, note);
  setMode(mode);
  return () => clearInterval(root.flTimer);
}
"""
)

_component = st.components.v2.component("flux_lab.ab_view", html=_HTML, css=_CSS, js=_JS)


def data(a_image: str, a_label: str, b_image: str, b_label: str, *, mode: str = "wipe") -> dict[str, Any]:
    """What the A/B element is given: the two stored images (paths in the data directory) as URLs
    the browser loads from this server, their labels (shown as text), and the view's settings."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
    return {
        "a": {"url": serving.image_url(a_image), "label": a_label},
        "b": {"url": serving.image_url(b_image), "label": b_label},
        "mode": mode,
        "flicker_ms": D.AB_FLICKER_MS,
        "gain": D.AB_DIFF_GAIN,
        "diff_max_px": D.AB_DIFF_MAX_PX,
        "max_px": D.AB_MAX_PX,
    }


def draw(key: str, a_image: str, a_label: str, b_image: str, b_label: str) -> None:
    """Draw the A/B element (a new pair starts in the wipe view at the middle)."""
    _component(key=key, data=versions.versioned(key, data(a_image, a_label, b_image, b_label)))


def check_lines(found: dict[str, dict[str, Any]], a_run: str, b_run: str) -> None:
    """Both images' check lines side by side, under A and B (as text: they quote the prompt)."""
    if not (found.get(a_run) or found.get(b_run)):
        return
    for column, side, run_id in zip(st.columns(2), ("A", "B"), (a_run, b_run)):
        with column.container(key=f"ab_checks_{side}"):
            st.caption(f"{side}'s checks")
            for line in report.lines(found.get(run_id, {})) or ["not checked yet"]:
                st.text(line)
