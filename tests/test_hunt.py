"""The seed hunt (issue 20, item 3): the rules in flux_core/hunt.py, the service driving it on the real
emulator, `flux-lab hunt`, a restart in the middle of one, and one image checked once."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from flux_core import hunt as hunting
from flux_core.checks import compute
from flux_core.cli import main
from flux_core.emulator import render
from flux_core.errors import CapReached
from flux_core.ledger import hunts, sweeps
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams, ParamsError
from flux_core.pricing import Pricing
from flux_core.service import Workbench
from flux_ui.templates import MAGAZINE_SHOOT
from tests.conftest import TEST_KEY, run_row

POSTER = "A poster with the words 'FLUX LAB' and the headline 'Seed Hunt' in red and navy"
PLAIN = "a plain cube on a table"  # no text and no colours to check: no OCR, a quick hunt


def point_at(monkeypatch, server) -> None:
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_API_KEY", TEST_KEY)
    monkeypatch.setenv("SEGMIND_RPM", "0")


def base(prompt: str = POSTER, size: int = 256) -> FluxParams:
    return FluxParams.parse(prompt=prompt, seed=0, width=size, height=size)


# --- the rules ---------------------------------------------------------------------------------
def test_seeds_are_ranges_lists_or_random_and_every_bad_part_is_named():
    assert hunting.parse_seeds("1-5") == [1, 2, 3, 4, 5]
    assert hunting.parse_seeds("9, 1,5") == [9, 1, 5]
    assert hunting.parse_seeds("1-3,10") == [1, 2, 3, 10]
    assert hunting.parse_seeds("random") is None
    with pytest.raises(ParamsError) as caught:
        hunting.parse_seeds("x,5-2,1,1")
    problems = " | ".join(caught.value.problems)
    assert "'x' is not a whole number" in problems and "'5-2'" in problems and "listed twice" in problems


def test_checks_parse_and_refuse_what_is_not_allowed():
    assert hunting.parse_check("text") == hunting.Check("text")
    assert hunting.parse_check("palette:0.7") == hunting.Check("palette", 0.7)
    assert hunting.parse_check("palette").at_least == 0.8
    for bad in ("ocr", "text:1", "palette:2", "palette:much"):
        with pytest.raises(ParamsError) as caught:
            hunting.parse_check(bad)
        assert caught.value.problems[0].startswith("check:")


def test_a_plan_names_every_bad_field_at_once():
    with pytest.raises(ParamsError) as caught:
        hunting.plan(
            base("a plain cube"), checks=["text", "palette"], hits=0, seeds="a", max_images=0, max_usd=-1
        )
    problems = " | ".join(caught.value.problems)
    for field in ("check text", "check palette", "hits", "max images", "max usd", "seeds"):
        assert field in problems, field


def test_a_plan_without_a_limit_makes_at_most_the_default_and_random_seeds_are_drawn_up_front():
    spec = hunting.plan(base(), checks=["text"], hits=1, seeds="1-100")
    assert spec.max_images == 24 and spec.seeds[:3] == (1, 2, 3)
    drawn = hunting.plan(base(), checks=["distinct"], hits=1, seeds="random", max_images=5)
    assert drawn.seeds_random and len(set(drawn.seeds)) == 5
    assert hunting.HuntSpec.from_json(json.loads(json.dumps(drawn.as_json()))) == drawn
    with pytest.raises(ParamsError, match="hits: 3 wanted, but the hunt makes at most 2 images"):
        hunting.plan(base(), checks=["text"], hits=3, seeds="1,2")


def test_the_stop_rule_and_the_room_to_submit():
    spec = hunting.plan(base(), checks=["text"], hits=2, seeds="1-10", max_images=6, max_usd=0.5, batch=4)
    assert hunting.stop_reason(spec, 2, 3, 0.0, 0.1) == "hits"
    assert hunting.stop_reason(spec, 1, 6, 0.0, 0.1) == "images"
    assert hunting.stop_reason(spec, 1, 4, 0.45, 0.1) == "usd"
    assert hunting.stop_reason(spec, 1, 4, 0.4, 0.1) is None
    assert hunting.room(spec, 0, 0, 0.0, 0.1) == 4  # the batch
    assert hunting.room(spec, 4, 1, 0.4, 0.1) == 1  # the USD left: one more image
    assert hunting.room(spec, 4, 0, 0.0, 0.01) == 2  # the image limit


def test_judging_names_what_failed():
    spec = hunting.plan(base(), checks=["text", "palette:0.9", "distinct"], hits=1, seeds="1-3")
    run = run_row(image_path="images/x.png", status="COMPLETED")
    found = {
        "text": {
            "score": 1.0,
            "expected": ["FLUX LAB"],
            "found": ["FLUX LAB"],
            "misspelt": [],
            "missing": [],
        },
        "palette": {"score": 0.95, "expected": ["red"], "matched": ["red"], "missing": []},
        "print": {"phash": "ffff0000ffff0000"},
    }
    assert hunting.judge(spec, run, found, [])[0] is True
    hit, why = hunting.judge(spec, run, found, ["ffff0000ffff0001"])
    assert not hit and "near-duplicate of an earlier hit (1 bits apart)" in why
    worse = {**found, "palette": {**found["palette"], "score": 0.5}}
    assert not hunting.judge(spec, run, worse, [])[0]
    assert hunting.judge(spec, run_row(status="BLOCKED"), {}, []) == (False, "no image: blocked")


def test_a_run_on_its_way_counts_at_its_estimate_against_the_usd_limit():
    price = Pricing(per_image=None)
    each = price.usd(1024, 1024)
    assert hunting.run_cost(run_row(status="CREATED"), price) == (each, False)  # not sent yet, but it will be
    assert hunting.run_cost(run_row(status="BLOCKED"), price) == (0.0, True)
    assert hunting.run_cost(run_row(status="COMPLETED", cost_usd=0.07), price) == (0.07, True)


# --- one image is checked once ------------------------------------------------------------------
def test_two_threads_checking_one_image_compute_it_once(data_dir, monkeypatch):
    ledger = Ledger(data_dir / "ledger.db")
    from flux_core.media import images

    png = render.render_preview(POSTER, 1, 256, 256, "png")
    stored = images.store(data_dir, png, {"app": "flux-lab"})
    run_id = ledger.record_run(
        base(),
        "COMPLETED",
        backend="emulator",
        base_url="http://x",
        image_path=stored.path,
        thumb_path=stored.thumb_path,
    )
    calls: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def one(name, image, prompt):
        calls.append(name)
        inside.set()
        release.wait(5)
        return None, {"score": None}

    monkeypatch.setattr(compute, "_one", one)
    row = ledger.get(run_id)
    first = threading.Thread(target=compute.run_checks, args=(ledger, data_dir, row))
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=compute.run_checks, args=(ledger, data_dir, row))
    second.start()
    release.set()
    first.join(10)
    second.join(10)
    assert sorted(calls) == ["palette", "print", "text"]  # each check once, not twice


# --- the service and the CLI on the real emulator -------------------------------------------------
def test_done_when_the_magazine_hunt_stops_submitting_at_the_second_hit(capsys, monkeypatch, emulator):
    server = emulator(latency_s=0.2)
    point_at(monkeypatch, server)
    code = main(
        [
            "hunt",
            "--prompt",
            MAGAZINE_SHOOT,
            "--seeds",
            "5-100",  # the emulator misspells seed 5 and 8, not 6, 7 or 9: a miss, then the hits
            "--hits",
            "2",
            "--check",
            "text",
            "--width",
            "512",
            "--height",
            "512",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [json.loads(line) for line in out.strip().splitlines()]
    runs, summary = lines[:-1], lines[-1]
    assert {"hits", "misses", "submitted", "cost"} <= set(summary)
    assert summary["hits"] >= 2 and summary["stop_reason"] == "hits" and summary["state"] == "done", summary
    assert summary["submitted"] == len(runs) == summary["hits"] + summary["misses"]
    assert summary["cost_per_hit"] == pytest.approx(
        summary["cost"] / summary["hits"], abs=1e-6
    )  # printed to 6 places
    # every verdict agrees with the emulator's answer key
    for run in runs:
        assert run["hunt"]["hit"] is not render.truth(MAGAZINE_SHOOT, run["seed"]).misspelt, run["seed"]
    # nothing was submitted after the second hit's verdict: the runs after it were in flight already
    ledger = Ledger(Path(os.environ["FLUX_LAB_DATA"]) / "ledger.db")
    row = hunts.load(ledger, summary["hunt"])
    second_hit = [r for r in row.results if r.hit][1]
    created = [ledger.get(r["run_id"]).created_at for r in runs]
    assert max(created) < second_hit.at
    assert row.stopped_at is not None and row.stopped_at >= second_hit.at
    assert server.stats.submit_requests == summary["submitted"]


def test_a_usd_limit_inside_the_caps_and_a_cli_error_names_the_field(capsys, monkeypatch, emulator):
    server = emulator(latency_s=0.05)
    point_at(monkeypatch, server)
    code = main(["hunt", "--prompt", "a cube", "--seeds", "1-50", "--hits", "0", "--check", "ocr"])
    _, err = capsys.readouterr()
    assert code == 2 and "hits: a whole number from 1 to 100 (got 0)" in err and "check: one of" in err
    assert "Traceback" not in err and server.stats.submit_requests == 0
    # 256 px on the default price: $0.08 a megapixel, $0.005243 an image: $0.012 is two images
    monkeypatch.setenv("FLUX_LAB_PRICE_PER_MP_USD", "0.08")
    wb = Workbench(background=False, emulator="never")
    try:
        hunt_id = wb.start_hunt(
            base("a red cube"), checks=["palette:1"], hits=5, seeds="1-50", max_usd=0.012, drive=False
        )
        for _ in wb.drive_hunt(hunt_id):
            pass
        view = wb.hunt(hunt_id)
    finally:
        wb.shutdown(wait=True)
    assert view is not None and view.submitted == 2 and view.row.stop_reason in ("usd", "hits")


def test_a_restart_in_the_middle_of_a_hunt_goes_on_with_the_hunt(monkeypatch, emulator):
    server = emulator(latency_s=0.2)
    point_at(monkeypatch, server)
    first = Workbench(background=False, emulator="never")
    hunt_id = first.start_hunt(base(PLAIN), checks=["distinct"], hits=6, seeds="1-30", drive=False)
    assert first.hunt(hunt_id).submitted == 4  # the first batch, and nobody drives the hunt on
    first.shutdown(wait=False)  # the server stops: the runs in flight and the hunt are left

    second = Workbench(background=True, emulator="never")  # the app's server starting again
    try:
        thread = second._live.hunts[hunt_id]
        thread.join(60)
        assert not thread.is_alive()
        view = second.hunt(hunt_id)
        name, page = second.report(sweep_id=hunt_id)  # a hunt's report is a sweep's
    finally:
        second.shutdown(wait=True)
    assert view.state == "done" and view.hits >= 6 and view.row.stop_reason == "hits"
    assert len({c.run.seed for c in view.sweep.cells}) == view.submitted  # no seed twice
    assert [a.name for a in view.sweep.axes] == ["seed"] and len(view.sweep.axes[0].values) == view.submitted
    assert name.endswith(".html") and b"seed 1" in page


def test_flux_lab_resume_goes_on_with_a_hunt_its_driver_left(capsys, monkeypatch, emulator):
    server = emulator(latency_s=0.2)
    point_at(monkeypatch, server)
    first = Workbench(background=False, emulator="never")
    hunt_id = first.start_hunt(base(PLAIN), checks=["distinct"], hits=5, seeds="1-30", drive=False)
    first.shutdown(wait=False)  # the terminal that drove it closed: its first batch is in flight
    code = main(["resume", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [json.loads(line) for line in out.strip().splitlines()]
    summary = lines[-1]
    assert summary["hunt"] == hunt_id and summary["state"] == "done" and summary["hits"] >= 5
    judged = [line for line in lines if "hunt" in line and isinstance(line["hunt"], dict)]
    assert judged and all(line["hunt"]["hit"] in (True, False) for line in judged)
    ledger = Ledger(Path(os.environ["FLUX_LAB_DATA"]) / "ledger.db")
    assert hunts.unfinished(ledger) == []  # nothing left for the next resume
    seeds = [c.run.seed for c in sweeps.load(ledger, hunt_id).cells]
    assert len(set(seeds)) == len(seeds)  # no seed twice
    assert main(["resume", "--json"]) == 0  # a second resume finds nothing to do
    assert capsys.readouterr().out.strip() == ""


def test_a_hunt_sits_inside_the_spend_caps(monkeypatch, emulator):
    server = emulator(latency_s=0.05)
    point_at(monkeypatch, server)
    monkeypatch.setenv("FLUX_LAB_PRICE_PER_MP_USD", "0.1")  # $0.006554 a 256 px image
    wb = Workbench(background=False, emulator="never")
    try:
        wb.set_caps(team_day=0.02)  # less than the first batch of four
        with pytest.raises(CapReached):
            wb.start_hunt(base(PLAIN), checks=["distinct"], hits=10, seeds="1-50", drive=False)
        assert wb.recent_sweeps() == [] and server.stats.submit_requests == 0  # nothing written or sent
        wb.set_caps(team_day=0.03)  # the first four, and no more
        hunt_id = wb.start_hunt(base(PLAIN), checks=["distinct"], hits=10, seeds="1-50", drive=False)
        for _ in wb.drive_hunt(hunt_id):
            pass
        view = wb.hunt(hunt_id)
    finally:
        wb.shutdown(wait=True)
    assert view.submitted == 4 and view.state == "done"
    assert view.row.stop_reason.startswith("cap: ") and "would go past" in view.row.stop_reason
    assert "a spend cap was reached" in view.status_words()


def test_stop_submits_no_more_seeds_and_keeps_those_in_flight(monkeypatch, emulator):
    server = emulator(latency_s=0.05)
    point_at(monkeypatch, server)
    wb = Workbench(background=False, emulator="never")
    try:
        hunt_id = wb.start_hunt(base(PLAIN), checks=["distinct"], hits=20, seeds="1-40", drive=False)
        wb.stop_hunt(hunt_id)
        judged = list(wb.drive_hunt(hunt_id))
        view = wb.hunt(hunt_id)
        with pytest.raises(ParamsError, match="there is no hunt 'nope'"):
            wb.stop_hunt("nope")
    finally:
        wb.shutdown(wait=True)
    assert view.submitted == 4 == len(judged)  # the first batch, in flight when it was stopped
    assert view.state == "done" and view.status_words() == "Done: stopped by a person."
