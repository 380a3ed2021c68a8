"""Compare's sweep viewer as the browser gets it: the grid's and the A/B element's data, History's
overlay, and a rename from the page and from the CLI leaving the same row."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core import defaults as D
from flux_core.cli import main
from flux_core.ledger import store, sweeps
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams
from flux_ui import ab_view, serving, sweep_grid
from tests.conftest import run_sweep
from tests.test_compare_core import rename_rows

APP = str(Path(__file__).resolve().parents[1] / "app.py")
BASE = FluxParams.parse(prompt="a cube", seed=1, width=256, height=256)


@pytest.fixture
def lab(sweep_lab):
    return sweep_lab[1:]  # (ledger, runner)


def test_a_rename_leaves_the_same_row_from_the_page_and_from_the_cli(tmp_path, monkeypatch, capsys, fast_app):
    web, cli = tmp_path / "web", tmp_path / "cli"
    # the same sweep in two ledgers
    for where in (web, cli):
        assert (
            main(["--data-dir", str(where), "sweep", "--emulator", "--prompt", "a cube", "--seeds", "1"]) == 0
        )
    [(web_id, _)], [(cli_id, _)] = rename_rows(web), rename_rows(cli)
    capsys.readouterr()

    monkeypatch.setenv("FLUX_LAB_DATA", str(web))
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("pages/compare.py")
    at.query_params["sweep"] = web_id
    at.run()
    at.text_input(key=f"compare_rename_{web_id}").set_value("  cube   study ")
    at.button(key="compare_rename_save").click()
    at.run()
    assert not at.exception and [h.value for h in at.subheader][0] == "cube study"

    code = main(["--data-dir", str(cli), "rename-sweep", cli_id, "  cube   study "])
    assert code == 0 and "is now named 'cube study'" in capsys.readouterr().err
    assert [n for _, n in rename_rows(web)] == [n for _, n in rename_rows(cli)] == ["cube study"]

    # a bad name: the same words from both, nothing changed
    at.text_input(key=f"compare_rename_{web_id}").set_value("n" * 81)
    at.button(key="compare_rename_save").click()
    at.run()
    assert [e.value for e in at.error] == ["Not renamed: name: at most 80 characters (got 81)"]
    code = main(["--data-dir", str(cli), "rename-sweep", cli_id, "n" * 81])
    assert code == 2 and "name: at most 80 characters (got 81)" in capsys.readouterr().err
    assert [n for _, n in rename_rows(web)] == [n for _, n in rename_rows(cli)] == ["cube study"]


# --- the A/B element and the grid, as the browser gets them ---------------------------------------
def test_the_ab_element_gets_both_full_images_by_url_and_its_settings():
    a, b = "images/ab/" + "ab" * 32 + ".png", "images/cd/" + "cd" * 32 + ".jpg"
    assert ab_view.data(a, "seed 1 · <i>x</i>", b, "seed 2") == {
        "a": {"url": f"./_flux/images/{'ab' * 32}.png", "label": "seed 1 · <i>x</i>"},  # set as text
        "b": {"url": f"./_flux/images/{'cd' * 32}.jpg", "label": "seed 2"},
        "mode": "wipe",
        "flicker_ms": D.AB_FLICKER_MS,
        "gain": D.AB_DIFF_GAIN,
        "diff_max_px": D.AB_DIFF_MAX_PX,
        "max_px": D.AB_MAX_PX,
    }
    assert ab_view.data(a, "A", b, "B", mode="difference")["mode"] == "difference"
    with pytest.raises(ValueError, match="mode must be one of wipe, flicker, difference"):
        ab_view.data(a, "A", b, "B", mode="blend")


def test_axes_are_placed_where_the_person_puts_them():
    names = ["seed", "safety_tolerance", "prompt"]
    assert sweeps.arrange(names, [""]) == [0, 1, 2]
    assert sweeps.arrange(names, ["prompt", "seed"]) == [2, 0, 1]
    assert sweeps.arrange(names, ["size", "prompt", "prompt"]) == [2, 0, 1]  # unknown, twice: ignored
    assert sweep_grid.place(["seed", "safety_tolerance", "prompt"], 0, "prompt") == [
        "prompt",
        "safety_tolerance",
        "seed",
    ]


def test_the_grid_holds_every_slice_and_says_why_a_cell_has_no_picture(lab, data_dir):
    ledger, runner = lab
    plan = sweeps.make_plan(
        BASE.replace(prompt="a bloody cube"),
        [
            sweeps.axis("seed", [1, 2]),
            sweeps.axis("safety_tolerance", [1, 4]),
            sweeps.axis("prompt", ["a bloody cube", "a bloody cube #fail"], ["plain", "fails"]),
        ],
    )
    view = run_sweep(ledger, runner, plan)
    data = sweep_grid.data(view, sweeps.arrange([a.name for a in view.axes], ["prompt", "seed"]), data_dir)
    assert data["rows"]["labels"] == ["plain", "fails"] and data["cols"]["labels"] == ["seed 1", "seed 2"]
    assert [s["title"] for s in data["slices"]] == [
        "Safety tolerance: tolerance 1",
        "Safety tolerance: tolerance 4",
    ]
    shown = [idx for s in data["slices"] for line in s["grid"] for idx in line]
    assert sorted(shown) == list(range(8))  # every cell, once
    by_label = {c["label"]: c for c in data["cells"]}
    done = by_label["seed 1 · tolerance 4 · plain"]
    assert done["words"] == "" and done["thumb"].startswith("./_flux/thumbs/")
    assert done["full"].startswith("./_flux/images/") and not done["retry"]
    assert by_label["seed 1 · tolerance 1 · plain"]["words"] == "Blocked at tolerance 1"
    assert (
        by_label["seed 1 · tolerance 1 · plain"]["retry"]
        and by_label["seed 1 · tolerance 1 · plain"]["full"] is None
    )
    failed = by_label["seed 2 · tolerance 4 · fails"]["words"]
    assert failed.startswith("Failed: ") and len(failed) > len("Failed: ")
    assert dict(done["settings"])["Prompt"] == "a bloody cube"


def test_a_pending_cell_says_its_state():
    from flux_core.ledger.records import Run

    row = Run.model_validate(
        {
            "id": "01RUN",
            "created_at": "2026-12-01T10:00:00.000Z",
            "updated_at": "2026-12-01T10:00:00.000Z",
            "status": store.QUEUED,
            "model": "flux-2-max",
            "backend": "emulator",
            "base_url": "http://127.0.0.1:1",
            "seed": 1,
            "width": 256,
            "height": 256,
            "safety_tolerance": 2,
            "output_format": "png",
            "request": {},
            "request_hash": "",
            "prompt": "a cube",
        }
    )
    assert sweep_grid.words(sweeps.Cell(0, (0,), row, False)) == "Queued at the server"


def test_historys_two_run_overlay_is_the_ab_element_on_the_full_images(
    tmp_path, monkeypatch, capsys, fast_app
):
    import json

    data = tmp_path / "data"
    for seed in ("1", "2"):
        assert (
            main(["--data-dir", str(data), "generate", "--emulator", "--prompt", "a cube", "--seed", seed])
            == 0
        )
    rows = Ledger(data / "ledger.db").search(None)
    monkeypatch.setenv("FLUX_LAB_DATA", str(data))
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("pages/history.py")
    at.query_params["h_sel"] = ",".join(r.id for r in rows)
    at.run()
    assert not at.exception
    [element] = [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.ab_view"]
    shown = json.loads(element.proto.json)
    assert shown["a"] == {"url": serving.image_url(rows[0].image_path or ""), "label": "#1"}
    assert shown["b"] == {"url": serving.image_url(rows[1].image_path or ""), "label": "#2"}
    assert not [s for s in at.slider if s.key == "h_wipe"]  # no server round trip per move


def test_a_sweep_of_one_axis_is_one_row_across_the_width(lab, data_dir):
    ledger, runner = lab
    view = run_sweep(ledger, runner, sweeps.make_plan(BASE, [sweeps.axis("seed", [1, 2, 3])]))
    data = sweep_grid.data(view, [0], data_dir)
    assert data["slices"] == [{"title": "", "grid": [[0, 1, 2]]}]
    assert data["cols"]["labels"] == ["seed 1", "seed 2", "seed 3"] and data["rows"]["labels"] == [""]
    assert data["cell_min_px"] < data["cell_max_px"] == D.SWEEP_GRID_CELL_MAX_PX
