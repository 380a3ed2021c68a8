"""Sweeps: a grid of runs over up to three axes (seeds, safety tolerances, prompt variants, one field
of a structured prompt, the form the prompt is sent in, sizes, output formats, models), planned, estimated,
run, read, voted on and exported.

A field axis (`subject.attire.top`) sets one field of the base prompt to each value, every other byte
of the prompt as typed (flux_core/structured.py); a prompt-form axis sends the same content as JSON,
as YAML and as flattened prose. Both change the prompt a cell sends, after a prompt axis has chosen it.

A sweep is saved as a `sweeps` row (its base request and axes) and one `sweep_cells` row per cell
pointing at the run that fills it, so it survives refreshes and restarts and can be reopened.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from flux_core import defaults as D
from flux_core import lifecycle, structured
from flux_core.ledger import actions, store
from flux_core.params import FluxParams, ParamsError, model_name, random_seed
from flux_core.pricing import Pricing
from flux_core.runner import Runner
from flux_core.ledger.records import Run
from flux_core.ledger.store import Admit, Ledger

AXIS_LABELS = {
    "seed": "Seed",
    "safety_tolerance": "Safety tolerance",
    "prompt": "Prompt",
    "field": "Field",
    "prompt_form": "Prompt form",
    "size": "Size",
    "output_format": "Output format",
    "model": "Model",
}
AXIS_PLURALS = {
    "seed": "seeds",
    "safety_tolerance": "safety tolerances",
    "prompt": "prompts",
    "field": "values",
    "prompt_form": "prompt forms",
    "size": "sizes",
    "output_format": "output formats",
    "model": "models",
}
FORM_LABELS = {"json": "as JSON", "yaml": "as YAML", "prose": "as prose"}
OUTCOMES = ("done", "blocked", "failed", "pending")


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[Any, ...]
    labels: tuple[str, ...]
    path: str = ""  # a field axis: the field's path in the base prompt

    @property
    def title(self) -> str:
        return self.path if self.name == "field" else AXIS_LABELS[self.name]

    @property
    def plural(self) -> str:
        if self.name == "field":
            return f"values of {self.path}" if len(self.values) != 1 else self.path
        return AXIS_PLURALS[self.name] if len(self.values) != 1 else AXIS_LABELS[self.name].lower()

    def as_json(self) -> dict[str, Any]:
        out = {"name": self.name, "values": list(self.values), "labels": list(self.labels)}
        return {**out, "path": self.path} if self.path else out


def axis(name: str, values: list[Any], labels: list[str] | None = None, *, path: str = "") -> Axis:
    if name not in AXIS_LABELS:
        raise ParamsError([f"unknown axis {name!r}; allowed: {', '.join(AXIS_LABELS)}"])
    what = f"field {path}" if name == "field" else AXIS_LABELS[name].lower()
    if name == "field" and not path.strip():
        raise ParamsError(["a field axis needs the field's path (e.g. subject.attire.top)"])
    if name == "prompt_form":
        bad = [v for v in values if v not in structured.FORMS]
        if bad:
            raise ParamsError([f"prompt form {bad[0]!r}: allowed {', '.join(structured.FORMS)}"])
    if not values:
        raise ParamsError([f"the {what} axis needs at least one value"])
    if len(set(map(str, values))) != len(values):
        raise ParamsError([f"the {what} axis lists a value twice"])
    if labels is None:
        labels = [_label(name, v, path.strip()) for v in values]
    return Axis(name, tuple(values), tuple(labels), path.strip())


def field_axis(path: str, values: list[str]) -> Axis:
    """An axis over one field of the base prompt: its values as a person listed them (blank ones left out)."""
    return axis("field", [v.strip() for v in values if v.strip()], path=path)


def _label(name: str, value: Any, path: str = "") -> str:
    if name == "field":
        return f"{path} = {_shorten(str(value), D.SWEEP_LABEL_MAX_CHARS)}"
    if name == "prompt_form":
        return FORM_LABELS[value]
    if name == "prompt":
        text = " ".join(str(value).split())
        return text if len(text) <= 40 else text[:39] + "…"
    if name == "safety_tolerance":
        return f"tolerance {value}"
    if name == "seed":
        return f"seed {value}"
    if name == "model":
        return model_name(str(value))
    return str(value)


def base_model(model: str, models: list[str] | tuple[str, ...] = ()) -> str:
    """The model a sweep's base request is for, given the model axis' `models` (none: no such
    axis): [flex] when the axis holds it, so [flex]'s own fields given for the base are kept for its
    cells (the other models' cells leave them behind), else the axis' first model, else `model`."""
    if D.FLEX_SLUG in models:
        return D.FLEX_SLUG
    return models[0] if models else model


def random_seeds(n: int) -> list[int]:
    return [random_seed() for _ in range(n)]


def replace_variants(prompt: str, phrase: str, replacements: list[str]) -> tuple[list[str], list[str]]:
    """One prompt with a phrase swapped for each replacement: (prompts, labels)."""
    phrase = phrase.strip()
    if not phrase:
        raise ParamsError(["the phrase to replace is empty"])
    if phrase not in prompt:
        raise ParamsError([f"the phrase {phrase!r} does not occur in the base prompt"])
    options = [phrase] + [r.strip() for r in replacements if r.strip() and r.strip() != phrase]
    return [prompt.replace(phrase, option) for option in options], options


@dataclass(frozen=True)
class SweepPlan:
    base: FluxParams
    axes: tuple[Axis, ...]

    @property
    def count(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    def cells(self) -> list[tuple[tuple[int, ...], FluxParams]]:
        out = []
        for coords in itertools.product(*(range(len(a.values)) for a in self.axes)):
            changes: dict[str, Any] = {}
            fields: list[tuple[str, str]] = []
            form = None
            for ax, i in zip(self.axes, coords):
                value = ax.values[i]
                if ax.name == "size":
                    width, height = (int(v) for v in str(value).lower().split("x"))
                    changes.update(width=width, height=height)
                elif ax.name == "field":
                    fields.append((ax.path, str(value)))
                elif ax.name == "prompt_form":
                    form = str(value)
                else:
                    changes[ax.name] = value
            if fields or form:  # on the prompt a prompt axis chose, or the base's
                prompt = changes.get("prompt", self.base.prompt)
                for path, value in fields:
                    prompt = structured.set_value(prompt, path, value)
                changes["prompt"] = structured.render(prompt, form) if form else prompt
            out.append((coords, self.base.replace(**changes)))
        return out


def make_plan(base: FluxParams, axes: list[Axis]) -> SweepPlan:
    """Validate a plan: 1..3 distinct axes, and every cell a valid request."""
    problems = []
    if not axes:
        problems.append("choose at least one axis")
    if len(axes) > D.SWEEP_MAX_AXES:
        problems.append(f"at most {D.SWEEP_MAX_AXES} axes at once (got {len(axes)})")
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        problems.append("each axis may appear once")
    if problems:
        raise ParamsError(problems)
    axes = [_resolved(base.prompt, a) if a.name == "field" else a for a in axes]
    plan = SweepPlan(base, tuple(axes))
    plan.cells()  # builds every cell's FluxParams, which validates each one
    return plan


def _resolved(prompt: str, ax: Axis) -> Axis:
    """A field axis named by its field's whole path (`attire.top` is `subject.attire.top`)."""
    try:
        doc = structured.parse(prompt)
    except structured.StructureError as exc:
        raise ParamsError(
            [f"a field axis needs a structured prompt, and this one does not parse: {exc}"]
        ) from None
    if doc is None:
        raise ParamsError(["a field axis needs a structured prompt (JSON or YAML-style `key: value` lines)"])
    node = doc.find(ax.path)
    if not node.scalar:
        raise ParamsError([f"field {node.path!r} is a {node.kind}: a field axis sets one value"])
    return ax if node.path == ax.path else field_axis(node.path, list(ax.values))


@dataclass(frozen=True)
class Estimate:
    cells: int
    new: int
    reused: int
    seconds: float
    cost: float | None
    pricing: Pricing = field(default_factory=Pricing)
    models: tuple[str, ...] = (D.MODEL_SLUG,)  # of the new cells

    @property
    def cost_words(self) -> str:
        if self.cost is None:
            return f"unknown (set {D.PRICE_ENV})"
        return f"${self.cost:.4g}" if self.pricing.learned_for(self.models) else f"{self.cost:.4g} credits"


def estimate(
    plan: SweepPlan,
    ledger: Ledger,
    *,
    base_url: str,
    pricing: Pricing,
    concurrency: int | None = None,
    run_again: bool = False,
) -> Estimate:
    """Cells, how many are new, the time (from the ledger's own durations) and the cost (learned
    from real costs once the ledger has them)."""
    new_cells_ = new_cells(plan, ledger, run_again=run_again)
    new = len(new_cells_)
    per_run = ledger.typical_duration(base_url) or D.ASSUMED_DURATION_S
    waves = math.ceil(new / max(1, concurrency)) if concurrency else 1  # else all in flight at once
    seconds = per_run * waves if new else 0.0
    costs = [pricing.for_params(p) for p in new_cells_]
    cost = None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 6)
    models = tuple(dict.fromkeys(p.model for p in new_cells_)) or (plan.base.model,)
    return Estimate(plan.count, new, plan.count - new, seconds, cost, pricing, models)


