"""One request scheduler per (server, key) in the process: every run in flight, app and CLI alike.

It owns an asyncio loop in a daemon thread and drives each run's operations there (the very
generators the plain clients run), so the number of runs in flight is capped by nothing but the
budget. Three things are planned here rather than by each run on its own:

- **Slots.** Every request waits for a slot of its key's budget in one queue, by priority (a
  finished job's result first, then submits, request-history reads, status polls), and the queue is
  planned again whenever a reply comes back, so no request sleeps on a plan made before the facts.
- **Looks.** A waiting job is looked at when it is worth it. Its expected duration (from the ledger
  by model and size, else the FLUX.2 [max] prior) and the jobs submitted with it (a cohort) decide:
  before any of the cohort has finished only its first few (sentinels) are looked at, at an interval
  growing with their age; once one has finished, or the expected time is near, all of them are,
  densely. When requests are short the looks spread out.
- **The request history as a batched poll.** One read of the history (protocol 6b) shows every job
  of the key, so when several jobs wait one read looks at all of them, and a job it shows COMPLETED
  has its result fetched at once. Whether the history is timely is not documented, so it is
  checked, not assumed: it is used only while it lists the jobs in flight and never reports a
  completion later than a poll did; a job it does not list, and every job now and then, is polled
  directly. Otherwise the jobs are polled one by one as above.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import statistics
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from flux_core import defaults as D
from flux_core.errors import CallFailed
from flux_core.logs import logger
from flux_core.segmind.budget import Grant, RequestBudget
from flux_core.segmind.client import (
    Acquire,
    AsyncSegmindClient,
    Check,
    Observed,
    Offload,
    Ops,
    Sleep,
)
from flux_core.segmind.jobs import Job
from flux_core.segmind.records import RequestRecord
from flux_core.settings import Connection
from flux_core.settle import utc_now

log = logger(__name__)
ENDED = "ENDED"  # what a wait that stopped for any other reason says of its job


class _Gate:
    """The queue of requests waiting for slots of one budget, best priority first."""

    def __init__(self, budget: RequestBudget, loop: asyncio.AbstractEventLoop):
        self.budget, self.loop = budget, loop
        self.waiting: list[tuple[int, int, asyncio.Future]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        budget.subscribe(self._poke)

    def _poke(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.pump)
        except RuntimeError:  # the loop is closed: nothing waits any more
            pass

    async def acquire(self, priority: int) -> Grant:
        if not self.waiting:
            taken = self.budget.try_take()
            if isinstance(taken, Grant):
                return taken
        future: asyncio.Future = self.loop.create_future()
        heapq.heappush(self.waiting, (priority, next(self._order), future))
        self.pump()
        return await future

    def pump(self) -> None:
        while self.waiting:
            future = self.waiting[0][2]
            if future.done():
                heapq.heappop(self.waiting)
                continue
            taken = self.budget.try_take()
            if isinstance(taken, Grant):
                heapq.heappop(self.waiting)
                future.set_result(taken)
                continue
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_later(taken, self.pump)
            return

    def queued(self) -> int:
        return sum(1 for *_, f in self.waiting if not f.done())


@dataclass
class _Cohort:
    """Jobs of one expected duration submitted close together: they finish close together."""

    expected: float
    first_started: float
    known: bool = False  # the expected duration was measured, not a prior
    opened: bool = False  # one of its jobs has ended: all of them are looked at densely
    durations: list[float] = field(default_factory=list)
    members: list["_Watch"] = field(default_factory=list)  # still waiting, oldest first

    def estimate(self) -> float:
        return statistics.median(self.durations) if self.durations else self.expected


@dataclass
class _Watch:
    job: Job
    started: float
    cohort: _Cohort
    order: int
    waiter: asyncio.Future | None = None
    next_at: float = 0.0
    listed_at: float | None = None  # the last history read that listed it
    polled_at: float = 0.0  # the last direct poll


class Scheduler:
    """See the module's text. Made by `scheduler_for`; lives as long as the process."""

    def __init__(
        self,
        connection: Connection,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        instant: bool = False,
    ):
        """`instant`: waits (backoff, settling pauses) take no time; for tests that inject a transport."""
        self.connection = connection
        self.instant = instant
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="flux-scheduler", daemon=True)
        self._thread.start()
        self.client = _PlannedClient(self, connection=connection, transport=transport)
        self._clock = time.monotonic
        self._gates: dict[int, _Gate] = {}
        self._watches: dict[str, _Watch] = {}
        self._cohorts: list[_Cohort] = []
        self._order = itertools.count()
        self._wake: asyncio.Event | None = None
        self._planner: asyncio.Task | None = None
        self._reading = False  # a history read is in flight
        self._waiting = 0  # jobs waiting on a look
        self.history_mode = "trial"  # "live" once it lists jobs in flight; "off" when it cannot serve
        self._history_misses = 0
        self._history_off_until = 0.0
        self._polled_done: dict[str, float] = {}  # request id -> when a poll found it finished
        self.stats = {"history_reads": 0, "direct_looks": 0, "history_finds": 0}
        self.users = 0  # runners holding it (scheduler_for counts them; release lets go)
        self.slot: tuple[str, str, int, bool] | None = None

    def release(self) -> None:
        """A runner is done with it. The last one out closes its connections and stops its loop
        (runs still in flight with it are cancelled: they stay as the ledger has them)."""
        with _registry_lock:
            self.users -= 1
            if self.users > 0:
                return
            if self.slot is not None and _registry.get(self.slot) is self:
                del _registry[self.slot]
        if threading.current_thread() is self._thread:  # from its own loop: close when it can
            self.loop.create_task(self._close())
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=D.SCHEDULER_CLOSE_S)
        except Exception:  # a connection that would not close in time: the process ends it
            log.warning("the request scheduler did not close cleanly", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(D.SCHEDULER_CLOSE_S)
        if not self._thread.is_alive():
            self.loop.close()

    async def _close(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks(self.loop) if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.client.aclose()

    # --- running operations -------------------------------------------------------------------
    def spawn(self, ops: Ops) -> Future:
        """Drive one operation (a run, say) on the loop; its outcome in a concurrent Future."""
        return asyncio.run_coroutine_threadsafe(self.client._run(ops), self.loop)

    def gate(self, budget: RequestBudget) -> _Gate:
        gate = self._gates.get(id(budget))
        if gate is None:
            gate = self._gates[id(budget)] = _Gate(budget, self.loop)
        return gate

    async def effect(self, effect: Any) -> Any:
        if isinstance(effect, Acquire):
            return await self.gate(effect.budget).acquire(effect.priority)
        if isinstance(effect, Check):
            return await self._check(effect)
        if isinstance(effect, Observed):
            self._observed(effect)
            return None
        if isinstance(effect, Offload):
            return await asyncio.to_thread(effect.fn, *effect.args)
        if isinstance(effect, Sleep):
            await asyncio.sleep(0 if self.instant else max(0.0, effect.seconds))
            return None
        raise TypeError(f"unknown effect {effect!r}")

    # --- looks ----------------------------------------------------------------------------------
    async def _check(self, check: Check) -> RequestRecord | None:
        job = check.job
        watch = self._watches.get(job.request_id)
        if watch is None:
            watch = _Watch(job, check.started, self._cohort(check), next(self._order))
            self._watches[job.request_id] = watch
            watch.cohort.members.append(watch)
            watch.next_at = self._next_look(watch, self._clock())
        watch.waiter = self.loop.create_future()
        self._waiting += 1
        self._kick()
        try:
            return await watch.waiter
        except asyncio.CancelledError:  # its run stopped: no more looks at it
            self._forget(watch)
            raise
        finally:
            watch.waiter = None
            self._waiting -= 1

    def _forget(self, watch: _Watch) -> None:
        self._watches.pop(watch.job.request_id, None)
        if watch in watch.cohort.members:
            watch.cohort.members.remove(watch)

    def _cohort(self, check: Check) -> _Cohort:
        expected = check.expected_s or D.EXPECTED_MAX_S
        for cohort in self._cohorts:
            if (
                abs(cohort.expected - expected) <= 0.05 * expected
                and 0 <= check.started - cohort.first_started <= D.COHORT_SPAN_S
            ):
                return cohort
        cohort = _Cohort(expected, check.started, check.expected_known)
        self._cohorts = [c for c in self._cohorts if self._live(c)] + [cohort]
        return cohort

    def _live(self, cohort: _Cohort) -> bool:
        return bool(cohort.members)

    def _observed(self, seen: Observed) -> None:
        watch = self._watches.get(seen.job.request_id)
        now = self._clock()
        terminal = seen.state in ("COMPLETED", "FAILED", "CANCELLED", "CANCELED", "ERROR", ENDED)
        if seen.hint is not None and seen.hint.status == "COMPLETED" and seen.state != "COMPLETED":
            self._history_unfit(
                f"it showed request {seen.job.request_id} COMPLETED while its status said {seen.state}"
            )
        if watch is None:
            return
        if seen.hint is None:
            watch.polled_at = now
        if terminal:
            if seen.state == "COMPLETED":
                watch.cohort.durations.append(now - watch.started)
                if seen.hint is None:
                    self._polled_done[seen.job.request_id] = now
            # one of them has ended (finished, failed, or gone from the server): the rest may have
            # too, so the cohort's window is open and every one of them is looked at soon
            watch.cohort.opened = True
            for other in watch.cohort.members:
                if other is not watch:
                    other.next_at = min(other.next_at, now + self._dense(other))
            self._forget(watch)
        else:
            watch.next_at = self._next_look(watch, now)
        self._kick()

    def _dense(self, watch: _Watch) -> float:
        """The interval between looks at a job whose finish is near, for what a look costs now."""
        expected = watch.cohort.estimate()
        budget = self.client.budget
        floor = self._floor()
        interval = min(D.LOOK_DENSE_MAX_S, max(floor, D.LOOK_DENSE_FRACTION * expected))
        waiting = max(1, self._waiting + (watch.waiter is None))
        if self.history_mode != "off" and waiting >= 2:
            # one read looks at them all: by the square-root law a look that costs 1/n of a
            # request is worth taking sqrt(n) times as often
            interval /= min(D.LOOK_BATCH_GAIN_MAX, waiting**0.5)
        if budget.scarce() and budget.limit:
            lookers = 1 if self.history_mode != "off" else max(1, waiting)
            interval = max(interval, 2 * lookers * budget.window_s / budget.limit)
        return max(D.LOOK_MIN_S, interval)

    def _floor(self) -> float:
        """The shortest interval between looks: shorter when the server was declared to have no
        limit (SEGMIND_RPM=0, the embedded emulator), where a request costs nothing."""
        budget = self.client.budget
        return D.LOOK_MIN_S if budget.forced and budget.limit is None else D.LOOK_DENSE_MIN_S

    def _next_look(self, watch: _Watch, now: float) -> float:
        elapsed = now - watch.started
        cohort = watch.cohort
        expected = cohort.estimate()
        if cohort.opened or elapsed >= D.LOOK_WINDOW_FRACTION * expected:
            return now + self._dense(watch)
        opening = watch.started + D.LOOK_WINDOW_FRACTION * expected
        sentinel = any(w is watch for w in cohort.members[: D.SENTINELS])
        budget = self.client.budget
        if not sentinel or budget.scarce():
            return opening
        # a measured expectation is trusted more than the prior: fewer looks before its window
        growth = D.LOOK_SENTINEL_GROWTH_KNOWN if cohort.known else D.LOOK_SENTINEL_GROWTH
        growing = min(D.LOOK_SENTINEL_MAX_S, max(self._floor(), growth * elapsed))
        return min(opening, now + growing)

    def _kick(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._planner is None or self._planner.done():
            self._planner = self.loop.create_task(self._plan())

    async def _plan(self) -> None:
        """Release each job whose look is due: all of them by one history read when that serves,
        else each by a poll of its own."""
        assert self._wake is not None
        while self._watches:
            self._wake.clear()
            now = self._clock()
            waiting = [w for w in self._watches.values() if w.waiter is not None and not w.waiter.done()]
            due = [w for w in waiting if w.next_at <= now]
            if due:
                self._look(due, waiting, now)
            upcoming = [w.next_at for w in waiting if w.next_at > now]
            timeout = max(0.0, min(upcoming) - now) if upcoming else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def _look(self, due: list[_Watch], waiting: list[_Watch], now: float) -> None:
        by_history = self._history_usable(now) and len(waiting) >= 2
        direct = []
        for watch in due:
            # the history looks at a job only while it is new or the last read listed it
            unlisted = now - watch.started > D.HISTORY_SHOWS_WITHIN_S and (
                watch.listed_at is None or now - watch.listed_at > D.HISTORY_SHOWS_WITHIN_S
            )
            stale = now - max(watch.polled_at, watch.started) > D.LOOK_BACKSTOP_S
            if not by_history or unlisted or stale:
                direct.append(watch)
        for watch in direct:  # its own poll: the run's operation sends it
            watch.next_at = float("inf")
            self.stats["direct_looks"] += 1
            assert watch.waiter is not None
            watch.waiter.set_result(None)
        if by_history and len(direct) < len(due):
            chosen = {id(w) for w in direct}
            for watch in due if self._reading else waiting:
                if id(watch) not in chosen:
                    watch.next_at = float("inf")  # the read (in flight, or made now) looks at it
            if not self._reading:
                self._reading = True
                self.loop.create_task(self._read_history())

    def _history_usable(self, now: float) -> bool:
        if self.history_mode == "off" and now >= self._history_off_until:
            self.history_mode, self._history_misses = "trial", 0
        return self.history_mode != "off"

    def _history_unfit(self, why: str) -> None:
        if self.history_mode != "off":
            log.info("request history not used as a poll for %.0f s: %s", D.HISTORY_RETRY_S, why)
        self.history_mode = "off"
        self._history_off_until = self._clock() + D.HISTORY_RETRY_S

    async def _read_history(self) -> None:
        started = self._clock()
        ids = set(self._watches)
        found: dict[str, RequestRecord] = {}
        try:
            oldest = started - min((w.started for w in self._watches.values()), default=started)
            day = utc_now().date()
            span = (day - timedelta(days=1), day + timedelta(days=1))
            for page in range(1, D.LOOK_HISTORY_MAX_PAGES + 1):
                listed = await self.client._run(
                    self.client.history_ops(
                        page=page, per_page=D.HISTORY_PER_PAGE_MAX, from_date=span[0], to_date=span[1]
                    )
                )
                self.stats["history_reads"] += 1
                for record in listed.records:
                    if record.request_id in ids or record.request_id in self._polled_done:
                        found[record.request_id] = record
                if not listed.has_more or ids <= set(found) or not listed.records:
                    break
                made = [r.created_at for r in listed.records if r.created_at is not None]
                if made and (utc_now() - min(made)).total_seconds() > oldest + D.SETTLE_CLOCK_SKEW_S:
                    break  # newest first: this page is older than every job in flight
        except CallFailed as exc:
            self._history_misses += 1
            if not exc.retryable or self._history_misses >= D.HISTORY_MISSES_MAX:
                self._history_unfit(exc.message)
        except Exception:
            log.warning("reading the request history as a poll failed", exc_info=True)
            self._history_unfit("an unreadable reply")
        finally:
            self._reading = False
        self._learn_history(found, started)
        now = self._clock()
        for request_id, watch in list(self._watches.items()):
            record = found.get(request_id)
            if record is not None:
                watch.listed_at = started
            if watch.waiter is None or watch.waiter.done():
                continue
            if record is not None and record.status in ("COMPLETED", "FAILED") and self.history_mode != "off":
                self.stats["history_finds"] += 1
                watch.next_at = float("inf")
                watch.waiter.set_result(record)
            elif watch.next_at == float("inf"):
                watch.next_at = self._next_look(watch, now)
        self._kick()

    def _learn_history(self, found: dict[str, RequestRecord], started: float) -> None:
        for request_id, moment in list(self._polled_done.items()):
            record = found.get(request_id)
            if (
                record is not None
                and record.status not in ("COMPLETED", "FAILED")
                and started - moment > D.HISTORY_MAX_LAG_S
            ):
                self._history_unfit(
                    f"it still showed request {request_id} pending {started - moment:.1f} s after a poll found it finished"
                )
            if started - moment > D.HISTORY_SHOWS_WITHIN_S or record is not None:
                self._polled_done.pop(request_id, None)
        if self.history_mode == "off":
            return
        old = [w for w in self._watches.values() if started - w.started > D.HISTORY_SHOWS_WITHIN_S]
        if any(request_id in found for request_id in self._watches):
            self.history_mode, self._history_misses = "live", 0
        elif old:
            self._history_misses += 1
            if self._history_misses >= D.HISTORY_MISSES_MAX:
                self._history_unfit("it does not list the requests in flight")


class _PlannedClient(AsyncSegmindClient):
    """The async client whose effects the scheduler carries out."""

    def __init__(self, scheduler: Scheduler, **kwargs: Any):
        super().__init__(**kwargs)
        self.scheduler = scheduler

    async def effect(self, effect: Any) -> Any:
        return await self.scheduler.effect(effect)


_registry: dict[tuple[str, str, int, bool], Scheduler] = {}
_registry_lock = threading.Lock()


def scheduler_for(
    connection: Connection, transport: httpx.AsyncBaseTransport | None = None, *, instant: bool = False
) -> Scheduler:
    """The process's scheduler for one server and key (and transport, for tests that inject one)."""
    digest = hashlib.sha256((connection.api_key or "").encode()).hexdigest()
    slot = (connection.base_url, digest, id(transport), instant)
    with _registry_lock:
        scheduler = _registry.get(slot)
        if scheduler is None or scheduler.connection != connection:
            scheduler = _registry[slot] = Scheduler(connection, transport, instant=instant)
            scheduler.slot = slot
        scheduler.users += 1
        return scheduler
