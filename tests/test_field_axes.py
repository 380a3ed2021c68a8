"""Field axes (one field of a structured prompt swept), the prompt-form axis, changed fields in a
comparison and History's filter by a field's value: from the CLI and from the service and pages."""

from __future__ import annotations

import json

import pytest

from flux_core import structured
from flux_core.ledger import history, sweeps
from flux_core.params import FluxParams, ParamsError
from flux_ui.templates import MAGAZINE_SHOOT
from tests.test_app_compare import compare_page, plan, run_and_finish, texts
from tests.test_cli import cli, point_at

TOPS = ["Red raincoat", "Blue denim jacket", "White hoodie"]


def field_sweep(capsys, *extra: str) -> list[dict]:
    argv = ["sweep", "--prompt", MAGAZINE_SHOOT, "--seeds", "7", "--width", "256", "--height", "256"]
    argv += ["--field", "attire.top", *[a for top in TOPS for a in ("--value", top)], *extra, "--json"]
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_a_field_axis_sets_one_field_and_leaves_every_other_byte(capsys, monkeypatch, emulator):
    server = emulator()
    point_at(monkeypatch, server)
    runs = field_sweep(capsys)
    assert server.stats.submits == 3
    tops = [structured.value_at(r["prompt"], "subject.attire.top") for r in runs]
    assert sorted(tops) == sorted(TOPS)
    template_top = next(line for line in MAGAZINE_SHOOT.split("\n") if line.startswith("top: "))
    for run, top in zip(runs, tops):  # only the top's line differs from the template
        original, sent = MAGAZINE_SHOOT.split("\n"), run["prompt"].split("\n")
        assert [(a, b) for a, b in zip(original, sent) if a != b] == [(template_top, f"top: {top}")]
    from flux_core.ledger.store import Ledger
    from flux_core.settings import data_dir

    view = sweeps.load(Ledger(data_dir() / "ledger.db"), runs[0]["sweep_id"])
    assert view is not None
    assert [a.title for a in view.axes] == ["Seed", "subject.attire.top"]
    assert sorted(view.label(c) for c in view.cells) == sorted(
        f"seed 7 · subject.attire.top = {top}" for top in TOPS
    )

    # a comparison names the field and both values before the word diff: CLI and service alike
    a, b = runs[0]["run_id"], runs[1]["run_id"]
    code, out, _ = cli(capsys, "diff", a, b, "--json")
    found = json.loads(out)
    old, new = (structured.value_at(r["prompt"], "subject.attire.top") for r in runs[:2])
    assert code == 0 and found["fields"] == [f"subject.attire.top: {old} → {new}"]
    assert found["settings"] == []
    code, out, _ = cli(capsys, "diff", a, b)
    assert out.splitlines()[1] == f"subject.attire.top: {old} → {new}"
    assert "[-" in out.splitlines()[2] and "{+" in out.splitlines()[2]

    # History filters by the field's value (any case; the field, not the whole prompt)
    code, out, _ = cli(capsys, "history", "--field", "attire.top = denim", "--json")
    assert [json.loads(line)["run_id"] for line in out.splitlines()] == [
        r["run_id"] for r in runs if "denim" in r["prompt"]
    ]
    code, out, _ = cli(capsys, "history", "--field", "subject.attire.top = forest green", "--json")
    assert out == ""  # the template's other lines say forest green; this field no longer does
    code, _, err = cli(capsys, "history", "--field", "no equals sign")
    assert code == 2 and "field: must be a field's path, = and the words it holds" in err


