"""The image checks' algorithms (flux_core/checks: text, palette, similarity) on synthetic images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from flux_core import defaults as D
from flux_core.checks import palette, similarity, text


@dataclass(frozen=True)
class Colour:
    name: str
    rgb: tuple[int, int, int]


def lettered(*lines: tuple[int, int, str], size: tuple[int, int] = (1024, 1024)) -> Image.Image:
    """A white image with each (x, y, text) drawn in black in Pillow's default font at 48 px."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=48)
    for x, y, words in lines:
        draw.text((x, y), words, fill="black", font=font)
    return image


# --- text: match() without OCR ------------------------------------------------------------


def test_match_an_exact_string_is_found_whatever_its_case_spaces_and_punctuation():
    result = text.match(
        ["Women's Health", "SAME", "The Workout"],
        ["WOMENS HEALTH", "same.", "The  Work-out!"],
    )
    assert result == {
        "score": 1.0,
        "expected": ["Women's Health", "SAME", "The Workout"],
        "found": ["Women's Health", "SAME", "The Workout"],
        "misspelt": [],
        "missing": [],
        "read_as": {},
    }


def test_match_a_short_string_one_letter_wrong_is_misspelt_with_what_was_read():
    result = text.match(["SAME", "The Workout"], ["SAMF", "The Wrokout"])
    assert result["misspelt"] == ["SAME", "The Workout"]
    assert result["read_as"] == {"SAME": "SAMF", "The Workout": "The Wrokout"}
    assert result["score"] == 0.0


def test_match_a_long_string_misspelt_inside_a_longer_line_reads_as_just_its_part():
    expected = ["Fifteen minute abs routine for a stronger core"]
    result = text.match(expected, ["NEW: Fifteen minute abs routlne for a stronger core - p. 42"])
    assert result["misspelt"] == expected
    assert result["read_as"] == {expected[0]: "Fifteen minute abs routlne for a stronger core"}


def test_match_text_nothing_like_the_string_is_missing_not_misspelt():
    result = text.match(["SAME", "Mind over matter"], ["Women's Health", "Spring forward", "CAME"])
    assert result["missing"] == ["Mind over matter"]
    # one letter of four differs: a misspelling of the short string, not another word
    assert result["misspelt"] == ["SAME"]
    assert text.match(["SAME"], ["Health"])["missing"] == ["SAME"]


def test_match_a_string_wrapped_over_lines_or_beside_a_column_is_found():
    lines = ["Fifteen minute", "SAME", "abs routine", "Spring", "forward"]
    result = text.match(["Fifteen minute abs routine", "Spring forward"], lines)
    assert result["found"] == ["Fifteen minute abs routine", "Spring forward"]


def test_match_a_letter_doubled_or_dropped_at_an_end_is_misspelt_not_found():
    # the expected string's letters are all there, but not as whole words
    result = text.match(["SAME", "Women's Health"], ["SAMEE", "SWomen's Health"])
    assert result["misspelt"] == ["SAME", "Women's Health"]
    assert result["read_as"] == {"SAME": "SAMEE", "Women's Health": "SWomen's Health"}
    # a dropped first letter is not made up by the last letter of the line before
    lines = ["Spring forward: How to eat, travel and sweat", "he Workout"]
    result = text.match(["The Workout"], lines)
    assert result["misspelt"] == ["The Workout"]
    assert result["read_as"] == {"The Workout": "he Workout"}


def test_match_finds_a_string_among_other_words_of_its_line():
    result = text.match(["The Workout"], ["NEW: The Workout, p. 42", "WomensHealth"])
    assert result["found"] == ["The Workout"]
    assert text.match(["Women's Health"], ["WomensHealth"])["found"] == ["Women's Health"]


def test_match_keeps_prompt_order_and_scores_the_share_found():
    result = text.match(["Gamma", "Alpha", "Beta words here", "Delta"], ["Delta", "Alpha"])
    assert result["found"] == ["Alpha", "Delta"]
    assert result["missing"] == ["Gamma", "Beta words here"]
    assert result["score"] == 0.5


def test_match_with_nothing_expected_has_no_score():
    assert text.match([], ["anything"]) == {
        "score": None,
        "expected": [],
        "found": [],
        "misspelt": [],
        "missing": [],
        "read_as": {},
    }


