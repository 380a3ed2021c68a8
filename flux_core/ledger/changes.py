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
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from flux_core import defaults as D

_feeds: dict[str, "Feed"] = {}
_feeds_lock = threading.Lock()


def _clock_us() -> int:
    return time.time_ns() // 1000


def _settle(future: asyncio.Future, version: int) -> None:
    if not future.done():
        future.set_result(version)


class Feed:
    """The change feed of one ledger file: ``version``, ``wait`` (a thread), ``next`` (a coroutine)."""

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
            if self._version > since:
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
            self._thread = threading.Thread(target=self._run, name="flux-changes", daemon=True)
            self._thread.start()
        if restarted:  # nobody watched for a while: whatever happened then is a change
            self._changed()

    def _idle(self) -> bool:
        with self._cond:
            if self._waiters or self._blocked or time.monotonic() - self._asked < self.idle_s:
                return False
            self._thread = None
            return True

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        last: int | None = None
        try:
            while not self._stopped and not self._idle():
                try:
                    if conn is None:  # read only, and never creating a ledger that is not there
                        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
                    seen = conn.execute("PRAGMA data_version").fetchone()[0]
                except sqlite3.Error:  # not there yet, or busy: look again next time
                    if conn is not None:
                        conn.close()
                        conn = None
                    seen = None
                self.looks += 1
                if seen is not None and last is not None and seen != last:
                    self._changed()
                if seen is not None:
                    last = seen
                self._poked.wait(self.look_s)
                self._poked.clear()
        finally:
            if conn is not None:
                conn.close()


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
