"""Boards: named collections of runs (as InvokeAI's and Midjourney's), a run in as many as you like.

The repository half of boards: the service (flux_core/service.py) checks names and resolves what a
person typed; these functions read and write the `boards` and `board_runs` tables (migration
0009_boards), each change in one transaction. A name is unique for its owner whatever its case
("Client picks" and "client PICKS" are one board); deleting a board leaves its runs alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlite_utils import Database

from flux_core.ledger import actions, store
from flux_core.ledger.store import Ledger
from flux_core.params import ParamsError


@dataclass(frozen=True)
class Board:
    id: str
    name: str
    created_at: str
    owner: str = ""
    runs: int = 0  # live runs on it (not those in the trash)
    created_by: str = ""  # who made it ('' before migration 0012)


_COUNTED = (
    "SELECT b.id, b.name, b.created_at, b.owner, b.created_by, "
    "(SELECT COUNT(*) FROM board_runs m JOIN runs r ON r.id = m.run_id "
    "WHERE m.board_id = b.id AND r.deleted_at IS NULL) AS runs FROM boards b"
)


def _board(row: Any) -> Board:
    return Board(row["id"], row["name"], row["created_at"], row["owner"], row["runs"], row["created_by"])


def _named(db: Database, name: str, owner: str) -> dict[str, Any] | None:
    """The board of this name, whatever its case (Python's casefold: SQLite folds ASCII only)."""
    wanted = name.casefold()
    for row in db.query("SELECT id, name FROM boards WHERE owner = ?", [owner]):
        if row["name"].casefold() == wanted:
            return row
    return None


def _refuse_taken(db: Database, name: str, owner: str, but: str | None = None) -> None:
    found = _named(db, name, owner)
    if found is not None and found["id"] != but:
        raise ParamsError(
            [f"board name: a board named {found['name']!r} exists already; choose another name"]
        )


def _insert(db: Database, name: str, owner: str, actor: str) -> str:
    _refuse_taken(db, name, owner)
    board_id = store.new_id()
    db.table("boards").insert(
        {"id": board_id, "name": name, "created_at": store.now_iso(), "owner": owner, "created_by": actor}
    )
    actions.record(db, actor, actions.NEW_BOARD, board_id=board_id, detail=name)
    return board_id


def _name_of(db: Database, board_id: str) -> str:
    found = db.execute("SELECT name FROM boards WHERE id = ?", [board_id]).fetchone()
    return found[0] if found else ""


def _add(db: Database, board_id: str, run_ids: Iterable[str], actor: str) -> int:
    at = store.now_iso()
    name = _name_of(db, board_id)
    added = 0
    for run_id in dict.fromkeys(run_ids):
        cursor = db.execute(
            "INSERT OR IGNORE INTO board_runs (board_id, run_id, added_at) VALUES (?, ?, ?)",
            [board_id, run_id, at],
        )
        if cursor.rowcount:
            actions.record(db, actor, actions.ON_BOARD, run_id=run_id, board_id=board_id, detail=name, at=at)
        added += cursor.rowcount
    return added


def all_boards(ledger: Ledger, owner: str = "") -> list[Board]:
    """Every board of this owner, by name, with how many live runs each holds."""
    with ledger.db() as db:
        rows = list(db.query(f"{_COUNTED} WHERE b.owner = ?", [owner]))
    return sorted((_board(r) for r in rows), key=lambda b: (b.name.casefold(), b.id))


def find(ledger: Ledger, ref: str, owner: str = "") -> Board | None:
    """The board with this id, or else of this name (whatever its case)."""
    with ledger.db() as db:
        rows = list(db.query(f"{_COUNTED} WHERE b.owner = ? AND b.id = ?", [owner, ref]))
        if not rows:
            named = _named(db, ref.strip(), owner)
            if named is not None:
                rows = list(db.query(f"{_COUNTED} WHERE b.id = ?", [named["id"]]))
    return _board(rows[0]) if rows else None


def create(ledger: Ledger, name: str, owner: str = "", run_ids: Iterable[str] = (), *, actor: str) -> str:
    """A new board (with these runs on it): its id. A name taken already is a ParamsError. `actor`
    (who does it) is recorded with every change here (flux_core/ledger/actions.py)."""
    with ledger.write() as db:
        board_id = _insert(db, name, owner, actor)
        _add(db, board_id, run_ids, actor)
    return board_id


def rename(ledger: Ledger, board_id: str, name: str, owner: str = "", *, actor: str) -> None:
    with ledger.write() as db:
        _refuse_taken(db, name, owner, but=board_id)
        db.execute("UPDATE boards SET name = ? WHERE id = ?", [name, board_id])
        actions.record(db, actor, actions.RENAME, board_id=board_id, detail=name)


def delete(ledger: Ledger, board_id: str, *, actor: str) -> None:
    """The board goes; its runs stay (only their membership goes with it)."""
    with ledger.write() as db:
        found = db.execute("SELECT name FROM boards WHERE id = ?", [board_id]).fetchone()
        db.execute("DELETE FROM board_runs WHERE board_id = ?", [board_id])
        db.execute("DELETE FROM boards WHERE id = ?", [board_id])
        if found is not None:
            actions.record(db, actor, actions.GONE_BOARD, board_id=board_id, detail=found[0])


def add(ledger: Ledger, board_id: str, run_ids: Iterable[str], *, actor: str) -> int:
    """Put runs on a board; returns how many were not on it already."""
    with ledger.write() as db:
        return _add(db, board_id, run_ids, actor)


def remove(ledger: Ledger, board_id: str, run_ids: Iterable[str], *, actor: str) -> int:
    """Take runs off a board (the runs themselves stay); returns how many were on it."""
    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return 0
    with ledger.write() as db:
        name = _name_of(db, board_id)
        taken = 0
        for run_id in ids:
            cursor = db.execute(
                "DELETE FROM board_runs WHERE board_id = ? AND run_id = ?", [board_id, run_id]
            )
            if cursor.rowcount:
                actions.record(db, actor, actions.OFF_BOARD, run_id=run_id, board_id=board_id, detail=name)
            taken += cursor.rowcount
        return taken


def set_for_run(ledger: Ledger, run_id: str, names: list[str], owner: str = "", *, actor: str) -> None:
    """Exactly these boards for one run, in one transaction: boards named that do not exist yet are
    made, the run is put on the others and taken off the boards not named."""
    with ledger.write() as db:
        wanted = []
        for name in names:
            found = _named(db, name, owner)
            wanted.append(found["id"] if found is not None else _insert(db, name, owner, actor))
        gone = [
            r[0]
            for r in db.execute(
                f"SELECT board_id FROM board_runs WHERE run_id = ? AND board_id IN "
                f"(SELECT id FROM boards WHERE owner = ?) AND board_id NOT IN ({','.join('?' * len(wanted))})",
                [run_id, owner, *wanted],
            )
        ]
        for board_id in gone:
            db.execute("DELETE FROM board_runs WHERE board_id = ? AND run_id = ?", [board_id, run_id])
            actions.record(
                db, actor, actions.OFF_BOARD, run_id=run_id, board_id=board_id, detail=_name_of(db, board_id)
            )
        for board_id in wanted:
            _add(db, board_id, [run_id], actor)


def of_runs(ledger: Ledger, run_ids: list[str], owner: str = "") -> dict[str, list[Board]]:
    """The boards each of these runs is on, by name."""
    if not run_ids:
        return {}
    found: dict[str, list[Board]] = {run_id: [] for run_id in run_ids}
    with ledger.db() as db:
        rows = list(
            db.query(
                f"SELECT m.run_id, b.id, b.name, b.created_at, b.owner, b.created_by, 0 AS runs FROM board_runs m "
                f"JOIN boards b ON b.id = m.board_id WHERE b.owner = ? "
                f"AND m.run_id IN ({','.join('?' * len(run_ids))})",
                [owner, *run_ids],
            )
        )
    for row in rows:
        found[row["run_id"]].append(_board(row))
    for on in found.values():
        on.sort(key=lambda b: b.name.casefold())
    return found
