"""Presets: a person's saved parameter sets (size, seed mode and seed, tolerance, format; optionally
the prompt), kept in the ledger's `presets` table by a unique name. Every value is checked by the
rules of `FluxParams` before anything is written."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from flux_core import defaults as D
from flux_core.ledger import store
from flux_core.params import FluxParams, ParamsError


@dataclass(frozen=True)
class Preset:
    name: str
    width: int
    height: int
    seed: int | None  # None: a random seed is drawn for every run
    safety_tolerance: int
    output_format: str
    prompt: str | None = None  # None: the preset leaves the prompt as it is
    created_at: str = ""
    owner: str = ""

    @property
    def seed_mode(self) -> str:
        return "random" if self.seed is None else "fixed"

    def params(self) -> dict[str, Any]:
        """What is stored in `params_json`."""
        out: dict[str, Any] = {
            "width": self.width,
            "height": self.height,
            "seed_mode": self.seed_mode,
            "seed": self.seed,
            "safety_tolerance": self.safety_tolerance,
            "output_format": self.output_format,
        }
        if self.prompt is not None:
            out["prompt"] = self.prompt
        return out

    def words(self) -> str:
        """One line for people: what the preset sets."""
        seed = "random seed" if self.seed is None else f"seed {self.seed}"
        prompt = " · with its prompt" if self.prompt is not None else ""
        return (
            f"{self.width}x{self.height} · {seed} · tolerance {self.safety_tolerance} · "
            f"{self.output_format}{prompt}"
        )


def name_problem(name: Any) -> str | None:
    """Why `name` cannot name a preset; None if it can."""
    if not isinstance(name, str) or not name.strip():
        return "name is required: a few words that say what the preset is for"
    text = name.strip()
    if len(text) > D.PRESET_NAME_MAX_CHARS:
        return f"name must be at most {D.PRESET_NAME_MAX_CHARS} characters (got {len(text)})"
    if any(unicodedata.category(c).startswith("C") for c in text):
        return "name must be plain text, without control characters"
    return None


def make(
    name: str,
    *,
    width: Any = D.WIDTH,
    height: Any = D.HEIGHT,
    seed: Any = None,
    safety_tolerance: Any = D.SAFETY_TOLERANCE,
    output_format: Any = D.OUTPUT_FORMAT,
    prompt: str | None = None,
) -> Preset:
    """A checked preset; a ParamsError names every bad field and what is allowed."""
    problems: list[str] = []
    if problem := name_problem(name):
        problems.append(problem)
    random = seed is None or (isinstance(seed, str) and seed.strip().lower() in ("", "random"))
    fields = dict(
        prompt=prompt if prompt is not None else "a preset",  # a preset without a prompt is still checked
        width=width,
        height=height,
        seed=0 if random else seed,
        safety_tolerance=safety_tolerance,
        output_format=output_format,
    )
    try:
        checked = FluxParams.parse(fields)
    except ParamsError as exc:
        problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        raise ParamsError(problems)
    return Preset(
        name=name.strip(),
        width=checked.width,
        height=checked.height,
        seed=None if random else checked.seed,
        safety_tolerance=checked.safety_tolerance,
        output_format=checked.output_format,
        prompt=checked.prompt if prompt is not None else None,
    )


def _from_row(row: dict[str, Any]) -> Preset:
    params = json.loads(row["params_json"])
    return Preset(
        name=row["name"],
        width=params["width"],
        height=params["height"],
        seed=None if params.get("seed_mode") == "random" else params.get("seed"),
        safety_tolerance=params["safety_tolerance"],
        output_format=params["output_format"],
        prompt=params.get("prompt"),
        created_at=row["created_at"],
        owner=row["owner"],
    )


def save(ledger: store.Ledger, preset: Preset, owner: str = "") -> Preset:
    """Write the preset under its name; saving a name again replaces what it sets."""
    with ledger.write() as db:
        db.execute(
            "INSERT INTO presets (name, params_json, created_at, owner) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(owner, name) DO UPDATE SET params_json = excluded.params_json",
            [preset.name, json.dumps(preset.params(), sort_keys=True), store.now_iso(), owner],
        )
    return get(ledger, preset.name) or preset


def get(ledger: store.Ledger, name: str) -> Preset | None:
    with ledger.db() as db:
        rows = list(db.query("SELECT * FROM presets WHERE name = ?", [str(name).strip()]))
    return _from_row(rows[0]) if rows else None


def all_presets(ledger: store.Ledger) -> list[Preset]:
    """Every preset, by name."""
    with ledger.db() as db:
        return [_from_row(r) for r in db.query("SELECT * FROM presets ORDER BY name COLLATE NOCASE")]


def delete(ledger: store.Ledger, name: str) -> bool:
    """Delete a preset; whether there was one of that name."""
    with ledger.write() as db:
        cursor = db.execute("DELETE FROM presets WHERE name = ?", [str(name).strip()])
        return cursor.rowcount > 0
