"""One action, two front ends: the CLI and the pages call the same service, so the ledger rows they
leave are the same (ids, times, servers and request ids aside)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core.cli import main
from flux_core.ledger.store import Ledger

APP = str(Path(__file__).resolve().parents[1] / "app.py")
pytestmark = pytest.mark.usefixtures("fast_app")

RUN_FIELDS = (
    "status",
    "model",
    "backend",
    "prompt",
    "image_urls_json",
    "width",
    "height",
    "seed",
    "seed_random",
    "safety_tolerance",
    "output_format",
    "request_json",
    "request_hash",
    "image_width",
    "image_height",
    "error",
    "error_kind",
    "favourite",
    "rating",
    "notes",
    "tags_json",
    "deleted_at",
    "download_attempts",
    "key_id",
)


def runs(data_dir: Path) -> list[dict]:
    with Ledger(data_dir / "ledger.db").db() as db:
        rows = list(db.query("SELECT * FROM runs ORDER BY seed, safety_tolerance"))
    return [{k: row[k] for k in RUN_FIELDS} for row in rows]


def sweeps_of(data_dir: Path) -> list[dict]:
    with Ledger(data_dir / "ledger.db").db() as db:
        found = []
        for sweep in db.query("SELECT * FROM sweeps"):
            cells = list(
                db.query(
                    "SELECT c.idx, c.coords_json, c.reused, r.request_hash FROM sweep_cells c "
                    "JOIN runs r ON r.id = c.run_id WHERE c.sweep_id = ? ORDER BY c.idx",
                    [sweep["id"]],
                )
            )
            found.append(
                {
                    "name": sweep["name"],
                    "base": sweep["base_json"],
                    "axes": sweep["axes_json"],
                    "cells": cells,
                }
            )
    return found


def app_at(data_dir: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("FLUX_LAB_DATA", str(data_dir))
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    return at


def test_generate_leaves_the_same_row_from_the_cli_and_from_compose(tmp_path, monkeypatch, capsys):
    web, cli = tmp_path / "web", tmp_path / "cli"
    at = app_at(web, monkeypatch)
    at.text_area(key="prompt").set_value("a red cube on a table")
    at.checkbox(key="compose_seed_random").uncheck()
    at.run()
    at.number_input(key="compose_seed").set_value(42)
    at.run()
    at.button(key="compose_generate").click()
    at.run()
    bench = at.session_state["workbench"]
    bench.wait([r.id for r in bench.recent()])

    code = main(
        [
            "--data-dir",
            str(cli),
            "generate",
            "--emulator",
            "--prompt",
            "a red cube on a table",
            "--seed",
            "42",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert runs(web) == runs(cli) and len(runs(cli)) == 1
    assert runs(cli)[0]["status"] == "COMPLETED"


def test_a_sweep_leaves_the_same_rows_from_the_cli_and_from_compare(tmp_path, monkeypatch, capsys):
    web, cli = tmp_path / "web", tmp_path / "cli"
    at = app_at(web, monkeypatch)
    at.switch_page("pages/compare.py")
    at.run()
    at.text_area(key="compare_prompt").set_value("a lighthouse at dusk")
    at.run()
    at.button(key="compare_run").click()
    at.run()
    assert not at.exception
    bench = at.session_state["workbench"]
    [made] = sweeps_of(web)
    bench.wait([r.id for r in bench.recent(limit=100)])
    axes = {a["name"]: a["values"] for a in json.loads(made["axes"])}
    base = json.loads(made["base"])

    code = main(
        ["--data-dir", str(cli), "sweep", "--emulator", "--prompt", base["prompt"]]
        + ["--seeds", ",".join(map(str, axes["seed"]))]
        + ["--safety-tolerances", ",".join(map(str, axes["safety_tolerance"]))]
        + ["--width", str(base["width"]), "--height", str(base["height"]), "--json"]
    )
    assert code == 0, capsys.readouterr().err
    assert sweeps_of(cli) == sweeps_of(web)
    assert runs(cli) == runs(web) and {r["status"] for r in runs(cli)} == {"COMPLETED"}
    assert len(runs(cli)) == len(axes["seed"]) * len(axes["safety_tolerance"])


def test_the_sweep_cap_holds_for_the_cli_as_for_the_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLUX_LAB_SWEEP_CAP", "3")
    args = ["--data-dir", str(tmp_path), "sweep", "--emulator", "--prompt", "a cube", "--seeds", "1,2"]
    assert main(args + ["--safety-tolerances", "1,2"]) == 2
    err = capsys.readouterr().err
    assert "makes 4 new images, more than 3" in err and "--yes" in err and "Nothing was sent" in err
    assert runs(tmp_path) == []
    assert main(args + ["--safety-tolerances", "1,2", "--yes", "--json"]) == 0
    assert len(runs(tmp_path)) == 4


# --- Compose (issue 14): images per Generate, presets -----------------------------------------
def test_three_images_leave_the_same_rows_from_the_cli_and_from_compose(tmp_path, monkeypatch, capsys):
    web, cli = tmp_path / "web", tmp_path / "cli"
    at = app_at(web, monkeypatch)
    at.text_area(key="prompt").set_value("a red cube on a table")
    at.checkbox(key="compose_seed_random").uncheck()
    at.number_input(key="compose_count").set_value(3)
    at.run()
    at.number_input(key="compose_seed").set_value(42)
    at.run()
    at.button(key="compose_generate").click()
    at.run()
    bench = at.session_state["workbench"]
    bench.wait([r.id for r in bench.recent()])

    argv = ["--data-dir", str(cli), "generate", "--emulator", "--prompt", "a red cube on a table"]
    code = main(argv + ["--seed", "42", "--count", "3"])
    assert code == 0, capsys.readouterr().err
    assert runs(web) == runs(cli) and [r["seed"] for r in runs(cli)] == [42, 43, 44]


def presets_of(data_dir: Path) -> list[dict]:
    with Ledger(data_dir / "ledger.db").db() as db:
        return [
            {k: row[k] for k in ("name", "params_json", "owner")} for row in db.query("SELECT * FROM presets")
        ]


def test_a_preset_saved_from_compose_is_the_one_the_cli_saves(tmp_path, monkeypatch, capsys):
    web, cli = tmp_path / "web", tmp_path / "cli"
    at = app_at(web, monkeypatch)
    at.selectbox(key="compose_aspect").set_value("16:9 wide")
    at.run()
    at.slider(key="compose_tolerance").set_value(5)
    at.radio(key="compose_format").set_value("jpeg")
    at.session_state["compose_preset_open"] = True
    at.run()
    at.text_input(key="compose_preset_name").set_value("wide draft")
    at.run()
    at.button(key="compose_preset_save").click()
    at.run()
    assert not at.exception

    argv = ["--data-dir", str(cli), "preset", "save", "wide draft", "--width", "1344", "--height", "768"]
    code = main(argv + ["--safety-tolerance", "5", "--output-format", "jpeg"])
    assert code == 0, capsys.readouterr().err
    assert presets_of(web) == presets_of(cli) and len(presets_of(cli)) == 1
