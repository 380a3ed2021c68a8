"""The presenter view's deck (issue 17): what a shareable link asks to show, one image at a time,
and the words under each image.

A link names one of three things: ``?sweep=<id>`` (a sweep's cells in the grid's reading order),
``?runs=<id>,<id>,...`` (a selection, in its order) or ``?q=<words>`` with History's filters under
History's names less their ``h_`` (``status``, ``tol``, ``sweep``, ...; read by History's one parser,
``history.query_from``: History's own names are bound to its widgets, so a link from it cannot carry
them); plus ``i`` (the image shown, from 1) and ``blind=1`` (settings hidden, and no run id
anywhere). A link that cannot be shown is a ParamsError naming the parameter and what it allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from flux_core import defaults as D
from flux_core import presentation as P
from flux_core.ledger import history, reviews, sweeps
from flux_core.ledger.records import Run
from flux_core.params import ParamsError, model_name

KINDS = ("sweep", "runs", "q")
SEARCH_KEYS = {key[2:]: key for key in history.URL_KEYS}  # q -> h_q, status -> h_status, ...
_KNOWN = {*KINDS, "i", "blind", "layout", *SEARCH_KEYS}


@dataclass(frozen=True)
class Ask:
    """What a presenter link asks for: `kind` is "sweep", "runs" or "q"."""

    kind: str
    sweep_id: str = ""
    run_ids: tuple[str, ...] = ()
    filters: Mapping[str, list[str]] | None = None  # History's view, for "q", by History's names (h_q, ...)
    index: int = 0  # the image shown, from 0
    blind: bool = False
    layout: tuple[str, ...] = ()  # a sweep's axes as Compare placed them (rows, columns, stacked)

    def query(self, boards: Mapping[str, str]) -> history.Query:
        """The History query of a "q" link (FilterError when a filter cannot be used)."""
        return replace(history.query_from(self.filters or {}, boards), page_size=D.PRESENT_MAX_RUNS)

    def back(self) -> tuple[str, dict[str, Any]]:
        """Where the person came from: the page and its query (the sweep in Compare, History)."""
        if self.kind == "sweep":
            return "compare", {
                "sweep": self.sweep_id,
                **({"layout": ",".join(self.layout)} if self.layout else {}),
            }
        if self.kind == "runs":
            return "history", {"h_sel": ",".join(self.run_ids)}
        return "history", {k: v for k, v in (self.filters or {}).items() if v}


def parse(params: Mapping[str, Sequence[str]]) -> Ask:
    """A presenter link's parameters (each a list of values, as a URL carries them) as an Ask."""
    one = {k: (list(v)[-1] if list(v) else "") for k, v in params.items()}
    given = ["q"] if "q" in params and "runs" not in params else [k for k in KINDS if k in params]
    problems = [f"{k}: not a parameter of the presenter view" for k in params if k not in _KNOWN]
    if len(given) != 1:
        problems.append(
            "the link must name one of sweep=<sweep id>, runs=<id>,<id>,... or q=<search words>"
            + (f", not {len(given)} ({', '.join(given)})" if given else "")
        )
    index = 0
    raw_i = one.get("i", "").strip()
    if raw_i:
        if not raw_i.isdigit() or int(raw_i) < 1:
            problems.append(f"i: must be the number of an image, from 1, not {raw_i!r}")
        else:
            index = int(raw_i) - 1
    blind = one.get("blind", "").strip().lower()
    if blind not in ("", "0", "1", "true", "false"):
        problems.append(f"blind: must be 1 or 0, not {blind!r}")
    run_ids: tuple[str, ...] = ()
    if "runs" in params:
        run_ids = tuple(dict.fromkeys(i.strip() for i in one["runs"].split(",") if i.strip()))
        if not run_ids:
            problems.append("runs: name at least one run id, separated by commas")
        elif len(run_ids) > D.PRESENT_MAX_RUNS:
            problems.append(f"runs: at most {D.PRESENT_MAX_RUNS} runs, not {len(run_ids)}")
    if given == ["sweep"] and not one["sweep"].strip():
        problems.append("sweep: name a sweep by its id")
    if problems:
        raise ParamsError(problems)
    kind = given[0]
    filters = None
    if kind == "q":
        filters = {SEARCH_KEYS[k]: list(v) for k, v in params.items() if k in SEARCH_KEYS}
    return Ask(
        kind,
        sweep_id=one.get("sweep", "").strip() if kind == "sweep" else "",
        run_ids=run_ids,
        filters=filters,
        index=index,
        blind=blind in ("1", "true"),
        layout=tuple(n for n in one.get("layout", "").split(",") if n),
    )


@dataclass(frozen=True)
class Slide:
    """One image of the deck: its run and what its caption says when the settings are shown."""

    run: Run
    label: str  # the settings that differ between the deck's runs (a sweep's cell: its axis values)
    settings: tuple[tuple[str, str], ...]  # (name, value): seed, tolerance, cost, ...


def sweep_order(view: sweeps.SweepView, order: list[int]) -> list[sweeps.Cell]:
    """A sweep's cells in the grid's reading order for axes placed by `order` (rows, columns,
    stacked: see flux_core/ledger/sweeps.arrange): slice by slice, row by row, left to right."""
    reading = [*order[2:], *order[:2]]
    return sorted(view.cells, key=lambda c: tuple(c.coords[i] for i in reading))


def differing(rows: list[Run]) -> list[str]:
    """Each run's settings that vary among `rows`, in words ("prompt: red · seed 3"), as History's
    compare finds them; a prompt that varies is named by its own differing words (prompt_labels)."""
    names = [str(n) for n in range(len(rows))]
    varying = [line for line in P.compare_fields(rows, names) if line["differs"]]
    prompts = sweeps.prompt_labels([r.prompt for r in rows]) if len(rows) > 1 else []
    out = []
    for n, _ in enumerate(rows):
        words = []
        for line in varying:
            field = line["field"]
            value = prompts[n] if field == "prompt" else line[str(n)]
            words.append(f"{field.replace('_', ' ')}: {value}")
        out.append(" · ".join(words))
    return out


def cost_words(run: Run) -> str:
    if run.cost_usd is not None:
        return f"${run.cost_usd:.4g} (Segmind's record)"
    if run.cost is not None:
        return f"{run.cost:.4g} credits"
    return "not known yet"


def slides(rows: list[Run], labels: list[str], check_lines: Mapping[str, list[str]]) -> list[Slide]:
    """The deck's slides: each run with its label and its settings (seed, tolerance, checks, cost)."""
    out = []
    for run, label in zip(rows, labels):
        settings = [("Model", model_name(run.model)), ("Seed", str(run.seed))]
        settings.append(("Tolerance", str(run.safety_tolerance)))
        settings += [("Check", line) for line in check_lines.get(run.id, [])]
        settings.append(("Cost", cost_words(run)))
        out.append(Slide(run, label, tuple(settings)))
    return out


def tally_words(items: list[reviews.Verdict]) -> str:
    """ "2 approve · 1 needs work": everyone's verdicts on one image (none: "no verdicts yet")."""
    counts = reviews.tally(items)
    said = " · ".join(f"{n} {name}" for name, n in counts.items() if n)
    return said or "no verdicts yet"
