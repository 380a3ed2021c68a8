"""The ledger's change feed: one watcher per ledger file in a process notices every committed change,
whoever made it (this server, another server, the CLI: they all write the same SQLite file), and wakes
whoever waits for one. The app's pages listen on it (flux_ui/live.py, through serving.py's
``/_flux/changes`` route) instead of reading the ledger on a timer.

How a change is noticed: SQLite's ``PRAGMA data_version`` on a connection changes whenever another
connection has committed to the database file, from any process; reading it on one idle connection
reads no table and costs a few microseconds. One thread per ledger looks every ``CHANGES_LOOK_S``, however
many tabs listen, and a runner of this process pokes it the moment a run changes (``poke``), so a
stored image is announced at once rather than at the next look. A poke is a look, not a change of its
own: a commit is announced once, whether a poke or the timer found it first.

The version grows with each change noticed and is never smaller than the clock in microseconds, so a
page that outlived a server restart sees the new server's versions as newer than any it has.

The watcher stops after ``CHANGES_IDLE_S`` with nobody asking, and starts again when asked, counting
the pause as a change (it cannot know what happened meanwhile): a test process that opens hundreds of
ledgers is not left with hundreds of threads.

Topics: most commits are of no interest to a given part of a page (a lease renewed, another run's
check, a preset saved), and a part drawn again for nothing costs the server a script run and can
swallow a click made meanwhile. A part that says what it shows names a topic (``runs:<id>,<id>``,
``recent:<n>``, ``sweep:<id>``) and the ``digest`` of that topic as it read it; the digest is a hash of
the rows' ``updated_at`` (every change to a run moves it; a lease renewal does not) and of their
checks, verdicts and comments, so it differs exactly when something the part draws may have changed.
A digest is computed once per version and topic, however many tabs ask (``digests``).
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from flux_core import defaults as D

_feeds: dict[str, "Feed"] = {}
_feeds_lock = threading.Lock()
_closing = threading.Event()  # the server is shutting down: nobody waits on a feed any more


def _clock_us() -> int:
    return time.time_ns() // 1000


def _settle(future: asyncio.Future, version: int) -> None:
    if not future.done():
        future.set_result(version)


RUNS = "runs"  # runs:<id>,<id>,…  those runs, their checks, verdicts and comments
RECENT = "recent"  # recent:<n>  the ledger's newest n runs not deleted
SWEEP = "sweep"  # sweep:<id>  a sweep, its cells' runs, their checks, verdicts and comments
SWEEPS = "sweeps"  # sweeps:<n>  the newest n sweeps and their runs
_ID_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-")


def topic(kind: str, *ids: str | int) -> str:
    """A topic's name: ``topic(RUNS, a, b)`` is ``runs:a,b``."""
    return f"{kind}:{','.join(str(i) for i in ids)}"


def _parts(name: str) -> tuple[str, list[str]] | None:
    kind, _, rest = name.partition(":")
    ids = [i for i in rest.split(",") if i]
    if kind not in (RUNS, RECENT, SWEEP, SWEEPS) or len(ids) > D.LIVE_TOPIC_MAX_IDS:
        return None
    if not all(set(i) <= _ID_CHARS for i in ids):
        return None
    if kind in (RECENT, SWEEPS) and (len(ids) != 1 or not ids[0].isdigit()):
        return None
    if kind == SWEEP and len(ids) != 1:
        return None
    return kind, ids


def _marks(conn: sqlite3.Connection, run_sql: str, args: list[str]) -> list[tuple]:
    """What moves when anything shown of the runs `run_sql` selects (their ids) changes."""
    rows: list[tuple] = []
    rows += conn.execute(
        f"SELECT id, updated_at, deleted_at FROM runs WHERE id IN ({run_sql})", args
    ).fetchall()
    for table, columns in (
        ("checks", "run_id, name, computed_at"),
        ("verdicts", "run_id, reviewer, verdict, at"),
        ("comments", "run_id, id, at, deleted_at"),
    ):
        try:
            rows += conn.execute(
                f"SELECT {columns} FROM {table} WHERE run_id IN ({run_sql})", args
            ).fetchall()
        except sqlite3.OperationalError:  # a ledger from before that table
            continue
    return sorted(rows, key=repr)


def _sweep_rows(conn: sqlite3.Connection, sweep_sql: str, args: list[str]) -> list[tuple]:
    """A sweep's own rows (its name, its cells, its votes, its hunt) and its cells' runs' marks."""
    rows: list[tuple] = []
    for table in ("sweeps", "sweep_cells", "votes", "hunts", "hunt_results"):
        column = "id" if table == "sweeps" else "sweep_id"
        try:
            rows += [
                tuple(r) for r in conn.execute(f"SELECT * FROM {table} WHERE {column} IN ({sweep_sql})", args)
            ]
        except sqlite3.OperationalError:  # a ledger from before that table
            continue
    rows.sort(key=repr)
    return rows + _marks(conn, f"SELECT run_id FROM sweep_cells WHERE sweep_id IN ({sweep_sql})", args)


