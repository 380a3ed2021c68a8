"""Ranking by the checks: a run's score for a sort, the best seed of a set, and a set's diversity.

`found` is one run's checks as `Workbench.checks` gives them (check name -> result). Pages and the
ledger's History sort draw on these rules; nothing here computes a check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flux_core.checks import similarity
from flux_core.ledger import checks as table

BY = ("text", "palette", "checks")  # what a score may rank by; "checks" is text, then palette


def _score(found: dict[str, Any], name: str) -> float | None:
    result = found.get(name) or {}
    value = result.get("score")
    return None if result.get("error") or value is None else float(value)


def score(found: dict[str, Any] | None, by: str) -> tuple[float, ...] | None:
    """The sort key of one run's checks (higher is better), or None while the check is absent or
    failed. "checks" ranks by text, ties by palette (an absent palette counts below any)."""
    if by not in BY:
        raise ValueError(f"by: must be one of {', '.join(BY)}, not {by!r}")
    found = found or {}
    if by != "checks":
        value = _score(found, by)
        return None if value is None else (value,)
    text = _score(found, table.TEXT)
    if text is None:
        return None
    palette = _score(found, table.PALETTE)
    return (text, -1.0 if palette is None else palette)


def text_wrong(found: dict[str, Any] | None) -> bool:
    """Whether the run's text check found a word misspelt or missing."""
    result = (found or {}).get(table.TEXT) or {}
    return bool(result.get("misspelt") or result.get("missing"))


def best(run_ids: list[str], checks: dict[str, dict[str, Any]]) -> str | None:
    """The best seed of a set: the highest text score, ties by palette; a run with any misspelt or
    missing text is never best while one without exists. None when no run has a text score."""
    ranked = [(run_id, score(checks.get(run_id), "checks")) for run_id in run_ids]
    scored = [(run_id, key) for run_id, key in ranked if key is not None]
    if not scored:
        return None
    clean = [(r, k) for r, k in scored if not text_wrong(checks.get(r))]
    pool = clean or scored
    return max(pool, key=lambda item: item[1])[0]  # max keeps the first of equals: the set's order


@dataclass(frozen=True)
class Diversity:
    figure: float  # mean pairwise distance / DIVERSITY_FULL_BITS, capped at 1: 0 all alike, 1 all apart
    groups: list[list[str]]  # run ids that look alike (connected within NEAR_DUPLICATE_BITS), 2+ each


def _phash(found: dict[str, Any] | None) -> str | None:
    result = (found or {}).get(table.PRINT) or {}
    value = result.get("phash")
    if result.get("error") or not isinstance(value, str):
        return None
    try:
        int(value, 16)
    except ValueError:
        return None
    return value


def diversity(run_ids: list[str], checks: dict[str, dict[str, Any]]) -> Diversity | None:
    """How different a set's images are, from their prints; None with fewer than two prints."""
    prints = {r: h for r in run_ids if (h := _phash(checks.get(r))) is not None}
    if len(prints) < 2:
        return None
    figure = similarity.diversity(list(prints.values()))
    assert figure is not None
    return Diversity(figure=figure, groups=similarity.groups(prints))
