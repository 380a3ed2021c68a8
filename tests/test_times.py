"""A run's times in words (flux_core.presentation.times) and as numbers (Run.wait_s, the exports' and
the CLI's wait_s / inference_s / queue_s): the person's wait from Generate to the image stored, and
Segmind's inference and queue time apart, each said to be unknown when it is."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone

from flux_core import defaults as D
from flux_core import presentation as P
from flux_core import settings
from flux_core.cli import main
from flux_core.emulator.render import render_preview
from flux_core.ledger import history, store
from flux_core.ledger.records import Run
from flux_core.ledger.store import Ledger
from flux_core.media.images import store as store_image
from flux_core.params import FluxParams
from tests.conftest import run_row

PRESSED = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> str:
    """An ISO moment `seconds` after Generate was pressed."""
    return (PRESSED + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run(**changes) -> Run:
    return run_row(
        **{
            "created_at": at(0),
            "updated_at": at(0),
            "seed": 7,
            "submitted_at": at(0.4),
            "observed_total_s": 2.9,  # the runner's figure from submit to Segmind's COMPLETED: not the wait
            "finished_at": at(4.4),
            "inference_time": 2.5,
            "queue_time": 0.3,
            "total_time": 2.8,
            **changes,
        }
    )


def test_a_finished_run_says_the_wait_from_generate_to_the_image_stored_and_segminds_times_apart():
    done = run()
    assert done.wait_s == 4.4
    assert (
        P.times(done)
        == "You waited 4.4 s (Generate to image stored) · Segmind: 2.5 s inference, 0.3 s in queue"
    )
    line = P.headline(done)
    # must not happen: Segmind's inference time (or the runner's submit-to-done figure) shown as the wait
    assert (line.title, line.words()) == ("Done", f"Done · {P.times(done)} · seed 7 · FLUX.2 [max]")
    assert "2.9" not in line.words()


def test_a_figure_segmind_did_not_give_is_said_to_be_unknown():
    assert P.times(run(inference_time=None)) == (
        "You waited 4.4 s (Generate to image stored) · Segmind: inference time unknown, 0.3 s in queue"
    )
    assert P.times(run(queue_time=None)).endswith("Segmind: 2.5 s inference, queue time unknown")
    assert P.times(run(inference_time=None, queue_time=None)).endswith(
        "· Segmind gave no inference or queue time"
    )


def test_a_blocked_run_has_no_wait_for_an_image_and_says_when_it_ended():
    blocked = run(status=store.BLOCKED, finished_at=at(3.1), inference_time=None, queue_time=None)
    assert blocked.wait_s is None
    assert P.times(blocked) == (
        "No image: it ended 3.1 s after Generate · Segmind gave no inference or queue time"
    )


def test_a_run_on_its_way_counts_its_wait_so_far_and_a_run_made_elsewhere_has_no_wait():
    going = run(status=store.PROCESSING, finished_at=None, inference_time=None, queue_time=None)
    assert P.times(going, now=PRESSED + timedelta(seconds=3)) == (
        "Waiting 3.0 s so far (since Generate) · Segmind's inference and queue time come with the result"
    )
    imported = run(origin=D.IMPORTED)
    assert imported.wait_s is None
    assert P.times(imported).startswith("Your wait is unknown (made outside Flux Lab) · Segmind: 2.5 s")


def test_a_sweeps_cell_counts_from_run_sweep_and_the_sweep_names_its_last_and_median_wait():
    cells = [run(id=f"c{i}", sweep_id="S", finished_at=at(w)) for i, w in enumerate((3.0, 4.0, 6.5))]
    assert P.wait_words(cells[0]) == "You waited 3.0 s (Run sweep to image stored)"
    assert P.sweep_times(cells) == (
        "You waited 6.5 s for the last of 3 image(s) (Run sweep to image stored; median 4.0 s) · "
        "Segmind: median 2.5 s inference, 0.3 s in queue"
    )
    assert P.sweep_times([]) == "Every cell was reused from the ledger: nothing was waited for"


def test_long_waits_read_in_minutes_and_hours():
    assert [P.seconds(s) for s in (0.04, 59.9, 75, 3725)] == ["0.0 s", "59.9 s", "1 min 15 s", "1 h 02 min"]


def test_the_recipe_and_a_runs_public_shape_carry_the_times_under_the_exports_names():
    done = run()
    public = done.public()
    assert (public["wait_s"], public["inference_s"], public["queue_s"]) == (4.4, 2.5, 0.3)
    assert P.recipe(done)["timings"] == {"wait_s": 4.4, "inference_s": 2.5, "queue_s": 0.3}


def test_runs_csv_and_manifest_name_the_wait_and_segminds_times(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    image = store_image(data_dir, render_preview("x", 1, 64, 64, "png"), {"params": {"prompt": "x"}})
    done = ledger.record_run(
        FluxParams.parse(prompt="a red cube", seed=1),
        store.COMPLETED,
        backend="emulator",
        base_url="http://x",
    )
    made = ledger.get(done)
    assert made is not None
    finished = store.parse_iso(made.created_at) + timedelta(seconds=4.4)
    ledger.transition(
        done,
        image_path=image.path,
        thumb_path=image.thumb_path,
        finished_at=finished.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        inference_time=2.5,
    )
    blocked = ledger.record_run(
        FluxParams.parse(prompt="a sword", seed=2), store.BLOCKED, backend="emulator", base_url="http://x"
    )
    rows = ledger.get_many([done, blocked])
    with zipfile.ZipFile(io.BytesIO(history.export_zip(rows, data_dir))) as zf:
        manifest = json.loads(zf.read("manifest.json"))["runs"]
        table = list(csv.DictReader(io.StringIO(zf.read("runs.csv").decode())))
    assert [(m["wait_s"], m["inference_s"], m["queue_s"]) for m in manifest] == [
        (4.4, 2.5, None),
        (None,) * 3,
    ]
    assert [(r["wait_s"], r["inference_s"], r["queue_s"]) for r in table] == [
        ("4.4", "2.5", ""),
        ("", "", ""),
    ]
    assert "inference_time" not in table[0]  # one name for each figure in the table


def test_the_cli_prints_the_same_words_and_json_carries_the_numbers(capsys):
    code = main(["generate", "--emulator", "--prompt", "a red cube", "--seed", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    run_id = out.split("run ", 1)[1].split()[0]
    row = Ledger(settings.data_dir() / D.DB_NAME).get(run_id)
    assert row is not None and row.wait_s is not None
    assert f"  {P.times(row)}" in out.splitlines()  # the generate summary: the same words as the pages
    assert P.times(row).startswith("You waited ") and " · Segmind: " in P.times(row)
    assert main(["show", run_id]) == 0
    assert f"{'times':>18}: {P.times(row)}" in capsys.readouterr().out.splitlines()
    assert main(["show", run_id, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["wait_s"], info["inference_s"], info["queue_s"]) == (
        row.wait_s,
        row.inference_time,
        row.queue_time,
    )