def test_check_with_nothing_expected_runs_no_ocr(monkeypatch):
    def no_ocr(image):
        raise AssertionError("the OCR ran")

    monkeypatch.setattr(text, "read", no_ocr)
    assert text.check(lettered((60, 60, "Hello")), [])["score"] is None


def test_read_scales_a_large_image_down_before_the_ocr(monkeypatch):
    seen = []

    def engine(image):
        seen.append(image.size)
        return None, None

    monkeypatch.setattr(text, "_ocr", lambda: engine)
    assert text.read(Image.new("RGB", (3200, 2000), "white")) == []
    assert seen == [(D.TEXT_OCR_MAX_PX, 1000)]


def test_reading_order_is_rows_top_to_bottom_then_left_to_right():
    boxes = [(300, 350, 10, "third"), (100, 150, 500, "second"), (105, 148, 10, "first")]
    assert text._reading_order(boxes) == ["first", "second", "third"]


# --- text: with the OCR (about 1 s an image) -------------------------------------------------


def test_the_ocr_engine_is_made_once_with_one_thread_per_session():
    engine = text._ocr()
    assert text._ocr() is engine
    sessions = (engine.text_det.infer, engine.text_cls.infer, engine.text_rec.session)
    for session in sessions:
        options = session.session.get_session_options()
        assert options.intra_op_num_threads == D.TEXT_OCR_THREADS == 1


def test_read_returns_the_lines_in_reading_order():
    image = lettered((560, 300, "SAME"), (60, 80, "Women's Health"), (60, 300, "The Workout"))
    assert text.read(image) == ["Women's Health", "The Workout", "SAME"]


def test_check_finds_a_correct_string():
    result = text.check(lettered((60, 200, "Spring forward")), ["Spring forward"])
    assert result["found"] == ["Spring forward"]
    assert result["score"] == 1.0


def test_check_names_a_misspelt_string_and_what_was_read():
    result = text.check(lettered((60, 200, "Spring fvrward")), ["Spring forward"])
    assert result["misspelt"] == ["Spring forward"]
    assert result["read_as"] == {"Spring forward": "Spring fvrward"}
    assert result["score"] == 0.0


def test_check_names_a_missing_string():
    image = lettered((60, 200, "Women's Health"))
    result = text.check(image, ["Women's Health", "Mind over matter"])
    assert result["found"] == ["Women's Health"]
    assert result["missing"] == ["Mind over matter"]
    assert result["score"] == 0.5


def test_check_finds_a_string_wrapped_over_two_lines():
    image = lettered((60, 400, "Fifteen minute"), (60, 460, "abs routine"), (640, 400, "SAME"))
    result = text.check(image, ["Fifteen minute abs routine", "SAME"])
    assert result["found"] == ["Fifteen minute abs routine", "SAME"]


# --- palette -------------------------------------------------------------------------------

NAVY = (29, 53, 87)
RED = (230, 57, 70)
CREAM = (241, 250, 238)


def blocks() -> Image.Image:
    """Half navy, a third red, a sixth cream (1024 x 1024)."""
    image = Image.new("RGB", (1024, 1024), RED)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 511, 1023), fill=NAVY)
    draw.rectangle((512, 700, 1023, 1023), fill=CREAM)
    return image


# Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data and mathematical observations", Table 1: pairs 1, 2, 3, 7, 13, 14, 17-20,
# 25, 34
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0009), 7.1792),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0011), 7.2195),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (61.0, -5.0, 29.0), 22.8977),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
]


@pytest.mark.parametrize(("lab1", "lab2", "expected"), SHARMA_PAIRS)
def test_ciede2000_agrees_with_sharmas_test_pairs_both_ways(lab1, lab2, expected):
    assert palette.ciede2000(lab1, lab2) == pytest.approx(expected, abs=5e-5)
    assert palette.ciede2000(lab2, lab1) == pytest.approx(expected, abs=5e-5)


def test_srgb_to_lab_of_white_black_and_red():
    assert palette.srgb_to_lab((255, 255, 255)) == pytest.approx((100.0, 0.0, 0.0), abs=1e-3)
    assert palette.srgb_to_lab((0, 0, 0)) == pytest.approx((0.0, 0.0, 0.0), abs=1e-6)
    assert palette.srgb_to_lab((255, 0, 0)) == pytest.approx((53.2408, 80.0925, 67.2032), abs=1e-3)


