"""Spend caps: what a person and the team may spend, in USD, checked before anything is sent.

Three caps, each unset unless its variable is (flux_core/settings.CapSettings): a person's UTC day
(FLUX_LAB_CAP_PERSON_DAY_USD), the team's UTC day (FLUX_LAB_CAP_TEAM_DAY_USD) and the team's
calendar month in UTC (FLUX_LAB_CAP_TEAM_MONTH_USD). An admin may set any of them in Flux Lab
instead (the sidebar's Spend caps, `flux-lab spend --set-...`): what is set there, kept in the
ledger's `caps` table (migration 0013) with who set it, wins over the variable until it is reset. The team is everyone whose runs went to the
same server (one base URL); a person is a run's `created_by`.

Spend so far is read from the ledger: a run's real cost (`cost_usd`, from Segmind's record) where it
is settled, else its estimate at its own model's price (flux_core/pricing: per output megapixel and
per reference image; a [flex] run's estimate is not a [max] one's).
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
from flux_core.ledger import actions
from flux_core.ledger.store import Admit, Ledger, now_iso as store_now
from flux_core.pricing import Pricing
from flux_core.settings import CapSettings

# each cap: its field of CapSettings, its name in messages, its variable, its CLI flag
CAPS = (
    ("person_day", "your daily cap", D.CAP_PERSON_DAY_ENV, "--set-person-day"),
    ("team_day", "the team's daily cap", D.CAP_TEAM_DAY_ENV, "--set-team-day"),
    ("team_month", "the team's monthly cap", D.CAP_TEAM_MONTH_ENV, "--set-team-month"),
)

# each cap as named to everyone (CAPS names "your daily cap" as a refusal says it to its person)
TITLES = {
    "person_day": "the daily cap per person",
    "team_day": "the team's daily cap",
    "team_month": "the team's monthly cap",
}

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
    flag: str = ""  # the CLI's option that sets it
    set_by: str | None = None  # who set it in Flux Lab; None: the variable

    @property
    def source(self) -> str:
        return f"set in Flux Lab by {self.set_by}" if self.set_by else f"set by {self.env}"

    def who_raises(self) -> str:
        """What to tell a person the cap stopped: who can raise it, and how."""
        where = f"the sidebar's Spend caps, or `flux-lab spend {self.flag} USD`"
        if self.set_by:
            return f"An admin can raise it in Flux Lab: {where}."
        return f"An admin can raise it: set {self.env}, or in Flux Lab: {where}."

    @property
    def left(self) -> float:
        return max(0.0, round(self.limit - self.spent, 6))


@dataclass(frozen=True)
class Standing:
    """The caps that are set, spend so far and what is left: what pages and `flux-lab spend` show."""

    settings: CapSettings
    spend: Spend
    person: str
    set_by: tuple[tuple[str, str], ...] = ()  # (field, who) of the caps set in Flux Lab

    @property
    def caps(self) -> list[Cap]:
        who = dict(self.set_by)
        return [
            Cap(name, env, limit, getattr(self.spend, field), flag, who.get(field))
            for field, name, env, flag in CAPS
            if (limit := getattr(self.settings, field)) is not None
        ]

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
                {
                    "cap": c.name,
                    "variable": c.env,
                    "limit": c.limit,
                    "spent": c.spent,
                    "left": c.left,
                    "set_by": c.set_by,
                }
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
    rates = {model: pricing.rates(model) for model in D.MODELS}  # each run at its own model's price
    per_mp = per_ref = "CASE model " + "WHEN ? THEN ? " * len(rates) + "ELSE ? END"
    marks = ", ".join("?" for _ in COUNTED)
    row = db.execute(
        "SELECT COALESCE(SUM(CASE WHEN created_at >= ? THEN c END), 0), "
        "COALESCE(SUM(CASE WHEN created_at >= ? AND created_by = ? THEN c END), 0), COALESCE(SUM(c), 0) "
        f"FROM (SELECT created_at, created_by, COALESCE(cost_usd, ({per_mp}) * width * height / 1e6 + "
        f"({per_ref}) * json_array_length(COALESCE(image_urls_json, '[]'))) AS c "
        f"FROM runs WHERE base_url = ? AND created_at >= ? AND (status IN ({marks}) OR cost_usd > 0))",
        [
            day,
            day,
            person,
            *(v for model, (mp, _) in rates.items() for v in (model, mp)),
            rates[D.MODEL_SLUG][0],
            *(v for model, (_, ref) in rates.items() for v in (model, ref)),
            rates[D.MODEL_SLUG][1],
            base_url,
            month,
            *COUNTED,
        ],
    ).fetchone()
    return Spend(team_day=round(row[0], 6), person_day=round(row[1], 6), team_month=round(row[2], 6))


def limits(db: Database) -> tuple[CapSettings, tuple[tuple[str, str], ...]]:
    """The caps in force: the environment's, each replaced by what an admin set in Flux Lab; and
    (field, who) of those set in Flux Lab."""
    env = CapSettings.resolve()
    values = {field: getattr(env, field) for field, *_ in CAPS}
    who = []
    for name, amount, by in db.execute("SELECT name, usd, set_by FROM caps ORDER BY name"):
        values[name] = amount
        who.append((name, by))
    return CapSettings(**values), tuple(who)


def any_set(ledger: Ledger) -> bool:
    """Whether any cap is in force (a small read: pages ask on every rerun)."""
    if CapSettings.resolve() != CapSettings():
        return True
    with ledger.db() as db:
        return db.execute("SELECT 1 FROM caps WHERE usd IS NOT NULL LIMIT 1").fetchone() is not None


RESET = "reset"  # set_limits: back to the environment's value


def set_limits(ledger: Ledger, actor: str, changes: dict[str, float | None | str]) -> None:
    """Set caps in Flux Lab, in one transaction recorded under `actor`: a number of USD, None for no
    cap, RESET for the environment's value. The caller checked the values (service.set_caps)."""
    at = store_now()
    with ledger.write() as db:
        for field, value in changes.items():
            if value == RESET:
                db.execute("DELETE FROM caps WHERE name = ?", [field])
                words = "back to the server's setting"
            else:
                db.execute(
                    "INSERT INTO caps (name, usd, set_at, set_by) VALUES (?, ?, ?, ?) ON CONFLICT(name) "
                    "DO UPDATE SET usd = excluded.usd, set_at = excluded.set_at, set_by = excluded.set_by",
                    [field, value, at, actor],
                )
                words = "no cap" if value is None else usd(float(value))
            name = TITLES[field]
            actions.record(db, actor, actions.CAPS, detail=f"{name}: {words}", at=at)


