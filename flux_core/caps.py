"""Spend caps: what a person and the team may spend, in USD, checked before anything is sent.

Three caps, each unset unless its variable is (flux_core/settings.CapSettings): a person's UTC day
(FLUX_LAB_CAP_PERSON_DAY_USD), the team's UTC day (FLUX_LAB_CAP_TEAM_DAY_USD) and the team's
calendar month in UTC (FLUX_LAB_CAP_TEAM_MONTH_USD). The team is everyone whose runs went to the
same server (one base URL); a person is a run's `created_by`.

Spend so far is read from the ledger: a run's real cost (`cost_usd`, from Segmind's record) where it
is settled, else its estimate (flux_core/pricing: per output megapixel and per reference image).
Runs count when they were or may have been billed (the lifecycle table's `billed` flag is "yes" or
"maybe") or are about to be sent (CREATED, still in flight); a run that provably created no job (an
ERROR before the submit, a FAILED or BLOCKED job, which Segmind does not bill) counts only if its real
cost says otherwise. The per-sweep confirmation (FLUX_LAB_SWEEP_CAP) is another rule, in the service.

The check and the insert of the new runs cannot race, between two browser sessions or between the
app and the CLI: `admit()` makes the check that Ledger.create_runs and Ledger.create_sweep call
inside their write transaction (BEGIN IMMEDIATE, which holds SQLite's write lock for every process
until the rows are committed), so a second check reads the first one's runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlite_utils import Database

from flux_core import defaults as D
from flux_core import lifecycle
from flux_core.errors import CapReached
from flux_core.ledger.store import Admit, Ledger
from flux_core.pricing import Pricing
from flux_core.settings import CapSettings

# the statuses whose runs count toward spend, from the lifecycle table
COUNTED = tuple(s.name for s in lifecycle.STATES.values() if s.billed != "no" or not s.terminal)


@dataclass(frozen=True)
class Spend:
    """What was spent so far in USD on one server: the UTC day and month of `at`."""

    team_day: float = 0.0
    person_day: float = 0.0
    team_month: float = 0.0


@dataclass(frozen=True)
class Cap:
    """One cap that is set, with what is spent of it."""

    name: str  # "the team's daily cap"
    env: str  # the variable that sets it
    limit: float
    spent: float

    @property
    def left(self) -> float:
        return max(0.0, round(self.limit - self.spent, 6))


@dataclass(frozen=True)
class Standing:
    """The caps that are set, spend so far and what is left: what pages and `flux-lab spend` show."""

    settings: CapSettings
    spend: Spend
    person: str

    @property
    def caps(self) -> list[Cap]:
        s, spend = self.settings, self.spend
        found = [
            ("your daily cap", D.CAP_PERSON_DAY_ENV, s.person_day, spend.person_day),
            ("the team's daily cap", D.CAP_TEAM_DAY_ENV, s.team_day, spend.team_day),
            ("the team's monthly cap", D.CAP_TEAM_MONTH_ENV, s.team_month, spend.team_month),
        ]
        return [Cap(name, env, limit, spent) for name, env, limit, spent in found if limit is not None]

    def line(self) -> str | None:
        """ "Spend today: $X of $Y (team) · you: $A of $B · this month: $M of $N", the caps that are
        set only; None when none is."""
        s, spend = self.settings, self.spend
        parts = []
        if s.team_day is not None:
            parts.append(f"Spend today: {usd(spend.team_day)} of {usd(s.team_day)} (team)")
        if s.person_day is not None:
            you = f"you: {usd(spend.person_day)} of {usd(s.person_day)}"
            parts.append(you if parts else f"Spend today: {you}")
        if s.team_month is not None:
            parts.append(f"this month: {usd(spend.team_month)} of {usd(s.team_month)}")
        if not parts:
            return None
        return " · ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "spent": {
                "team_day": self.spend.team_day,
                "person_day": self.spend.person_day,
                "team_month": self.spend.team_month,
            },
            "caps": [
                {"cap": c.name, "variable": c.env, "limit": c.limit, "spent": c.spent, "left": c.left}
                for c in self.caps
            ],
        }


def usd(amount: float) -> str:
    return f"${amount:,.2f}"


def _starts(at: datetime) -> tuple[str, str]:
    """The UTC day's and calendar month's first moments, as the ledger writes times."""
    at = at.astimezone(timezone.utc)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    fmt = "%Y-%m-%dT%H:%M:%S.000Z"
    return day.strftime(fmt), month.strftime(fmt)


def spent(db: Database, *, base_url: str, person: str, pricing: Pricing, at: datetime | None = None) -> Spend:
    """What the team and `person` spent on `base_url` in the UTC day and month of `at` (now)."""
    day, month = _starts(at or datetime.now(timezone.utc))
    per_mp, per_ref = pricing.rates()
    marks = ", ".join("?" for _ in COUNTED)
    row = db.execute(
        "SELECT COALESCE(SUM(CASE WHEN created_at >= ? THEN c END), 0), "
        "COALESCE(SUM(CASE WHEN created_at >= ? AND created_by = ? THEN c END), 0), COALESCE(SUM(c), 0) "
        "FROM (SELECT created_at, created_by, COALESCE(cost_usd, "
        "? * width * height / 1e6 + ? * json_array_length(COALESCE(image_urls_json, '[]'))) AS c "
        f"FROM runs WHERE base_url = ? AND created_at >= ? AND (status IN ({marks}) OR cost_usd > 0))",
        [day, day, person, per_mp, per_ref, base_url, month, *COUNTED],
    ).fetchone()
    return Spend(team_day=round(row[0], 6), person_day=round(row[1], 6), team_month=round(row[2], 6))


def standing(
    ledger: Ledger, *, base_url: str, person: str, pricing: Pricing, at: datetime | None = None
) -> Standing:
    settings = CapSettings.resolve()
    with ledger.db() as db:
        spend = spent(db, base_url=base_url, person=person, pricing=pricing, at=at)
    return Standing(settings, spend, person)


def check(standing: Standing, new_cost: float, runs: int = 1) -> None:
    """Refuse `runs` new runs costing `new_cost` USD if they would take any cap past its limit
    (reaching it exactly is allowed): a CapReached naming the cap, what is spent and what is left."""
    for cap in standing.caps:
        if round(cap.spent + new_cost, 6) > cap.limit:
            what = "This run" if runs == 1 else f"These {runs} runs"
            period = "this month" if "monthly" in cap.name else "today"
            raise CapReached(
                f"{what} (about {usd(new_cost)}) would go past {cap.name} of {usd(cap.limit)}: "
                f"{usd(cap.spent)} spent {period}, {usd(cap.left)} left. Nothing was sent",
                hint=f"{D.CAP_WHO_RAISES.capitalize()} can raise it: set {cap.env}.",
                cap=cap,
            )


def cost_of(pricing: Pricing, rows: list[dict[str, Any]]) -> float:
    """The estimated USD cost of new runs' ledger rows."""
    return round(sum(pricing.usd(r["width"], r["height"], _references(r)) for r in rows), 6)


def _references(row: dict[str, Any]) -> int:
    return len(json.loads(row.get("image_urls_json") or "[]"))


def admit(*, base_url: str, person: str, pricing: Pricing) -> Admit | None:
    """The check Ledger.create_runs / create_sweep make inside their write transaction, or None
    when no cap is set."""
    settings = CapSettings.resolve()
    if settings == CapSettings():
        return None

    def check_rows(db: Database, rows: list[dict[str, Any]]) -> None:
        if rows:
            spend = spent(db, base_url=base_url, person=person, pricing=pricing)
            check(Standing(settings, spend, person), cost_of(pricing, rows), len(rows))

    return check_rows