def test_prompt_form_axis_sends_the_same_content_three_ways(capsys, monkeypatch, emulator):
    point_at(monkeypatch, emulator())
    argv = ["sweep", "--prompt", MAGAZINE_SHOOT, "--seeds", "3", "--width", "256", "--height", "256"]
    code, out, err = cli(capsys, *argv, "--prompt-forms", "json,yaml,prose", "--json")
    assert code == 0, err
    prompts = [json.loads(line)["prompt"] for line in out.splitlines()]
    assert {structured.form_of(p) for p in prompts} == {"json", "yaml", None}
    values = structured.parse(MAGAZINE_SHOOT).values()
    assert [structured.parse(p).values() == values for p in prompts if structured.form_of(p)] == [True, True]


@pytest.mark.parametrize(
    ("axis", "words"),
    [
        (lambda: sweeps.field_axis("attire.hat", ["a"]), "'attire.hat': no such field"),
        (lambda: sweeps.field_axis("subject.attire", ["a"]), "is a group"),
        (lambda: sweeps.field_axis("top", ["a", "a"]), "lists a value twice"),
        (lambda: sweeps.field_axis("top", [" ", ""]), "needs at least one value"),
        (lambda: sweeps.axis("prompt_form", ["xml"]), "allowed json, yaml, prose"),
    ],
)
def test_a_bad_field_axis_is_refused_by_name_before_anything_runs(axis, words):
    base = FluxParams.parse(prompt=MAGAZINE_SHOOT, seed=1)
    with pytest.raises(ParamsError, match=words):
        sweeps.make_plan(base, [axis()])


def test_a_field_axis_on_a_plain_prompt_says_it_needs_a_structured_one(capsys):
    code, _, err = cli(
        capsys, "sweep", "--prompt", "a red fox", "--seeds", "1", "--field", "fox", "--value", "wolf"
    )
    assert code == 2 and "needs a structured prompt" in err
    code, _, err = cli(capsys, "sweep", "--prompt", MAGAZINE_SHOOT, "--seeds", "1", "--value", "x")
    assert code == 2 and "--value needs --field" in err


def test_history_field_filter_from_a_link_is_checked_by_name():
    assert history.query_from({"h_field": "attire.top = red"}).field == ("attire.top", "red")
    with pytest.raises(history.FilterError) as err:
        history.query_from({"h_field": "attire.top"})
    assert err.value.bad[0][0] == "Field"


@pytest.mark.usefixtures("fast_app")
def test_compare_plans_and_runs_a_field_axis_and_ab_names_the_field():
    at = plan(compare_page(), MAGAZINE_SHOOT)
    at.multiselect(key="compare_axes").set_value(["Field"]).run()
    path = at.selectbox(key="compare_field_path")
    assert "subject.attire.top" in path.options
    path.set_value("subject.attire.top").run()
    at.text_area(key="compare_field_values").set_value("\n".join(TOPS)).run()
    assert not at.exception
    assert "Now: Dark forest green" in texts(at)
    assert "3 cells (3 values of subject.attire.top)" in texts(at)
    view = run_and_finish(at)
    assert sorted(structured.value_at(c.run.prompt, "subject.attire.top") for c in view.cells) == sorted(TOPS)
    shown = texts(at)  # the A/B view under the grid: cells 1 and 2
    old, new = (structured.value_at(c.run.prompt, "subject.attire.top") for c in view.cells[:2])
    assert f"subject.attire.top: {old} → {new}" in shown


@pytest.mark.usefixtures("fast_app")
def test_the_history_page_filters_by_a_fields_value():
    from tests.test_app_history import cards, history_page

    prompts = [structured.set_value(MAGAZINE_SHOOT, "attire.top", top) for top in TOPS]
    at, ids = history_page([dict(prompt=p, seed=1, width=256, height=256) for p in prompts])
    at.toggle(key="h_filters").set_value(True).run()
    at.text_input(key="h_field").set_value("attire.top = DENIM").run()
    assert not at.exception
    assert [c["id"] for c in cards(at)] == [ids[1]]
    at.text_input(key="h_field").set_value("attire.top").run()  # no value: named, nothing looked up
    assert "Field must be a field's path, = and the words it holds" in texts(at).replace("\\", "")
