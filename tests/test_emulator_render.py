from __future__ import annotations

import io
import re

import pytest

from flux_core.checks import palette
from PIL import Image, ImageColor
from rapidocr_onnxruntime import RapidOCR

from flux_core.emulator.render import render_preview, truth, wrong_colour
from flux_ui.templates import MAGAZINE_SHOOT


def _fold(text: str) -> str:
    return re.sub(r"[\W_]", "", text).casefold()


@pytest.fixture(scope="module")
def ocr():
    return RapidOCR()


def _lines(ocr, png: bytes) -> list[str]:
    """What OCR reads, one entry per line: boxes whose heights overlap are one line, read left to right."""
    result, _ = ocr(png)
    boxes = sorted(
        (
            (min(p[1] for p in box), max(p[1] for p in box), min(p[0] for p in box), text)
            for box, text, _ in result or []
        )
    )
    lines: list[list] = []
    for top, bottom, left, text in boxes:
        if lines and top < (lines[-1][0] + lines[-1][1]) / 2:
            lines[-1][2].append((left, text))
            lines[-1][1] = max(lines[-1][1], bottom)
        else:
            lines.append([top, bottom, [(left, text)]])
    return [_fold("".join(text for _, text in sorted(parts))) for _, _, parts in lines]


def _seeds() -> list[int]:
    """Seeds of 0..59: the first two with a misspelling, the first with none, and two that once misread."""
    misspelt = [s for s in range(60) if truth(MAGAZINE_SHOOT, s).misspelt]
    right = [s for s in range(60) if not truth(MAGAZINE_SHOOT, s).misspelt]
    return misspelt[:2] + right[:1] + [30, 47]  # 30, 47: a last word near the edge once read as another


def test_some_seeds_misspell_and_some_do_not():
    keys = [truth(MAGAZINE_SHOOT, s) for s in range(60)]
    assert any(k.misspelt for k in keys) and any(not k.misspelt for k in keys)
    assert any(not all(right for _, _, right in k.colours) for k in keys)
    assert all(len(k.misspelt) <= 1 for k in keys)


def test_a_misspelling_is_one_visible_letter():
    for seed in range(60):
        key = truth(MAGAZINE_SHOOT, seed)
        for text in key.misspelt:
            drawn = key.texts[text]
            assert _fold(drawn) != _fold(text)
            assert abs(len(drawn) - len(text)) <= 1
        assert all(key.texts[t] == t for t in key.texts if t not in key.misspelt)


@pytest.mark.parametrize("seed", _seeds())
def test_every_string_is_read_back_as_drawn(ocr, seed):
    key = truth(MAGAZINE_SHOOT, seed)
    lines = _lines(ocr, render_preview(MAGAZINE_SHOOT, seed, 1024, 1024, "png"))
    assert _fold(f"EMULATOR PREVIEW seed {seed}") in lines or any("emulatorpreview" in line for line in lines)
    for expected, drawn in key.texts.items():
        assert _fold(drawn) in lines, (expected, drawn, lines)
        if expected in key.misspelt:
            assert _fold(expected) not in lines


def test_the_strings_are_legible_at_512(ocr):
    seed = _seeds()[0]
    key = truth(MAGAZINE_SHOOT, seed)
    lines = _lines(ocr, render_preview(MAGAZINE_SHOOT, seed, 512, 512, "png"))
    assert all(_fold(drawn) in lines for drawn in key.texts.values()), lines


@pytest.mark.parametrize("size", [(1024, 1024), (512, 512), (1024, 640)])
def test_each_palette_colour_covers_a_large_area_as_drawn(size):
    for seed in range(8):
        key = truth(MAGAZINE_SHOOT, seed)
        with Image.open(io.BytesIO(render_preview(MAGAZINE_SHOOT, seed, *size, "png"))) as im:
            counts = {rgb: n for n, rgb in im.convert("RGB").getcolors(1 << 20)}
        for colour, drawn, right in key.colours:
            assert counts.get(drawn, 0) >= 0.08 * size[0] * size[1], (seed, colour, drawn)
            assert right == (drawn == colour.rgb)


def test_seeds_draw_different_images_and_repeat_exactly():
    images = {render_preview(MAGAZINE_SHOOT, seed, 256, 256, "png") for seed in range(6)}
    assert len(images) == 6
    assert render_preview(MAGAZINE_SHOOT, 3, 256, 256, "jpeg") == render_preview(
        MAGAZINE_SHOOT, 3, 256, 256, "jpeg"
    )


def _ciede2000(rgb1, rgb2) -> float:
    return palette.ciede2000(palette.srgb_to_lab(rgb1), palette.srgb_to_lab(rgb2))


def test_the_reference_ciede2000_matches_a_published_pair():
    # Sharma, Wu & Dalal's test data: pure white against pure black is 100.
    assert _ciede2000((255, 255, 255), (0, 0, 0)) == pytest.approx(100, abs=0.1)


def test_a_wrong_colour_is_far_from_every_named_colour():
    for name in ImageColor.colormap:
        rgb = ImageColor.getrgb(name)[:3]
        assert _ciede2000(rgb, wrong_colour(rgb)) > 30, name
