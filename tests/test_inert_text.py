"""User text (prompts, names, labels, URL parameters) is shown as text, never as Markdown: where
Streamlit only draws Markdown (table cells, headings, alerts, radio options) it goes through
`presentation.markdown_text`; everywhere else it is drawn with st.text or as data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core.ledger import sweeps
from flux_core.params import FluxParams
from flux_core.presentation import HIGHLIGHT, highlighted, markdown_text
from tests.test_app_history import click_in_gallery, history_page

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAYLOADS = ["**bold**", "![s](http://host/x)", "<img src=x>", "http://auto.link"]
ALL = " ".join(PAYLOADS)


def read_back(markdown: str) -> str:
    """What a reader sees of Markdown made only of text and backslash escapes."""
    out, chars = [], iter(markdown.replace("\u2060", ""))
    for char in chars:
        out.append(next(chars) if char == "\\" else char)
    return "".join(out)


def as_markdown(at: AppTest) -> list[str]:
    """Every string on the page that Streamlit draws as Markdown."""
    found = [
        str(e.value)
        for kind in ("markdown", "caption", "subheader", "header", "title", "error", "warning", "info")
        for e in getattr(at, kind)
    ]
    found += [str(o) for r in at.radio for o in r.options]
    found += [str(c) for t in at.table for c in t.value.to_numpy().ravel()]
    return found


def assert_never_markup(at: AppTest) -> None:
    for text in as_markdown(at):
        for payload in PAYLOADS:
            assert payload not in text, f"{payload!r} reaches Markdown as is in {text!r}"


@pytest.mark.parametrize("payload", [*PAYLOADS, ALL, "www.x.org a@b.co :red[x] :smile: $x^2$ # h\n- l"])
def test_markdown_text_escapes_every_mark_and_reads_back_exactly(payload):
    inert = markdown_text(payload)
    assert read_back(inert) == payload
    # no bare link left: an invisible word joiner stands before every ":", "@" and "."
    assert all(inert[i - 2 : i] == "\u2060\\" for i, c in enumerate(inert) if c in ":@.")
    assert all(inert[i - 1] == "\\" for i, c in enumerate(inert) if c in "*![]()<>`#$-_|~")


@pytest.mark.parametrize("payload", [ALL, "a ]closing[ bracket] and :red[x]", "two\nlines", "\\]"])
def test_a_highlight_holds_the_inert_text_whole_and_nothing_closes_it_early(payload):
    marked = highlighted(markdown_text(payload))
    head, tail = HIGHLIGHT.split("{}")
    inside = marked.removeprefix(head).removesuffix(tail)
    assert marked == head + inside + tail and "\n" not in marked
    # every bracket inside is escaped: the highlight's own "]" is the only one that closes it
    assert all(inside[i - 1] == "\\" for i, c in enumerate(inside) if c in "[]")
    assert read_back(inside) == payload.replace("\n", " ")
    assert highlighted("") == ""


@pytest.mark.usefixtures("fast_app")
def test_history_shows_prompts_in_the_comparison_as_text():
    at, ids = history_page([dict(prompt="a cat " + ALL, seed=1), dict(prompt="a dog", seed=2)])
    click_in_gallery(at, "selection", ids)
    settings = at.table[0].value
    [prompts] = settings[settings["field"] == "prompt"][["#1", "#2"]].to_numpy().tolist()
    # the prompts differ: each on a highlight, its text inert inside it
    assert sorted(prompts) == sorted(
        [highlighted(markdown_text("a cat " + ALL)), highlighted(markdown_text("a dog"))]
    )
    assert_never_markup(at)


@pytest.mark.usefixtures("fast_app")
def test_a_seed_filter_from_a_link_is_shown_as_text():
    link = AppTest.from_file(APP, default_timeout=30)
    link.run()
    link.switch_page("pages/history.py")
    link.query_params["h_seed"] = PAYLOADS[1]
    link.run()
    assert not link.exception
    assert "Seed must be a whole number. The Seed filter holds:" in [e.value for e in link.error]
    assert PAYLOADS[1] in [t.value for t in link.text]
    assert_never_markup(link)


@pytest.mark.usefixtures("fast_app")
def test_compare_shows_sweep_names_axis_labels_and_the_ab_table_as_text():
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    bench = at.session_state["workbench"]
    prompts, labels = sweeps.replace_variants("a cat PHRASE", "PHRASE", [ALL])
    plan = sweeps.make_plan(
        FluxParams.parse(prompt="a cat PHRASE", seed=1),
        [
            sweeps.axis("seed", [1, 2]),
            sweeps.axis("safety_tolerance", [3]),
            sweeps.axis("prompt", prompts, labels),
        ],
    )
    sweep_id = bench.start_sweep(plan, name=ALL)
    view = sweeps.load(bench.ledger, sweep_id)
    bench.default.runner.wait([c.run.id for c in view.cells])
    at.switch_page("pages/compare.py")
    at.query_params["sweep"] = sweep_id
    at.run()
    assert not at.exception
    assert markdown_text(ALL) in [s.value for s in at.subheader]  # the sweep's name
    # the grid element sets every label as text (textContent), so it gets them as typed
    [grid] = [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.sweep_grid"]
    slices = [s["title"] for s in json.loads(grid.proto.json)["slices"]]
    assert slices == ["Prompt: PHRASE", f"Prompt: {ALL}"]
    view = sweeps.load(bench.ledger, sweep_id)
    cat = next(c for c in view.cells if ALL in c.run.prompt)
    at.selectbox(key="compare_b").set_value(cat.idx)
    at.run()
    settings = at.table[0].value
    assert settings[settings["field"] == "prompt"]["B"].tolist() == [
        highlighted(markdown_text("a cat " + ALL))
    ]
    assert_never_markup(at)
    at.button(key="compare_new").click()  # the saved sweeps' cards: the name as text
    at.run()
    assert ALL in [t.value for t in at.text]
    assert_never_markup(at)
