"""The image checks' algorithms (flux_core/checks) on synthetic images."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from flux_core import defaults as D
from flux_core.checks import text


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
