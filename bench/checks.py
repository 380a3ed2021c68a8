"""Issue 16's figures: what the automatic image checks cost and how right they are.

1. For N emulator images of the Compose magazine template at 1024x1024 (seeds 0..N-1): each check's
   seconds per image on this machine (text = OCR + matching, palette, print = the perceptual hash).
2. The text check's accuracy against the emulator's answer key (render.truth: which expected string
   each seed drew misspelt): precision and recall of "misspelt or missing", over every (image,
   expected string) pair.
3. The delay checks add to a running sweep: a sweep of S runs of that prompt on an in-process emulator,
   from the first run written to the last image stored, with the background checker off and on
   (median of R repeats each; the checker runs at a lower priority and yields to the runs).
Prints the figures and a markdown table; asserts nothing.

    .venv/bin/python bench/checks.py                 # 50 images, a 12-run sweep, 3 repeats
    .venv/bin/python bench/checks.py --images 10 --sweep 6 --repeats 1
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time

from PIL import Image

from flux_core.checks import expect, palette, similarity, text
from flux_core.emulator.render import render_preview, truth
from flux_core.ledger import checks as table
from flux_core.ledger import sweeps
from flux_core.ledger.store import parse_iso
from flux_core.params import FluxParams
from flux_core.service import Workbench
from flux_ui.templates import MAGAZINE_SHOOT

SIZE = 1024


def _norm(value: str) -> str:
    return "".join(ch for ch in value.casefold() if ch.isalnum())


def accuracy_and_speed(images: int) -> dict[str, float]:
    expected_text = expect.texts(MAGAZINE_SHOOT)
    expected_colours = expect.colours(MAGAZINE_SHOOT)
    seconds: dict[str, list[float]] = {"text": [], "palette": [], "print": []}
    tp = fp = fn = tn = 0
    wrong_colour_right = wrong_colour_total = 0
    text.check(Image.new("RGB", (64, 64)), ["warm up"])  # the OCR engine loads once a process
    for seed in range(images):
        image = Image.open(io.BytesIO(render_preview(MAGAZINE_SHOOT, seed, SIZE, SIZE, "png"))).convert("RGB")
        answer = truth(MAGAZINE_SHOOT, seed)
        started = time.perf_counter()
        result = text.check(image, expected_text)
        seconds["text"].append(time.perf_counter() - started)
        started = time.perf_counter()
        colours = palette.check(image, expected_colours)
        seconds["palette"].append(time.perf_counter() - started)
        started = time.perf_counter()
        similarity.fingerprint(image)
        seconds["print"].append(time.perf_counter() - started)
        flagged = set(result["misspelt"]) | set(result["missing"])
        drawn_wrong = set(answer.misspelt)
        for item in expected_text:
            if item in drawn_wrong and item in flagged:
                tp += 1
            elif item in flagged:
                fp += 1
            elif item in drawn_wrong:
                fn += 1
            else:
                tn += 1
        for colour, _drawn, right in answer.colours:
            if not right:
                wrong_colour_total += 1
                wrong_colour_right += colour.name in colours["missing"]
    return {
        "images": images,
        "text_s": statistics.median(seconds["text"]),
        "text_p95_s": sorted(seconds["text"])[int(0.95 * (len(seconds["text"]) - 1))],
        "palette_s": statistics.median(seconds["palette"]),
        "print_s": statistics.median(seconds["print"]),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "wrong_colours_found": wrong_colour_right,
        "wrong_colours": wrong_colour_total,
    }


def sweep_seconds(runs: int, checks: bool) -> tuple[float, int]:
    """First run written to last image stored, and how many images had been checked by then."""
    with tempfile.TemporaryDirectory() as data_dir:
        wb = Workbench(data_dir, emulator="ephemeral", background=False, checks=checks)
        try:
            params = FluxParams.parse(prompt=MAGAZINE_SHOOT, width=SIZE, height=SIZE, seed=1)
            plan = sweeps.make_plan(params, [sweeps.axis("seed", list(range(1000, 1000 + runs)))])
            view = wb.sweep(wb.start_sweep(plan, confirmed=True))
            assert view is not None
            run_ids = [cell.run.id for cell in view.cells if cell.run is not None]
            rows = wb.wait(run_ids)
            first = min(parse_iso(r.created_at) for r in rows)  # type: ignore[type-var]
            last = max(parse_iso(r.finished_at) for r in rows)  # type: ignore[type-var]
            checked = sum(1 for found in table.of_runs(wb.ledger, run_ids).values() if table.TEXT in found)
        finally:
            wb.shutdown(wait=True)
    return (last - first).total_seconds(), checked  # type: ignore[operator]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--sweep", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    figures = accuracy_and_speed(args.images)
    print(f"{args.images} emulator images of the magazine template at {SIZE}x{SIZE}:")
    print(
        f"  text check {figures['text_s']:.2f} s/image (p95 {figures['text_p95_s']:.2f} s), "
        f"palette {figures['palette_s'] * 1000:.0f} ms, print {figures['print_s'] * 1000:.0f} ms"
    )
    print(
        f"  misspelt-or-missing: precision {figures['precision']:.1%}, recall {figures['recall']:.1%} "
        f"(tp {figures['tp']}, fp {figures['fp']}, fn {figures['fn']}, tn {figures['tn']}); "
        f"wrong colours caught {figures['wrong_colours_found']}/{figures['wrong_colours']}"
    )
    off, on = [], []
    checked_on = []
    for _ in range(args.repeats):
        off.append(sweep_seconds(args.sweep, checks=False)[0])
        seconds, checked = sweep_seconds(args.sweep, checks=True)
        on.append(seconds)
        checked_on.append(checked)
    print(
        f"a {args.sweep}-run sweep, first run written to last image stored (median of {args.repeats}): "
        f"checks off {statistics.median(off):.2f} s, on {statistics.median(on):.2f} s "
        f"(delay {statistics.median(on) - statistics.median(off):+.2f} s; "
        f"images already checked when the last was stored: {statistics.median(checked_on):.0f}/{args.sweep})"
    )
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| text check, s/image (median, p95) | {figures['text_s']:.2f}, {figures['text_p95_s']:.2f} |")
    print(f"| palette check, ms/image | {figures['palette_s'] * 1000:.0f} |")
    print(f"| print (phash), ms/image | {figures['print_s'] * 1000:.0f} |")
    print(f"| misspelt-or-missing precision | {figures['precision']:.1%} |")
    print(f"| misspelt-or-missing recall | {figures['recall']:.1%} |")
    print(
        f"| {args.sweep}-run sweep, checks off / on (s) | {statistics.median(off):.2f} / {statistics.median(on):.2f} |"
    )


if __name__ == "__main__":
    main()
