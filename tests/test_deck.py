"""The presenter view's deck (flux_core/deck.py): what a link asks for, in which order, in which words."""

from __future__ import annotations


import pytest

from flux_core import deck
from flux_core.ledger import reviews, sweeps
from flux_core.ledger.history import Query
from flux_core.ledger.records import Run
from flux_core.params import FluxParams, ParamsError


def test_a_presenter_link_names_a_sweep_a_selection_or_a_search():
    sweep = deck.parse({"sweep": ["s1"], "i": ["3"], "blind": ["1"], "layout": ["seed,prompt"]})
    assert (sweep.kind, sweep.sweep_id, sweep.index, sweep.blind) == ("sweep", "s1", 2, True)
    assert sweep.back() == ("compare", {"sweep": "s1", "layout": "seed,prompt"})
    picked = deck.parse({"runs": ["a, b,a,,c"]})
    assert (picked.kind, picked.run_ids, picked.index, picked.blind) == ("runs", ("a", "b", "c"), 0, False)
    assert picked.back() == ("history", {"h_sel": "a,b,c"})
    search = deck.parse({"q": ["cube"], "tol": ["1", "3"], "sweep": ["s1"]})  # sweep: History's filter
    assert search.kind == "q" and search.query({}) == Query(
        text="cube", tolerances=(1, 3), sweep_id="s1", page_size=search.query({}).page_size
    )
    assert search.back() == ("history", {"h_q": ["cube"], "h_tol": ["1", "3"], "h_sweep": ["s1"]})


@pytest.mark.parametrize(
    "params, problem",
    [
        ({}, "the link must name one of sweep=<sweep id>, runs=<id>,<id>,... or q=<search words>"),
        ({"sweep": ["a"], "runs": ["b"]}, "or q=<search words>, not 2 (sweep, runs)"),
        ({"runs": [" , "]}, "runs: name at least one run id, separated by commas"),
        ({"sweep": [""]}, "sweep: name a sweep by its id"),
        ({"sweep": ["a"], "i": ["0"]}, "i: must be the number of an image, from 1, not '0'"),
        ({"sweep": ["a"], "blind": ["maybe"]}, "blind: must be 1 or 0, not 'maybe'"),
        ({"sweep": ["a"], "h_tol": ["3"]}, "h_tol: not a parameter of the presenter view"),
    ],
)
def test_a_presenter_link_that_cannot_be_shown_is_named(params, problem):
    with pytest.raises(ParamsError) as info:
        deck.parse(params)
    assert any(problem in p for p in info.value.problems), info.value.problems


def run(run_id: str, prompt: str, seed: int, **kw) -> Run:
    params = FluxParams(prompt=prompt, seed=seed, width=512, height=512)
    fixed = dict(created_at="", updated_at="", status="COMPLETED", model="m", backend="emulator")
    return Run(
        id=run_id, request=params.payload(), base_url="", request_hash="", **fixed, **params.payload(), **kw
    )


def test_a_sweep_is_read_slice_by_slice_row_by_row_left_to_right():
    axes = [
        sweeps.axis("seed", [1, 2]),
        sweeps.axis("safety_tolerance", [1, 3]),
        sweeps.axis("prompt", ["a", "b"]),
    ]
    cells = [
        sweeps.Cell(n, (s, t, p), run(f"r{n}", "x", 1), False)
        for n, (s, t, p) in enumerate((s, t, p) for s in range(2) for t in range(2) for p in range(2))
    ]
    view = sweeps.SweepView("s", "", "", {}, axes, cells)
    # rows: seed, columns: tolerance, stacked: prompt
    assert [c.coords for c in deck.sweep_order(view, [0, 1, 2])] == [
        (0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0), (0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 1, 1)
    ]  # fmt: skip


def test_a_selection_says_what_differs_and_each_slide_its_settings():
    rows = [run("a", "a red cube on grass", 1, cost_usd=0.07), run("b", "a blue cube on grass", 1, cost=0.5)]
    assert deck.differing(rows) == ["prompt: red", "prompt: blue"]
    assert deck.differing(rows[:1]) == [""]
    [one, two] = deck.slides(rows, ["red", "blue"], {"a": ["text 1/1 right"]})
    assert one.settings == (
        ("Model", "m"),  # the fixture's model slug, shown as it is when it is none of FLUX.2's
        ("Seed", "1"),
        ("Tolerance", "3"),
        ("Check", "text 1/1 right"),
        ("Cost", "$0.07 (Segmind's record)"),
    )
    assert two.settings[-1] == ("Cost", "0.5 credits")


def test_the_tally_in_words():
    said = [
        reviews.Verdict("r", who, v, "")
        for who, v in (("a", "approve"), ("b", "needs work"), ("c", "approve"))
    ]
    assert deck.tally_words(said) == "2 approve · 1 needs work"
    assert deck.tally_words([]) == "no verdicts yet"
