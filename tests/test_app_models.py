"""AppTest of the model axis (issue 20, item 4): the model is a choice in Compose ([flex]'s own fields
with it), an axis in Compare (the same rows as the CLI's `sweep --model`), shown with every run and
filterable in History."""

from __future__ import annotations

import json

import pytest

from flux_core import defaults as D
from flux_core.cli import main
from flux_core.ledger import sweeps
from flux_core import presentation as P
from flux_core.params import FluxParams
from tests.test_app import finish_current, generate, start, texts
from tests.test_app_history import cards, click_in_gallery, history_page
from tests.test_front_ends import app_at, runs, sweeps_of

pytestmark = pytest.mark.usefixtures("fast_app")
MAX, PRO, FLEX = "flux-2-max", "flux-2-pro", "flux-2-flex"


def test_compose_sends_the_chosen_model_and_flex_fields_for_flex_only():
    at = start()
    assert at.selectbox(key="compose_model").value == MAX
    assert not [n for n in at.number_input if n.key == "compose_steps"]  # [flex]'s fields: for [flex]
    at.selectbox(key="compose_model").set_value(PRO)
    at = generate(at, "a red cube")
    row = finish_current(at)
    assert row.model == PRO and "steps" not in row.request
    assert any("FLUX.2 [pro]" in s.value for s in at.success)  # the run says its model
    assert '"model": "flux-2-pro"' in at.json[0].value

    at.selectbox(key="compose_model").set_value(FLEX)
    at.run()
    at.number_input(key="compose_steps").set_value(20)
    at.run()
    at = generate(at, "a red cube")
    row = finish_current(at)
    assert row.model == FLEX and (row.request["steps"], row.request["prompt_upsampling"]) == (20, False)

    at.number_input(key="compose_guidance").set_value(9.5)
    at.selectbox(key="compose_model").set_value(MAX)  # back to [max]: [flex]'s fields stay behind
    at = generate(at, "a red cube")
    row = finish_current(at)
    assert row.model == MAX and not set(D.FLEX_FIELDS) & set(row.request)


def test_a_recalled_flex_run_brings_its_model_and_fields_back_and_reruns_the_same_request():
    at, [run_id] = history_page(
        [{"prompt": "a green cone", "seed": 4, "width": 256, "height": 256, "model": FLEX, "steps": 12}]
    )
    click_in_gallery(at, "open", run_id)
    assert f"{P.model_name(FLEX)} · " in texts(at) or any(FLEX in j.value for j in at.json)
    at.button(key="h_compose").click()
    at.run()
    at.switch_page("pages/compose.py")  # AppTest does not follow a script's own st.switch_page on reruns
    at.run()
    assert not at.exception
    assert (
        at.selectbox(key="compose_model").value == FLEX and at.number_input(key="compose_steps").value == 12
    )
    at.button(key="compose_generate").click()
    at.run()
    bench = at.session_state["workbench"]
    newest, original = bench.recent()[0], bench.run(run_id)
    assert newest.id != original.id and (newest.model, newest.request) == (FLEX, original.request)


def test_a_sweep_over_two_models_leaves_the_same_rows_from_compare_and_the_cli(tmp_path, monkeypatch, capsys):
    web, cli = tmp_path / "web", tmp_path / "cli"
    at = app_at(web, monkeypatch)
    at.switch_page("pages/compare.py")
    at.run()
    at.text_area(key="compare_prompt").set_value("a lighthouse at dusk")
    at.multiselect(key="compare_axes").set_value(["Model", "Seed"])
    at.run()
    at.multiselect(key="compare_models").set_value([MAX, FLEX])
    at.text_input(key="compare_seeds").set_value("1, 2, 3")
    at.run()
    assert not at.exception
    [summary] = [i.value for i in at.info if "cells" in i.value]
    assert summary.startswith("6 cells (2 models × 3 seeds) · 6 new, 0 reused from the ledger")
    bench = at.session_state["workbench"]
    pricing = bench.pricing()
    base = FluxParams.parse(prompt="x", seed=1)
    per = {m: pricing.for_params(base.replace(model=m)) for m in (MAX, FLEX)}
    assert f"estimated cost {round(3 * per[MAX] + 3 * per[FLEX], 6):.4g} credits" in summary
    at.button(key="compare_run").click()
    at.run()
    assert not at.exception
    [made] = sweeps_of(web)
    bench.wait([r.id for r in bench.recent(limit=100)])
    view = sweeps.load(bench.ledger, bench.recent_sweeps(limit=1)[0].id)
    assert {c.outcome for c in view.cells} == {"done"}
    assert sorted(c.run.model for c in view.cells) == [FLEX] * 3 + [MAX] * 3
    costs = {c.run.model: c.run.cost for c in view.cells}
    assert costs[MAX] != costs[FLEX]

    axes = {a["name"]: a["values"] for a in json.loads(made["axes"])}
    base_json = json.loads(made["base"])
    code = main(
        ["--data-dir", str(cli), "sweep", "--emulator", "--prompt", base_json["prompt"]]
        + ["--seeds", ",".join(map(str, axes["seed"])), "--model", ",".join(axes["model"])]
        + ["--safety-tolerances", str(base_json["safety_tolerance"]), "--json"]
        + ["--width", str(base_json["width"]), "--height", str(base_json["height"])]
    )
    assert code == 0, capsys.readouterr().err
    assert runs(cli) == runs(web) and {r["model"] for r in runs(cli)} == {MAX, FLEX}
    # the CLI's sweep has a tolerance axis of one value besides: the same base, the same requests
    [cli_sweep], [web_sweep] = sweeps_of(cli), sweeps_of(web)
    assert cli_sweep["base"] == web_sweep["base"]
    requests = lambda sweep: sorted(c["request_hash"] for c in sweep["cells"])  # noqa: E731
    assert requests(cli_sweep) == requests(web_sweep)


def test_history_shows_each_runs_model_and_filters_by_it():
    at, ids = history_page(
        [
            {"prompt": "a red cube", "seed": 1, "width": 256, "height": 256},
            {"prompt": "a blue cube", "seed": 2, "width": 256, "height": 256, "model": PRO},
        ]
    )
    assert sorted(c["caption"].split(" · ")[0] for c in cards(at)) == ["[max]", "[pro]"]
    at.toggle(key="h_filters").set_value(True)
    at.run()
    at.multiselect(key="h_model").set_value([PRO])
    at.run()
    assert not at.exception and "1 run(s)" in texts(at)
    assert [c["id"] for c in cards(at)] == [ids[1]]
