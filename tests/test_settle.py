"""Runs settled with Segmind's request history, end to end through `flux-lab` against the real
emulator on loopback: lost submit replies, 504s, 5xx after the job was made, results past the
retention, real cost, and runs made elsewhere."""

from __future__ import annotations

import json

import httpx

from flux_core import defaults as D
from flux_core.ledger import store
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams
from flux_core.pricing import Pricing, learn
from tests.conftest import DEAD_LEASE, TEST_KEY, client_for, left_in_flight
from tests.test_cli import cli, point_at


def runs_of(data_dir) -> list:
    return Ledger(data_dir / "ledger.db").search(None, limit=100)


def test_a_sweep_with_lost_replies_and_504s_ends_with_every_run_completed_once(
    capsys, monkeypatch, emulator, data_dir
):
    """The issue's acceptance run: 6 seeds; two submits make their job and lose the reply, two are
    answered 504 before any job exists. Every run completes, each with its own request, and the
    server made exactly six jobs."""
    monkeypatch.setenv(D.SETTLE_GRACE_ENV, "1")
    server = emulator(submit_script=("lost-reply", "504-before", "lost-reply", "504-before"))
    point_at(monkeypatch, server)
    code, out, err = cli(
        capsys,
        "sweep",
        "--prompt",
        "a lighthouse at dusk",
        "--seeds",
        "1,2,3,4,5,6",
        "--concurrency",
        "1",
        "--json",
    )
    assert code == 0, err
    rows = runs_of(data_dir)
    assert [r.status for r in rows] == [store.COMPLETED] * 6
    assert all(r.image_path and (data_dir / r.image_path).exists() for r in rows)
    assert len({r.request_id for r in rows}) == 6 and server.stats.submits == 6
    assert server.stats.submit_requests == 8  # the two 504s were sent again, once each
    ledger = Ledger(data_dir / "ledger.db")
    details = [e.detail or "" for r in rows for e in ledger.events(r.id)]
    assert sum("Segmind received it at" in d for d in details) == 2  # the two lost replies, adopted
    assert sum(d == "Segmind has no record after 1 s; sent again." for d in details) == 2  # the 504s


def test_a_run_resumed_after_the_retention_is_completed_from_the_history(
    capsys, monkeypatch, emulator, data_dir
):
    server = emulator(retention_s=0)  # status and result are gone; the record and the file are not
    ledger = Ledger(data_dir / "ledger.db")
    with client_for(server) as client:
        run_id = left_in_flight(
            ledger, server, client, FluxParams.parse(prompt="a red cube", seed=3), key=TEST_KEY
        )
    point_at(monkeypatch, server)
    code, out, err = cli(capsys, "resume", "--json")
    assert code == 0, err
    row = ledger.get(run_id)
    assert row.status == store.COMPLETED and row.image_path and server.stats.submits == 1
    assert "request history has the result" in row.settlement


def test_show_gives_the_runs_real_cost(capsys, monkeypatch, emulator, data_dir):
    server = emulator(cost=0.08)
    point_at(monkeypatch, server)
    code, out, _ = cli(capsys, "generate", "--prompt", "a red cube", "--seed", "1", "--json")
    run_id = json.loads(out)["run_id"]
    code, out, err = cli(capsys, "show", run_id, "--json")
    assert code == 0, err
    assert json.loads(out)["cost_usd"] == 0.08


def made_elsewhere(server, prompts: list[str]) -> list[str]:
    """Requests made with the key outside Flux Lab (a script, the playground)."""
    ids = []
    with client_for(server) as client:
        for i, prompt in enumerate(prompts):
            ids.append(client.submit(FluxParams.parse(prompt=prompt, seed=100 + i)).request_id)
    return ids


def test_import_history_brings_runs_made_elsewhere_once(capsys, monkeypatch, emulator, data_dir):
    server = emulator()
    made = made_elsewhere(server, ["a harbour at noon", "a cube #fail"])
    point_at(monkeypatch, server)
    code, out, err = cli(capsys, "import-history", "--days", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    by_request = {r["request_id"]: r for r in report["imported"]}
    assert sorted(by_request) == sorted(made) and report["already"] == 0
    done, failed = by_request[made[0]], by_request[made[1]]
    assert done["status"] == store.COMPLETED and done["origin"] == D.IMPORTED and done["image_path"]
    assert failed["status"] == store.FAILED and "Internal model error" in failed["error"]
    assert server.stats.submits == 2  # nothing was sent: only read

    code, out, err = cli(capsys, "import-history", "--days", "2", "--json")
    again = json.loads(out)
    assert again["imported"] == [] and again["already"] == 2 and len(runs_of(data_dir)) == 2


def test_import_history_refuses_a_bad_window_and_changes_nothing(capsys, monkeypatch, emulator, data_dir):
    point_at(monkeypatch, emulator())
    code, out, err = cli(capsys, "import-history", "--days", "0")
    assert code == 2 and "days must be a whole number from 1 to 365" in err and "Traceback" not in err
    assert runs_of(data_dir) == []


def test_the_estimate_is_learned_from_real_costs(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    assert learn(ledger, "http://x", 0.05) == Pricing(per_image=0.05)
    for width, refs, cost in ((1024, 0, 0.07), (512, 0, 0.0175), (1024, 2, 0.09)):
        params = FluxParams.parse(
            prompt="a red cube",
            seed=1,
            width=width,
            height=1024 if width == 1024 else 512,
            image_urls=[f"https://example.com/{i}.png" for i in range(refs)],
        )
        ledger.record_run(
            params, store.COMPLETED, backend="segmind", base_url="http://x", lease=DEAD_LEASE, cost_usd=cost
        )
    pricing = learn(ledger, "http://x", 0.05)
    assert pricing.learned and pricing.learned_from == 3
    assert abs(pricing.per_megapixel - 0.07 / 1.048576) < 1e-6 and abs(pricing.per_reference - 0.01) < 1e-6
    two_refs = FluxParams.parse(
        prompt="a", seed=1, image_urls=["https://example.com/a.png", "https://example.com/b.png"]
    )
    assert abs(pricing.for_params(two_refs) - 0.09) < 1e-6
    assert pricing.words(0.09).startswith("Estimated cost: $0.09, learned from 3 runs")


def test_the_history_endpoint_is_asked_with_the_key(emulator):
    """What the settling relies on from any server: the request history answers with the key."""
    server = emulator()
    made_elsewhere(server, ["a red cube"])
    reply = httpx.get(f"{server.url}/inference-request/request-history", headers={"x-api-key": TEST_KEY})
    assert reply.status_code == 200
