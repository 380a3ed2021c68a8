"""The checks table: each run's automatic check results (flux_core/checks), one row a run and check.

A row holds the version of the check that computed it; a run whose row is missing or older than
the check's current version is pending (`pending`), so a new version of a check is computed again
for every image without a migration. The result is the check's JSON, as `flux-lab show --json`
carries it under "checks".
"""

from __future__ import annotations

import json
from typing import Any

from flux_core.ledger import store
from flux_core.ledger.store import Ledger

TEXT = "text"
PALETTE = "palette"
PRINT = "print"  # the image's perceptual hash, for seed diversity and the determinism probe
REPRO = "repro"  # the determinism probe's verdict on this run (computed once its probe run is stored)


def save(ledger: Ledger, run_id: str, name: str, version: int, score: float | None, result: dict) -> None:
    with ledger.write() as db:
        db.execute(
            "INSERT INTO checks (run_id, name, version, score, result, computed_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, name) DO UPDATE SET version = excluded.version, score = excluded.score, "
            "result = excluded.result, computed_at = excluded.computed_at",
            [run_id, name, version, score, json.dumps(result), store.now_iso()],
        )


def of_runs(ledger: Ledger, run_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """run id -> check name -> result (with its "version"), for the runs that have any."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if not run_ids:
        return out
    with ledger.db() as db:
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start : start + 500]
            rows = db.execute(
                f"SELECT run_id, name, version, result FROM checks WHERE run_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for run_id, name, version, result in rows:
                out.setdefault(run_id, {})[name] = {**json.loads(result), "version": version}
    return out


def of_run(ledger: Ledger, run_id: str) -> dict[str, dict[str, Any]]:
    return of_runs(ledger, [run_id]).get(run_id, {})


def pending(ledger: Ledger, versions: dict[str, int], limit: int) -> list[str]:
    """Stored images (newest first) that lack a current result of one of the checks in `versions`."""
    missing = " OR ".join(
        "NOT EXISTS (SELECT 1 FROM checks c WHERE c.run_id = runs.id AND c.name = ? AND c.version >= ?)"
        for _ in versions
    )
    args: list[Any] = [part for name, version in versions.items() for part in (name, version)]
    with ledger.db() as db:
        rows = db.execute(
            f"SELECT id FROM runs WHERE status = ? AND image_path IS NOT NULL AND deleted_at IS NULL "
            f"AND ({missing}) ORDER BY created_at DESC LIMIT ?",
            [store.COMPLETED, *args, limit],
        ).fetchall()
    return [row[0] for row in rows]


def probes_of(ledger: Ledger, probe_run_id: str) -> list[str]:
    """The runs whose determinism probe is `probe_run_id` and has no verdict yet."""
    with ledger.db() as db:
        rows = db.execute(
            "SELECT run_id FROM checks WHERE name = ? AND score IS NULL "
            "AND json_extract(result, '$.probe_run_id') = ? AND json_extract(result, '$.verdict') IS NULL",
            [REPRO, probe_run_id],
        ).fetchall()
    return [row[0] for row in rows]


def waiting_probes(ledger: Ledger) -> list[tuple[str, str]]:
    """(run, probe run) of every probe without a verdict."""
    with ledger.db() as db:
        rows = db.execute(
            "SELECT run_id, json_extract(result, '$.probe_run_id') FROM checks WHERE name = ? "
            "AND json_extract(result, '$.verdict') IS NULL",
            [REPRO],
        ).fetchall()
    return [(a, b) for a, b in rows if b]
