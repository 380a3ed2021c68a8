"""Sweeps over the real runner and emulator: planning, reuse, progress, safety matrix, votes, export."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from PIL import Image

from flux_core import defaults as D
from flux_core.ledger import store
from flux_core.ledger import sweeps
from flux_core.pricing import Pricing
from flux_core.params import FluxParams, ParamsError
from flux_core.presentation import compare_fields
from tests.conftest import run_sweep

BASE = FluxParams.parse(prompt="a zombie at dusk", seed=1, width=256, height=256)


@pytest.fixture
def lab(sweep_lab):
    return sweep_lab


def test_a_plan_is_the_cross_product_of_its_axes():
    plan = sweeps.make_plan(
        BASE,
        [
            sweeps.axis("seed", [1, 2, 3]),
            sweeps.axis("safety_tolerance", [1, 3]),
            sweeps.axis("size", ["256x256", "512x256"]),
        ],
    )
    assert plan.count == 12
    cells = plan.cells()
    assert cells[0][0] == (0, 0, 0) and cells[-1][0] == (2, 1, 1)
    last = cells[-1][1]
    assert (last.seed, last.safety_tolerance, last.width, last.height) == (3, 3, 512, 256)


@pytest.mark.parametrize(
    "axes, needle",
    [
        ([], "at least one axis"),
        (
            [
                sweeps.axis("seed", [1]),
                sweeps.axis("safety_tolerance", [1]),
                sweeps.axis("output_format", ["png"]),
                sweeps.axis("size", ["256x256"]),
            ],
            "at most 3 axes",
        ),
        ([sweeps.axis("seed", [1]), sweeps.axis("seed", [2])], "each axis may appear once"),
        ([sweeps.axis("size", ["1000x1000"])], "width must be a multiple of 16"),
        ([sweeps.axis("safety_tolerance", [9])], "safety_tolerance must be from 0"),
    ],
)
def test_a_bad_plan_says_why(axes, needle):
    with pytest.raises(ParamsError) as info:
        sweeps.make_plan(BASE, axes)
    assert needle in str(info.value)


def test_axis_values_must_be_distinct_and_present():
    with pytest.raises(ParamsError, match="twice"):
        sweeps.axis("seed", [1, 1])
    with pytest.raises(ParamsError, match="at least one value"):
        sweeps.axis("safety_tolerance", [])


def test_search_and_replace_variants():
    prompts, labels = sweeps.replace_variants(
        "a red cube on a table", "red cube", ["blue ball", "green tree"]
    )
    assert prompts == ["a red cube on a table", "a blue ball on a table", "a green tree on a table"]
    assert labels == ["red cube", "blue ball", "green tree"]
    with pytest.raises(ParamsError, match="does not occur"):
        sweeps.replace_variants("a red cube", "purple", ["x"])


def test_estimate_counts_reuse_time_and_cost(lab):
    server, ledger, runner = lab
    plan = sweeps.make_plan(BASE, [sweeps.axis("seed", [1, 2, 3, 4])])
    first = sweeps.estimate(plan, ledger, base_url=server.url, pricing=Pricing(per_image=0.07), concurrency=2)
    assert (first.cells, first.new, first.reused) == (4, 4, 0)
    assert first.cost == pytest.approx(0.28) and first.seconds == 2 * D.ASSUMED_DURATION_S
    run_sweep(ledger, runner, sweeps.make_plan(BASE, [sweeps.axis("seed", [1, 2])]))
    second = sweeps.estimate(
        plan, ledger, base_url=server.url, pricing=Pricing(per_image=0.07), concurrency=2
    )
    assert (second.new, second.reused) == (2, 2) and second.cost == pytest.approx(0.14)
    assert second.seconds < 2 * D.ASSUMED_DURATION_S  # learned from the ledger's own runs
    again = sweeps.estimate(plan, ledger, base_url=server.url, pricing=Pricing(), run_again=True)
    assert (again.new, again.reused, again.cost) == (4, 0, None)
    assert sweeps.needs_confirmation(sweeps.Estimate(30, 25, 5, 0, None))
    assert not sweeps.needs_confirmation(sweeps.Estimate(30, 24, 6, 0, None))


def test_a_sweep_runs_saves_and_reuses(lab):
    server, ledger, runner = lab
    plan = sweeps.make_plan(BASE, [sweeps.axis("seed", [1, 2, 3]), sweeps.axis("safety_tolerance", [1, 3])])
    view = run_sweep(ledger, runner, plan, name="zombies")
    assert view.progress() == {"done": 3, "blocked": 3, "failed": 0, "pending": 0} and view.finished
    assert all(c.run.sweep_id == view.id for c in view.cells)
    assert view.label(view.at((1, 0))) == "seed 2 · tolerance 1"
    assert server.stats.submits == 6
    again = run_sweep(ledger, runner, plan)
    assert server.stats.submits == 9  # the COMPLETED cells reused; the blocked ones (never billed) run again
    assert sum(c.reused for c in again.cells) == 3
    fresh = run_sweep(ledger, runner, plan, run_again=True)
    assert server.stats.submits == 15 and not any(c.reused for c in fresh.cells)
    assert "zombies — 3 seeds × 2 safety tolerances (6 cells)" in sweeps.recent(ledger)[-1].describe()


def test_the_safety_matrix_finds_the_lowest_passing_tolerance(lab):
    _, ledger, runner = lab
    prompts, labels = sweeps.replace_variants("a zombie at dusk", "zombie", ["bloody zombie", "cat"])
    plan = sweeps.make_plan(
        BASE,
        [
            sweeps.axis("prompt", prompts, labels),
            sweeps.axis("safety_tolerance", [0, 2, 4]),
            sweeps.axis("seed", [1, 2]),
        ],
    )
    view = run_sweep(ledger, runner, plan)
    tables = {t.prompt_label: t for t in sweeps.safety_matrix(view)}
    assert tables["zombie"].lowest_passing == 2 and tables["bloody zombie"].lowest_passing == 4
    assert tables["cat"].lowest_passing == 0
    assert (
        tables["zombie"].cells[(0, "seed 1")] == "blocked"
        and tables["zombie"].cells[(2, "seed 2")] == "passed"
    )


def test_failed_cells_are_retried_alone(lab):
    server, ledger, runner = lab
    base = BASE.replace(prompt="a cube")
    prompts = ["a cube", "a cube #fail"]
    view = run_sweep(ledger, runner, sweeps.make_plan(base, [sweeps.axis("prompt", prompts)]))
    assert view.progress()["failed"] == 1
    old = {c.idx: c.run.id for c in view.cells}
    new_ids = sweeps.retry_failed(view, ledger, runner)
    runner.wait(new_ids)
    after = sweeps.load(ledger, view.id)
    assert len(new_ids) == 1 and after.cells[1].run.id == new_ids[0] != old[1]
    assert after.cells[0].run.id == old[0] and server.stats.submits == 3


def test_ab_flags_exactly_the_differing_settings(lab):
    _, ledger, runner = lab
    view = run_sweep(ledger, runner, sweeps.make_plan(BASE, [sweeps.axis("seed", [1, 2])]))
    diff = compare_fields([view.cells[0].run, view.cells[1].run], ["A", "B"])
    assert {d["field"] for d in diff if d["differs"]} == {"seed"}  # inference time is an outcome


def test_votes_are_tallied_per_axis_value(lab):
    _, ledger, runner = lab
    view = run_sweep(ledger, runner, sweeps.make_plan(BASE, [sweeps.axis("seed", [1, 2, 3])]))
    pairs = sweeps.vote_pairs(view, "Ana")
    assert len(pairs) == 3 and pairs == sweeps.vote_pairs(view, "ana ")  # stable per voter
    seed_3 = next(c for c in view.cells if c.run.seed == 3)
    for a, b in pairs:
        winner, loser = (a, b) if a is seed_3 or b is not seed_3 and a.run.seed < b.run.seed else (b, a)
        sweeps.record_vote(ledger, view.id, "Ana", winner.run.id, loser.run.id, actor="test")
    assert len(sweeps.voted_pairs(ledger, view.id, "Ana")) == 3
    wins = {row["value"]: row["wins"] for row in sweeps.tally(view, ledger)["Seed"]}
    assert wins == {"seed 3": 2, "seed 1": 1, "seed 2": 0}
    with pytest.raises(ValueError):
        sweeps.record_vote(ledger, view.id, " ", "a", "b", actor="test")


def test_contact_sheet_has_the_grids_layout_and_a_bounded_size(lab, data_dir):
    _, ledger, runner = lab
    view = run_sweep(
        ledger,
        runner,
        sweeps.make_plan(BASE, [sweeps.axis("seed", [1, 2, 3]), sweeps.axis("safety_tolerance", [1, 3])]),
    )
    with Image.open(io.BytesIO(sweeps.contact_sheet(view, data_dir))) as sheet:
        assert sheet.format == "PNG"
        # 2 columns and 3 rows of 256 px cells with labels: wider than 2 cells, taller than 3
        assert 2 * 256 < sheet.width < 3 * 256 and 3 * 256 < sheet.height < 4 * 256
    big = sweeps.SweepView(
        "x",
        "",
        "2026-01-01T00:00",
        {},
        [
            sweeps.axis("seed", list(range(40))),
            sweeps.axis("safety_tolerance", [0, 1, 2, 3, 4, 5, 6]),
            sweeps.axis("output_format", ["png", "jpeg"]),
        ],
        [],
    )
    with Image.open(io.BytesIO(sweeps.contact_sheet(big, data_dir))) as sheet:
        assert max(sheet.size) <= D.CONTACT_SHEET_MAX_PX


def test_the_zip_holds_images_and_a_manifest_that_matches_the_ledger(lab, data_dir):
    _, ledger, runner = lab
    view = run_sweep(
        ledger,
        runner,
        sweeps.make_plan(BASE, [sweeps.axis("seed", [1, 2]), sweeps.axis("safety_tolerance", [1, 3])]),
    )
    with zipfile.ZipFile(io.BytesIO(sweeps.export_zip(view, data_dir))) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        images = [n for n in zf.namelist() if n.startswith("images/")]
    assert len(manifest["cells"]) == 4 and len(images) == 2
    for entry in manifest["cells"]:
        row = ledger.get(entry["run_id"])
        assert entry["status"] == row.status and entry["seed"] == row.seed
        assert entry["coords"] == {"seed": row.seed, "safety_tolerance": row.safety_tolerance}
        assert (entry["file"] in images) == (row.status == store.COMPLETED)


def test_a_picture_two_cells_share_is_offered_for_votes_once(lab, data_dir):
    _, ledger, runner = lab
    # the emulator draws the same picture at every tolerance that passes: 2 seeds x 2 tolerances,
    # 4 cells, 2 distinct pictures, so 1 pair (not 6, five of them of identical images)
    calm = BASE.replace(prompt="a quiet harbour at dawn")
    view = run_sweep(
        ledger,
        runner,
        sweeps.make_plan(calm, [sweeps.axis("seed", [1, 2]), sweeps.axis("safety_tolerance", [3, 4])]),
    )
    assert view.progress()["done"] == 4
    [(a, b)] = sweeps.vote_pairs(view, "Ana", data_dir)
    assert a.run.seed != b.run.seed
    assert sweeps.picture_key(a, data_dir) != sweeps.picture_key(b, data_dir)


def test_skipped_pairs_are_not_counted_as_judged(lab, data_dir):
    _, ledger, runner = lab
    view = run_sweep(ledger, runner, sweeps.make_plan(BASE, [sweeps.axis("seed", [1, 2, 3, 4])]))
    pairs = sweeps.vote_pairs(view, "Ana", data_dir)
    assert len(pairs) == 6
    (w, lo), skip_a, skip_b = pairs[0], pairs[1], pairs[2]
    sweeps.record_vote(ledger, view.id, "Ana", w.run.id, lo.run.id, actor="test")
    skipped = {frozenset((a.run.id, b.run.id)) for a, b in (skip_a, skip_b)}
    progress = sweeps.vote_progress(pairs, sweeps.voted_pairs(ledger, view.id, "Ana"), skipped)
    assert (progress.pairs, progress.judged, progress.skipped) == (6, 1, 2)
    assert progress.line() == "1 of 6 pairs judged · 2 skipped"


def test_contact_sheet_tiles_are_one_size_full_images_and_a_titled_band(lab, data_dir, monkeypatch):
    from PIL import ImageChops, ImageDraw

    _, ledger, runner = lab
    view = run_sweep(
        ledger,
        runner,
        sweeps.make_plan(BASE, [sweeps.axis("seed", [1, 2]), sweeps.axis("safety_tolerance", [1, 3])]),
        name="zombies by tolerance",
    )
    done = next(c for c in view.cells if c.outcome == "done")
    blocked = next(c for c in view.cells if c.outcome == "blocked")
    size = D.CONTACT_SHEET_CELL_PX
    background = (250, 250, 248)
    boxes = []
    for cell in (done, blocked):
        sheet = Image.new("RGB", (size + 40, size + 40), background)
        sweeps._draw_cell(sheet, ImageDraw.Draw(sheet), cell, data_dir, (20, 20), size, sweeps._font(14))
        boxes.append(ImageChops.difference(sheet, Image.new("RGB", sheet.size, background)).getbbox())
        if cell is done:  # the full image, scaled to the tile (the 200 px thumbnail left a margin)
            with Image.open(data_dir / done.run.image_path) as full:
                full = full.convert("RGB").resize((size, size))
            assert sheet.getpixel((20, 20)) == full.getpixel((0, 0))
    assert boxes[0] == boxes[1] == (20, 20, 20 + size, 20 + size)  # same-size tiles, blocked or not

    drawn: list[str] = []
    original = ImageDraw.ImageDraw.text
    monkeypatch.setattr(
        ImageDraw.ImageDraw,
        "text",
        lambda self, xy, text, *a, **k: (drawn.append(text), original(self, xy, text, *a, **k)),
    )
    sweeps.contact_sheet(view, data_dir)
    assert drawn[0] == "zombies by tolerance" and drawn[1] == "Base prompt: a zombie at dusk"
