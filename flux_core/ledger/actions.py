"""Who did what: a row per person's action on a run, a sweep or a board (migration 0012_attribution).

Each row is written in the same transaction as the change it records, so the ledger never holds a
change without its author or an author without the change. Rows name runs by id without a foreign
key: the record of a purge outlives the runs it purged. Runs and sweeps carry who made them
(`created_by`); this table holds everything done to them after.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from flux_core.ledger import store
from flux_core.ledger.store import Ledger

# the actions recorded, by name
FAVOURITE, RATING, NOTES, TAGS = "favourite", "rating", "notes", "tags"
DELETE, RESTORE, PURGE, VOTE, RENAME = "delete", "restore", "purge", "vote", "rename"
ON_BOARD, OFF_BOARD, NEW_BOARD, GONE_BOARD = "on board", "off board", "new board", "board deleted"
CAPS = "caps"  # an admin set a spend cap in Flux Lab
COMMENT, UNCOMMENT, VERDICT = "comment", "uncomment", "verdict"  # review (issue 17)
VERSION, PIN, UNPIN = "version", "pin", "unpin"  # a run's version named, pinned as the best, unpinned


@dataclass(frozen=True)
class Action:
    at: str
    actor: str
    action: str
    run_id: str | None
    sweep_id: str | None
    board_id: str | None
    detail: str

    def words(self) -> str:
        """One line for a run's activity: "ana@example.com rated it 4"."""
        what = {
            FAVOURITE: "marked it a favourite" if self.detail == "on" else "took the favourite mark off",
            RATING: f"rated it {self.detail}",
            NOTES: "changed the notes" if self.detail else "cleared the notes",
            TAGS: f"set the tags to {self.detail}" if self.detail else "took every tag off",
            ON_BOARD: f"put it on the board {self.detail}",
            OFF_BOARD: f"took it off the board {self.detail}",
            NEW_BOARD: f"made the board {self.detail}",
            GONE_BOARD: f"deleted the board {self.detail}",
            CAPS: f"set {self.detail}",
            DELETE: "deleted it",
            RESTORE: "restored it",
            PURGE: "purged it",
            VOTE: f"voted: {self.detail}",
            RENAME: f"renamed it {self.detail}",
            COMMENT: f"wrote {self.detail}",
            UNCOMMENT: f"deleted a comment {self.detail}",
            VERDICT: f"gave the verdict {self.detail}",
            VERSION: f"named this version {self.detail}",
            PIN: "pinned it as the best of its lineage",
            UNPIN: f"unpinned it ({self.detail})" if self.detail else "unpinned it",
        }.get(self.action, f"{self.action} {self.detail}".strip())
        return f"{self.actor} {what}"


def record(
    db: Database,
    actor: str,
    action: str,
    *,
    run_id: str | None = None,
    sweep_id: str | None = None,
    board_id: str | None = None,
    detail: str = "",
    at: str | None = None,
) -> None:
    """Write one action inside the caller's write transaction (`db` from Ledger.write())."""
    db.execute(
        "INSERT INTO actions (at, actor, action, run_id, sweep_id, board_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [at or store.now_iso(), actor, action, run_id, sweep_id, board_id, detail],
    )


def of_run(ledger: Ledger, run_id: str) -> list[Action]:
    """What people did to a run, oldest first."""
    with ledger.db() as db:
        return [
            Action(*row)
            for row in db.execute(
                "SELECT at, actor, action, run_id, sweep_id, board_id, detail FROM actions "
                "WHERE run_id = ? ORDER BY id",
                [run_id],
            )
        ]