def needs_confirmation(est: Estimate, cap: int = D.SWEEP_CELL_CAP) -> bool:
    return est.new > cap


def new_cells(plan: SweepPlan, ledger: Ledger, *, run_again: bool = False) -> list[FluxParams]:
    """The requests of the plan's cells that need a new run (no COMPLETED run of the exact request
    to reuse, or run_again)."""
    return [p for _, p in plan.cells() if run_again or ledger.completed_for(p.model, p.payload()) is None]


def start(
    plan: SweepPlan,
    ledger: Ledger,
    runner: Runner,
    *,
    name: str = "",
    run_again: bool = False,
    created_by: str = "",
    admit: Admit | None = None,
    base_run: str | None = None,
) -> str:
    """Save the sweep, its cells and their new runs in one transaction (an interrupted start leaves
    all of it or none), then drive the new runs; reuse COMPLETED runs of the exact request unless
    run_again. `admit` checks the new runs inside that transaction (the spend caps). With
    `base_run` (the run the plan's base came from), every new cell's run names it as its parent."""
    name = clean_name(name)  # a bad name is refused before anything is written
    cells: list[tuple[Any, FluxParams | str, bool]] = []
    planned = plan.cells()
    for coords, params in planned:
        existing = None if run_again else ledger.completed_for(params.model, params.payload())
        cells.append((list(coords), existing.id if existing else params, False))
    # the base as recorded: the first cell's request, so a field an axis covers holds its first
    # value whichever front end planned the sweep
    base = planned[0][1].fields()
    sweep_id, _ = runner.start_sweep(
        base,
        [a.as_json() for a in plan.axes],
        cells,
        name=name,
        created_by=created_by,
        admit=admit,
        came_from=(base_run, store.SWEEP) if base_run else None,
    )
    return sweep_id


