"""The checks in words and in JSON: what the CLI prints and `show --json` carries as "checks"."""

from __future__ import annotations

from typing import Any

from flux_core.ledger import checks as table


def public(found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`show --json`'s "checks": "text" -> {score, expected, found, misspelt, missing, ...},
    "palette" -> {score, expected, found, ...}, "print" -> {phash}, "repro" -> {verdict, ...};
    each key absent until computed."""
    return {
        name: dict(found[name])
        for name in (table.TEXT, table.PALETTE, table.PRINT, table.REPRO)
        if name in found
    }


def _quoted(items: list[str]) -> str:
    return ", ".join(repr(item) for item in items)


def text_line(result: dict[str, Any]) -> str | None:
    if result.get("error"):
        return f"text: {result['error']}"
    expected = result.get("expected") or []
    if not expected:
        return None
    line = f"text {len(result.get('found') or [])}/{len(expected)} right"
    read_as = result.get("read_as") or {}
    wrong = [
        f"{item!r} misspelt (read {read_as[item]!r})" if item in read_as else f"{item!r} misspelt"
        for item in result.get("misspelt") or []
    ]
    if result.get("missing"):
        wrong.append(f"{_quoted(result['missing'])} missing")
    return line + (": " + "; ".join(wrong) if wrong else "")


def palette_line(result: dict[str, Any]) -> str | None:
    if result.get("error"):
        return f"palette: {result['error']}"
    expected = result.get("expected") or []
    if not expected or result.get("score") is None:
        return None
    line = f"palette {len(result.get('matched') or [])}/{len(expected)} ({result['score']:.2f})"
    if result.get("missing"):
        line += f": {', '.join(result['missing'])} not found"
    return line


def repro_line(result: dict[str, Any]) -> str | None:
    if result.get("error"):
        return f"reproducibility: {result['error']}"
    if result.get("verdict"):
        return f"reproducibility: {result['verdict']} (run {result.get('probe_run_id')}, {result.get('distance')} bits apart)"
    return f"reproducibility: waiting for run {result.get('probe_run_id')}"


def lines(found: dict[str, dict[str, Any]]) -> list[str]:
    """One line a check, for a terminal or a caption ("text 5/6 right: 'The Workout' misspelt ...")."""
    out = []
    for name, say in ((table.TEXT, text_line), (table.PALETTE, palette_line), (table.REPRO, repro_line)):
        if name in found:
            line = say(found[name])
            if line:
                out.append(line)
    return out
