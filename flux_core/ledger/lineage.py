"""Prompt lineage (issue 17): the run each run came from, version names and the pinned best.

A run names its parent in `runs.parent_run_id` and how it came from it in `runs.lineage` (one of
store.LINEAGE_KINDS), written in the transaction that inserts it. There is no foreign key: a
purged parent leaves its children's link as it was, and the chain simply stops there. Every run
has at most one parent, so the runs form trees; a lineage tree is everything below its root, and
at most one run of a tree is pinned as its best.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from flux_core import defaults as D
from flux_core.ledger import actions
from flux_core.ledger.records import Run
from flux_core.ledger.store import Ledger
from flux_core.params import text_field
from flux_core.presentation import word_diff

# how a run came from its parent, in words (History's lineage tree)
WORDS = {
    "edit": "edited",
    "rerun": "re-run identically",
    "seed": "new seed",
    "recall": "recalled unchanged",
    "sweep": "sweep cell",
    "probe": "reproducibility probe",
}
# the request's fields an edge names when they changed (the prompt has its word diff)
PARAM_FIELDS = ("width", "height", "seed", "safety_tolerance", "output_format", "image_urls")

_UP = """
WITH RECURSIVE up(id, parent, depth) AS (
    SELECT id, parent_run_id, 0 FROM runs WHERE id = ?
    UNION
    SELECT r.id, r.parent_run_id, up.depth + 1 FROM runs r JOIN up ON r.id = up.parent
    WHERE up.depth < 100000
)
SELECT id FROM up WHERE depth > 0 ORDER BY depth DESC
"""
_DOWN = """
WITH RECURSIVE down(id) AS (
    SELECT id FROM runs WHERE parent_run_id = ?
    UNION
    SELECT r.id FROM runs r JOIN down ON r.parent_run_id = down.id
)
SELECT id FROM down
"""


def _ancestor_ids(db: Database, run_id: str) -> list[str]:
    """Its ancestors' ids, the oldest first (a parent is always an older run: there is no loop)."""
    return [r[0] for r in db.execute(_UP, [run_id]) if r[0] != run_id]


def _descendant_ids(db: Database, run_id: str) -> list[str]:
    return [r[0] for r in db.execute(_DOWN, [run_id]) if r[0] != run_id]


def _by_seq(ledger: Ledger, ids: list[str]) -> list[Run]:
    return sorted(ledger.get_many(ids), key=lambda r: r.seq)


def ancestors(ledger: Ledger, run_id: str) -> list[Run]:
    """The runs this one came from, its root first and its parent last (up to a purged one)."""
    with ledger.db() as db:
        ids = _ancestor_ids(db, run_id)
    found = {r.id: r for r in ledger.get_many(ids)}
    return [found[i] for i in ids if i in found]


def descendants(ledger: Ledger, run_id: str) -> list[Run]:
    """Every run made from this one, from those, and so on, oldest first."""
    with ledger.db() as db:
        ids = _descendant_ids(db, run_id)
    return _by_seq(ledger, ids)


@dataclass(frozen=True)
class Edge:
    """How a child came from its parent (its id): the kind, the word diff of their prompts (see
    presentation.word_diff) and the other fields of the request that changed (before, after)."""

    parent: str
    kind: str
    diff: tuple[tuple[str, str], ...]
    changed: tuple[tuple[str, Any, Any], ...]

    def diff_text(self) -> str:
        """The word diff as plain text, as `git diff --word-diff` writes it: [-deleted-]{+inserted+}."""
        marks = {"same": ("", ""), "del": ("[-", "-]"), "ins": ("{+", "+}")}
        out = []
        for op, text in self.diff:
            space = " " if text.startswith(" ") else ""
            start, end = marks[op]
            out.append(f"{space}{start}{text.lstrip(' ')}{end}")
        return "".join(out)

    def words(self) -> str:
        """The changed fields in one line: "seed 1 → 7, safety_tolerance 2 → 4"."""
        return ", ".join(f"{name} {_shown(a)} → {_shown(b)}" for name, a, b in self.changed)


@dataclass(frozen=True)
class Tree:
    """A run's lineage as drawn: its ancestors, the run and its descendants (siblings and their
    children are left out). `children` lists each node's children oldest first; `edges` holds
    the edge into every node but the root; `pinned` is the id of the pinned run of the whole
    lineage tree, wherever it is in it (None: none is pinned)."""

    root: str
    focus: str
    runs: dict[str, Run]
    children: dict[str, tuple[str, ...]]
    edges: dict[str, Edge] = field(default_factory=dict)
    pinned: str | None = None

    def walk(self) -> list[tuple[str, int]]:
        """(run id, depth) from the root down, each node before its children."""
        out: list[tuple[str, int]] = []
        stack = [(self.root, 0)]
        while stack:
            node, depth = stack.pop()
            out.append((node, depth))
            stack.extend((child, depth + 1) for child in reversed(self.children.get(node, ())))
        return out

    def public(self) -> dict[str, Any]:
        """The tree as JSON (the CLI's `lineage --json`)."""
        nodes = []
        for node, depth in self.walk():
            run = self.runs[node]
            edge = self.edges.get(node)
            nodes.append(
                {
                    "run_id": node,
                    "depth": depth,
                    "parent_run_id": edge.parent if edge else None,
                    "lineage": run.lineage,
                    "version_name": run.version_name,
                    "pinned": run.pinned,
                    "label": label(run),
                    "prompt": run.prompt,
                    "children": list(self.children.get(node, ())),
                    "diff": [list(piece) for piece in edge.diff] if edge else [],
                    "changed": {n: [a, b] for n, a, b in edge.changed} if edge else {},
                }
            )
        return {"root": self.root, "run_id": self.focus, "pinned": self.pinned, "nodes": nodes}