def outcome(status: str) -> str:
    """A cell's outcome (one of OUTCOMES), from its run's state in the lifecycle table."""
    state = lifecycle.STATES[status]
    if not state.terminal:
        return "pending"
    return {"completed": "done", "blocked": "blocked"}.get(state.group, "failed")


@dataclass
class Cell:
    idx: int
    coords: tuple[int, ...]
    run: Run
    reused: bool

    @property
    def outcome(self) -> str:
        return outcome(self.run.status)


@dataclass
class SweepView:
    id: str
    name: str
    created_at: str
    base: dict[str, Any]
    axes: list[Axis]
    cells: list[Cell]
    created_by: str = ""  # who started it ('' before migration 0012)
    _by_coords: dict[tuple[int, ...], Cell] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_coords = {c.coords: c for c in self.cells}

    def at(self, coords: tuple[int, ...]) -> Cell | None:
        return self._by_coords.get(tuple(coords))

    def label(self, cell: Cell) -> str:
        return " · ".join(ax.labels[i] for ax, i in zip(self.axes, cell.coords))

    def progress(self) -> dict[str, int]:
        counts = {k: 0 for k in OUTCOMES}
        for cell in self.cells:
            counts[cell.outcome] += 1
        return counts

    @property
    def finished(self) -> bool:
        return all(c.outcome != "pending" for c in self.cells)

    def spend(self) -> tuple[float, int]:
        """The real cost (USD, from Segmind's record) of the sweep's own runs, and how many of its
        cells it is known for; a reused cell was paid for by the sweep that made it."""
        known = [c.run.cost_usd for c in self.cells if not c.reused and c.run.cost_usd is not None]
        return round(sum(known), 6), len(known)

    def summary(self, *, named: bool = True) -> "SweepSummary":
        return SweepSummary(
            self.id, self.created_at, self.name if named else "", tuple(self.axes), len(self.cells)
        )


def load(ledger: Ledger, sweep_id: str) -> SweepView | None:
    with ledger.db() as db:
        sweeps = list(db.query("SELECT * FROM sweeps WHERE id = ?", [sweep_id]))
        if not sweeps:
            return None
        cells = list(db.query("SELECT * FROM sweep_cells WHERE sweep_id = ? ORDER BY idx", [sweep_id]))
    runs = {r.id: r for r in ledger.get_many([c["run_id"] for c in cells])}
    sweep = sweeps[0]
    axes = _axes(sweep["axes_json"])
    return SweepView(
        id=sweep["id"],
        name=sweep["name"],
        created_at=sweep["created_at"],
        base=json.loads(sweep["base_json"]),
        axes=axes,
        created_by=sweep["created_by"],
        cells=[
            Cell(c["idx"], tuple(json.loads(c["coords_json"])), runs[c["run_id"]], bool(c["reused"]))
            for c in cells
            if c["run_id"] in runs
        ],
    )


