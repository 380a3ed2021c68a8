"""AppTest of the Present page (issue 17): a sweep, a selection or a search, one image at a time;
blind mode, bad links, verdicts from the room and their tally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core import defaults as D
from flux_core.ledger import sweeps
from flux_core.params import FluxParams
from flux_core.service import Workbench
from flux_core.team import Actor, Role

ROOT = Path(__file__).resolve().parents[1]
KIM = Actor("kim@example.com", Role.VIEWER, "Kim", signed_in=True)

pytestmark = pytest.mark.usefixtures("fast_app")


@pytest.fixture
def lab(data_dir, monkeypatch):
    """A finished 2 seeds × 3 tolerances sweep and two runs of a teapot, on the embedded emulator."""
    monkeypatch.setenv(D.CHECKS_ENV, "0")  # no check results landing between two reruns
    wb = Workbench.shared(data_dir)
    sweep_id = wb.start_sweep(
        sweeps.make_plan(
            FluxParams(prompt="a red cube", width=512, height=512),
            [sweeps.axis("seed", [1, 2]), sweeps.axis("safety_tolerance", [1, 3, 5])],
        )
    )
    view = wb.sweep(sweep_id)
    assert view is not None
    runs = wb.wait(
        [c.run.id for c in view.cells]
        + [
            wb.submit(FluxParams(prompt="a teapot on a table", width=512, height=512, seed=7)),
            wb.submit(FluxParams(prompt="a teapot on a chair", width=512, height=512, seed=8)),
        ]
    )
    return wb, sweep_id, [r.id for r in runs[-2:]]


def present(wb: Workbench, who: Actor | None = None, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "present.py"), default_timeout=30)
    at.session_state["workbench"] = wb.acting(who) if who else wb
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception[0].stack_trace
    return at


def stage(at: AppTest) -> dict:
    """The stage as the page sent it to the browser."""
    [found] = [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.presenter"]
    return json.loads(found.proto.json)


def act(at: AppTest, event: str, value: dict) -> None:
    """Rerun as the browser does after a trigger of the stage (a step, a verdict, Back)."""
    from streamlit.components.v2.bidi_component.main import _make_trigger_id

    [found] = [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.presenter"]
    states = at._tree.get_widget_states()
    trigger = states.widgets.add()
    trigger.id = _make_trigger_id(found.proto.id, "events")
    trigger.json_trigger_value = json.dumps([{"event": event, "value": {**value, "at": 1}}])
    at._run(states)
    assert not at.exception, at.exception[0].stack_trace


def said(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("error", "text") for e in getattr(at, kind))


def test_a_sweep_is_shown_in_the_grids_reading_order_with_its_settings(lab):
    wb, sweep_id, _ = lab
    data = stage(present(wb, sweep=sweep_id))
    # rows are seeds, columns tolerances (Compare's default places): row by row, left to right
    assert [s["label"] for s in data["slides"]] == [
        f"seed {seed} · tolerance {t}" for seed in (1, 2) for t in (1, 3, 5)
    ]
    assert data["start"] == 0 and data["show_settings"] and not data["blind"]
    first = data["slides"][0]
    assert "/_flux/images/" in first["full"] and first["run"]
    names = [name for name, _ in first["settings"]]
    assert names[:3] == ["Model", "Seed", "Tolerance"] and names[-1] == "Cost"
    # Compare's placing of the axes, from its link: columns are seeds now
    placed = stage(present(wb, sweep=sweep_id, layout="safety_tolerance,seed", i="2"))
    assert [s["label"] for s in placed["slides"]][:2] == ["seed 1 · tolerance 1", "seed 2 · tolerance 1"]
    assert placed["start"] == 1


def test_a_selection_and_a_search_say_the_settings_that_differ(lab):
    wb, _, (table, chair) = lab
    data = stage(present(wb, runs=f"{chair},{table}"))
    assert [s["run"] for s in data["slides"]] == [chair, table]  # in the link's order
    assert [s["label"] for s in data["slides"]] == ["prompt: chair · seed: 8", "prompt: table · seed: 7"]
    found = stage(present(wb, q="teapot", seed="7"))
    assert [s["run"] for s in found["slides"]] == [table]
    assert found["title"] == "Search: teapot"


def test_blind_hides_the_settings_and_every_run_id(lab):
    wb, sweep_id, _ = lab
    at = present(wb, sweep=sweep_id, blind="1")
    data = stage(at)
    assert data["blind"] and not data["show_settings"]
    ids = [c.run.id for c in wb.sweep(sweep_id).cells]
    raw = json.dumps(data)
    assert not [run_id for run_id in ids if run_id in raw]


@pytest.mark.parametrize(
    "query, words",
    [
        ({"sweep": "nope"}, "There is no sweep 'nope' in the ledger."),
        ({"runs": "r1,<b>r2</b>"}, "There is no run 'r1', '<b>r2</b>' in the ledger."),
        ({"q": "teapot", "tol": "9"}, "Safety tolerance: must be a whole number from 0 to 6, not '9'"),
        ({"q": "teapot", "i": "40"}, "i: must be from 1 to 2 (the images shown), not 40"),
        ({"sweep": "x", "runs": "y"}, "the link must name one of sweep=<sweep id>, runs=<id>,<id>,... or q="),
        ({"q": "teapot", "colour": "**red**"}, "colour: not a parameter of the presenter view"),
    ],
)
def test_a_link_that_cannot_be_shown_says_why_as_text(lab, query, words):
    wb, _, _ = lab
    at = present(wb, **query)
    assert "This presenter link cannot be shown:" in [e.value for e in at.error]
    assert any(words in t.value for t in at.text), said(at)
    assert not [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.presenter"]


def test_a_verdict_lands_in_the_ledger_and_the_tally_shows_it(lab):
    wb, sweep_id, _ = lab
    at = present(wb, sweep=sweep_id)
    at.text_input(key="present_voter").set_value("Ann").run()
    act(at, "step", {"i": 2})
    assert at.query_params["i"] == "3"
    act(at, "verdict", {"i": 2, "verdict": "approve"})
    shown = stage(at)["slides"][2]
    [verdict] = wb.verdicts([shown["run"]])[shown["run"]]
    assert (verdict.reviewer, verdict.verdict) == ("Ann", "approve")
    assert shown["tally"] == "1 approve" and shown["mine"] == "approve"
    wb.set_verdict([shown["run"]], "needs work", reviewer="Bo")  # someone else in the room
    at.run()
    assert stage(at)["slides"][2]["tally"] == "1 approve · 1 needs work"
    act(at, "verdict", {"i": 2, "verdict": None})  # the same key again takes it back
    assert stage(at)["slides"][2]["tally"] == "1 needs work"


def test_a_viewer_votes_and_a_refusal_is_a_message(lab):
    wb, _, (table, chair) = lab
    at = present(wb, KIM, runs=f"{table},{chair}")
    assert stage(at)["can_vote"]
    assert not [t for t in at.text_input if t.key == "present_voter"]  # signed in: their own name
    act(at, "verdict", {"i": 0, "verdict": "reject"})
    assert [(v.reviewer, v.verdict) for v in wb.verdicts([table])[table]] == [("kim@example.com", "reject")]
    wb.delete([chair])
    wb.purge([chair])  # gone from the ledger while the room looks at it
    act(at, "verdict", {"i": 1, "verdict": "approve"})
    assert "Your verdict was not recorded:" in [e.value for e in at.error]
    assert any(chair in t.value for t in at.text)


def test_back_returns_to_the_sweep_in_compare(lab):
    wb, sweep_id, _ = lab
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.run()
    at.switch_page("pages/present.py")
    at.query_params["sweep"] = sweep_id
    at.query_params["layout"] = "safety_tolerance,seed"
    at.run()
    assert stage(at)["slides"]
    act(at, "back", {})
    assert at.query_params["sweep"] == sweep_id and at.query_params["layout"] == "safety_tolerance,seed"
    assert "Compare" in [t.value for t in at.title]


def routed(page: str, **query: str) -> AppTest:
    """A page reached through the router (app.py), as a browser reaches it."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.run()
    at.switch_page(f"pages/{page}.py")
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception[0].stack_trace
    return at


def test_compare_presents_its_sweep_as_placed(lab):
    wb, sweep_id, _ = lab
    at = routed("compare", sweep=sweep_id, layout="safety_tolerance,seed")
    at.button(key="compare_present").click().run()
    assert not at.exception, at.exception[0].stack_trace
    assert at.query_params["sweep"] == sweep_id and at.query_params["layout"] == "safety_tolerance,seed"
    assert len(stage(at)["slides"]) == 6


def test_history_presents_its_selection_and_its_results(lab):
    wb, _, (table, chair) = lab
    at = routed("history", h_sel=f"{chair},{table}")
    at.button(key="h_present_selected").click().run()
    assert not at.exception, at.exception[0].stack_trace
    assert [s["run"] for s in stage(at)["slides"]] == [chair, table]
    at = routed("history", h_q="teapot", h_filters="true", h_seed="8")
    at.button(key="h_present").click().run()
    assert not at.exception, at.exception[0].stack_trace
    assert at.query_params["q"] == "teapot" and at.query_params["seed"] == "8"
    assert [s["run"] for s in stage(at)["slides"]] == [chair]
