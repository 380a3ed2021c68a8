"""The image checks end to end: emulator images whose mistakes are known (render.truth), checked
in the background after they are stored and on demand from both front ends, kept in the ledger."""

from __future__ import annotations

import json
import threading

import pytest

from flux_core.checks import compute
from flux_core.checks.worker import Checker
from flux_core.cli import main
from flux_core.emulator.render import truth
from flux_core.errors import ConfirmationNeeded, NoImage, NotAllowed
from flux_core import defaults as D
from flux_core.ledger import checks as table
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams
from flux_core.service import Workbench
from flux_core.team import Actor, Role
from flux_ui.templates import MAGAZINE_SHOOT

SIZE = 1024


def _seed(misspelt: bool) -> int:
    return next(s for s in range(100) if bool(truth(MAGAZINE_SHOOT, s).misspelt) == misspelt)


@pytest.fixture
def wb(data_dir):
    bench = Workbench(data_dir, emulator="ephemeral", background=False, checks=True)
    yield bench
    bench.shutdown(wait=True)


def _run(wb: Workbench, seed: int, prompt: str = MAGAZINE_SHOOT) -> str:
    run_id = wb.submit(FluxParams.parse(prompt=prompt, seed=seed, width=SIZE, height=SIZE))
    (row,) = wb.wait([run_id])
    assert row.status == "COMPLETED"
    return run_id


def test_the_background_checker_flags_the_headline_the_emulator_misspelt(wb):
    wrong, right = _seed(True), _seed(False)
    runs = {seed: _run(wb, seed) for seed in (wrong, right)}
    assert wb._live.checker is not None and wb._live.checker.drain(timeout=120)
    found = wb.checks(list(runs.values()))
    misspelt = truth(MAGAZINE_SHOOT, wrong).misspelt
    text = found[runs[wrong]]["text"]
    assert set(text["misspelt"]) | set(text["missing"]) == set(misspelt)
    assert text["score"] == pytest.approx((6 - len(misspelt)) / 6)
    clean = found[runs[right]]["text"]
    assert clean["found"] == clean["expected"] and clean["score"] == 1.0 and len(clean["expected"]) == 6
    for run_id in runs.values():
        assert found[run_id]["palette"]["expected"] == [
            "Forest Green",
            "Vibrant Orange",
            "Pastel Green",
            "White",
        ]
        assert len(found[run_id]["print"]["phash"]) == 16


def test_a_check_of_an_older_version_is_computed_again_and_a_broken_image_is_not_retried(wb, monkeypatch):
    run_id = _run(wb, _seed(False), prompt="a red cube on a blue table")
    wb.check([run_id])
    versions = compute.versions()
    assert table.pending(wb.ledger, versions, 10) == []
    table.save(wb.ledger, run_id, "palette", 0, 0.1, {"score": 0.1})  # an older palette check's result
    assert table.pending(wb.ledger, versions, 10) == [run_id]
    wb.check([run_id])
    assert wb.checks([run_id])[run_id]["palette"]["version"] == versions["palette"]

    other = _run(wb, 5, prompt="a green ball")
    # the checker reads the stored image in the background: let it finish before the image is broken,
    # or its good result, computed from the bytes it read, lands after the on-demand one
    assert wb._live.checker is not None and wb._live.checker.drain(timeout=120)
    (wb.data_dir / wb.run(other).image_path).write_bytes(b"not an image")
    wb.check([other], again=True)
    found = wb.checks([other])[other]
    assert found["text"]["error"] == "The stored image could not be read."
    assert table.pending(wb.ledger, versions, 10) == []  # an error is a result: not checked forever


def test_the_checker_waits_while_runs_are_in_flight_and_goes_on_when_they_land(data_dir):
    bench = Workbench(data_dir, emulator="ephemeral", background=False)  # no checker of its own
    try:
        run_id = _run(bench, _seed(False), prompt="a red cube")
        in_flight = threading.Event()
        in_flight.set()
        looked = threading.Semaphore(0)

        def runs_in_flight() -> bool:
            looked.release()
            return in_flight.is_set()

        checker = Checker(bench.ledger, bench.data_dir, yield_to=runs_in_flight)
        try:
            checker.poke()
            for _ in range(2):  # it looked, waited, and looked again: still nothing checked
                assert looked.acquire(timeout=60)
            assert table.pending(bench.ledger, compute.versions(), 10) == [run_id]
            in_flight.clear()  # the last run landed (the runner's on_idle pokes the checker)
            checker.poke()
            assert checker.drain(timeout=120)
            assert table.pending(bench.ledger, compute.versions(), 10) == []
            assert set(bench.checks([run_id])[run_id]) >= {"palette", "print"}
        finally:
            checker.stop(wait=True)
    finally:
        bench.shutdown(wait=True)


def test_a_runner_says_when_its_last_run_landed(data_dir):
    bench = Workbench(data_dir, emulator="ephemeral", background=False)
    idle = threading.Semaphore(0)

    class Watcher:  # stands in for the checker: counts the pokes that come when nothing is in flight
        def poke(self) -> None:
            if not bench.default.runner.busy():
                idle.release()

        def stop(self, wait: bool = False) -> None:
            pass

    bench._live.checker = Watcher()  # type: ignore[assignment]
    try:
        bench.wait(bench.submit_many(FluxParams.parse(prompt="a lamp", seed=1), 2))
        assert idle.acquire(timeout=60)  # the runner's on_idle, after its last run landed
    finally:
        bench.shutdown(wait=True)