def test_dominant_colours_and_their_shares_largest_first():
    colours = palette.dominant(blocks())
    assert [rgb for rgb, _ in colours[:3]] == [NAVY, RED, CREAM]
    assert [share for _, share in colours[:3]] == pytest.approx([0.5, 0.34, 0.16], abs=0.01)
    assert sum(share for _, share in colours) == pytest.approx(1.0)


def test_palette_check_matches_near_colours_and_names_the_missing_one():
    expected = [Colour("navy", (30, 50, 90)), Colour("red", RED), Colour("green", (0, 160, 0))]
    result = palette.check(blocks(), expected)
    assert result["expected"] == ["navy", "red", "green"]
    assert result["expected_hex"] == ["#1e325a", "#e63946", "#00a000"]
    assert result["found"] == ["#1d3557", "#e63946", "#f1faee"]
    assert result["found_shares"] == pytest.approx([0.5, 0.34, 0.16], abs=0.01)
    assert result["matched"] == ["navy", "red"]
    assert result["missing"] == ["green"]
    assert result["distance"]["red"] == 0.0
    assert result["distance"]["navy"] < D.PALETTE_MATCH_DELTA_E
    assert result["distance"]["green"] > D.PALETTE_DELTA_E_CEILING
    navy_closeness = 1 - result["distance"]["navy"] / D.PALETTE_DELTA_E_CEILING
    assert result["score"] == pytest.approx((navy_closeness + 1 + 0) / 3, abs=1e-3)


def test_palette_check_with_nothing_expected_has_no_score():
    result = palette.check(blocks(), [])
    assert result["score"] is None
    assert result["matched"] == result["missing"] == []
    assert result["distance"] == {}


# --- similarity ----------------------------------------------------------------------------


def pattern(seed: int) -> Image.Image:
    """A smooth random pattern: an 8 x 8 grid of random colours blown up to 256 x 256."""
    cells = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize((256, 256), Image.Resampling.BILINEAR)


def noised(image: Image.Image, amplitude: int) -> Image.Image:
    pixels = np.asarray(image, dtype=np.int16)
    noise = np.random.default_rng(0).integers(-amplitude, amplitude + 1, pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


def test_fingerprint_is_64_bits_in_hex_and_distance_counts_bits():
    mark = similarity.fingerprint(pattern(1))
    assert len(mark) == 16 and int(mark, 16) >= 0
    assert similarity.distance(mark, mark) == 0
    assert similarity.distance("0000000000000000", "000000000000000f") == 4
    assert similarity.distance("0000000000000000", "ffffffffffffffff") == 64


def test_groups_are_chains_of_near_duplicates_of_two_or_more():
    prints = {
        "a": "0000000000000000",
        "b": "000000000000000f",  # 4 bits from a
        "c": "00000000000003ff",  # 6 bits from b, 10 from a: joined through b
        "d": "ffffffffffffffff",
        "e": "fffffffffffffff0",
        "f": "0f0f0f0f0f0f0f0f",
    }
    assert similarity.groups(prints, within=6) == [["a", "b", "c"], ["d", "e"]]
    assert similarity.groups(prints, within=4) == [["a", "b"], ["d", "e"]]
    assert similarity.groups({"a": "0000000000000000"}) == []


def test_groups_of_real_images_join_a_noised_copy_only():
    prints = {
        "one": similarity.fingerprint(pattern(1)),
        "two": similarity.fingerprint(pattern(2)),
        "one again": similarity.fingerprint(noised(pattern(1), 12)),
    }
    assert similarity.groups(prints) == [["one", "one again"]]


def test_diversity_is_mean_pairwise_distance_over_32_capped_at_1():
    assert similarity.diversity([]) is None
    assert similarity.diversity(["0000000000000000"]) is None
    assert similarity.diversity(["0000000000000000"] * 3) == 0.0
    assert similarity.diversity(["0000000000000000", "000000000000ffff"]) == 0.5
    assert similarity.diversity(["0000000000000000", "ffffffffffffffff"]) == 1.0


def test_verdict_same_image_small_drift_and_different():
    image = pattern(1)
    assert similarity.verdict(image, image.copy()) == ("same image", 0)
    assert similarity.verdict(image, noised(image, 1)) == ("same image", 0)
    drift, bits = similarity.verdict(image, noised(image, 12))
    assert drift == "small drift" and bits <= D.SMALL_DRIFT_BITS
    other, bits = similarity.verdict(image, pattern(2))
    assert other == "different" and bits > D.SMALL_DRIFT_BITS
