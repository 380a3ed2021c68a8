"""FLUX.2 [max], [pro] and [flex] on one axis (issue 20, item 4): the model of a request, what is sent
to each slug, the price of each, the emulator's three slugs, the model recorded on every run, a
sweep over models and the CLI's --model."""

from __future__ import annotations

import json

import pytest

from flux_core import caps
from flux_core import defaults as D
from flux_core.cli import main
from flux_core.ledger import history, store, sweeps
from flux_core.ledger.store import Ledger, request_hash
from flux_core.media.images import embed_recipe
from flux_core.params import FluxParams, ParamsError
from flux_core.pricing import Pricing, learn
from flux_core.segmind.records import RequestRecord
from flux_core.settle import find_submit_ops, model_of
from tests.conftest import client_for, run_row, run_sweep
from tests.test_client import SUBMIT_BODY, Script, make

MAX, PRO, FLEX = "flux-2-max", "flux-2-pro", "flux-2-flex"
BASE = FluxParams.parse(prompt="a lighthouse at dusk", seed=1, width=256, height=256)


def problems(**fields) -> list[str]:
    with pytest.raises(ParamsError) as caught:
        FluxParams.parse(prompt="x", seed=1, **fields)
    return caught.value.problems


# --- the request ------------------------------------------------------------------------------
def test_each_model_is_sent_to_its_own_slug_and_the_body_never_names_a_model():
    flex_only = set(D.FLEX_FIELDS)
    for model in (MAX, PRO, FLEX):
        script = Script({f"POST /v2/{model}": [(200, SUBMIT_BODY)]})
        make(script).submit(BASE.replace(model=model))
        [sent] = script.calls
        body = json.loads(sent.content)
        assert sent.url.path == f"/v2/{model}" and "model" not in body
        assert (flex_only & set(body)) == (flex_only if model == FLEX else set())
    assert body["steps"] == D.FLEX_STEPS and body["guidance"] == D.FLEX_GUIDANCE
    assert body["prompt_upsampling"] is False  # off by default, and said, so a seed stays meaningful


def test_flex_fields_are_flex_only_and_checked_against_their_ranges():
    assert problems(model=PRO, steps=20, guidance=3) == [
        "steps: only FLUX.2 [flex] takes it (this request is for FLUX.2 [pro])",
        "guidance: only FLUX.2 [flex] takes it (this request is for FLUX.2 [pro])",
    ]
    assert problems(model=FLEX, steps=0, guidance=11) == [
        "steps must be from 1 to 50 (got 0)",
        "guidance must be from 1.5 to 10.0 (got 11)",
    ]
    assert problems(model="flux-2-klein-9b") == [
        "model must be one of flux-2-max, flux-2-pro, flux-2-flex (got 'flux-2-klein-9b')"
    ]
    flex = FluxParams.parse(prompt="x", seed=1, model=" FLUX-2-FLEX ", steps=20, prompt_upsampling=True)
    assert (flex.model, flex.steps, flex.guidance, flex.prompt_upsampling) == (FLEX, 20, 4.5, True)


def test_moving_a_flex_request_to_another_model_leaves_flex_fields_behind():
    flex = BASE.replace(model=FLEX, steps=12)
    assert flex.replace(model=PRO).payload() == BASE.payload()
    assert flex.replace(seed=2).steps == 12 and flex.replace(seed=2).model == FLEX


def test_a_max_requests_hash_is_what_it_was_before_the_model_axis():
    body = {"prompt": "x", "seed": 1, "width": 1024, "height": 1024, "safety_tolerance": 3}
    body["output_format"] = "png"
    canonical = json.dumps({"model": MAX, **body}, sort_keys=True, separators=(",", ":"))
    import hashlib

    params = FluxParams.parse(body)
    assert params.model == MAX and params.payload() == body
    assert request_hash(params.model, params.payload()) == hashlib.sha256(canonical.encode()).hexdigest()
    assert request_hash(PRO, params.payload()) != request_hash(MAX, params.payload())


def test_old_runs_and_recipes_without_a_model_read_as_max():
    row = run_row(request={"prompt": "a red cube", "seed": 42, "width": 64, "height": 64})
    assert row.params.model == MAX
    pro = run_row(model=PRO, request={"prompt": "a red cube", "seed": 42, "width": 64, "height": 64})
    assert pro.params.model == PRO
    from PIL import Image
    import io

    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG")
    old = embed_recipe(out.getvalue(), {"params": {"prompt": "a cube", "seed": 3}, "run_id": "R"})
    assert history.recall_image(old).params.model == MAX
    new = embed_recipe(out.getvalue(), {"model": FLEX, "params": {"prompt": "a cube", "seed": 3, "steps": 9}})
    assert history.recall_image(new).params.steps == 9