def tree(ledger: Ledger, run_id: str) -> Tree:
    """The lineage of `run_id` (which the ledger holds): its ancestors, it, its descendants, with
    the diff along every edge."""
    with ledger.db() as db:
        up = _ancestor_ids(db, run_id)
        down = _descendant_ids(db, run_id)
        root = up[0] if up else run_id
        pinned = _pinned(db, root)
    runs = {r.id: r for r in ledger.get_many([*up, run_id, *down])}
    chain = [i for i in up if i in runs] + [run_id]
    children: dict[str, list[str]] = {}
    for parent, child in zip(chain, chain[1:]):
        children.setdefault(parent, []).append(child)
    for run in sorted((runs[i] for i in down if i in runs), key=lambda r: r.seq):
        children.setdefault(run.parent_run_id or "", []).append(run.id)
    edges = {}
    for parent, kids in children.items():
        for child in kids:
            a, b = runs[parent], runs[child]
            changed = tuple(
                (name, a.request.get(name), b.request.get(name))
                for name in PARAM_FIELDS
                if a.request.get(name) != b.request.get(name)
            )
            edges[child] = Edge(parent, b.lineage or "", tuple(word_diff(a.prompt, b.prompt)), changed)
    return Tree(
        root=chain[0],
        focus=run_id,
        runs=runs,
        children={k: tuple(v) for k, v in children.items()},
        edges=edges,
        pinned=pinned,
    )


def _members(db: Database, root: str) -> list[str]:
    return [root, *_descendant_ids(db, root)]


def _pinned(db: Database, root: str) -> str | None:
    members = _members(db, root)
    marks = ",".join("?" * len(members))
    found = db.execute(f"SELECT id FROM runs WHERE pinned = 1 AND id IN ({marks})", members).fetchone()
    return found[0] if found else None


def clean_name(name: Any) -> str:
    """A version's name as kept: trimmed, one line, 1 to VERSION_NAME_MAX_CHARS characters."""
    return text_field("version name", name, D.VERSION_NAME_MAX_CHARS)


def name(ledger: Ledger, run_id: str, version_name: str, *, actor: str) -> str:
    """Name a run's version (checked by clean_name first); returns the name as kept."""
    text = clean_name(version_name)
    with ledger.write() as db:
        db.execute("UPDATE runs SET version_name = ? WHERE id = ?", [text, run_id])
        actions.record(db, actor, actions.VERSION, run_id=run_id, detail=text)
    return text


def pin(ledger: Ledger, run_id: str, *, actor: str, pinned: bool = True) -> str | None:
    """Pin a run as the best of its lineage tree (the one pinned before is unpinned, in the same
    transaction), or unpin it. Returns the id of the run it unpinned, if any."""
    with ledger.write() as db:
        up = _ancestor_ids(db, run_id)
        before = _pinned(db, up[0] if up else run_id)
        if not pinned:
            if before != run_id:
                return None
            db.execute("UPDATE runs SET pinned = 0 WHERE id = ?", [run_id])
            actions.record(db, actor, actions.UNPIN, run_id=run_id)
            return run_id
        if before == run_id:
            return None
        if before is not None:
            db.execute("UPDATE runs SET pinned = 0 WHERE id = ?", [before])
            actions.record(db, actor, actions.UNPIN, run_id=before, detail=f"run {run_id} pinned instead")
        db.execute("UPDATE runs SET pinned = 1 WHERE id = ?", [run_id])
        actions.record(db, actor, actions.PIN, run_id=run_id)
        return before


def label(run: Run) -> str:
    """A node's name: its version name, else the end of its id."""
    return run.version_name or f"…{run.id[-D.LINEAGE_SHORT_ID :]}"


def indent(depth: int) -> str:
    """A node's indent in a tree drawn as text lines ("· · └ "): st.text strips leading whitespace."""
    return "· " * (depth - 1) + "└ " if depth else ""


def first_words(prompt: str, count: int = D.LINEAGE_PROMPT_WORDS) -> str:
    words = prompt.split()
    return " ".join(words[:count]) + (" …" if len(words) > count else "")


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)