def digest(conn: sqlite3.Connection, name: str) -> str | None:
    """The digest of a topic as the ledger holds it now; None for a name that is no topic (the part
    is then told of every change)."""
    parts = _parts(name)
    if parts is None:
        return None
    kind, ids = parts
    rows: list[tuple] = []
    if kind == RUNS:
        rows = _marks(conn, ",".join("?" * len(ids)), ids)
    elif kind == RECENT:
        chosen = "SELECT id FROM runs WHERE deleted_at IS NULL ORDER BY seq DESC LIMIT ?"
        rows = [tuple(r) for r in conn.execute(chosen.replace("SELECT id", "SELECT id, updated_at"), ids)]
    elif kind == SWEEP:
        rows = _sweep_rows(conn, "?", ids)
    elif kind == SWEEPS:
        rows = _sweep_rows(conn, "SELECT id FROM sweeps ORDER BY id DESC LIMIT ?", ids)
    return hashlib.sha1(repr(rows).encode()).hexdigest()[:16]


def digest_now(path: str | Path, name: str) -> str | None:
    """A topic's digest read from the ledger at `path` now (no feed, no watcher: any process)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        return digest(conn, name)
    except sqlite3.Error:
        return None
    finally:
        conn.close()


class Feed:
    """The change feed of one ledger file: ``version``, ``wait`` (a thread), ``next`` (a coroutine),
    and the ``digests`` of topics."""

    def __init__(self, path: str | Path, look_s: float = D.CHANGES_LOOK_S, idle_s: float = D.CHANGES_IDLE_S):
        self.path = Path(path)
        self.look_s = look_s
        self.idle_s = idle_s
        self.looks = 0  # how many times the watcher read data_version (a test counts them)
        self._cond = threading.Condition()
        self._version = _clock_us()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = set()
        self._poked = threading.Event()
        self._stopped = False
        self._asked = time.monotonic()
        self._thread: threading.Thread | None = None
        self._watched = False  # a watcher ran before: starting one again is after a pause
        self._blocked = 0  # threads in `wait`
        self._reader: sqlite3.Connection | None = None  # for digests, under _read_lock
        self._read_lock = threading.Lock()
        self._digests: tuple[int, dict[str, str | None]] = (0, {})  # (version, topic -> digest)
        self._watch()

    @property
    def version(self) -> int:
        """The latest version (and the watcher kept going: someone is asking)."""
        self._watch()
        with self._cond:
            return self._version

    def poke(self) -> None:
        """Look at the ledger now (a runner of this process just committed a change)."""
        self._poked.set()

    def wait(self, since: int, timeout: float) -> int:
        """Block until the version is past `since`, at most `timeout` seconds; the version then."""
        self._watch()
        with self._cond:
            self._blocked += 1
            try:
                self._cond.wait_for(lambda: self._version > since or self._stopped, timeout)
            finally:
                self._blocked -= 1
            return self._version

    async def next(self, since: int, timeout: float) -> int:
        """`wait` for an asyncio loop (a server route): no thread is held while it waits."""
        self._watch()
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._version > since or _closing.is_set():
                return self._version
            entry = (loop, loop.create_future())
            self._waiters.add(entry)
        try:
            return await asyncio.wait_for(entry[1], timeout)
        except TimeoutError:
            return self.version
        finally:
            with self._cond:
                self._waiters.discard(entry)

    def digests(self, topics: Iterable[str]) -> tuple[int, dict[str, str | None]]:
        """(version, each topic's digest) as the ledger is now, each computed at most once a version
        (read the version first: a digest taken after a commit the watcher has not yet noticed is
        newer than its version, never older, so a part is told again rather than missing a change)."""
        version = self.version
        wanted = list(dict.fromkeys(topics))
        with self._read_lock:
            seen_at, known = self._digests
            if seen_at != version:
                known = {}
            missing = [t for t in wanted if t not in known]
            if missing:
                try:
                    if self._reader is None:
                        self._reader = sqlite3.connect(
                            f"file:{self.path}?mode=ro", uri=True, check_same_thread=False
                        )
                    for name in missing:
                        known[name] = digest(self._reader, name)
                except sqlite3.Error:  # not there yet, or busy: no digest (told of every change)
                    if self._reader is not None:
                        self._reader.close()
                        self._reader = None
                    for name in missing:
                        known.setdefault(name, None)
                if len(known) > D.LIVE_DIGESTS_KEPT:
                    known = {t: known[t] for t in wanted}
                self._digests = (version, known)
            return version, {t: known[t] for t in wanted}

    async def next_for(
        self, since: int, wanted: dict[str, str], timeout: float, anything: bool
    ) -> tuple[int, dict[str, str | None]]:
        """Wait until one of the `wanted` topics' digests differs from the one given (at once if it
        already does: a part drawn from a read older than the last change), or, with `anything`,
        until the version is past `since`; at most `timeout` seconds. (version, current digests)."""
        deadline = time.monotonic() + timeout
        anything = anything or not wanted  # no topic: any change is news
        while True:
            version, now = self.digests(wanted) if wanted else (self.version, {})
            if any(now[t] != d for t, d in wanted.items()) or (anything and version > since):
                return version, now
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return version, now
            start = since if anything else version
            if _closing.is_set():  # the server is going: answer now, the page asks again later
                return version, now
            if await self.next(start, remaining) <= start:  # timed out with no change
                return self.digests(wanted) if wanted else (self.version, {})

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._poked.set()

    # --- the watcher ---------------------------------------------------------------------------
    def _changed(self) -> None:
        with self._cond:
            self._version = max(self._version + 1, _clock_us())
            version = self._version
            waiters = list(self._waiters)
            self._waiters.clear()
            self._cond.notify_all()
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_settle, future, version)
            except RuntimeError:  # that loop is closed: its waiter is gone
                continue

    def _watch(self) -> None:
        """Note that someone asked, and start the watcher if it is not running."""
        with self._cond:
            self._asked = time.monotonic()
            if self._thread is not None or self._stopped:
                return
            restarted, self._watched = self._watched, True
            # the first look is taken here, before anyone reads the ledger: a commit made right
            # after the feed was asked for is a change the watcher notices
            conn, last = self._look(None)
            self._thread = threading.Thread(
                target=self._run, args=(conn, last), name="flux-changes", daemon=True
            )
            self._thread.start()
        if restarted:  # nobody watched for a while: whatever happened then is a change
            self._changed()

    def _idle(self) -> bool:
        with self._cond:
            if self._waiters or self._blocked or time.monotonic() - self._asked < self.idle_s:
                return False
            self._thread = None
            return True

    def _look(self, conn: sqlite3.Connection | None) -> tuple[sqlite3.Connection | None, int | None]:
        """Read PRAGMA data_version (a connection, made if need be; None and None if the ledger is not
        there yet or busy: look again next time)."""
        self.looks += 1
        try:
            if conn is None:  # read only, and never creating a ledger that is not there
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            return conn, conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            if conn is not None:
                conn.close()
            return None, None

    def _run(self, conn: sqlite3.Connection | None, last: int | None) -> None:
        try:
            while not self._stopped and not self._idle():
                self._poked.wait(self.look_s)
                self._poked.clear()
                conn, seen = self._look(conn)
                if seen is not None and last is not None and seen != last:
                    self._changed()
                if seen is not None:
                    last = seen
        finally:
            if conn is not None:
                conn.close()


def closing() -> bool:
    """Whether the server is shutting down (``close_all`` was called)."""
    return _closing.is_set()


def close_all() -> None:
    """The server is shutting down: every long poll waiting on a feed is answered now (it would
    otherwise hold the shutdown for up to LIVE_WAIT_S), and none waits from here on."""
    _closing.set()
    with _feeds_lock:
        found = list(_feeds.values())
    for one in found:
        with one._cond:
            waiters = list(one._waiters)
            one._waiters.clear()
            version = one._version
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_settle, future, version)
            except RuntimeError:
                continue


def stop_all() -> None:
    """Stop every feed's watcher and forget the feeds: a process done with its ledgers (the test
    suite, between tests: each test's ledger would otherwise be read ten times a second for a
    minute after the test). A feed asked for again afterwards is a new one."""
    with _feeds_lock:
        found = list(_feeds.values())
        _feeds.clear()
    for one in found:
        one.stop()


def feed(path: str | Path) -> Feed:
    """The change feed of the ledger at `path`, one per process (made when first asked for)."""
    key = str(Path(path).resolve())
    with _feeds_lock:
        found = _feeds.get(key)
        if found is None:
            found = _feeds[key] = Feed(key)
        return found


def poke(path: str | Path) -> None:
    """Tell the feed of the ledger at `path` to look now, if this process has one (the CLI has none)."""
    found = _feeds.get(str(Path(path).resolve()))
    if found is not None:
        found.poke()
