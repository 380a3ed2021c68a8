"""The text check: does an image show the strings its prompt asks for, spelt right?

`read` runs the OCR (rapidocr-onnxruntime, whose models ship in its wheel) and returns the lines in
reading order; `match` is pure and compares each expected string with those lines on a normal form
(case-folded, letters and digits only: OCR varies punctuation and spaces, and a case difference is
not a misspelling), allowing a string that wrapped over lines.
"""

from __future__ import annotations

import threading
from typing import Any

from PIL import Image
from rapidfuzz import fuzz

from flux_core import defaults as D

VERSION = 1

_engine: Any = None
_engine_lock = threading.Lock()


def _ocr() -> Any:
    """The process's one OCR engine, made on first use (loading its models takes a moment)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]

            # RapidOCR's keyword settings without a det_/cls_/rec_ prefix are global ones, which it
            # copies into each of its three onnxruntime sessions
            _engine = RapidOCR(
                intra_op_num_threads=D.TEXT_OCR_THREADS,
                inter_op_num_threads=D.TEXT_OCR_THREADS,
            )
        return _engine


def read(image: Image.Image) -> list[str]:
    """The lines of text the OCR reads in `image`, top to bottom, left to right."""
    rgb = image.convert("RGB")
    longest = max(rgb.size)
    if longest > D.TEXT_OCR_MAX_PX:
        scale = D.TEXT_OCR_MAX_PX / longest
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    engine = _ocr()
    with _engine_lock:  # one image at a time through the one engine
        result, _elapsed = engine(rgb)
    boxes = []
    for box, text, _score in result or []:
        ys = [point[1] for point in box]
        xs = [point[0] for point in box]
        boxes.append((min(ys), max(ys), min(xs), str(text)))
    return _reading_order(boxes)


def _reading_order(boxes: list[tuple[float, float, float, str]]) -> list[str]:
    """Boxes (top, bottom, left, text) as lines: rows top to bottom, each row left to right.

    A box joins the row above when its middle is within that row's vertical extent."""
    rows: list[list[tuple[float, float, float, str]]] = []
    for box in sorted(boxes, key=lambda b: (b[0] + b[1]) / 2):
        middle = (box[0] + box[1]) / 2
        if rows and rows[-1][0][0] <= middle <= max(b[1] for b in rows[-1]):
            rows[-1].append(box)
        else:
            rows.append([box])
    return [b[3] for row in rows for b in sorted(row, key=lambda b: b[2])]


def _normal(text: str) -> tuple[str, list[int]]:
    """`text` case-folded on its letters and digits, with where each kept character came from."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ch.isalnum():
            folded = ch.casefold()
            chars.append(folded)
            origin.extend([i] * len(folded))
    return "".join(chars), origin


def _whole(target: str, normal: str, origin: list[int], text: str) -> bool:
    """Whether `target` occurs in `normal` (the normal form of `text`) as whole words of `text`:
    "SAMEE" or "SSAME" is not "SAME", nor is "sweat" and "he Workout" on the next line "The Workout"."""
    at = normal.find(target)
    while at >= 0:
        start, end = origin[at], origin[at + len(target) - 1] + 1
        before = start == 0 or not text[start - 1].isalnum()
        after = end == len(text) or not text[end].isalnum()
        if before and after:
            return True
        at = normal.find(target, at + 1)
    return False


def _words(text: str, start: int, end: int) -> str:
    """text[start:end] widened to whole words: what was read for a string, not a fragment of it."""
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[start:end]


def _candidates(lines: list[str]) -> list[str]:
    """Every line, runs of consecutive lines (a wrapped string), and a line with one a little later
    (a string wrapped in a column beside another)."""
    out: list[str] = []
    for i in range(len(lines)):
        for n in range(1, D.TEXT_WRAP_MAX_LINES + 1):
            if i + n <= len(lines):
                out.append(" ".join(lines[i : i + n]))
        for j in range(i + 2, min(len(lines), i + 1 + D.TEXT_WRAP_LOOKAHEAD)):
            out.append(f"{lines[i]} {lines[j]}")
    return out


def _classify(wanted: str, candidates: list[str]) -> tuple[str, str | None]:
    """One expected string's verdict, "found", "misspelt" or "missing", and what was read for it."""
    target, _ = _normal(wanted)
    if not target:
        return "found", None
    best_score, best_read = 0.0, None
    for candidate in candidates:
        normal, origin = _normal(candidate)
        if not normal:
            continue
        if _whole(target, normal, origin, candidate):
            return "found", None
        # the closest part of the candidate, widened to whole words, scored as a whole: "sweat"
        # and "he Workout" on the next line read as "he Workout", not as "The Workout"
        alignment = fuzz.partial_ratio_alignment(target, normal)
        if alignment is None or alignment.dest_end <= alignment.dest_start:
            continue
        start, end = origin[alignment.dest_start], origin[alignment.dest_end - 1] + 1
        read_as = _words(candidate, start, end)
        score = fuzz.ratio(target, _normal(read_as)[0])
        if score > best_score:
            best_score, best_read = score, read_as
    short = len(target) <= D.TEXT_SHORT_CHARS
    least = D.TEXT_MISSPELT_MIN_RATIO_SHORT if short else D.TEXT_MISSPELT_MIN_RATIO
    if best_read and best_score >= least:
        return "misspelt", best_read
    return "missing", None


def match(expected: list[str], lines: list[str]) -> dict[str, Any]:
    """Each expected string as found, misspelt or missing among the lines read (no OCR here)."""
    candidates = _candidates(lines)
    result: dict[str, Any] = {
        "score": None,
        "expected": list(expected),
        "found": [],
        "misspelt": [],
        "missing": [],
        "read_as": {},
    }
    for wanted in expected:
        verdict, read_as = _classify(wanted, candidates)
        result[verdict].append(wanted)
        if read_as is not None:
            result["read_as"][wanted] = read_as
    if expected:
        result["score"] = len(result["found"]) / len(expected)
    return result


def check(image: Image.Image, expected: list[str]) -> dict[str, Any]:
    """The text check of one image against the strings its prompt asks for."""
    return match(expected, read(image) if expected else [])
