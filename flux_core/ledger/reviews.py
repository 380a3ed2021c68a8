"""Review (issue 17): threaded comments on a run and one verdict per reviewer (migration 0015_reviews).

A comment may answer another comment of the same run (`parent_id`); deleting a comment keeps its
place in the thread (its replies still answer something) and drops its words. A verdict is one of
VERDICTS per reviewer per run: giving another replaces it, and None takes it back. Every change is
written in the same transaction as its record in `actions` (who did it, when). Rows name runs by id
without a foreign key to `runs`; a purge deletes a run's comments and verdicts with it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from flux_core.ledger import actions, store
from flux_core.ledger.store import Ledger
from flux_core.params import ParamsError

APPROVE, REJECT, NEEDS_WORK = "approve", "reject", "needs work"
VERDICTS = (APPROVE, REJECT, NEEDS_WORK)
UNREVIEWED = "none"  # History's filter: runs nobody has given a verdict


@dataclass(frozen=True)
class Comment:
    id: int
    run_id: str
    parent_id: int | None
    author: str
    body: str  # "" once deleted
    at: str
    deleted_at: str | None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True)
class Verdict:
    run_id: str
    reviewer: str
    verdict: str
    at: str


def add_comment(
    ledger: Ledger, run_id: str, author: str, body: str, *, parent_id: int | None = None, actor: str
) -> Comment:
    """Write a comment (already checked by the service) and its record; returns it."""
    at = store.now_iso()
    with ledger.write() as db:
        cursor = db.execute(
            "INSERT INTO comments (run_id, parent_id, author, body, at) VALUES (?, ?, ?, ?, ?)",
            [run_id, parent_id, author, body, at],
        )
        comment_id = int(cursor.lastrowid or 0)
        detail = ("a reply" if parent_id else "a comment") + (f" as {author}" if author != actor else "")
        actions.record(db, actor, actions.COMMENT, run_id=run_id, detail=detail, at=at)
    return Comment(comment_id, run_id, parent_id, author, body, at, None)


def comment(ledger: Ledger, comment_id: int) -> Comment | None:
    with ledger.db() as db:
        row = db.execute(f"SELECT {_COLUMNS} FROM comments WHERE id = ?", [comment_id]).fetchone()
    return _comment(row) if row else None


def delete_comment(ledger: Ledger, found: Comment, *, actor: str) -> None:
    """Drop a comment's words, keeping its place in the thread."""
    at = store.now_iso()
    with ledger.write() as db:
        db.execute(
            "UPDATE comments SET body = '', deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
            [at, found.id],
        )
        actions.record(db, actor, actions.UNCOMMENT, run_id=found.run_id, detail=f"by {found.author}", at=at)


_COLUMNS = "id, run_id, parent_id, author, body, at, deleted_at"


def _comment(row) -> Comment:
    return Comment(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6])


def comments(ledger: Ledger, run_ids: list[str]) -> dict[str, list[Comment]]:
    """Every comment of these runs, oldest first (deleted ones included: see `thread`)."""
    found: dict[str, list[Comment]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return found
    with ledger.db() as db:
        for row in db.execute(
            f"SELECT {_COLUMNS} FROM comments WHERE run_id IN ({','.join('?' * len(run_ids))}) ORDER BY id",
            list(run_ids),
        ):
            found[row[1]].append(_comment(row))
    return found


def thread(items: list[Comment]) -> list[tuple[int, Comment]]:
    """A run's comments in reading order, each with its depth: a reply right under what it answers,
    replies oldest first. A deleted comment with no live reply under it is left out."""
    children: dict[int | None, list[Comment]] = {}
    ids = {c.id for c in items}
    for item in items:
        children.setdefault(item.parent_id if item.parent_id in ids else None, []).append(item)

    def alive(item: Comment) -> bool:
        return not item.deleted or any(alive(child) for child in children.get(item.id, []))

    out: list[tuple[int, Comment]] = []

    def walk(parent: int | None, depth: int) -> None:
        for item in children.get(parent, []):
            if alive(item):
                out.append((depth, item))
                walk(item.id, depth + 1)

    walk(None, 0)
    return out


def set_verdict(
    ledger: Ledger, run_ids: list[str], reviewer: str, verdict: str | None, *, actor: str
) -> None:
    """The reviewer's verdict on these runs (one of VERDICTS), replacing theirs; None takes it back."""
    at = store.now_iso()
    detail = (verdict or "withdrawn") + (f" as {reviewer}" if reviewer != actor else "")
    with ledger.write() as db:
        for run_id in dict.fromkeys(run_ids):
            db.execute("DELETE FROM verdicts WHERE run_id = ? AND reviewer = ?", [run_id, reviewer])
            if verdict is not None:
                db.execute(
                    "INSERT INTO verdicts (run_id, reviewer, verdict, at) VALUES (?, ?, ?, ?)",
                    [run_id, reviewer, verdict, at],
                )
            actions.record(db, actor, actions.VERDICT, run_id=run_id, detail=detail, at=at)


def verdicts(ledger: Ledger, run_ids: list[str]) -> dict[str, list[Verdict]]:
    """Every reviewer's verdict on these runs, oldest first."""
    found: dict[str, list[Verdict]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return found
    with ledger.db() as db:
        for row in db.execute(
            "SELECT run_id, reviewer, verdict, at FROM verdicts "
            f"WHERE run_id IN ({','.join('?' * len(run_ids))}) ORDER BY at, reviewer",
            list(run_ids),
        ):
            found[row[0]].append(Verdict(*row))
    return found


def tally(items: list[Verdict]) -> dict[str, int]:
    """How many reviewers gave each verdict, in VERDICTS' order (zeros included)."""
    counts = Counter(v.verdict for v in items)
    return {name: counts.get(name, 0) for name in VERDICTS}


def by_reviewer(per_run: dict[str, list[Verdict]]) -> dict[str, dict[str, int]]:
    """For a set of runs (a sweep's cells): each reviewer's count of each verdict, reviewers by name."""
    counts: dict[str, Counter[str]] = {}
    for items in per_run.values():
        for v in items:
            counts.setdefault(v.reviewer, Counter())[v.verdict] += 1
    return {who: {name: counts[who].get(name, 0) for name in VERDICTS} for who in sorted(counts)}


def check_filter(verdict: str) -> None:
    """A ParamsError unless `verdict` is one History and `flux-lab history` can filter by."""
    if verdict not in (*VERDICTS, UNREVIEWED):
        allowed = ", ".join((*VERDICTS, UNREVIEWED))
        raise ParamsError([f"verdict: must be one of {allowed}, not {verdict!r}"])


def filter_sql(verdict: str) -> str:
    """A WHERE clause on runs.id: runs with this verdict from anyone (for UNREVIEWED, from nobody)."""
    check_filter(verdict)
    if verdict == UNREVIEWED:
        return "id NOT IN (SELECT run_id FROM verdicts)"
    return f"id IN (SELECT run_id FROM verdicts WHERE verdict = '{verdict}')"


def forget(db, run_id: str) -> None:
    """Inside a purge's transaction: the run's comments and verdicts go with it."""
    db.execute("DELETE FROM comments WHERE run_id = ?", [run_id])
    db.execute("DELETE FROM verdicts WHERE run_id = ?", [run_id])
