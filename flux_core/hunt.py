"""The seed hunt's rules: what is asked (HuntSpec), what a hit is (`judge`), when to stop submitting
(`stop_reason`) and how many seeds to submit now (`room`), and the hunt as people read it (`summarise`).

Only the seed changes between a hunt's images: every seed runs the same request, each image is checked
as it lands (flux_core/checks) and judged against the chosen checks, and no seed is submitted once
enough hits exist or the limit is reached (the seeds already in flight finish and are kept). The
service (Workbench.start_hunt, drive_hunt) applies these rules for the CLI and the Compare page alike;
the ledger keeps the hunt (ledger/hunts.py) beside its sweep, so Compare opens it and a restarted
server goes on with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flux_core import defaults as D
from flux_core.checks import expect, similarity
from flux_core.ledger import checks as table
from flux_core.ledger.hunts import HuntRow
from flux_core.ledger.records import Run
from flux_core.ledger.sweeps import SweepView
from flux_core.params import FluxParams, ParamsError, random_seed
from flux_core.pricing import Pricing

TEXT, PALETTE, DISTINCT = "text", "palette", "distinct"
CHECKS = (TEXT, PALETTE, DISTINCT)
# why a hunt stopped submitting
HITS, IMAGES, USD, SEEDS, CAP, STOPPED = "hits", "images", "usd", "seeds", "cap", "stopped"
REASONS = {
    HITS: "enough hits",
    IMAGES: "the image limit was reached",
    USD: "the USD limit was reached",
    SEEDS: "every seed was tried",
    CAP: "a spend cap was reached",
    STOPPED: "stopped by a person",
}


@dataclass(frozen=True)
class Check:
    name: str  # one of CHECKS
    at_least: float | None = None  # the palette's score to reach

    @property
    def words(self) -> str:
        if self.name == TEXT:
            return "the text all right"
        if self.name == PALETTE:
            return f"palette score at least {self.at_least:g}"
        return "not a near-duplicate of an earlier hit"

    def as_text(self) -> str:
        return f"{PALETTE}:{self.at_least:g}" if self.name == PALETTE else self.name


def parse_check(text: str) -> Check:
    """`text`, `palette` (at least HUNT_PALETTE_MIN), `palette:0.8`, `distinct`."""
    name, _, value = str(text).strip().lower().partition(":")
    allowed = f"one of text, palette[:score from 0 to 1], distinct (got {text!r})"
    if name not in CHECKS or (value and name != PALETTE):
        raise ParamsError([f"check: {allowed}"])
    if name != PALETTE:
        return Check(name)
    try:
        score = float(value) if value else D.HUNT_PALETTE_MIN
    except ValueError:
        raise ParamsError(
            [f"check: the palette's score must be a number from 0 to 1 (got {value!r})"]
        ) from None
    if not 0 <= score <= 1:
        raise ParamsError([f"check: the palette's score must be a number from 0 to 1 (got {value!r})"])
    return Check(PALETTE, score)


def parse_seeds(text: str) -> list[int] | None:
    """Seeds as typed: `random` (None: drawn at random), or whole numbers and ranges in order,
    `1-100`, `1,5,9`, `1-10,50`. Every bad part is named at once."""
    cleaned = str(text).strip().lower()
    if cleaned == "random":
        return None
    seeds: list[int] = []
    problems: list[str] = []
    for part in (p.strip() for p in cleaned.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            problems.append(f"seeds: {part!r} is not a whole number or a range such as 1-100")
            continue
        if not (0 <= first <= D.SEED_MAX and 0 <= last <= D.SEED_MAX) or first > last:
            problems.append(f"seeds: {part!r} must be from 0 to {D.SEED_MAX}, the smaller first")
            continue
        if len(seeds) + last - first + 1 > D.HUNT_MAX_SEEDS:
            problems.append(f"seeds: at most {D.HUNT_MAX_SEEDS} seeds a hunt")
            break
        seeds.extend(range(first, last + 1))
    if not seeds and not problems:
        problems.append("seeds: give `random`, or whole numbers and ranges such as 1-100 or 1,5,9")
    duplicated = len(seeds) != len(set(seeds))
    if duplicated:
        problems.append("seeds: a seed is listed twice")
    if problems:
        raise ParamsError(problems)
    return seeds


@dataclass(frozen=True)
class HuntSpec:
    """What a person asked of a hunt, checked: kept in the ledger as JSON (`as_json`)."""

    base: FluxParams  # the request every seed runs (its own seed aside)
    checks: tuple[Check, ...]
    hits: int
    seeds: tuple[int, ...]  # in the order they are tried (drawn up front when random)
    seeds_random: bool
    max_images: int
    max_usd: float | None
    batch: int  # seeds in flight at once, at most

    def params(self, seed: int) -> FluxParams:
        return self.base.replace(seed=seed)

    @property
    def limit_words(self) -> str:
        usd = f" or ${self.max_usd:.4g}" if self.max_usd is not None else ""
        return f"at most {self.max_images} images{usd}"

    @property
    def checks_words(self) -> str:
        return ", ".join(c.words for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {
            "base": self.base.payload(),
            "checks": [c.as_text() for c in self.checks],
            "hits": self.hits,
            "seeds": list(self.seeds),
            "seeds_random": self.seeds_random,
            "max_images": self.max_images,
            "max_usd": self.max_usd,
            "batch": self.batch,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "HuntSpec":
        return cls(
            FluxParams.parse(data["base"]),
            tuple(parse_check(c) for c in data["checks"]),
            int(data["hits"]),
            tuple(int(s) for s in data["seeds"]),
            bool(data["seeds_random"]),
            int(data["max_images"]),
            data.get("max_usd"),
            int(data["batch"]),
        )


def _whole(name: str, value: Any, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"{name}: a whole number from {low} to {high} (got {value!r})"
    return None


def plan(
    base: FluxParams,
    *,
    checks: list[str],
    hits: Any,
    seeds: str,
    max_images: Any = None,
    max_usd: Any = None,
    batch: int = D.HUNT_BATCH,
) -> HuntSpec:
    """Check everything a hunt is asked, naming each bad field at once (a ParamsError): the checks
    (at least one; text and palette only for a prompt that asks for text or colours), the hits
    wanted, the seeds, the limits. With no limit given, at most HUNT_IMAGES_DEFAULT images."""
    problems: list[str] = []
    parsed: list[Check] = []
    for text in checks:
        try:
            parsed.append(parse_check(text))
        except ParamsError as exc:
            problems.extend(exc.problems)
    if not checks:
        problems.append("check: choose at least one (text, palette[:score], distinct)")
    if len({c.name for c in parsed}) != len(parsed):
        problems.append("check: each check may be chosen once")
    if any(c.name == TEXT for c in parsed) and not expect.texts(base.prompt):
        problems.append("check text: the prompt asks for no text (quote it, e.g. the words 'FLUX LAB')")
    if any(c.name == PALETTE for c in parsed) and not expect.colours(base.prompt):
        problems.append("check palette: the prompt names no colours (a colour name or a hex code)")
    problems.append(_whole("hits", hits, 1, D.HUNT_MAX_HITS) or "")
    if max_images is not None:
        problems.append(_whole("max images", max_images, 1, D.HUNT_MAX_IMAGES) or "")
    if max_usd is not None and (
        isinstance(max_usd, bool) or not isinstance(max_usd, (int, float)) or not 0 < max_usd < math.inf
    ):
        problems.append(f"max usd: an amount of US dollars above 0 (got {max_usd!r})")
    listed: list[int] | None = []
    try:
        listed = parse_seeds(seeds)
    except ParamsError as exc:
        problems.extend(exc.problems)
    problems = [p for p in problems if p]
    if problems:
        raise ParamsError(problems)
    images = max_images if max_images is not None else D.HUNT_IMAGES_DEFAULT
    if listed is None:
        drawn: dict[int, None] = {}
        while len(drawn) < images:
            drawn.setdefault(random_seed())
        order = list(drawn)
    else:
        order = listed
        images = min(images, len(order))
    if hits > images:
        raise ParamsError([f"hits: {hits} wanted, but the hunt makes at most {images} images"])
    return HuntSpec(
        base,
        tuple(parsed),
        hits,
        tuple(order),
        listed is None,
        images,
        round(float(max_usd), 6) if max_usd is not None else None,
        max(1, batch),
    )


# --- judging an image -----------------------------------------------------------------------
def judge(
    spec: HuntSpec, run: Run, found: dict[str, dict[str, Any]], hit_prints: list[str]
) -> tuple[bool, str]:
    """Whether a landed image is a hit, and why in words. A run that made no image is a miss."""
    from flux_core.checks import report as check_report

    if not run.image_path:
        return False, f"no image: {run.status.lower()}"
    failed: list[str] = []
    passed: list[str] = []
    for check in spec.checks:
        if check.name == TEXT:
            result = found.get(table.TEXT, {})
            line = check_report.text_line(result) or "text not read"
            ok = result.get("score") is not None and not result.get("misspelt") and not result.get("missing")
        elif check.name == PALETTE:
            result = found.get(table.PALETTE, {})
            score = result.get("score")
            line = check_report.palette_line(result) or "palette not read"
            ok = score is not None and score >= (check.at_least or 0) - 1e-9
        else:
            phash = found.get(table.PRINT, {}).get("phash")
            near = (
                [d for d in (similarity.distance(phash, p) for p in hit_prints) if d <= D.NEAR_DUPLICATE_BITS]
                if phash
                else []
            )
            ok = phash is not None and not near
            line = (
                f"a near-duplicate of an earlier hit ({min(near)} bits apart)"
                if near
                else ("not like an earlier hit" if phash else "no fingerprint")
            )
        (passed if ok else failed).append(line)
    if failed:
        return False, "; ".join(failed)
    return True, "; ".join(passed)


# --- the stop rule ----------------------------------------------------------------------------
def stop_reason(spec: HuntSpec, hits: int, submitted: int, spent_usd: float, price_usd: float) -> str | None:
    """Why no more seeds are submitted (one of REASONS), or None: enough hits, the image or USD
    limit (the next image would pass it), or every seed tried."""
    if hits >= spec.hits:
        return HITS
    if submitted >= spec.max_images:
        return IMAGES
    if spec.max_usd is not None and spent_usd + price_usd > spec.max_usd + 1e-9:
        return USD
    if submitted >= len(spec.seeds):
        return SEEDS
    return None


def room(spec: HuntSpec, submitted: int, in_flight: int, spent_usd: float, price_usd: float) -> int:
    """How many seeds to submit now: up to the batch in flight, within the limits."""
    free = min(spec.batch - in_flight, spec.max_images - submitted, len(spec.seeds) - submitted)
    if spec.max_usd is not None and price_usd > 0:
        free = min(free, math.floor((spec.max_usd - spent_usd) / price_usd + 1e-9))
    return max(0, free)


def run_cost(run: Run, pricing: Pricing) -> tuple[float, bool]:
    """A run's cost in USD and whether it is Segmind's real one (else the estimate; a run that ended
    without a job costs nothing, one still on its way its estimate)."""
    if run.cost_usd is not None:
        return run.cost_usd, True
    if run.state.terminal and run.state.billed == "no":
        return 0.0, True
    return pricing.usd(run.width, run.height, len(run.image_urls)), False


# --- the hunt as people read it ---------------------------------------------------------------
@dataclass(frozen=True)
class HuntView:
    id: str
    spec: HuntSpec
    row: HuntRow
    sweep: SweepView
    cost_usd: float
    cost_real: int  # of the runs, how many costs are Segmind's real ones

    @property
    def results(self) -> dict[str, Any]:
        return {r.run_id: r for r in self.row.results}

    @property
    def hits(self) -> int:
        return self.row.hits

    @property
    def misses(self) -> int:
        return len(self.row.results) - self.row.hits

    @property
    def submitted(self) -> int:
        return len(self.sweep.cells)

    @property
    def in_flight(self) -> int:
        return sum(1 for c in self.sweep.cells if not c.run.state.terminal)

    @property
    def hit_rate(self) -> float | None:
        judged = len(self.row.results)
        return self.hits / judged if judged else None

    @property
    def cost_per_hit(self) -> float | None:
        return round(self.cost_usd / self.hits, 6) if self.hits else None

    @property
    def cost_basis(self) -> str:
        if self.cost_real == self.submitted:
            return "real"
        return "estimate" if self.cost_real == 0 else "partly estimated"

    @property
    def state(self) -> str:
        if self.row.finished_at:
            return "done"
        return "finishing" if self.row.stop_reason else "hunting"

    def hit_run_ids(self) -> list[str]:
        return [r.run_id for r in self.row.results if r.hit]

    def status_words(self) -> str:
        reason = self.row.stop_reason
        said = REASONS.get((reason or "").split(":")[0], reason or "")
        if self.state == "done":
            return f"Done: {said}."
        if self.state == "finishing":
            return f"No more seeds are submitted ({said}); {self.in_flight} in flight finish and are kept."
        return f"Hunting: {self.in_flight} in flight."

    def line(self) -> str:
        rate = f"{self.hit_rate:.0%}" if self.hit_rate is not None else "–"
        per_hit = f"${self.cost_per_hit:.4g} a hit" if self.cost_per_hit is not None else "no hit yet"
        basis = "" if self.cost_basis == "real" else f" ({self.cost_basis})"
        return (
            f"{self.hits} hits ({self.spec.hits} wanted) · {self.misses} misses · {self.submitted} submitted · "
            f"hit rate {rate} · cost ${self.cost_usd:.4g}{basis}, {per_hit}"
        )

    def summary(self) -> dict[str, Any]:
        """`flux-lab hunt --json`'s last line."""
        return {
            "hunt": self.id,
            "state": self.state,
            "stop_reason": self.row.stop_reason,
            "hits": self.hits,
            "misses": self.misses,
            "submitted": self.submitted,
            "in_flight": self.in_flight,
            "hit_rate": round(self.hit_rate, 4) if self.hit_rate is not None else None,
            "cost": round(self.cost_usd, 6),
            "cost_per_hit": self.cost_per_hit,
            "cost_basis": self.cost_basis,
            "hit_runs": self.hit_run_ids(),
            "checks": [c.as_text() for c in self.spec.checks],
            "compare": f"/compare?sweep={self.id}",
        }


def summarise(row: HuntRow, sweep: SweepView, pricing: Pricing) -> HuntView:
    costs = [run_cost(c.run, pricing) for c in sweep.cells]
    return HuntView(
        sweep.id,
        HuntSpec.from_json(row.spec),
        row,
        sweep,
        round(sum(c for c, _ in costs), 6),
        sum(1 for _, real in costs if real),
    )


def seed_axis(seeds: list[int]) -> list[dict[str, Any]]:
    """The hunt's sweep's axes as stored: one seed axis of the seeds submitted so far."""
    return [{"name": "seed", "values": list(seeds), "labels": [f"seed {s}" for s in seeds]}]