@dataclass(frozen=True)
class SweepSummary:
    """A saved sweep as listed: what it swept and how many cells it has (not its runs)."""

    id: str
    created_at: str
    name: str
    axes: tuple[Axis, ...]
    cells: int
    thumb_path: str | None = None  # the first done cell's thumbnail (the saved sweeps' cards)
    created_by: str = ""  # who started it

    @property
    def shape(self) -> str:
        return " × ".join(f"{len(a.values)} {a.plural}" for a in self.axes)

    @property
    def title(self) -> str:
        """The name, or what the sweep swept when it has none."""
        return self.name or " × ".join(a.title for a in self.axes)

    def describe(self) -> str:
        shape = " × ".join(f"{len(a.values)} {a.plural}" for a in self.axes)
        name = f"{self.name} — " if self.name else ""
        return f"{name}{shape} ({self.cells} cells) · {self.created_at[:16].replace('T', ' ')}"


def _axes(axes_json: str) -> list[Axis]:
    return [
        Axis(a["name"], tuple(a["values"]), tuple(a["labels"]), a.get("path", ""))
        for a in json.loads(axes_json)
    ]


def recent(ledger: Ledger, limit: int = 20) -> list[SweepSummary]:
    """The newest sweeps, each with its first done cell's thumbnail (if it has one)."""
    with ledger.db() as db:
        found = db.execute(
            "SELECT s.id, s.created_at, s.name, s.axes_json, COUNT(c.idx), s.created_by, "
            "(SELECT r.thumb_path FROM sweep_cells fc JOIN runs r ON r.id = fc.run_id "
            " WHERE fc.sweep_id = s.id AND r.status = ? AND r.thumb_path IS NOT NULL "
            " ORDER BY fc.idx LIMIT 1) "
            "FROM sweeps s LEFT JOIN sweep_cells c ON c.sweep_id = s.id GROUP BY s.id ORDER BY s.id DESC LIMIT ?",
            [store.COMPLETED, limit],
        ).fetchall()
    return [
        SweepSummary(sid, at, name, tuple(_axes(axes)), cells, thumb, by)
        for sid, at, name, axes, cells, by, thumb in found
    ]


def failed_cells(view: SweepView) -> list[Cell]:
    """The cells "retry failed cells" runs again: those the lifecycle table marks retryable. A
    SUBMIT_UNKNOWN cell is never among them: it may have been billed."""
    return [cell for cell in view.cells if cell.run.state.retryable]


def retry_failed(
    view: SweepView, ledger: Ledger, runner: Runner, *, created_by: str = "", admit: Admit | None = None
) -> list[str]:
    """Run the failed cells again, alone; the old runs stay in the ledger."""
    return [
        retry_cell(view, cell.idx, ledger, runner, created_by=created_by, admit=admit)
        for cell in failed_cells(view)
    ]


def retry_cell(
    view: SweepView,
    idx: int,
    ledger: Ledger,
    runner: Runner,
    *,
    created_by: str = "",
    admit: Admit | None = None,
) -> str:
    """Run one cell again (a failed one, or a blocked one a person asks for: moderation is not
    always the same twice); the cell points at the new run, the old run stays in the ledger. A cell
    whose submit outcome is unknown is refused: it may have been billed."""
    cell = next((c for c in view.cells if c.idx == idx), None)
    if cell is None:
        raise ParamsError([f"cell: the sweep has no cell {idx!r} (it has 0 to {len(view.cells) - 1})"])
    if not (cell.run.state.retryable or cell.outcome == "blocked"):
        raise ParamsError(
            [
                f"cell {idx} is {lifecycle.WORDS[cell.run.status].lower()}; "
                "only a failed or blocked cell can be retried"
            ]
        )
    run_id = runner.enqueue(cell.run.params, sweep_id=view.id, created_by=created_by, admit=admit)
    with ledger.write() as db:
        db.execute(
            "UPDATE sweep_cells SET run_id = ?, reused = 0 WHERE sweep_id = ? AND idx = ?",
            [run_id, view.id, cell.idx],
        )
    return run_id