# --- prices -----------------------------------------------------------------------------------
def test_a_flat_max_price_prices_the_others_in_the_tables_proportions():
    flat = Pricing(per_image=0.07)
    ratio = {m: D.PRICES_USD[m][0] / D.PRICES_USD[MAX][0] for m in D.MODELS}
    for model in D.MODELS:
        assert flat.for_params(BASE.replace(model=model, width=1024, height=1024)) == pytest.approx(
            0.07 * ratio[model]
        )
    assert Pricing().rates(PRO) == D.PRICES_USD[PRO] and Pricing().rates(FLEX) == D.PRICES_USD[FLEX]
    assert len({Pricing().usd(1024, 1024, model=m) for m in D.MODELS}) == 3


def test_a_learned_max_price_is_never_applied_to_pro(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    for seed in (1, 2):
        ledger.record_run(
            BASE.replace(seed=seed, width=1024, height=1024),
            store.COMPLETED,
            backend="segmind",
            base_url="http://x",
            cost_usd=0.5,
        )
    pricing = learn(ledger, "http://x", None)
    assert pricing.learned and pricing.of(MAX).per_megapixel == pytest.approx(0.5 / 1.048576, abs=1e-6)
    assert not pricing.of(PRO).learned and pricing.rates(PRO) == D.PRICES_USD[PRO]
    assert pricing.words(0.1, models=[MAX]).startswith("Estimated cost: $0.1, learned from 2")
    assert pricing.words(0.1, models=[MAX, PRO]) == "Estimated cost: 0.1 credits"


def test_spend_counts_each_unsettled_run_at_its_own_models_price(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    for model in (MAX, PRO, FLEX):
        ledger.create_run(
            BASE.replace(model=model, width=1024, height=1024), backend="x", base_url="http://x"
        )
    with ledger.db() as db:
        spent = caps.spent(db, base_url="http://x", person="", pricing=Pricing())
    mp = 1024 * 1024 / 1e6
    assert spent.team_day == pytest.approx(sum(D.PRICES_USD[m][0] * mp for m in D.MODELS), abs=1e-5)


# --- the emulator and the request history -----------------------------------------------------
def test_the_emulator_serves_three_slugs_each_at_its_price_and_refuses_flex_fields_elsewhere(emulator):
    server = emulator(latency_s=0, queue_s=0)
    costs = {}
    with client_for(server) as client:
        for model in (MAX, PRO, FLEX):
            outcome = client.wait(client.submit(BASE.replace(model=model)))
            costs[model] = outcome.metrics["cost"]
        models = {r.model_name for r in client.history(page=1).records}
    assert models == {MAX, PRO, FLEX}
    assert costs[MAX] == D.EMULATOR_COST and len(set(costs.values())) == 3
    assert costs[FLEX] == pytest.approx(D.EMULATOR_COST * D.PRICES_USD[FLEX][0] / D.PRICES_USD[MAX][0])
    import httpx

    sent = httpx.post(
        f"{server.url}/v2/{PRO}",
        json={**BASE.payload(), "steps": 20},
        headers={"x-api-key": "SG_test"},
    )
    assert sent.status_code == 400 and "steps is not a parameter of flux-2-pro" in sent.text
    sent = httpx.post(
        f"{server.url}/v2/{FLEX}", json={**BASE.payload(), "guidance": 20}, headers={"x-api-key": "SG_test"}
    )
    assert sent.status_code == 400 and "guidance must be a number between 1.5 and 10" in sent.text


def test_a_lost_submit_is_never_settled_with_another_models_request(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    body = BASE.payload()
    row = {
        "request_id": "R-PRO",
        "model_name": "flux-2-pro",
        "request_body": body,
        "model_status": "COMPLETED",
    }
    script = Script({"GET /inference-request/request-history": [(200, {"data": [row]})]})
    client = make(script)
    from datetime import datetime, timedelta, timezone

    began = datetime.now(timezone.utc) - timedelta(seconds=5)
    assert client._run(find_submit_ops(client, ledger, body, began, MAX)).record is None
    found = client._run(find_submit_ops(client, ledger, body, began, PRO)).record
    assert found is not None and found.request_id == "R-PRO"
    assert model_of(RequestRecord(request_id="x", model_name="FLUX 2 Flex")) == FLEX
    assert model_of(RequestRecord(request_id="x", model_name="flux-2-klein-9b")) is None


# --- a sweep over models ----------------------------------------------------------------------
def test_two_models_by_three_seeds_complete_each_run_recording_its_model_and_cost(sweep_lab):
    server, ledger, runner = sweep_lab
    plan = sweeps.make_plan(BASE, [sweeps.axis("model", [MAX, FLEX]), sweeps.axis("seed", [1, 2, 3])])
    assert [a.labels for a in plan.axes][0] == ("FLUX.2 [max]", "FLUX.2 [flex]")
    est = sweeps.estimate(plan, ledger, base_url=server.url, pricing=Pricing(per_image=0.07))
    by_model = {m: Pricing(per_image=0.07).for_params(BASE.replace(model=m)) for m in (MAX, FLEX)}
    assert (
        est.cost == pytest.approx(3 * by_model[MAX] + 3 * by_model[FLEX]) and by_model[MAX] != by_model[FLEX]
    )
    view = run_sweep(ledger, runner, plan)
    assert {c.outcome for c in view.cells} == {"done"} and len(view.cells) == 6
    models = [c.run.model for c in view.cells]
    assert models == [MAX] * 3 + [FLEX] * 3
    assert {c.run.model: c.run.cost for c in view.cells} == {
        MAX: server.emulator.cost_of(MAX),
        FLEX: server.emulator.cost_of(FLEX),
    }
    assert all(("steps" in c.run.request) == (c.run.model == FLEX) for c in view.cells)
    assert view.base["model"] == MAX and {j.slug for j in server.emulator.jobs.values()} == {MAX, FLEX}
    again = sweeps.estimate(plan, ledger, base_url=server.url, pricing=Pricing(per_image=0.07))
    assert (again.new, again.reused) == (0, 6)  # each cell's exact request, of its own model


def test_history_filters_by_model(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    for model in (MAX, PRO, PRO):
        ledger.record_run(BASE.replace(model=model), store.COMPLETED, backend="x", base_url="http://x")
    query = history.query_from({"h_model": [PRO]})
    found = history.find(ledger, query)
    assert {r.model for r in found.rows} == {PRO} and found.total == 2
    with pytest.raises(history.FilterError, match="Model: must be one of flux-2-max"):
        history.query_from({"h_model": ["flux-2-klein-9b"]})


# --- the CLI ----------------------------------------------------------------------------------
def test_cli_generate_and_sweep_take_a_model(capsys, data_dir):
    code = main(
        ["--data-dir", str(data_dir), "generate", "--emulator", "--prompt", "a cube", "--seed", "1"]
        + ["--width", "256", "--height", "256", "--model", PRO, "--json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["model"] == PRO
    code = main(
        ["--data-dir", str(data_dir), "sweep", "--emulator", "--prompt", "a cube", "--seeds", "1,2,3"]
        + ["--width", "256", "--height", "256", "--model", f"{MAX},{FLEX}", "--steps", "20", "--json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["model"] for r in printed) == [FLEX] * 3 + [MAX] * 3
    assert len({r["cost"] for r in printed}) == 2
    runs = Ledger(data_dir / "ledger.db").search(None, limit=20)
    assert {r.request.get("steps") for r in runs if r.model == FLEX} == {20}
    assert all("steps" not in r.request for r in runs if r.model != FLEX)


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--model", "flux-2-klein-9b"], "model must be one of flux-2-max, flux-2-pro, flux-2-flex"),
        (["--model", PRO, "--steps", "20"], "steps: only FLUX.2 [flex] takes it"),
        (["--model", FLEX, "--guidance", "0.5"], "guidance must be from 1.5 to 10.0"),
    ],
)
def test_cli_refuses_a_bad_model_or_flex_field_by_name_and_sends_nothing(capsys, data_dir, flags, said):
    code = main(["--data-dir", str(data_dir), "generate", "--emulator", "--prompt", "a cube", *flags])
    _, err = capsys.readouterr()
    assert code != 0 and said in err and "Traceback" not in err
    assert Ledger(data_dir / "ledger.db").search(None) == []


def test_import_history_brings_each_request_in_under_its_own_model(capsys, monkeypatch, emulator, data_dir):
    from tests.test_cli import point_at

    server = emulator(latency_s=0, queue_s=0)
    with client_for(server) as client:  # made outside Flux Lab, one request to each model
        made = {m: client.submit(BASE.replace(model=m, seed=i)).request_id for i, m in enumerate(D.MODELS)}
    point_at(monkeypatch, server)
    code = main(["--data-dir", str(data_dir), "import-history", "--days", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    imported = {r["request_id"]: r for r in json.loads(out)["imported"]}
    assert {imported[rid]["model"] for rid in made.values()} == set(D.MODELS)
    [flex] = [r for r in Ledger(data_dir / "ledger.db").search(None) if r.model == FLEX]
    assert flex.params.steps == D.FLEX_STEPS and flex.request_id == made[FLEX]


def test_the_same_body_to_another_model_is_another_request_not_a_double_click(
    emulator, monkeypatch, data_dir
):
    from flux_core.service import Workbench
    from tests.conftest import TEST_KEY

    server = emulator(latency_s=0.1, queue_s=0.05)
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_RPM", "0")
    bench = Workbench(data_dir, api_key=TEST_KEY, emulator="never", background=False)
    try:
        first = bench.submit(BASE, guard="session-a")
        assert bench.submit(BASE, guard="session-a") == first  # a double click
        pro = bench.submit(BASE.replace(model=PRO), guard="session-a", parent=first)
        rows = {r.id: r for r in bench.wait([first, pro])}
        assert pro != first and rows[pro].model == PRO
        assert rows[pro].lineage == store.EDIT  # another model is an edit of the run, not a recall
    finally:
        bench.shutdown(wait=True)