def test_check_and_show_from_the_cli_agree_with_the_service(capsys, data_dir):
    seed = _seed(True)
    code = main(["generate", "--emulator", "--prompt", MAGAZINE_SHOOT, "--seed", str(seed), "--json"])
    assert code == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert main(["show", run_id, "--json"]) == 0
    assert "text" not in json.loads(capsys.readouterr().out)["checks"]  # absent until computed

    assert main(["check", run_id, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    text = printed["checks"]["text"]
    assert set(text) >= {"score", "expected", "found", "misspelt", "missing"}
    assert set(text["misspelt"]) | set(text["missing"]) == set(truth(MAGAZINE_SHOOT, seed).misspelt)
    assert set(printed["checks"]["palette"]) >= {"score", "expected", "found"}
    assert main(["show", run_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checks"]["text"] == text

    assert main(["generate", "--emulator", "--prompt", "a plain grey wall", "--seed", "1", "--json"]) == 0
    unchecked = json.loads(capsys.readouterr().out)["run_id"]
    for flags, expected in (
        (["--text-check", "misspelt or missing"], [run_id]),
        (["--text-check", "all right"], []),
        (["--sort", "text score"], [run_id]),  # only the runs that have a text score
        ([], [unchecked, run_id]),
    ):
        assert main(["history", *flags, "--json"]) == 0
        listed = [json.loads(line)["run_id"] for line in capsys.readouterr().out.splitlines()]
        assert listed == expected, (flags, table.of_runs(Ledger(data_dir / D.DB_NAME), listed))
    assert main(["history", "--text-check", "perfect"]) == 2
    assert (
        "text check: must be one of all right, misspelt or missing, not 'perfect'" in capsys.readouterr().err
    )
    assert main(["history", "--sort", "prettiest"]) == 2
    assert "sort: must be one of newest" in capsys.readouterr().err

    assert main(["check", run_id]) == 0
    words = capsys.readouterr().out
    assert "text 5/6 right" in words or "text 4/6 right" in words
    assert "misspelt" in words or "missing" in words

    bench = Workbench(data_dir, emulator="never", background=False)
    try:
        assert bench.checks([run_id])[run_id]["text"] == text
    finally:
        bench.shutdown()


def test_checking_a_run_without_an_image_says_so_and_writes_nothing(wb, capsys):
    (waiting,) = wb.ledger.create_runs(
        [FluxParams.parse(prompt="a red cube", seed=1)], backend="emulator", base_url="http://127.0.0.1:9"
    )
    with pytest.raises(NoImage, match=waiting):
        wb.check([waiting])
    with pytest.raises(NoImage):
        wb.probe(waiting)
    assert main(["check", waiting]) != 0
    out, err = capsys.readouterr()
    assert f"No stored image to check for run(s) {waiting}" in err and "Traceback" not in err
    assert wb.checks([waiting]) == {} and len(wb.recent(10)) == 1


def test_the_determinism_probe_sends_the_same_request_and_gives_a_verdict(wb):
    run_id = _run(wb, 42, prompt="a red cube on a blue table")
    with pytest.raises(ConfirmationNeeded, match="seed 42.*one image"):
        wb.probe(run_id)  # it costs an image: the estimate first, nothing sent
    assert len(wb.recent(50)) == 1
    probe_id = wb.probe(run_id, confirmed=True)
    assert probe_id != run_id and wb.run(probe_id).params == wb.run(run_id).params
    assert wb.checks([run_id])[run_id]["repro"] == {"probe_run_id": probe_id, "verdict": None, "version": 1}
    wb.wait([probe_id])
    assert wb._live.checker is not None and wb._live.checker.drain(timeout=120)
    repro = wb.checks([run_id])[run_id]["repro"]
    assert repro["verdict"] == "same image" and repro["distance"] == 0  # the emulator is deterministic

    viewer = wb.acting(Actor("kim@example.com", Role.VIEWER, signed_in=True))
    with pytest.raises(NotAllowed):
        viewer.probe(run_id, confirmed=True)
    assert len(wb.recent(50)) == 2  # nothing more was sent


def test_purging_a_run_drops_its_checks(wb):
    run_id = _run(wb, 3, prompt="a red cube")
    wb.check([run_id])
    wb.delete([run_id])
    wb.purge([run_id])
    assert wb.checks([run_id]) == {}


def test_reproducibility_from_the_cli_asks_first_then_gives_the_verdict(capsys):
    assert main(["generate", "--emulator", "--prompt", "a green ball", "--seed", "7", "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert main(["check", run_id, "--reproducible", "--emulator"]) == 2
    assert "Nothing was sent" in capsys.readouterr().err
    assert main(["check", run_id, "--reproducible", "--emulator", "--yes", "--json"]) == 0
    repro = json.loads(capsys.readouterr().out)["checks"]["repro"]
    assert repro["verdict"] == "same image"
    assert main(["history", "--json", "--limit", "5"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2  # the run and its one probe