# --- the sweep viewer (issue 14, COMPARE): variants named by their text, names given later ----
def _shorten(text: str, limit: int = D.SWEEP_LABEL_MAX_CHARS) -> str:
    """At most `limit` characters, cut at a word where there is one, with … when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.") + "…"


def prompt_labels(prompts: list[str]) -> list[str]:
    """Labels for whole-prompt variants, from the prompts themselves: the words that differ (what
    every prompt shares at its start and end is left out), else the first words, shortened. The
    same rule names them on the Compare page and in `flux-lab sweep --variant`."""
    words = [p.split() for p in prompts]
    head = tail = 0
    if len(words) > 1:
        shortest = min(len(w) for w in words)
        while head < shortest and len({w[head] for w in words}) == 1:
            head += 1
        while tail < shortest - head and len({w[len(w) - 1 - tail] for w in words}) == 1:
            tail += 1
    labels = []
    for w in words:
        middle = w[head : len(w) - tail]
        labels.append(_shorten(" ".join(middle or w)))
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    counters: dict[str, int] = {}
    out = []
    for label in labels:  # two variants never share a label
        if seen[label] > 1:
            counters[label] = counters.get(label, 0) + 1
            label = f"{label} ({counters[label]})"
        out.append(label)
    return out


def whole_prompts(text: str) -> tuple[list[str], list[str]]:
    """Whole prompts separated by a line of ---: (prompts, their labels)."""
    prompts = [p.strip() for p in text.split("\n---") if p.strip(" \n-")]
    return prompts, prompt_labels(prompts)


def clean_name(name: str) -> str:
    """A sweep's name as kept: trimmed, its runs of spaces and line breaks one space, at most
    SWEEP_NAME_MAX_CHARS. Empty is no name (the sweep is then described by its axes)."""
    cleaned = " ".join(str(name).split())
    cleaned = "".join(ch for ch in cleaned if ch.isprintable())
    if len(cleaned) > D.SWEEP_NAME_MAX_CHARS:
        raise ParamsError([f"name: at most {D.SWEEP_NAME_MAX_CHARS} characters (got {len(cleaned)})"])
    return cleaned


def rename(ledger: Ledger, sweep_id: str, name: str, *, actor: str) -> str:
    """Name (or rename) a saved sweep, recorded under `actor`; returns the name as kept."""
    cleaned = clean_name(name)
    with ledger.write() as db:
        changed = db.execute("UPDATE sweeps SET name = ? WHERE id = ?", [cleaned, sweep_id]).rowcount
        if changed:
            actions.record(db, actor, actions.RENAME, sweep_id=sweep_id, detail=cleaned)
    if not changed:
        raise ParamsError([f"sweep: there is no sweep {sweep_id!r} in the ledger"])
    return cleaned


# --- reading ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SafetyTable:
    prompt_label: str
    tolerances: list[int]
    seeds: list[str]
    cells: dict[
        tuple[int, str], str
    ]  # (tolerance, seed label) -> "passed" | "blocked" | "failed" | "pending" | "mixed"
    lowest_passing: int | None


def safety_matrix(view: SweepView) -> list[SafetyTable]:
    """Tolerance × seed (× prompt): which cells passed and which were blocked, and the lowest
    tolerance that passed for each prompt. Empty when the sweep has no tolerance axis."""
    names = [a.name for a in view.axes]
    if "safety_tolerance" not in names:
        return []
    t_axis = names.index("safety_tolerance")
    s_axis = names.index("seed") if "seed" in names else None
    p_axis = names.index("prompt") if "prompt" in names else None
    word = {"done": "passed", "blocked": "blocked", "failed": "failed", "pending": "pending"}
    prompts = range(len(view.axes[p_axis].values)) if p_axis is not None else [None]
    tables = []
    for p in prompts:
        grouped: dict[tuple[int, str], set[str]] = {}
        for cell in view.cells:
            if p is not None and p_axis is not None and cell.coords[p_axis] != p:
                continue
            tol = view.axes[t_axis].values[cell.coords[t_axis]]
            seed = view.axes[s_axis].labels[cell.coords[s_axis]] if s_axis is not None else "all"
            grouped.setdefault((tol, seed), set()).add(word[cell.outcome])
        cells = {k: (v.pop() if len(v) == 1 else "mixed") for k, v in grouped.items()}
        tolerances = sorted({k[0] for k in cells})
        seeds = list(view.axes[s_axis].labels) if s_axis is not None else ["all"]
        passing = [t for t in tolerances if any(cells.get((t, s)) == "passed" for s in seeds)]
        label = view.axes[p_axis].labels[p] if p is not None and p_axis is not None else "the prompt"
        tables.append(SafetyTable(label, tolerances, seeds, cells, min(passing) if passing else None))
    return tables


# --- the grid as Compare lays it out (its page, and the report) -----------------------------
def arrange(names: list[str], wanted: list[str]) -> list[int]:
    """Which axis goes where: the sweep's axis indices in the order rows, columns, stacked,
    following `wanted` (axis names) where it names the sweep's axes, the rest in the sweep's order."""
    order: list[int] = []
    for name in wanted:
        if name in names and names.index(name) not in order:
            order.append(names.index(name))
    return order + [i for i in range(len(names)) if i not in order]


@dataclass(frozen=True)
class Layout:
    """A sweep's cells placed: rows × columns, one grid per value of a stacked axis. A sweep of one
    axis is one row across (no row axis). Each grid holds cell indices, None where no cell is."""

    rows: Axis | None
    cols: Axis
    stack: Axis | None
    slices: tuple[tuple[str, tuple[tuple[int | None, ...], ...]], ...]  # (title, grid)

    @property
    def corner(self) -> str:
        return f"{self.rows.title} ↓ · {self.cols.title} →" if self.rows else f"{self.cols.title} →"


def layout(view: SweepView, order: list[int]) -> Layout:
    """The grid with the axes placed by `order` (rows, columns, stacked: see `arrange`)."""
    axes = view.axes
    if len(order) == 1:
        return Layout(None, axes[order[0]], None, (("", (tuple(c.idx for c in view.cells),)),))
    rows_ax, cols_ax = axes[order[0]], axes[order[1]]
    stack_ax = axes[order[2]] if len(order) > 2 else None
    slices = []
    for s in range(len(stack_ax.values) if stack_ax else 1):
        grid = []
        for r in range(len(rows_ax.values)):
            line: list[int | None] = []
            for c in range(len(cols_ax.values)):
                coords = [0] * len(axes)
                coords[order[0]], coords[order[1]] = r, c
                if stack_ax:
                    coords[order[2]] = s
                cell = view.at(tuple(coords))
                line.append(cell.idx if cell else None)
            grid.append(tuple(line))
        title = f"{stack_ax.title}: {stack_ax.labels[s]}" if stack_ax else ""
        slices.append((title, tuple(grid)))
    return Layout(rows_ax, cols_ax, stack_ax, tuple(slices))


# --- blind votes -----------------------------------------------------------------------------
def picture_key(cell: Cell, data_dir: Path | None) -> str:
    """What identifies a cell's picture. Two runs with the same pixels differ in their stored files
    (each embeds its own recipe), not in their thumbnails, which are drawn from the pixels alone."""
    thumb = data_dir / cell.run.thumb_path if data_dir is not None and cell.run.thumb_path else None
    if thumb is not None and thumb.exists():
        return "thumb:" + hashlib.sha256(thumb.read_bytes()).hexdigest()
    return "image:" + str(cell.run.image_sha256 or cell.run.id)


def vote_pairs(view: SweepView, voter: str, data_dir: Path | None = None) -> list[tuple[Cell, Cell]]:
    """Every pair of distinct finished pictures (a picture two cells share is offered once), in an
    order of the voter's own, each shown left or right at random."""
    done: list[Cell] = []
    seen: set[str] = set()
    for cell in view.cells:
        if cell.outcome == "done":
            key = picture_key(cell, data_dir)
            if key not in seen:
                seen.add(key)
                done.append(cell)
    rng = random.Random(f"{view.id}:{voter.strip().lower()}")
    pairs = [(a, b) if rng.random() < 0.5 else (b, a) for a, b in itertools.combinations(done, 2)]
    rng.shuffle(pairs)
    return pairs


