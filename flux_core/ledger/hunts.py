"""The hunts tables (migration 0020): a seed hunt's spec, who drives it, when it stopped, and the
verdict on each of its images in the order they were judged.

A hunt is a sweep (ledger/sweeps.py: its cells are the seeds submitted so far, one seed axis) with
one `hunts` row keyed by the sweep's id; the rules (what a hit is, when to stop) are flux_core/hunt.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flux_core import defaults as D
from flux_core.ledger import store
from flux_core.ledger.store import Ledger


@dataclass(frozen=True)
class Result:
    """The verdict on one of a hunt's images: a hit or a miss, and why, in words."""

    run_id: str
    seq: int  # the order it was judged in, from 0
    hit: bool
    why: str
    at: str


@dataclass(frozen=True)
class HuntRow:
    sweep_id: str
    spec: dict[str, Any]
    created_at: str
    created_by: str
    lease: str | None
    lease_until: str | None
    stop_reason: str | None  # set when it stopped submitting (flux_core/hunt.py REASONS)
    stopped_at: str | None
    finished_at: str | None  # its last image landed and was judged
    results: tuple[Result, ...]

    @property
    def hits(self) -> int:
        return sum(r.hit for r in self.results)


def create(ledger: Ledger, sweep_id: str, spec: dict[str, Any], *, created_by: str, lease: str) -> None:
    with ledger.write() as db:
        db.table("hunts").insert(
            {
                "sweep_id": sweep_id,
                "spec_json": json.dumps(spec, sort_keys=True),
                "created_at": store.now_iso(),
                "created_by": created_by,
                "lease": lease,
                "lease_until": store.now_iso(D.LEASE_TTL_S),
            }
        )


def load(ledger: Ledger, sweep_id: str) -> HuntRow | None:
    with ledger.db() as db:
        found = list(db.query("SELECT * FROM hunts WHERE sweep_id = ?", [sweep_id]))
        if not found:
            return None
        results = [
            Result(r["run_id"], r["seq"], bool(r["hit"]), r["why"], r["at"])
            for r in db.query("SELECT * FROM hunt_results WHERE sweep_id = ? ORDER BY seq", [sweep_id])
        ]
    row = found[0]
    return HuntRow(
        row["sweep_id"],
        json.loads(row["spec_json"]),
        row["created_at"],
        row["created_by"],
        row["lease"],
        row["lease_until"],
        row["stop_reason"],
        row["stopped_at"],
        row["finished_at"],
        tuple(results),
    )


def which(ledger: Ledger, sweep_ids: list[str]) -> set[str]:
    """Those of these sweeps that are hunts."""
    if not sweep_ids:
        return set()
    with ledger.db() as db:
        rows = db.execute(
            f"SELECT sweep_id FROM hunts WHERE sweep_id IN ({','.join('?' * len(sweep_ids))})", sweep_ids
        ).fetchall()
    return {r[0] for r in rows}


def unfinished(ledger: Ledger) -> list[HuntRow]:
    with ledger.db() as db:
        ids = [
            r[0] for r in db.execute("SELECT sweep_id FROM hunts WHERE finished_at IS NULL ORDER BY sweep_id")
        ]
    return [row for row in (load(ledger, i) for i in ids) if row is not None]


def claim(ledger: Ledger, sweep_id: str, owner: str, *, expected_lease: str | None) -> bool:
    """Take the hunt over (its lease was `expected_lease`): False if someone else took it first."""
    with ledger.write() as db:
        changed = db.execute(
            "UPDATE hunts SET lease = ?, lease_until = ? WHERE sweep_id = ? AND lease IS ?",
            [owner, store.now_iso(D.LEASE_TTL_S), sweep_id, expected_lease],
        ).rowcount
    return bool(changed)


def renew(ledger: Ledger, sweep_id: str, owner: str) -> bool:
    """Keep the lease; False when another process holds it now (this one must stop driving)."""
    with ledger.write() as db:
        changed = db.execute(
            "UPDATE hunts SET lease_until = ? WHERE sweep_id = ? AND lease = ?",
            [store.now_iso(D.LEASE_TTL_S), sweep_id, owner],
        ).rowcount
    return bool(changed)


def record(ledger: Ledger, sweep_id: str, run_id: str, hit: bool, why: str) -> Result:
    """The verdict on one image (once: a second verdict on the same run is ignored)."""
    at = store.now_iso()
    with ledger.write() as db:
        seq = db.execute("SELECT COUNT(*) FROM hunt_results WHERE sweep_id = ?", [sweep_id]).fetchone()[0]
        db.execute(
            "INSERT OR IGNORE INTO hunt_results (sweep_id, run_id, seq, hit, why, at) VALUES (?, ?, ?, ?, ?, ?)",
            [sweep_id, run_id, seq, int(hit), why, at],
        )
    return Result(run_id, seq, hit, why, at)


def stop(ledger: Ledger, sweep_id: str, reason: str) -> None:
    """No more submits (the first reason given stands)."""
    with ledger.write() as db:
        db.execute(
            "UPDATE hunts SET stop_reason = ?, stopped_at = ? WHERE sweep_id = ? AND stop_reason IS NULL",
            [reason, store.now_iso(), sweep_id],
        )


def finish(ledger: Ledger, sweep_id: str) -> None:
    with ledger.write() as db:
        db.execute(
            "UPDATE hunts SET finished_at = ?, lease = NULL, lease_until = NULL WHERE sweep_id = ?",
            [store.now_iso(), sweep_id],
        )
