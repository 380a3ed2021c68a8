"""The run ledger: SQLite through sqlite-utils, numbered migrations, WAL, FTS5.

The ledger is the source of truth. A run's row is written before its submit and updated on every
transition; `run_events` keeps the history of those transitions. Open a connection per unit of
work (`with ledger.db() as db:`): Streamlit sessions and runner threads each get their own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from flux_core import defaults as D
from flux_core import lifecycle
from flux_core.errors import IllegalTransition, LedgerError, redact
from flux_core.ledger.records import Event, Run
from flux_core.params import FluxParams

# Where a run can be, what each state means and where it may go next: lifecycle's table.
# The names are re-exported here, where callers have always found them (store.COMPLETED).
from flux_core.lifecycle import (
    ACTIVE as ACTIVE,
    BLOCKED as BLOCKED,
    COMPLETED as COMPLETED,
    CREATED as CREATED,
    DOWNLOADING as DOWNLOADING,
    ERROR as ERROR,
    EXPIRED as EXPIRED,
    FAILED as FAILED,
    PROCESSING as PROCESSING,
    QUEUED as QUEUED,
    SETTLING as SETTLING,
    SUBMIT_UNKNOWN as SUBMIT_UNKNOWN,
    SUBMITTING as SUBMITTING,
    UNUSABLE as UNUSABLE,
)

migrations = Migrations("flux_lab")


def _script(db: Database, sql: str) -> None:
    """Run a migration's statements inside its transaction. (sqlite-utils' executescript splits a
    script there by testing every prefix of it, character by character, for a complete statement:
    0.1 s of the 0.12 s that migrating a new ledger took, in every process and test that makes
    one. Here only the prefixes that end at a semicolon are tested: the same statements.)"""
    start = 0
    for end in (i + 1 for i, ch in enumerate(sql) if ch == ";"):
        if sqlite3.complete_statement(sql[start:end]):
            if sql[start:end].strip():
                db.execute(sql[start:end])
            start = end
    if sql[start:].strip():
        db.execute(sql[start:])


# How a run came from its parent (`runs.lineage`): recalled into Compose, changed and generated; an
# identical re-run; run again with a new seed; recalled (History, an image file) and generated
# unchanged; a cell of a sweep whose base was a run; the determinism probe of a run.
EDIT, RERUN, SEED, RECALL, SWEEP, PROBE = "edit", "rerun", "seed", "recall", "sweep", "probe"
LINEAGE_KINDS = (EDIT, RERUN, SEED, RECALL, SWEEP, PROBE)
# the first note of a run made by Workbench._rerun_changed (before migration 0016 the only link)
_RERUN_NOTE = re.compile(r"Run again from run (\S+) with ")


@migrations(name="0001_runs")
def _m0001(db: Database) -> None:
    _script(
        db,
        """
        CREATE TABLE runs (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            status TEXT NOT NULL,
            model TEXT NOT NULL,
            backend TEXT NOT NULL,
            base_url TEXT NOT NULL,
            prompt TEXT NOT NULL,
            image_urls_json TEXT NOT NULL DEFAULT '[]',
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            seed INTEGER NOT NULL,
            seed_random INTEGER NOT NULL DEFAULT 0,
            safety_tolerance INTEGER NOT NULL,
            output_format TEXT NOT NULL,
            request_json TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            request_id TEXT,
            status_url TEXT,
            response_url TEXT,
            poll_url TEXT,
            submitted_at TEXT,
            processing_at TEXT,
            finished_at TEXT,
            queue_time REAL,
            inference_time REAL,
            total_time REAL,
            observed_queue_s REAL,
            observed_total_s REAL,
            cost REAL,
            remaining_credits REAL,
            error TEXT,
            error_kind TEXT,
            output_url TEXT,
            image_sha256 TEXT,
            image_path TEXT,
            thumb_path TEXT,
            image_width INTEGER,
            image_height INTEGER,
            image_bytes INTEGER,
            sweep_id TEXT,
            favourite INTEGER NOT NULL DEFAULT 0,
            rating INTEGER,
            notes TEXT NOT NULL DEFAULT '',
            tags_json TEXT NOT NULL DEFAULT '[]',
            lease TEXT
        );
        CREATE INDEX runs_created ON runs(created_at);
        CREATE INDEX runs_status ON runs(status, created_at);
        CREATE INDEX runs_sweep ON runs(sweep_id);
        CREATE INDEX runs_request_hash ON runs(request_hash, status);
        CREATE INDEX runs_request_id ON runs(request_id);

        CREATE TABLE run_events (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            status TEXT NOT NULL,
            detail TEXT
        );
        CREATE INDEX run_events_run ON run_events(run_id, id);

        CREATE TABLE sweeps (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            base_json TEXT NOT NULL,
            axes_json TEXT NOT NULL
        );

        CREATE VIRTUAL TABLE runs_fts USING fts5(
            prompt, notes, tags, content='runs', content_rowid='seq', tokenize='porter unicode61'
        );
        CREATE TRIGGER runs_fts_ai AFTER INSERT ON runs BEGIN
            INSERT INTO runs_fts(rowid, prompt, notes, tags) VALUES (new.seq, new.prompt, new.notes, new.tags_json);
        END;
        CREATE TRIGGER runs_fts_ad AFTER DELETE ON runs BEGIN
            INSERT INTO runs_fts(runs_fts, rowid, prompt, notes, tags)
                VALUES ('delete', old.seq, old.prompt, old.notes, old.tags_json);
        END;
        CREATE TRIGGER runs_fts_au AFTER UPDATE OF prompt, notes, tags_json ON runs BEGIN
            INSERT INTO runs_fts(runs_fts, rowid, prompt, notes, tags)
                VALUES ('delete', old.seq, old.prompt, old.notes, old.tags_json);
            INSERT INTO runs_fts(rowid, prompt, notes, tags) VALUES (new.seq, new.prompt, new.notes, new.tags_json);
        END;
        """,
    )


@migrations(name="0002_sweep_cells_and_votes")
def _m0002(db: Database) -> None:
    _script(
        db,
        """
        CREATE TABLE sweep_cells (
            sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            coords_json TEXT NOT NULL,
            run_id TEXT NOT NULL REFERENCES runs(id),
            reused INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (sweep_id, idx)
        );
        CREATE INDEX sweep_cells_run ON sweep_cells(run_id);

        CREATE TABLE votes (
            id INTEGER PRIMARY KEY,
            sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
            voter TEXT NOT NULL,
            winner_run_id TEXT NOT NULL,
            loser_run_id TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX votes_sweep ON votes(sweep_id, voter);
        """,
    )


@migrations(name="0003_history_indexes_and_soft_delete")
def _m0003(db: Database) -> None:
    _script(
        db,
        """
        ALTER TABLE runs ADD COLUMN deleted_at TEXT;
        CREATE INDEX runs_live ON runs(deleted_at, seq);
        CREATE INDEX runs_tolerance ON runs(safety_tolerance, seq);
        CREATE INDEX runs_seed ON runs(seed);
        CREATE INDEX runs_inference ON runs(inference_time);
        CREATE INDEX runs_rating ON runs(rating, seq);
        """,
    )


@migrations(name="0004_sort_indexes")
def _m0004(db: Database) -> None:
    _script(
        db,
        """
        DROP INDEX runs_inference;
        CREATE INDEX runs_inference ON runs(inference_time ASC, seq DESC) WHERE inference_time IS NOT NULL;
        CREATE INDEX runs_favourites ON runs(rating DESC, seq DESC) WHERE favourite = 1;
        """,
    )


@migrations(name="0005_key_ids_lease_expiry_download_attempts")
def _m0005(db: Database) -> None:
    _script(
        db,
        """
        ALTER TABLE runs ADD COLUMN key_id TEXT;
        ALTER TABLE runs ADD COLUMN lease_until TEXT;
        ALTER TABLE runs ADD COLUMN download_attempts INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX runs_active ON runs(status) WHERE status IN
            ('CREATED', 'SUBMITTING', 'QUEUED', 'PROCESSING', 'DOWNLOADING');
        """,
    )


@migrations(name="0006_settling_real_cost_imports")
def _m0006(db: Database) -> None:
    _script(
        db,
        """
        ALTER TABLE runs ADD COLUMN submit_began_at TEXT;
        ALTER TABLE runs ADD COLUMN resent INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN settlement TEXT;
        ALTER TABLE runs ADD COLUMN cost_usd REAL;
        ALTER TABLE runs ADD COLUMN cost_checked_at TEXT;
        ALTER TABLE runs ADD COLUMN origin TEXT NOT NULL DEFAULT 'flux-lab';
        DROP INDEX runs_active;
        CREATE INDEX runs_active ON runs(status) WHERE status IN
            ('CREATED', 'SUBMITTING', 'SETTLING', 'QUEUED', 'PROCESSING', 'DOWNLOADING');
        CREATE INDEX runs_cost_open ON runs(finished_at) WHERE cost_usd IS NULL AND request_id IS NOT NULL;
        """,
    )


@migrations(name="0007_real_cost_index")
def _m0007(db: Database) -> None:
    # the estimate learns from a server's newest real costs on every Compose rerun: an index range
    # of at most PRICING_SAMPLE rows, never a scan of the ledger
    _script(db, "CREATE INDEX runs_real_cost ON runs(base_url, seq) WHERE cost_usd IS NOT NULL;")


@migrations(name="0008_key_limits")
def _m0008(db: Database) -> None:
    # what the request scheduler learned of a key's rate limit at a server, for the next process;
    # and the expected duration by model and size reads an index, not the ledger
    _script(
        db,
        """
        CREATE TABLE key_limits (
            key_id TEXT NOT NULL,
            base_url TEXT NOT NULL,
            limit_rpm INTEGER,
            confirmed INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (key_id, base_url)
        );
        CREATE INDEX runs_durations ON runs(base_url, model, width, height, seq)
            WHERE status = 'COMPLETED' AND observed_total_s IS NOT NULL;
        """,
    )


@migrations(name="0009_boards")
def _m0009(db: Database) -> None:
    # boards: named collections a run can belong to several of (issue 14); `owner` is '' until
    # people sign in (issue 15), and a name is unique for its owner whatever its case
    _script(
        db,
        """
        CREATE TABLE boards (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            owner TEXT NOT NULL DEFAULT ''
        );
        CREATE UNIQUE INDEX boards_name ON boards(owner, name COLLATE NOCASE);
        CREATE TABLE board_runs (
            board_id TEXT NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            added_at TEXT NOT NULL,
            PRIMARY KEY (board_id, run_id)
        );
        CREATE INDEX board_runs_run ON board_runs(run_id);
        """,
    )


@migrations(name="0010_presets")
def _m0010(db: Database) -> None:
    # a person's saved parameter sets (Compose, `flux-lab preset`); `owner` is '' until sign-in
    _script(
        db,
        """
        CREATE TABLE presets (
            name TEXT NOT NULL,
            params_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            owner TEXT NOT NULL DEFAULT '',
            UNIQUE (owner, name)
        );
        """,
    )


@migrations(name="0011_run_owner")
def _m0011(db: Database) -> None:
    # who asked for each run (issue 15): "local:<user>" until sign-in names a person; spend caps sum
    # a person's runs of a UTC day through the index
    _script(
        db,
        """
        ALTER TABLE runs ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
        CREATE INDEX runs_created_by ON runs (created_by, created_at);
        """,
    )


@migrations(name="0012_attribution")
def _m0012(db: Database) -> None:
    # who did what (issue 15): one row per person's action on a run, a sweep or a board (favourite,
    # rating, notes, tags, boards, delete, restore, purge, vote, rename), kept after a purge (no
    # foreign key); who made each sweep and board; and one vote per person per pair of a sweep,
    # the latest kept where there were several
    _script(
        db,
        """
        CREATE TABLE actions (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            run_id TEXT,
            sweep_id TEXT,
            board_id TEXT,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX actions_run ON actions (run_id, id) WHERE run_id IS NOT NULL;
        CREATE INDEX actions_actor ON actions (actor, at);
        ALTER TABLE sweeps ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
        ALTER TABLE boards ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
        DELETE FROM votes WHERE id NOT IN (
            SELECT MAX(id) FROM votes
            GROUP BY sweep_id, voter, MIN(winner_run_id, loser_run_id), MAX(winner_run_id, loser_run_id)
        );
        CREATE UNIQUE INDEX votes_one_per_pair ON votes (
            sweep_id, voter, MIN(winner_run_id, loser_run_id), MAX(winner_run_id, loser_run_id)
        );
        """,
    )


@migrations(name="0013_caps")
def _m0013(db: Database) -> None:
    # the spend caps an admin set in Flux Lab (the sidebar, `flux-lab spend --set-...`): they win over
    # the environment's FLUX_LAB_CAP_* for as long as they are set; usd NULL is "no cap"
    _script(
        db,
        """
        CREATE TABLE caps (
            name TEXT PRIMARY KEY CHECK (name IN ('person_day', 'team_day', 'team_month')),
            usd REAL CHECK (usd IS NULL OR usd >= 0),
            set_at TEXT NOT NULL,
            set_by TEXT NOT NULL
        );
        """,
    )


@migrations(name="0014_checks")
def _m0014(db: Database) -> None:
    # the automatic checks of a run's image (flux_core/checks): one row a run and check, with the
    # version of the check that computed it (an older version is computed again); result is JSON
    _script(
        db,
        """
        CREATE TABLE checks (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL CHECK (name IN ('text', 'palette', 'print', 'repro')),
            version INTEGER NOT NULL,
            score REAL CHECK (score IS NULL OR (score >= 0 AND score <= 1)),
            result TEXT NOT NULL,
            computed_at TEXT NOT NULL,
            PRIMARY KEY (run_id, name)
        );
        CREATE INDEX checks_by_score ON checks (name, score);
        """,
    )


@migrations(name="0015_reviews")
def _m0015(db: Database) -> None:
    # review (issue 17): threaded comments on a run (a reply names its parent; a deleted comment
    # keeps its place in the thread, its words gone) and one verdict per reviewer per run
    _script(
        db,
        """
        CREATE TABLE comments (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            parent_id INTEGER REFERENCES comments (id),
            author TEXT NOT NULL,
            body TEXT NOT NULL,
            at TEXT NOT NULL,
            deleted_at TEXT
        );
        CREATE INDEX comments_run ON comments (run_id, id);
        CREATE TABLE verdicts (
            run_id TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('approve', 'reject', 'needs work')),
            at TEXT NOT NULL,
            PRIMARY KEY (run_id, reviewer)
        );
        CREATE INDEX verdicts_by_verdict ON verdicts (verdict, run_id);
        """,
    )


@migrations(name="0016_lineage")
def _m0016(db: Database) -> None:
    # prompt lineage (issue 17): the run each run came from and how (flux_core/ledger/lineage.py),
    # without a foreign key, so a purge leaves its children's link as it was; a version name and
    # the one pinned run of a lineage tree. The parent of a run "run again with ..." before this
    # is read back from the first note _rerun_changed wrote.
    _script(
        db,
        f"""
        ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
        ALTER TABLE runs ADD COLUMN lineage TEXT
            CHECK (lineage IS NULL OR lineage IN ({", ".join(repr(k) for k in LINEAGE_KINDS)}));
        ALTER TABLE runs ADD COLUMN version_name TEXT
            CHECK (version_name IS NULL OR length(version_name) <= {D.VERSION_NAME_MAX_CHARS});
        ALTER TABLE runs ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
        """,
    )
    found = db.execute(
        "SELECT run_id, detail FROM run_events WHERE detail LIKE 'Run again from run % with %' ORDER BY id"
    ).fetchall()
    for run_id, detail in found:
        match = _RERUN_NOTE.match(detail)
        if match and match.group(1) != run_id:
            db.execute(
                "UPDATE runs SET parent_run_id = ?, lineage = 'edit' WHERE id = ? AND parent_run_id IS NULL",
                [match.group(1), run_id],
            )


@migrations(name="0017_favourites_index")
def _m0017(db: Database) -> None:
    # History at 100,000 runs (issue 19): the favourites index leads with deleted_at, so counting the
    # live favourites reads the index, not every live run (10 ms -> 0.1 ms at 5,000 favourites)
    _script(
        db,
        """
        DROP INDEX IF EXISTS runs_favourites;
        CREATE INDEX runs_favourites ON runs (deleted_at, rating DESC, seq DESC) WHERE favourite = 1;
        """,
    )


@migrations(name="0020_hunts")
def _m0020(db: Database) -> None:
    # the seed hunt (issue 20, item 3): a sweep over seeds that stops once enough of its images pass
    # the chosen checks. `spec_json` is what was asked (checks, hits wanted, limits, the seeds in
    # order); `lease` the process driving it; `stop_reason` set when it stops submitting, `finished_at`
    # once its last image landed and was judged. `hunt_results`: each landed run's verdict, in order.
    _script(
        db,
        """
        CREATE TABLE hunts (
            sweep_id TEXT PRIMARY KEY,
            spec_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL DEFAULT '',
            lease TEXT,
            lease_until TEXT,
            stop_reason TEXT,
            stopped_at TEXT,
            finished_at TEXT
        );
        CREATE TABLE hunt_results (
            sweep_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            hit INTEGER NOT NULL CHECK (hit IN (0, 1)),
            why TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (sweep_id, run_id)
        );
        """,
    )


# A check of new runs' rows made inside the write transaction that inserts them (see create_runs).
Admit = Callable[[Database, list[dict[str, Any]]], None]

_FTS_SPLIT = re.compile(r'\s+|(".*?")')  # words, and phrases in quotes (sqlite-utils' quote_fts)


def fts_query(text: str) -> str:
    """What a person typed as an FTS5 query: every word quoted (so AND, OR, NOT and punctuation are
    just words), a word of FTS_PREFIX_MIN_CHARS or more also matching longer words ("teapo" finds
    "teapot"), a phrase in quotes matched as typed. "" when nothing in it is searchable."""
    text = (text or "").strip()
    if text.count('"') % 2:
        text += '"'
    bits = []
    for bit in _FTS_SPLIT.split(text):
        if not bit or bit == '""':
            continue
        if bit.startswith('"'):
            bits.append(bit)  # a phrase, as typed
        else:
            bits.append(f'"{bit}"*' if len(bit) >= D.FTS_PREFIX_MIN_CHARS else f'"{bit}"')
    return " ".join(bits)


def key_id(api_key: str | None) -> str | None:
    """Which key a run belongs to, without the key: a one-way fingerprint (never the key itself)."""
    if not api_key:
        return None
    return hashlib.sha256(b"flux-lab key id\x00" + api_key.encode()).hexdigest()[:16]


def now_iso(offset_s: float = 0.0) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=offset_s)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ulid_lock = threading.Lock()
_ulid_last = [0, 0]


def new_id() -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, monotonic within a millisecond."""
    with _ulid_lock:
        ms = int(time.time() * 1000)
        if ms <= _ulid_last[0]:
            ms, rand = _ulid_last[0], _ulid_last[1] + 1
        else:
            rand = secrets.randbits(80)
        _ulid_last[:] = [ms, rand]
    value = (ms << 80) | (rand & ((1 << 80) - 1))
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def request_hash(model: str, payload: dict[str, Any]) -> str:
    """Identifies an exact request (same model and body): used to find and reuse results."""
    canonical = json.dumps({"model": model, **payload}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@contextlib.contextmanager
def _file_lock(db_path: Path) -> Iterator[None]:
    """An exclusive lock beside the ledger, across processes (three opening a fresh directory at
    once would otherwise race to create the same tables)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: SQLite's own locking is all there is
        yield
        return
    try:
        handle = open(db_path.with_name(db_path.name + ".lock"), "a+b")
    except OSError as exc:
        raise storage_error(exc, db_path) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def storage_error(exc: BaseException, path: Path) -> LedgerError:
    """What went wrong with the ledger or the data directory, in words a person can act on."""
    text = str(exc).lower()
    errno_ = getattr(exc, "errno", None)
    where = path.parent
    if errno_ == 28 or "disk is full" in text or "no space" in text:
        return LedgerError(
            f"The disk holding {where} is full.",
            hint="Free some space, then run `flux-lab resume` (or reload the app): runs in flight "
            "stay recorded and are finished then.",
        )
    if errno_ in (13, 30) or "readonly" in text or "read-only" in text or "unable to open" in text:
        return LedgerError(
            f"Flux Lab cannot write to its data directory {where}.",
            hint=f"Make it writable, or choose another with --data-dir or {D.DATA_DIR_ENV}.",
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return LedgerError(
            f"The ledger {path} is damaged ({exc}).",
            hint="Move the file aside (keep it: it holds your run history) and start again, or restore "
            "a backup; `sqlite3 ledger.db .recover` can often rescue its rows.",
        )
    if "locked" in text or "busy" in text:
        return LedgerError(
            f"The ledger {path} stayed locked by another process for too long.",
            hint="Try again; if it persists, look for a stuck flux-lab process.",
        )
    return LedgerError(f"The ledger {path} could not be used ({exc}).", hint="Check the data directory.")


def _run_row(
    params: FluxParams,
    backend: str,
    base_url: str,
    seed_random: bool,
    sweep_id: str | None,
    lease: str | None,
    key_fingerprint: str | None,
    created_by: str = "",
    came_from: tuple[str, str] | None = None,
) -> dict[str, Any]:
    at = now_iso()
    payload = params.payload()
    return {
        "id": new_id(),
        "created_at": at,
        "updated_at": at,
        "status": CREATED,
        "model": params.model,
        "backend": backend,
        "base_url": base_url,
        "prompt": params.prompt,
        "image_urls_json": json.dumps(list(params.image_urls)),
        "width": params.width,
        "height": params.height,
        "seed": params.seed,
        "seed_random": int(seed_random),
        "safety_tolerance": params.safety_tolerance,
        "output_format": params.output_format,
        "request_json": json.dumps(payload, sort_keys=True),
        "request_hash": request_hash(params.model, payload),
        "sweep_id": sweep_id,
        "lease": lease,
        "lease_until": now_iso(D.LEASE_TTL_S) if lease else None,
        "key_id": key_fingerprint,
        "created_by": created_by,
        "parent_run_id": came_from[0] if came_from else None,
        "lineage": came_from[1] if came_from else None,
    }


def _insert_run(
    db: Database, row: dict[str, Any], walk: tuple[str, ...] = (CREATED,), detail: str | None = None
) -> None:
    """The run's row and an event for each status of `walk` (the last one carrying `detail`)."""
    events = [{"run_id": row["id"], "at": row["created_at"], "status": step, "detail": None} for step in walk]
    events[-1]["detail"] = detail
    db.table("runs").insert(row)
    db.table("run_events").insert_all(events)


def _redacted(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields as the ledger stores them: server text in `error` with any key blanked."""
    if fields.get("error"):
        return {**fields, "error": redact(str(fields["error"]))}
    return fields


class Ledger:
    _migrated: set[str] = set()
    _migrate_lock = threading.Lock()
    _keepers: dict[str, sqlite3.Connection] = {}

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, self.path) from None
        key = str(self.path.resolve())
        with Ledger._migrate_lock:
            if key not in Ledger._migrated or not self.path.exists():
                with _file_lock(self.path), self.db() as db:  # one process migrates at a time
                    db.enable_wal()
                    migrations.apply(db)
                Ledger._migrated.add(key)
                Ledger._keep_open(key)

    @classmethod
    def _keep_open(cls, key: str) -> None:
        """Hold one idle connection to the ledger for the life of the process. Each unit of work
        opens its own connection; without this one, closing it was closing the last, which
        checkpoints the WAL and deletes it (measured: 2.9 ms a write transaction instead of 0.23)."""
        old = cls._keepers.pop(key, None)
        if old is not None:
            old.close()
        try:
            keeper = sqlite3.connect(key, check_same_thread=False)
            keeper.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error:  # nothing is lost without it, only speed
            return
        cls._keepers[key] = keeper

    @contextlib.contextmanager
    def db(self) -> Iterator[Database]:
        """A connection for one unit of work. SQLite's failures that a person must act on (a full
        disk, a read-only or corrupt ledger) come out as LedgerError, which says what to do."""
        try:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path) from None
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            yield Database(conn)
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
                raise  # IntegrityError and the like are bugs, not the disk's fault
            raise storage_error(exc, self.path) from None
        finally:
            conn.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[Database]:
        """A write transaction that takes the write lock up front (BEGIN IMMEDIATE), so two
        writers wait for each other instead of failing on a lock upgrade."""
        with self.db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # --- writing --------------------------------------------------------------------------
    def create_run(
        self,
        params: FluxParams,
        *,
        backend: str,
        base_url: str,
        seed_random: bool = False,
        sweep_id: str | None = None,
        lease: str | None = None,
        key: str | None = None,
        created_by: str = "",
        admit: Admit | None = None,
        came_from: tuple[str, str] | None = None,
    ) -> str:
        return self.create_runs(
            [params],
            backend=backend,
            base_url=base_url,
            seed_random=seed_random,
            sweep_id=sweep_id,
            lease=lease,
            key=key,
            created_by=created_by,
            admit=admit,
            came_from=came_from,
        )[0]

    def create_runs(
        self,
        batch: list[FluxParams],
        *,
        backend: str,
        base_url: str,
        seed_random: bool = False,
        sweep_id: str | None = None,
        lease: str | None = None,
        key: str | None = None,
        created_by: str = "",
        admit: Admit | None = None,
        came_from: tuple[str, str] | None = None,
    ) -> list[str]:
        """Runs (CREATED) for every request of `batch` in one transaction: all of them or none.
        `admit(db, rows)` is called inside the write transaction before anything is inserted and
        may raise to refuse the batch (the spend caps): what it reads cannot change before the
        rows are in, because BEGIN IMMEDIATE holds the ledger's write lock for every process.
        `came_from` (the parent run's id, one of LINEAGE_KINDS) is where every one of them came from."""
        rows = [
            _run_row(p, backend, base_url, seed_random, sweep_id, lease, key_id(key), created_by, came_from)
            for p in batch
        ]
        with self.write() as db:
            if admit is not None:
                admit(db, rows)
            for row in rows:
                _insert_run(db, row)
        return [row["id"] for row in rows]

    def create_sweep(
        self,
        base: dict[str, Any],
        axes: Any,
        name: str = "",
        *,
        cells: list[tuple[Any, FluxParams | str, bool]] | None = None,
        backend: str = "",
        base_url: str = "",
        lease: str | None = None,
        key: str | None = None,
        created_by: str = "",
        admit: Admit | None = None,
        came_from: tuple[str, str] | None = None,
    ) -> tuple[str, list[str]]:
        """The sweep, a run for each new cell and every cell, in one transaction: an interrupted
        start leaves the whole sweep or none of it. `cells` are (coords, params or the id of a run
        to reuse, seed_random). Returns the sweep id and the ids of the new runs (CREATED). `admit`
        sees every new run's row first, as in create_runs; `came_from` is every new run's parent."""
        sweep_id, at = new_id(), now_iso()
        new_runs: list[str] = []
        rows = {
            idx: _run_row(
                what,
                backend,
                base_url,
                seed_random,
                sweep_id,
                lease,
                key_id(key),
                created_by,
                came_from,
            )
            for idx, (_, what, seed_random) in enumerate(cells or [])
            if isinstance(what, FluxParams)
        }
        with self.write() as db:
            if admit is not None:
                admit(db, list(rows.values()))
            db.table("sweeps").insert(
                {
                    "id": sweep_id,
                    "created_at": at,
                    "name": name,
                    "base_json": json.dumps(base, sort_keys=True),
                    "axes_json": json.dumps(axes),
                    "created_by": created_by,
                }
            )
            for idx, (coords, what, _) in enumerate(cells or []):
                if isinstance(what, FluxParams):
                    row = rows[idx]
                    _insert_run(db, row)
                    new_runs.append(row["id"])
                    run_id = row["id"]
                else:
                    run_id = what
                db.table("sweep_cells").insert(
                    {
                        "sweep_id": sweep_id,
                        "idx": idx,
                        "coords_json": json.dumps(coords),
                        "run_id": run_id,
                        "reused": int(not isinstance(what, FluxParams)),
                    }
                )
        return sweep_id, new_runs

    def extend_sweep(
        self,
        sweep_id: str,
        axes: Any,
        cells: list[tuple[Any, FluxParams]],
        *,
        backend: str,
        base_url: str,
        lease: str | None = None,
        key: str | None = None,
        created_by: str = "",
        admit: Admit | None = None,
    ) -> list[str]:
        """More cells of a saved sweep, each a new run (CREATED), and the sweep's axes as they now
        read, in one transaction (a seed hunt adds its seeds a batch at a time). `cells` are
        (coords, params); `admit` sees the new runs' rows first, as in create_runs."""
        rows = [
            _run_row(params, backend, base_url, False, sweep_id, lease, key_id(key), created_by)
            for _, params in cells
        ]
        with self.write() as db:
            if admit is not None:
                admit(db, rows)
            start = db.execute(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM sweep_cells WHERE sweep_id = ?", [sweep_id]
            ).fetchone()[0]
            db.execute("UPDATE sweeps SET axes_json = ? WHERE id = ?", [json.dumps(axes), sweep_id])
            for n, ((coords, _), row) in enumerate(zip(cells, rows)):
                _insert_run(db, row)
                db.table("sweep_cells").insert(
                    {
                        "sweep_id": sweep_id,
                        "idx": start + n,
                        "coords_json": json.dumps(coords),
                        "run_id": row["id"],
                        "reused": 0,
                    }
                )
        return [row["id"] for row in rows]

    def record_run(
        self,
        params: FluxParams,
        status: str,
        *,
        backend: str,
        base_url: str,
        seed_random: bool = False,
        sweep_id: str | None = None,
        lease: str | None = None,
        key: str | None = None,
        detail: str | None = None,
        **fields: Any,
    ) -> str:
        """Write down a run that is already in `status` with `fields` (a run made outside this
        process, such as an import or a test's fixture), in one transaction. Its `run_events` walk
        the shortest way the lifecycle allows from CREATED, the last step carrying `detail`, so the
        history of every run reads as transitions the table allows. Returns the run's id."""
        walk = lifecycle.path_to(status)
        row = _run_row(params, backend, base_url, seed_random, sweep_id, lease, key_id(key))
        row.update(_redacted(fields), status=status)
        with self.write() as db:
            _insert_run(db, row, walk, detail)
        return row["id"]

    def transition(
        self,
        run_id: str,
        status: str | None = None,
        *,
        detail: str | None = None,
        owner: str | None = None,
        **fields: Any,
    ) -> bool:
        """Update a run's fields and, when `status` is given, record the transition; a `detail`
        without a `status` is recorded as an event under the run's current status (something that
        happened to it, such as a look at Segmind's record). With `owner`, only while that owner
        holds the run's lease (a runner whose lease was taken over stops writing). Server text in
        `error` is redacted. Returns whether the row was updated (False: no such run, or the lease
        is another's). A status change the lifecycle table does not allow raises IllegalTransition
        and changes nothing; changing only fields always works."""
        at = now_iso()
        updates = {**_redacted(fields), "updated_at": at}
        if status is not None:
            updates["status"] = status
        sets = ", ".join(f"[{k}] = ?" for k in updates)
        with self.write() as db:  # the status is read and changed under one write lock
            found = db.execute("SELECT status, lease FROM runs WHERE id = ?", [run_id]).fetchone()
            if found is None or (owner is not None and found[1] != owner):
                return False
            current = found[0]
            if status is not None and not lifecycle.allowed(current, status):
                state = lifecycle.STATES.get(current)
                raise IllegalTransition(run_id, current, status, state.then if state else ())
            db.execute(f"UPDATE runs SET {sets} WHERE id = ?", [*updates.values(), run_id])
            if status is not None or detail is not None:
                db.table("run_events").insert(
                    {"run_id": run_id, "at": at, "status": status or current, "detail": detail}
                )
        return True

    def claimed_request_ids(self, request_ids: list[str]) -> set[str]:
        """Which of these Segmind request ids a run in the ledger already holds."""
        if not request_ids:
            return set()
        marks = ",".join("?" * len(request_ids))
        with self.db() as db:
            return {
                r[0]
                for r in db.execute(f"SELECT request_id FROM runs WHERE request_id IN ({marks})", request_ids)
            }

    # --- leases: which process drives a run -----------------------------------------------
    def claim(self, run_id: str, owner: str, *, expected_lease: str | None) -> bool:
        with self.write() as db:
            cursor = db.execute(
                "UPDATE runs SET lease = ?, lease_until = ?, updated_at = ? WHERE id = ? AND lease IS ?",
                [owner, now_iso(D.LEASE_TTL_S), now_iso(), run_id, expected_lease],
            )
            return cursor.rowcount == 1

    def renew(self, owner: str) -> int:
        """Extend every lease `owner` holds by LEASE_TTL_S; returns how many it holds."""
        with self.write() as db:
            cursor = db.execute(
                "UPDATE runs SET lease_until = ? WHERE lease = ?", [now_iso(D.LEASE_TTL_S), owner]
            )
            return cursor.rowcount

    def release(self, run_id: str, owner: str) -> None:
        with self.write() as db:
            db.execute(
                "UPDATE runs SET lease = NULL, lease_until = NULL WHERE id = ? AND lease = ?", [run_id, owner]
            )

    # --- reading --------------------------------------------------------------------------
    def runs(self, sql: str, args: list[Any] | tuple[Any, ...] = ()) -> list[Run]:
        """The runs a `SELECT * FROM runs …` finds, as records."""
        with self.db() as db:
            return [Run.from_row(row) for row in db.query(sql, list(args))]

    def get(self, run_id: str) -> Run | None:
        found = self.runs("SELECT * FROM runs WHERE id = ?", [run_id])
        return found[0] if found else None

    def get_many(self, run_ids: list[str]) -> list[Run]:
        if not run_ids:
            return []
        marks = ",".join("?" * len(run_ids))
        found = {r.id: r for r in self.runs(f"SELECT * FROM runs WHERE id IN ({marks})", run_ids)}
        return [found[i] for i in run_ids if i in found]

    def events(self, run_id: str) -> list[Event]:
        with self.db() as db:
            return [
                Event.model_validate(row)
                for row in db.query(
                    "SELECT at, status, detail FROM run_events WHERE run_id = ? ORDER BY id", [run_id]
                )
            ]

    def active(self) -> list[Run]:
        marks = ",".join("?" * len(ACTIVE))
        return self.runs(f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY seq", list(ACTIVE))

    def search(
        self,
        text: str | None = None,
        *,
        limit: int = 50,
        offset: int = 0,
        status: str | None = None,
        sweep_id: str | None = None,
        board_id: str | None = None,
        verdict: str | None = None,
        text_check: str | None = None,
        field: tuple[str, str] | None = None,
        sort: str = "newest",
    ) -> list[Run]:
        """Live runs matching every filter given; `text_check`, `field` ((path, words)) and `sort` are
        History's (TEXT_FILTERS, field_filter, SORTS in flux_core/ledger/history.py), checked by the caller."""
        from flux_core.ledger import history, reviews  # both write through this module

        order, applies_to = history.SORTS[sort]
        where, args = ["deleted_at IS NULL"], []
        if applies_to:
            where.append(applies_to)
        quoted = fts_query(text or "")
        if quoted:  # input with nothing searchable in it (e.g. a lone quote) filters nothing
            where.append("seq IN (SELECT rowid FROM runs_fts WHERE runs_fts MATCH ?)")
            args.append(quoted)
        if status:
            where.append("status = ?")
            args.append(status)
        if sweep_id:
            where.append("sweep_id = ?")
            args.append(sweep_id)
        if board_id:
            where.append("id IN (SELECT run_id FROM board_runs WHERE board_id = ?)")
            args.append(board_id)
        if verdict:
            where.append(reviews.filter_sql(verdict))
        if text_check:
            where.append(history.text_check_sql(text_check))
        with self.db() as db:
            if field:  # read as fields in Python: the function it calls lives on this connection
                field_where, field_args = history.field_sql(db, *field)
                where.append(field_where)
                args.extend(field_args)
            clause = "WHERE " + " AND ".join(where)
            found = db.query(
                f"SELECT * FROM runs {clause} ORDER BY {order} LIMIT ? OFFSET ?", [*args, limit, offset]
            )
            return [Run.from_row(row) for row in found]

    def completed_for(self, model: str, payload: dict[str, Any]) -> Run | None:
        """The newest COMPLETED run of exactly this request, if any."""
        found = self.runs(
            "SELECT * FROM runs WHERE request_hash = ? AND status = ? AND deleted_at IS NULL "
            "ORDER BY seq DESC LIMIT 1",
            [request_hash(model, payload), COMPLETED],
        )
        return found[0] if found else None

    def typical_duration(
        self, base_url: str, model: str | None = None, pixels: int | None = None, sample: int = 20
    ) -> float | None:
        """Median observed submit-to-completion time of recent runs on this server (of this model
        and number of pixels, when given)."""
        where = "base_url = ? AND status = ? AND observed_total_s IS NOT NULL"
        args: list[Any] = [base_url, COMPLETED]
        if model:
            where += " AND model = ?"
            args.append(model)
        if pixels:
            where += " AND width * height = ?"
            args.append(pixels)
        with self.db() as db:
            values = sorted(
                r["observed_total_s"]
                for r in db.query(
                    f"SELECT observed_total_s FROM runs WHERE {where} ORDER BY seq DESC LIMIT ?",
                    [*args, sample],
                )
            )
        return values[len(values) // 2] if values else None

    def learned_limit(self, key: str | None, base_url: str) -> tuple[int | None, int] | None:
        """What was learned of this key's rate limit at this server: (limit, confirmed)."""
        with self.db() as db:
            rows = list(
                db.query(
                    "SELECT limit_rpm, confirmed FROM key_limits WHERE key_id = ? AND base_url = ?",
                    [key or "", base_url],
                )
            )
        return (rows[0]["limit_rpm"], rows[0]["confirmed"]) if rows else None

    def keep_limit(self, key: str | None, base_url: str, limit: int | None, confirmed: int) -> None:
        with self.db() as db:
            db.table("key_limits").upsert(
                {
                    "key_id": key or "",
                    "base_url": base_url,
                    "limit_rpm": limit,
                    "confirmed": confirmed,
                    "updated_at": now_iso(),
                },
                pk=("key_id", "base_url"),
            )