@dataclass(frozen=True)
class VoteProgress:
    pairs: int
    judged: int
    skipped: int

    def line(self) -> str:
        skipped = f" · {self.skipped} skipped" if self.skipped else ""
        return f"{self.judged} of {self.pairs} pairs judged{skipped}"


def vote_progress(
    pairs: list[tuple[Cell, Cell]], voted: set[frozenset[str]], skipped: set[frozenset[str]]
) -> VoteProgress:
    """How far a voter is: a skipped pair is not a judged one."""
    keys = [frozenset((a.run.id, b.run.id)) for a, b in pairs]
    judged = sum(1 for k in keys if k in voted)
    return VoteProgress(len(pairs), judged, sum(1 for k in keys if k in skipped and k not in voted))


def record_vote(
    ledger: Ledger, sweep_id: str, voter: str, winner_run_id: str, loser_run_id: str, *, actor: str
) -> None:
    """One vote of `voter` on a pair: a second vote on the same pair replaces the first (one vote per
    person per pair, migration 0012). Recorded under `actor`, who cast it (the signed-in person, or
    the local user when a name was typed in a demo without sign-in)."""
    if not voter.strip():
        raise ValueError("a vote needs the voter's name")
    at = store.now_iso()
    with ledger.write() as db:
        db.execute(
            "DELETE FROM votes WHERE sweep_id = ? AND voter = ? AND "
            "((winner_run_id = ? AND loser_run_id = ?) OR (winner_run_id = ? AND loser_run_id = ?))",
            [sweep_id, voter.strip(), winner_run_id, loser_run_id, loser_run_id, winner_run_id],
        )
        db.table("votes").insert(
            {
                "sweep_id": sweep_id,
                "voter": voter.strip(),
                "winner_run_id": winner_run_id,
                "loser_run_id": loser_run_id,
                "at": at,
            }
        )
        detail = f"{winner_run_id} over {loser_run_id}" + (
            f" as {voter.strip()}" if voter.strip() != actor else ""
        )
        actions.record(db, actor, actions.VOTE, run_id=winner_run_id, sweep_id=sweep_id, detail=detail, at=at)


