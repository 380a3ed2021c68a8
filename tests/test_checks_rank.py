"""The ranking rules over stored check results: a run's score, the best seed, a set's diversity."""

from __future__ import annotations

import pytest

from flux_core.checks import rank, similarity


def text(score, misspelt=(), missing=()):
    return {
        "score": score,
        "expected": ["A", "B"],
        "found": [],
        "misspelt": list(misspelt),
        "missing": list(missing),
    }


def palette(score):
    return {"score": score, "expected": ["red"], "matched": [], "missing": []}


def printed(phash):
    return {"score": None, "phash": phash}


def test_score_by_text_palette_and_both():
    found = {"text": text(0.5), "palette": palette(0.9)}
    assert rank.score(found, "text") == (0.5,)
    assert rank.score(found, "palette") == (0.9,)
    assert rank.score(found, "checks") == (0.5, 0.9)
    assert rank.score({"text": text(0.5)}, "checks") == (0.5, -1.0)


def test_an_absent_or_failed_check_has_no_score_and_a_bad_by_is_named():
    assert rank.score({}, "text") is None
    assert rank.score({"text": {"score": None, "error": "OCR failed"}}, "text") is None
    assert rank.score(None, "palette") is None
    with pytest.raises(ValueError, match="by: must be one of text, palette, checks"):
        rank.score({}, "colour")


def test_best_is_the_highest_text_score_ties_broken_by_palette():
    checks = {
        "a": {"text": text(0.8), "palette": palette(0.9)},
        "b": {"text": text(1.0), "palette": palette(0.5)},
        "c": {"text": text(1.0), "palette": palette(0.7)},
    }
    assert rank.best(["a", "b", "c"], checks) == "c"


def test_a_run_with_a_misspelt_or_missing_word_is_never_best_while_a_clean_one_exists():
    checks = {
        "typo": {"text": text(0.95, misspelt=["B"]), "palette": palette(1.0)},
        "gap": {"text": text(0.9, missing=["A"])},
        "clean": {"text": text(0.6), "palette": palette(0.1)},
    }
    assert rank.best(["typo", "gap", "clean"], checks) == "clean"
    assert rank.best(["typo", "gap"], checks) == "typo"


def test_best_is_none_without_a_text_score():
    assert rank.best(["a", "b"], {"a": {"palette": palette(1.0)}}) is None
    assert rank.best([], {}) is None


def test_hamming_counts_the_bits_apart():
    assert similarity.distance("0000000000000000", "0000000000000000") == 0
    assert similarity.distance("0000000000000000", "ffffffffffffffff") == 64
    assert similarity.distance("0000000000000000", "000000000000000f") == 4


def test_diversity_groups_near_duplicates_as_connected_components():
    checks = {
        "a": {"print": printed("0000000000000000")},
        "b": {"print": printed("000000000000003f")},  # 6 bits from a: alike
        "c": {"print": printed("0000000000000fff")},  # 6 bits from b, 12 from a: joined through b
        "d": {"print": printed("ffffffffffffffff")},
        "e": {"print": printed("fffffffffffffffe")},  # 1 bit from d
        "f": {"text": text(1.0)},  # no print: left out
    }
    found = rank.diversity(list(checks), checks)
    assert found is not None
    assert sorted(sorted(g) for g in found.groups) == [["a", "b", "c"], ["d", "e"]]


def test_diversity_figure_is_the_mean_distance_over_32_capped_at_1():
    alike = {"a": {"print": printed("0000000000000000")}, "b": {"print": printed("00000000000000ff")}}
    found = rank.diversity(["a", "b"], alike)
    assert found is not None and found.figure == pytest.approx(8 / 32) and found.groups == []
    apart = {"a": {"print": printed("0000000000000000")}, "b": {"print": printed("ffffffffffffffff")}}
    found = rank.diversity(["a", "b"], apart)
    assert found is not None and found.figure == 1.0


def test_diversity_needs_two_prints():
    assert rank.diversity(["a"], {"a": {"print": printed("0000000000000000")}}) is None
    bad = {
        "a": {"print": printed("0000000000000000")},
        "b": {"print": {"score": None, "error": "unreadable"}},
    }
    assert rank.diversity(["a", "b"], bad) is None