def standing(
    ledger: Ledger, *, base_url: str, person: str, pricing: Pricing, at: datetime | None = None
) -> Standing:
    with ledger.db() as db:
        settings, who = limits(db)
        spend = spent(db, base_url=base_url, person=person, pricing=pricing, at=at)
    return Standing(settings, spend, person, who)


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
                hint=cap.who_raises(),
                cap=cap,
            )


def cost_of(pricing: Pricing, rows: list[dict[str, Any]]) -> float:
    """The estimated USD cost of new runs' ledger rows."""
    return round(sum(pricing.usd(r["width"], r["height"], _references(r), r["model"]) for r in rows), 6)


def _references(row: dict[str, Any]) -> int:
    return len(json.loads(row.get("image_urls_json") or "[]"))


def admit(*, base_url: str, person: str, pricing: Pricing) -> Admit:
    """The check Ledger.create_runs / create_sweep make inside their write transaction: the caps in
    force then (none: nothing to check), against what is spent then."""

    def check_rows(db: Database, rows: list[dict[str, Any]]) -> None:
        if rows:
            settings, who = limits(db)  # read in the same transaction as the insert
            if settings == CapSettings():
                return
            spend = spent(db, base_url=base_url, person=person, pricing=pricing)
            check(Standing(settings, spend, person, who), cost_of(pricing, rows), len(rows))

    return check_rows
