"""Compare's sweeps below the page: prompt variants named by their text, one cell run again, sweeps
named after the fact, saved sweeps with a picture, full images served by their hash (unit tests
and integration against the emulator on loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from flux_core import defaults as D
from flux_core.cli import main
from flux_core.ledger import store, sweeps
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams, ParamsError
from flux_ui import serving
from tests.conftest import run_sweep

APP = str(Path(__file__).resolve().parents[1] / "app.py")
BASE = FluxParams.parse(prompt="a cube", seed=1, width=256, height=256)


@pytest.fixture
def lab(sweep_lab):
    return sweep_lab[1:]  # (ledger, runner)


# --- prompt variants named by their text ----------------------------------------------------------
@pytest.mark.parametrize(
    "prompts, labels",
    [
        (["a red cube on marble", "a blue cube on marble"], ["red", "blue"]),
        (["a zombie at dusk, foggy", "a tall vampire at dusk, foggy"], ["zombie", "tall vampire"]),
        (["a cube on marble", "a red cube on marble"], ["a cube on marble", "red"]),  # nothing differs
        (
            [
                "portrait of an old fisherman, dramatic light, film grain",
                "a watercolour of a lighthouse at night with stars",
            ],
            ["portrait of an old fisherman…", "a watercolour of a lighthouse…"],  # the first words, cut
        ),
        (["Same words", "same words"], ["Same", "same"]),
        (["one prompt only"], ["one prompt only"]),
    ],
)
def test_whole_prompt_variants_are_labelled_by_the_words_that_differ(prompts, labels):
    assert sweeps.prompt_labels(prompts) == labels
    assert all(len(label) <= D.SWEEP_LABEL_MAX_CHARS for label in sweeps.prompt_labels(prompts))


def test_two_variants_never_share_a_label():
    long = "x" * 60
    labels = sweeps.prompt_labels([f"{long} one", f"{long} two"])
    assert labels == ["one", "two"]
    same_start = [f"{'word ' * 10}alpha {'tail ' * 5}", f"{'word ' * 10}beta {'tail ' * 5}"]
    assert sweeps.prompt_labels(same_start) == ["alpha", "beta"]
    cut = sweeps.prompt_labels(["a " + "b" * 50 + " 1", "c " + "b" * 50 + " 2"])
    assert len(set(cut)) == 2


def test_whole_prompts_split_on_a_line_of_dashes():
    prompts, labels = sweeps.whole_prompts("a red cube\n---\n a blue cube \n---\n\n---")
    assert prompts == ["a red cube", "a blue cube"] and labels == ["red", "blue"]


# --- names given after the fact -------------------------------------------------------------------
def test_a_sweep_is_renamed_trimmed_and_a_bad_name_changes_nothing(lab):
    ledger, runner = lab
    view = run_sweep(ledger, runner, sweeps.make_plan(BASE, [sweeps.axis("seed", [1, 2])]), name="first")
    assert (
        sweeps.rename(ledger, view.id, "  the  <b>cube</b>\nstudy ", actor="test") == "the <b>cube</b> study"
    )
    assert sweeps.load(ledger, view.id).name == "the <b>cube</b> study"  # kept as typed: shown as text
    with pytest.raises(ParamsError) as too_long:
        sweeps.rename(ledger, view.id, "n" * (D.SWEEP_NAME_MAX_CHARS + 1), actor="test")
    assert too_long.value.problems == [
        f"name: at most {D.SWEEP_NAME_MAX_CHARS} characters (got {D.SWEEP_NAME_MAX_CHARS + 1})"
    ]
    assert sweeps.load(ledger, view.id).name == "the <b>cube</b> study"
    with pytest.raises(ParamsError, match="sweep: there is no sweep 'nope'"):
        sweeps.rename(ledger, "nope", "x", actor="test")
    assert sweeps.rename(ledger, view.id, "   ", actor="test") == ""  # an empty name clears it
    assert sweeps.recent(ledger)[0].title == "Seed"


def test_a_sweep_started_with_a_name_too_long_writes_nothing(lab):
    ledger, runner = lab
    with pytest.raises(ParamsError, match="name: at most"):
        sweeps.start(sweeps.make_plan(BASE, [sweeps.axis("seed", [1])]), ledger, runner, name="n" * 200)
    assert sweeps.recent(ledger) == [] and ledger.search(None) == []


def rename_rows(data_dir: Path) -> list[tuple[str, str]]:
    with Ledger(data_dir / "ledger.db").db() as db:
        return [(r["id"], r["name"]) for r in db.query("SELECT id, name FROM sweeps")]


# --- one cell again -----------------------------------------------------------------------------
def test_one_failed_cell_is_retried_alone_and_its_old_run_kept(lab):
    ledger, runner = lab
    plan = sweeps.make_plan(
        BASE, [sweeps.axis("prompt", ["a cube #fail", "a cube"]), sweeps.axis("seed", [1, 2])]
    )
    view = run_sweep(ledger, runner, plan)
    failed = [c for c in view.cells if c.outcome == "failed"]
    assert len(failed) == 2
    new_id = sweeps.retry_cell(view, failed[0].idx, ledger, runner)
    runner.wait([new_id])
    after = sweeps.load(ledger, view.id)
    assert after.cells[failed[0].idx].run.id == new_id  # the cell shows the new run
    assert after.cells[failed[1].idx].run.id == failed[1].run.id  # the other failed cell is left alone
    assert ledger.get(failed[0].run.id) is not None  # the old run stays in the ledger
    with pytest.raises(ParamsError, match="cell 2 is done; only a failed or blocked cell can be retried"):
        sweeps.retry_cell(after, 2, ledger, runner)
    with pytest.raises(ParamsError, match="cell: the sweep has no cell 9"):
        sweeps.retry_cell(after, 9, ledger, runner)


def test_a_blocked_cell_may_be_retried_but_a_submit_outcome_unknown_never(lab):
    ledger, runner = lab
    view = run_sweep(
        ledger,
        runner,
        sweeps.make_plan(BASE.replace(prompt="a bloody cube"), [sweeps.axis("safety_tolerance", [1, 4])]),
    )
    blocked = view.cells[0]
    assert blocked.outcome == "blocked"
    runner.wait([sweeps.retry_cell(view, blocked.idx, ledger, runner)])
    assert sweeps.failed_cells(view) == []  # "Retry the failed cells" leaves blocks alone
    with ledger.write() as db:
        db.execute("UPDATE runs SET status = ? WHERE id = ?", [store.SUBMIT_UNKNOWN, view.cells[1].run.id])
    with pytest.raises(ParamsError, match="submit outcome unknown; only a failed or blocked cell"):
        sweeps.retry_cell(sweeps.load(ledger, view.id), 1, ledger, runner)


def test_retry_sweep_from_the_cli_runs_the_failed_cells_again(tmp_path, capsys):
    data = str(tmp_path / "cli")
    assert (
        main(["--data-dir", data, "sweep", "--emulator", "--prompt", "a cube #fail", "--seeds", "1,2"]) == 1
    )
    [(sweep_id, _)] = rename_rows(Path(data))
    before = {c.run.id for c in sweeps.load(Ledger(Path(data) / "ledger.db"), sweep_id).cells}
    capsys.readouterr()
    code = main(["--data-dir", data, "retry-sweep", sweep_id, "--emulator", "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and len(out.splitlines()) == 2 and "Retried" not in err
    after = {c.run.id for c in sweeps.load(Ledger(Path(data) / "ledger.db"), sweep_id).cells}
    assert after.isdisjoint(before)
    assert main(["--data-dir", data, "retry-sweep", "nope", "--emulator"]) == 2
    assert "there is no sweep 'nope'" in capsys.readouterr().err


def test_a_cli_sweep_with_variants_labels_them_as_the_page_does(tmp_path, capsys):
    data = tmp_path / "cli"
    argv = ["--data-dir", str(data), "sweep", "--emulator", "--prompt", "a red cube", "--seeds", "1"]
    assert main([*argv, "--variant", "a blue cube", "--json"]) == 0
    [summary] = sweeps.recent(Ledger(data / "ledger.db"))
    prompt_axis = summary.axes[2]
    assert prompt_axis.values == ("a red cube", "a blue cube") and prompt_axis.labels == ("red", "blue")


# --- saved sweeps as cards ------------------------------------------------------------------------
def test_saved_sweeps_carry_their_first_done_cells_thumbnail(lab):
    ledger, runner = lab
    plan = sweeps.make_plan(BASE, [sweeps.axis("prompt", ["a cube #fail", "a cube"], ["fails", "passes"])])
    view = run_sweep(ledger, runner, plan)
    [summary] = sweeps.recent(ledger)
    assert summary.thumb_path == view.cells[1].run.thumb_path and summary.thumb_path
    assert summary.shape == "2 prompts" and summary.title == "Prompt"


# --- full images by their hash --------------------------------------------------------------------
def get(app, path: str) -> httpx.Response:
    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get(path)

    return asyncio.run(fetch())


@pytest.mark.parametrize("ext, mime", [("png", "image/png"), ("jpg", "image/jpeg")])
def test_a_stored_image_is_served_by_its_hash_to_be_kept(tmp_path, ext, mime):
    digest = "c0" * 32
    (tmp_path / "images" / "c0").mkdir(parents=True)
    (tmp_path / "images" / "c0" / f"{digest}.{ext}").write_bytes(b"picture")
    response = get(Starlette(routes=serving.routes(tmp_path)), f"/_flux/images/{digest}.{ext}")
    assert response.status_code == 200 and response.content == b"picture"
    assert response.headers["content-type"] == mime
    assert response.headers["cache-control"] == D.IMAGE_CACHE_CONTROL and "immutable" in D.IMAGE_CACHE_CONTROL
    assert serving.image_url(f"images/c0/{digest}.{ext}") == f"./_flux/images/{digest}.{ext}"


@pytest.mark.parametrize(
    "name",
    [
        "c0" * 32 + ".gif",
        "../ledger.db",
        "..%2F..%2Fledger.db",
        "C0" * 32 + ".png",
        "d1" * 32 + ".png",  # well named, not stored
        "c0" * 32 + ".png.part",
    ],
)
def test_anything_but_a_stored_image_is_not_found(tmp_path, name):
    (tmp_path / "ledger.db").write_bytes(b"secret")
    (tmp_path / "images" / "c0").mkdir(parents=True)
    (tmp_path / "images" / "c0" / ("c0" * 32 + ".png.part")).write_bytes(b"half")
    response = get(Starlette(routes=serving.routes(tmp_path)), f"/_flux/images/{name}")
    assert (
        response.status_code == 404 and b"secret" not in response.content and b"half" not in response.content
    )