def voted_pairs(ledger: Ledger, sweep_id: str, voter: str) -> set[frozenset[str]]:
    with ledger.db() as db:
        return {
            frozenset((r["winner_run_id"], r["loser_run_id"]))
            for r in db.query(
                "SELECT winner_run_id, loser_run_id FROM votes WHERE sweep_id = ? AND voter = ?",
                [sweep_id, voter.strip()],
            )
        }


def tally(view: SweepView, ledger: Ledger) -> dict[str, list[dict[str, Any]]]:
    """Wins per axis value over every vote cast on the sweep."""
    with ledger.db() as db:
        votes = list(db.query("SELECT winner_run_id, loser_run_id FROM votes WHERE sweep_id = ?", [view.id]))
    by_run = {c.run.id: c for c in view.cells}
    out: dict[str, list[dict[str, Any]]] = {}
    for k, ax in enumerate(view.axes):
        wins = [0] * len(ax.values)
        shown = [0] * len(ax.values)
        for vote in votes:
            winner, loser = by_run.get(vote["winner_run_id"]), by_run.get(vote["loser_run_id"])
            if winner is None or loser is None:
                continue
            wins[winner.coords[k]] += 1
            shown[winner.coords[k]] += 1
            shown[loser.coords[k]] += 1
        out[ax.title] = [
            {"value": ax.labels[i], "wins": wins[i], "comparisons": shown[i]} for i in range(len(ax.values))
        ]
    out["votes"] = [{"value": "total", "wins": len(votes), "comparisons": len(votes)}]
    return out


# --- export ----------------------------------------------------------------------------------
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def contact_sheet(view: SweepView, data_dir: Path) -> bytes:
    """One PNG of the grid: a title band (the sweep's name and base prompt), then labelled axes: rows =
    first axis, columns = second, one block per value of a third. Every cell is a tile of one size,
    an image (the full one, scaled to the tile) or a labelled block. Its longer side stays within
    CONTACT_SHEET_MAX_PX however large the grid."""
    rows_ax = view.axes[0]
    cols_ax = view.axes[1] if len(view.axes) > 1 else None
    pages_ax = view.axes[2] if len(view.axes) > 2 else None
    n_rows, n_cols = len(rows_ax.values), len(cols_ax.values) if cols_ax else 1
    n_pages = len(pages_ax.values) if pages_ax else 1
    cell = D.CONTACT_SHEET_CELL_PX
    header, label_w, pad, band_lines = 28, 150, 6, 3

    def size_for(c: int) -> tuple[int, int]:
        scale = c / D.CONTACT_SHEET_CELL_PX
        w = int(label_w * scale) + n_cols * (c + pad) + pad
        h = (
            band_lines * max(12, int(header * scale))
            + n_pages * (int(header * scale) * 2 + n_rows * (c + pad))
            + pad
        )
        return w, h

    while max(size_for(cell)) > D.CONTACT_SHEET_MAX_PX and cell > 16:
        cell = int(cell * 0.9)
    scale = cell / D.CONTACT_SHEET_CELL_PX
    hdr, lw = max(12, int(header * scale)), max(40, int(label_w * scale))
    width, height = size_for(cell)
    sheet = Image.new("RGB", (width, height), (250, 250, 248))
    draw = ImageDraw.Draw(sheet)
    font = _font(max(9, int(14 * scale)))
    title_font = _font(max(10, int(18 * scale)))
    # the title band: what was swept, on what
    draw.rectangle([0, 0, width - 1, band_lines * hdr - 1], fill=(236, 236, 232))
    draw.text(
        (pad, pad),
        _fit(draw, _printable(view.name or "Sweep"), title_font, width - 2 * pad),
        fill=(20, 20, 20),
        font=title_font,
    )
    prompt = _printable(str(view.base.get("prompt", "")))
    for n, line in enumerate(_wrap(draw, f"Base prompt: {prompt}", font, width - 2 * pad, band_lines - 1)):
        draw.text((pad, (n + 1) * hdr + pad // 2), line, fill=(60, 60, 60), font=font)
    y = band_lines * hdr + pad
    for page in range(n_pages):
        title = (
            f"{pages_ax.title}: {pages_ax.labels[page]}"
            if pages_ax
            else (f"{rows_ax.title} × {cols_ax.title}" if cols_ax else rows_ax.title)
        )
        draw.text((pad, y), _printable(title), fill=(20, 20, 20), font=font)
        y += hdr
        for c in range(n_cols):
            text = _printable(cols_ax.labels[c]) if cols_ax else ""
            draw.text(
                (lw + pad + c * (cell + pad), y), _fit(draw, text, font, cell), fill=(60, 60, 60), font=font
            )
        y += hdr
        for r in range(n_rows):
            draw.text(
                (pad, y + cell // 2 - 8),
                _fit(draw, _printable(rows_ax.labels[r]), font, lw - pad),
                fill=(60, 60, 60),
                font=font,
            )
            for c in range(n_cols):
                coords = tuple([r] + ([c] if cols_ax else []) + ([page] if pages_ax else []))
                found = view.at(coords)
                x = lw + pad + c * (cell + pad)
                _draw_cell(sheet, draw, found, data_dir, (x, y), cell, font)
            y += cell + pad
    out = io.BytesIO()
    sheet.save(out, "PNG", optimize=True)
    return out.getvalue()


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in " ".join(text.split()))


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int, max_lines: int) -> list[str]:
    """`text` in at most `max_lines` lines of at most `width` pixels, the last cut with … if need be."""
    lines: list[str] = []
    words = text.split(" ")
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and draw.textlength(f"{line} {words[0]}", font=font) <= width:
            line = f"{line} {words.pop(0)}"
        lines.append(line)
    if words:
        lines[-1] = _fit(draw, f"{lines[-1]} {' '.join(words)}", font, width)
        if not lines[-1].endswith("…"):
            lines[-1] = lines[-1][:-1] + "…"
    return [_fit(draw, line, font, width) for line in lines]


def _draw_cell(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    cell: Cell | None,
    data_dir: Path,
    at: tuple[int, int],
    size: int,
    font: Any,
) -> None:
    """One size x size tile: the cell's full image scaled to fit it, or a labelled block."""
    x, y = at
    path = data_dir / cell.run.image_path if cell and cell.run.image_path else None
    if cell and cell.outcome == "done" and path and path.exists():
        with Image.open(path) as opened:
            im = opened.convert("RGB")
            ratio = size / max(im.width, im.height)
            im = im.resize(
                (max(1, round(im.width * ratio)), max(1, round(im.height * ratio))), Image.Resampling.LANCZOS
            )
            draw.rectangle([x, y, x + size - 1, y + size - 1], fill=(232, 232, 232))
            sheet.paste(im, (x + (size - im.width) // 2, y + (size - im.height) // 2))
        return
    colours = {"blocked": (255, 236, 209), "failed": (255, 222, 222), "pending": (232, 232, 232)}
    state = cell.outcome if cell else "pending"
    draw.rectangle(
        [x, y, x + size - 1, y + size - 1], fill=colours.get(state, (232, 232, 232)), outline=(180, 180, 180)
    )
    word = {"blocked": "BLOCKED", "failed": cell.run.status if cell else "", "pending": "PENDING"}.get(
        state, ""
    )
    draw.text((x + 8, y + size // 2 - 8), word, fill=(90, 60, 30), font=font)


def manifest(view: SweepView, data_dir: Path) -> dict[str, Any]:
    cells = []
    for cell in view.cells:
        info = cell.run.public()
        info.pop("thumb_path", None)
        entry = {
            "cell": cell.idx,
            "coords": {ax.name: ax.values[i] for ax, i in zip(view.axes, cell.coords)},
            "label": view.label(cell),
            "outcome": cell.outcome,
            "reused": cell.reused,
            "file": _zip_name(cell) if cell.run.image_path else None,
            **info,
        }
        entry.pop("image_path", None)
        cells.append(entry)
    return {
        "sweep_id": view.id,
        "name": view.name,
        "created_at": view.created_at,
        "models": list(dict.fromkeys(cell.run.model for cell in view.cells)),
        "base": view.base,
        "axes": [a.as_json() for a in view.axes],
        "cells": cells,
    }


def _zip_name(cell: Cell) -> str:
    ext = Path(cell.run.image_path or "").suffix
    return f"images/cell-{cell.idx:03d}-{cell.run.id}{ext}"


def export_zip(view: SweepView, data_dir: Path) -> bytes:
    """The images (their recipes embedded) and manifest.json with every cell's recipe and outcome."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for cell in view.cells:
            if cell.run.image_path and (data_dir / cell.run.image_path).exists():
                zf.write(data_dir / cell.run.image_path, _zip_name(cell))
        zf.writestr("manifest.json", json.dumps(manifest(view, data_dir), indent=2))
    return out.getvalue()
