"""The job runner: drives runs from CREATED to a final state, many at once, and picks up again.

One Runner per process (the Streamlit server holds one in `st.cache_resource`; the CLI makes its
own). Every step is written to the ledger as it happens, so whatever process comes next can
finish what this one started: `resume()` takes over the runs whose owner is gone.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import threading
import time
from collections import deque
from concurrent.futures import CancelledError, Future, wait as wait_futures
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from flux_core import defaults as D
from flux_core.media import images
from flux_core.ledger import store
from flux_core.ledger.records import Run
from flux_core.segmind.client import Offload, Ops, SegmindClient, Sleep
from flux_core.segmind.scheduler import scheduler_for
from flux_core.errors import (
    STAYS_OPEN,
    AuthError,
    CallFailed,
    IllegalTransition,
    JobExpired,
    JobFailed,
    JobTimedOut,
    LedgerError,
    NetworkError,
    OutputUnusable,
    SubmitServerError,
    SubmitUnknown,
    failure_from_body,
    join,
)
from flux_core import settle
from flux_core.segmind.jobs import Job, Outcome
from flux_core.segmind.records import RequestRecord
from flux_core.segmind.retry import retry_delay
from flux_core.settings import settle_5xx_wait_s, settle_grace_s
from flux_core.logs import logger
from flux_core.params import FluxParams
from flux_core.ledger.store import Admit, Ledger, parse_iso, storage_error

log = logger(__name__)
_live_owners: set[str] = set()
_HOST = socket.gethostname()
WAITING_FOR_KEY = "waiting_key"
WAITING_FOR_KEY_TEXT = (
    "Submitted with an API key this server does not have now (one typed into a browser session). "
    "Enter the same key in the sidebar to finish it; no other key is ever used for it."
)

UpdateCallback = Callable[[Run], None]


def _owner_alive(row: Run) -> bool:
    """Is the process named in a run's lease still driving it? A lease holds until it lapses (its
    owner renews it every LEASE_RENEW_S while it lives); on this host a lease whose process is gone
    is free at once. So another host's lease (a second container on the same volume) is respected,
    and a pid reused by an unrelated process cannot strand a run past the lease's expiry."""
    lease = row.lease
    if not lease:
        return False
    if lease in _live_owners:
        return True
    until = parse_iso(row.lease_until)
    unexpired = until is None or until > datetime.now(timezone.utc)  # None: a lease from before 0005
    host, _, rest = lease.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != _HOST or not pid_text.isdigit():
        return until is not None and unexpired
    if int(pid_text) == os.getpid():
        return False  # this process, but a runner that has shut down
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return unexpired


def lease_alive(lease: str | None, lease_until: str | None) -> bool:
    """Whether the process a lease names (another row's: a seed hunt's) still holds it, by the same
    rule as a run's lease."""
    return _owner_alive(Run.model_construct(lease=lease, lease_until=lease_until))


class _LeaseLost(Exception):
    """Another process took this run over (our lease lapsed): stop driving it, write nothing."""


def _moment(iso: str | None) -> datetime:
    return parse_iso(iso) or datetime.now(timezone.utc)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _seconds_since(iso: str | None) -> float:
    moment = parse_iso(iso)
    return (datetime.now(timezone.utc) - moment).total_seconds() if moment else 0.0


class Runner:
    def __init__(
        self,
        ledger: Ledger,
        data_dir: Path,
        client: SegmindClient,
        *,
        backend: str = "segmind",
        concurrency: int | None = None,
        on_update: UpdateCallback | None = None,
        on_idle: Callable[[], None] | None = None,
        expected_s: float | None = None,
    ):
        """`concurrency`: at most this many runs in flight (None: as many as the budget allows; the
        key's scheduler plans their requests). `on_idle`: called when the last run in flight here
        has landed (the background checker goes on then). `expected_s`: how long a job takes until the ledger
        knows (default: the FLUX.2 [max] prior; the embedded emulator's own latency for it)."""
        self._prior_s = expected_s or D.EXPECTED_MAX_S
        self._prior_known = expected_s is not None
        self.ledger = ledger
        self.data_dir = Path(data_dir)
        self.client = client
        self.backend = backend
        self.on_update = on_update
        self._on_idle = on_idle
        self.owner = f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        self.key_id = store.key_id(client.connection.api_key)
        _live_owners.add(self.owner)
        self._scheduler = scheduler_for(client.connection, client.async_transport(), instant=client.instant)
        self._cap = concurrency
        self._released = False
        self._queued: deque[str] = deque()  # runs waiting for a place under the cap
        self._driving: dict[str, Future] = {}  # the scheduler's futures of the runs in flight
        self._futures: dict[str, Future] = {}
        # (model, pixels) -> (expected seconds, when read, measured rather than the prior)
        self._expected: dict[tuple[str, int], tuple[float, float, bool]] = {}
        self._problems: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._renewer = threading.Thread(target=self._renew_leases, name="flux-lease", daemon=True)
        self._renewer.start()
        budget = client.budget
        if not budget.forced and budget.on_learn is None:
            learned = ledger.learned_limit(self.key_id, client.base_url)
            if learned is not None:
                budget.adopt(learned)
            budget.on_learn = lambda b: ledger.keep_limit(self.key_id, client.base_url, b.limit, b.confirmed)

    # --- starting work ---------------------------------------------------------------------
    def enqueue(
        self,
        params: FluxParams,
        *,
        seed_random: bool = False,
        sweep_id: str | None = None,
        created_by: str = "",
        admit: Admit | None = None,
        came_from: tuple[str, str] | None = None,
    ) -> str:
        """Write the run down (CREATED), then drive it in the background. Returns its id."""
        return self.enqueue_many(
            [params],
            seed_random=seed_random,
            sweep_id=sweep_id,
            created_by=created_by,
            admit=admit,
            came_from=came_from,
        )[0]

    def enqueue_many(
        self,
        batch: list[FluxParams],
        *,
        seed_random: bool = False,
        sweep_id: str | None = None,
        created_by: str = "",
        admit: Admit | None = None,
        came_from: tuple[str, str] | None = None,
    ) -> list[str]:
        """Write every run of `batch` down (CREATED) in one transaction, after `admit` let them in
        (see Ledger.create_runs), then drive them in the background. Returns their ids."""
        run_ids = self.ledger.create_runs(
            batch,
            backend=self.backend,
            base_url=self.client.base_url,
            seed_random=seed_random,
            sweep_id=sweep_id,
            lease=self.owner,
            key=self.client.connection.api_key,
            created_by=created_by,
            admit=admit,
            came_from=came_from,
        )
        for run_id in run_ids:
            self._schedule(run_id)
        return run_ids

    def start_sweep(
        self,
        base: dict[str, Any],
        axes: Any,
        cells: list[tuple[Any, FluxParams | str, bool]],
        name: str = "",
        *,
        created_by: str = "",
        admit: Admit | None = None,
        came_from: tuple[str, str] | None = None,
    ) -> tuple[str, list[str]]:
        """Write a sweep with all its cells and new runs in one transaction, then drive the runs."""
        sweep_id, run_ids = self.ledger.create_sweep(
            base,
            axes,
            name,
            cells=cells,
            backend=self.backend,
            base_url=self.client.base_url,
            lease=self.owner,
            key=self.client.connection.api_key,
            created_by=created_by,
            admit=admit,
            came_from=came_from,
        )
        for run_id in run_ids:
            self._schedule(run_id)
        return sweep_id, run_ids

    def extend_sweep(
        self,
        sweep_id: str,
        axes: Any,
        cells: list[tuple[Any, FluxParams]],
        *,
        created_by: str = "",
        admit: Admit | None = None,
    ) -> list[str]:
        """Add cells (new runs) to a saved sweep in one transaction, then drive the runs."""
        run_ids = self.ledger.extend_sweep(
            sweep_id,
            axes,
            cells,
            backend=self.backend,
            base_url=self.client.base_url,
            lease=self.owner,
            key=self.client.connection.api_key,
            created_by=created_by,
            admit=admit,
        )
        for run_id in run_ids:
            self._schedule(run_id)
        return run_ids

    def resume(self) -> list[str]:
        """Take over every unfinished run of this server and this key whose owner is gone; returns
        their ids. A run submitted with another key is never driven with this one: it waits for
        its own key (and says so), or expires once Segmind's retention is over."""
        taken = []
        for row in self.ledger.active():
            if row.base_url != self.client.base_url or _owner_alive(row):
                continue
            if row.key_id not in (None, self.key_id):
                self._note_waiting_for_key(row)
                continue
            if not self.ledger.claim(row.id, self.owner, expected_lease=row.lease):
                continue
            log.info("taking over run %s (%s) from %s", row.id, row.status, row.lease or "nobody")
            if row.status == store.SUBMITTING:  # its reply never came: Segmind's record settles it
                words = "Flux Lab stopped while this submit was in flight. Looking it up in Segmind's request history."
                self._settle_now(row.id, store.SETTLING, detail=words, settlement=words)
            taken.append(row.id)
            self._schedule(row.id)
        return taken

    def _note_waiting_for_key(self, row: Run) -> None:
        submitted = parse_iso(row.submitted_at)
        if row.status != store.CREATED and submitted is not None:
            if _seconds_since(row.submitted_at) >= D.OUTPUT_RETENTION_S:
                self._settle_now(
                    row.id,
                    store.EXPIRED,
                    error_kind="expired",
                    error="The API key that submitted this run was not entered again before Segmind "
                    "deleted its output (seven days), so its result could not be collected.",
                    finished_at=store.now_iso(),
                )
                return
        if row.error_kind != WAITING_FOR_KEY:
            log.info("run %s waits for the key that submitted it", row.id)
            self.ledger.transition(row.id, error_kind=WAITING_FOR_KEY, error=WAITING_FOR_KEY_TEXT)

    def _settle_now(self, run_id: str, status: str, **fields: Any) -> None:
        """End a run found in the ledger without driving it. A change the lifecycle refuses (the
        run moved on since it was read) is logged and the run left as it is."""
        try:
            self.ledger.transition(run_id, status, **fields)
        except IllegalTransition as exc:
            log.error("run %s: %s", run_id, exc.message)

    def _schedule(self, run_id: str) -> None:
        with self._lock:
            if run_id in self._futures and not self._futures[run_id].done():
                return
            self._futures[run_id] = Future()
            self._queued.append(run_id)
        self._launch()

    def _launch(self) -> None:
        """Hand the queued runs to the scheduler, as many as the cap leaves room for."""
        while True:
            with self._lock:
                if self._stopped.is_set() or not self._queued:
                    return
                if self._cap is not None and len(self._driving) >= self._cap:
                    return
                run_id = self._queued.popleft()
                outer = self._futures[run_id]
                if not outer.set_running_or_notify_cancel():
                    continue
                inner = self._scheduler.spawn(self._drive(run_id))
                self._driving[run_id] = inner
            inner.add_done_callback(functools.partial(self._landed, run_id, outer))

    def _landed(self, run_id: str, outer: Future, inner: Future) -> None:
        with self._lock:
            self._driving.pop(run_id, None)
        try:
            outer.set_result(inner.result())
        except CancelledError:  # the runner stopped: the run stays as the ledger has it
            outer.set_result(None)
        except BaseException as exc:  # handed to whoever waits on the future
            outer.set_exception(exc)
        self._launch()
        if self._on_idle is not None and not self.busy():
            self._on_idle()

    def wait(self, run_ids: list[str], timeout: float | None = None) -> list[Run]:
        with self._lock:
            futures = [self._futures[r] for r in run_ids if r in self._futures]
        wait_futures(futures, timeout=timeout)
        return self.ledger.get_many(run_ids)

    def busy(self) -> bool:
        """Whether a run is queued or being driven here now."""
        with self._lock:
            return bool(self._queued or self._driving)

    def futures(self, run_ids: list[str]) -> dict[Future, str]:
        """The futures driving these runs (for as_completed)."""
        with self._lock:
            return {self._futures[r]: r for r in run_ids if r in self._futures}

    def problem(self, run_id: str) -> str | None:
        """What stopped this run that the ledger could not take (e.g. the disk was full)."""
        with self._lock:
            return self._problems.get(run_id)

    def shutdown(self, wait: bool = True) -> None:
        """Stop driving runs. wait=True finishes the runs in hand, then closes the client;
        wait=False leaves them where they are in the ledger (resumable) and returns at once."""
        if wait:
            with self._lock:
                pending = list(self._futures.values())
            wait_futures(pending)
        self._stopped.set()
        with self._lock:
            queued, self._queued = list(self._queued), deque()
            driving = list(self._driving.values())
        for run_id in queued:  # not started: they stay as the ledger has them, for resume
            self._futures[run_id].cancel()
        for future in driving:  # left where the ledger has them: the next runner resumes them
            future.cancel()
        _live_owners.discard(self.owner)
        if not self._released:
            self._released = True
            self._scheduler.release()
            if self.client.budget.on_learn is not None:
                self.client.budget.flush()  # what this process learned of the key, for the next
        if wait:
            self.client.close()

    def _renew_leases(self) -> None:
        """Keep this runner's leases from lapsing while it lives (another host respects them)."""
        while not self._stopped.wait(D.LEASE_RENEW_S):
            try:
                self.ledger.renew(self.owner)
            except LedgerError:  # a full disk or a busy ledger: try again next time
                continue

    # --- driving one run --------------------------------------------------------------------
    def _set(self, run_id: str, status: str | None = None, **fields: Any) -> None:
        if not self.ledger.transition(run_id, status, owner=self.owner, **fields):
            raise _LeaseLost(run_id)
        if self.on_update is not None:
            row = self.ledger.get(run_id)
            if row is not None:
                self.on_update(row)

    def _drive(self, run_id: str) -> Ops:
        try:
            row = self.ledger.get(run_id)
            if row is None or row.lease != self.owner:
                return
            yield from self._settle(run_id, row)
        except _LeaseLost:
            log.warning("run %s was taken over by another process; this one stops driving it", run_id)
            return
        except IllegalTransition as exc:  # a bug: the run stays as the ledger has it, resumable
            log.error("run %s: %s", run_id, exc.message, exc_info=True)
            with self._lock:
                self._problems[run_id] = exc.user_text()
        except (LedgerError, OSError) as exc:  # the ledger cannot even take the news
            log.error("run %s: the ledger could not record what happened", run_id, exc_info=True)
            text = (
                exc.user_text()
                if isinstance(exc, LedgerError)
                else storage_error(exc, self.data_dir).user_text()
            )
            with self._lock:
                self._problems[run_id] = text
            return
        try:
            self.ledger.release(run_id, self.owner)
        except LedgerError:
            pass  # the lease lapses by itself

    def _settle(self, run_id: str, row: Run) -> Ops:
        """Drive one run, and write down how it ended (or why it stays open)."""
        try:
            yield from self._advance(row)
        except JobTimedOut as exc:
            self._set(
                run_id,
                store.EXPIRED,
                error=join(exc.message, exc.hint),
                error_kind="expired",
                finished_at=store.now_iso(),
            )
        except JobFailed as exc:
            log.info("run %s ended %s: %s", run_id, exc.status_name, exc.message)
            self._set(
                run_id,
                exc.status_name,
                error=exc.user_text(),
                error_kind=exc.kind,
                finished_at=store.now_iso(),
                **_metric_fields(exc.body.get("metrics")),
            )
        except SubmitUnknown as exc:
            self._set(
                run_id,
                store.SUBMIT_UNKNOWN,
                error=exc.user_text(),
                error_kind=exc.kind,
                finished_at=store.now_iso(),
            )
        except CallFailed as exc:
            log.info("run %s: call failed (%s): %s", run_id, exc.kind, exc.message)
            current = self.ledger.get(run_id)
            if current and current.status in (store.CREATED, store.SUBMITTING):
                self._set(
                    run_id,
                    store.ERROR,
                    error=exc.user_text(),
                    error_kind=exc.kind,
                    finished_at=store.now_iso(),
                )
            else:  # submitted: the job may still finish; keep it resumable
                self._set(
                    run_id,
                    error=join(exc.user_text(), STAYS_OPEN),
                    error_kind=exc.kind,
                )
        except (_LeaseLost, LedgerError, IllegalTransition):
            raise
        except OSError as exc:  # the data directory: a full disk, no permission
            log.error("run %s: cannot write to the data directory", run_id, exc_info=True)
            problem = storage_error(exc, self.data_dir)
            self._set(run_id, error=problem.user_text(), error_kind=problem.kind)
        except Exception as exc:  # a bug must not lose a run: leave it resumable, say what happened
            log.exception("internal error while driving run %s", run_id)
            self._set(
                run_id,
                error=f"Internal error while driving this run: {type(exc).__name__}: {exc}",
                error_kind="internal",
            )

    def _advance(self, row: Run) -> Ops:
        """Move the run on, state by state, until it ends or must wait (then it stays open)."""
        run_id, params = row.id, row.params
        while True:
            status = row.status
            if status in (store.CREATED, store.SUBMITTING):
                yield from self._submit(row, params)
            elif status == store.SETTLING:
                if not (yield from self._settle_submit(row, params)):
                    return
            elif status in (store.QUEUED, store.PROCESSING):
                outcome = yield from self._collect(row, params)
                self._set(
                    run_id,
                    store.DOWNLOADING,
                    output_url=outcome.image_url,
                    observed_total_s=round(_seconds_since(row.submitted_at), 3),
                    **_metric_fields(outcome.metrics),
                )
            elif status == store.DOWNLOADING:
                yield from self._download(row, params)
                return
            else:
                return
            row = self.ledger.get(run_id) or row

    # --- the submit, settled with Segmind's request history when its fate is unclear ----------
    def _submit(self, row: Run, params: FluxParams) -> Ops:
        """Send the run (QUEUED when it is taken). A 500/502/503 is looked up in the request history
        before the submit is sent again; a reply that was lost leaves the run SETTLING."""
        run_id = row.id
        for attempt in range(1, D.SUBMIT_MAX_ATTEMPTS + 1):
            began = store.now_iso()
            self._set(run_id, store.SUBMITTING, submit_began_at=began)
            try:
                job = yield from self.client.submit_ops(params)
            except SubmitServerError as exc:
                if (yield from self._adopted_after_5xx(run_id, params, began, exc)):
                    return
                if attempt == D.SUBMIT_MAX_ATTEMPTS:
                    raise  # Segmind refused every time and holds none of them: nothing was billed
                yield Sleep(retry_delay(exc, attempt - 1))
                continue
            except SubmitUnknown as exc:
                words = f"{exc.message} Looking it up in Segmind's request history."
                self._set(run_id, store.SETTLING, detail=words, settlement=words, error=None, error_kind=None)
                return
            self._set(
                run_id,
                store.QUEUED,
                request_id=job.request_id,
                status_url=job.status_url,
                response_url=job.response_url,
                poll_url=job.poll_url,
                submitted_at=store.now_iso(),
                error=None,
                error_kind=None,
            )
            return

    def _adopted_after_5xx(self, run_id: str, params: FluxParams, began: str, exc: SubmitServerError) -> Ops:
        """After a submit answered 5xx: give the history SETTLE_5XX_WAIT_S to show a job it created.
        Adopts it (True), or writes why the submit is sent again (False)."""
        wait = settle_5xx_wait_s()
        deadline = time.monotonic() + wait
        delay = D.SETTLE_LOOKUP_FIRST_S
        while True:
            look = yield from settle.find_submit_ops(
                self.client, self.ledger, params.payload(), _moment(began), params.model
            )
            if look.record is not None:
                self._adopt(
                    run_id,
                    look.record,
                    f"{exc.message} But Segmind had taken it: its request history shows it received "
                    f"at {settle.clock(look.record.created_at)}; collected, not sent again.",
                )
                return True
            if not look.reachable:
                log.warning(
                    "run %s: submit answered %s; history unreadable: %s", run_id, exc.status, look.problem
                )
                self.ledger.transition(
                    run_id,
                    detail=f"{exc.message} Segmind's request history could not be read ({look.problem}); "
                    "sent again on Segmind's word that it did not take the job.",
                    owner=self.owner,
                )
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                self.ledger.transition(
                    run_id,
                    detail=f"{exc.message} Segmind's request history shows no such request after {wait:.0f} s; "
                    "sent again.",
                    owner=self.owner,
                )
                return False
            yield Sleep(min(delay, left))
            delay = min(delay * 2, D.SETTLE_LOOKUP_MAX_S)

    def _settle_submit(self, row: Run, params: FluxParams) -> Ops:
        """A SETTLING run: look for the job its submit created. Found: adopted (QUEUED). None after
        the grace window: sent again, once (SUBMITTING). History unreadable: SUBMIT_UNKNOWN, for a
        person. Returns whether the run moved on; False: it ended or waits (resume goes on)."""
        run_id = row.id
        grace = settle_grace_s()
        began = _moment(row.submit_began_at or row.submitted_at or row.created_at)
        delay, looks = D.SETTLE_LOOKUP_FIRST_S, 0
        while True:
            look = yield from settle.find_submit_ops(
                self.client, self.ledger, params.payload(), began, params.model
            )
            looks += 1
            if look.record is not None:
                self._adopt(
                    run_id,
                    look.record,
                    f"Segmind received it at {settle.clock(look.record.created_at)}; collected.",
                )
                return True
            age = (settle.utc_now() - began).total_seconds()
            if not look.reachable and (look.final or age >= grace):
                self._leave_unknown(
                    run_id,
                    f"Segmind's request history could not be read ({look.problem}), so whether this "
                    "submit created a job is unknown.",
                )
                return False
            if look.reachable and age >= grace:
                waited = _duration(grace)
                if row.resent:
                    self._leave_unknown(
                        run_id,
                        f"Segmind has no record of it after {waited}, and it was already sent again once: "
                        "Flux Lab does not send it a third time.",
                    )
                    return False
                words = f"Segmind has no record after {waited}; sent again."
                self._set(run_id, store.SUBMITTING, detail=words, settlement=words, resent=1)
                return True
            seen = "no such request yet" if look.reachable else f"could not be read ({look.problem})"
            self.ledger.transition(
                run_id,
                detail=f"Segmind's request history, look {looks}: {seen}.",
                owner=self.owner,
                settlement=f"Looking in Segmind's request history: {seen} ({looks} look(s) so far).",
            )
            yield Sleep(max(0.05, min(delay, grace - age)))
            delay = min(delay * 2, D.SETTLE_LOOKUP_MAX_S)

    def _leave_unknown(self, run_id: str, words: str) -> None:
        """SUBMIT_UNKNOWN: what became of the submit is for a person to check in Segmind's console."""
        self._set(
            run_id,
            store.SUBMIT_UNKNOWN,
            detail=words,
            settlement=words,
            error=join(words, SubmitUnknown.hint),
            error_kind=SubmitUnknown.kind,
            finished_at=store.now_iso(),
        )

    def _adopt(self, run_id: str, record: RequestRecord, words: str) -> None:
        """The run takes the request the history found: collected like any other, never sent again."""
        job = Job.from_request_id(record.request_id, self.client.base_url)
        current = self.ledger.get(run_id)
        log.info("run %s adopts request %s from Segmind's request history", run_id, record.request_id)
        self._set(
            run_id,
            store.QUEUED,
            detail=words,
            settlement=words,
            request_id=record.request_id,
            status_url=job.status_url,
            response_url=job.response_url,
            poll_url=job.poll_url,
            submitted_at=(current.submit_began_at if current else None) or store.now_iso(),
            error=None,
            error_kind=None,
        )

    # --- collecting the result ---------------------------------------------------------------
    def _collect(self, row: Run, params: FluxParams) -> Ops:
        """Poll the job to its end. Once its status has gone (Segmind's one-hour retention), ask the
        request history, which keeps every request: a job is never given up on for its age alone."""
        run_id = row.id
        if row.request_id is None:
            raise OutputUnusable("the ledger holds no request id for this run")  # never written so
        if row.status_url and row.response_url:
            job = Job(row.request_id, row.status_url, row.response_url, row.poll_url)
        else:  # a run adopted by its request id alone: the documented URL shapes
            job = Job.from_request_id(row.request_id, row.base_url)
        elapsed = _seconds_since(row.submitted_at)
        if elapsed < D.RETENTION_S:
            expected, known = self._expected_s(row)

            def on_status(state: str, body: dict[str, Any]) -> None:
                if state == store.PROCESSING:
                    self._set(
                        run_id,
                        store.PROCESSING,
                        processing_at=store.now_iso(),
                        observed_queue_s=round(_seconds_since(row.submitted_at), 3),
                    )

            try:
                outcome = yield from self.client.wait_ops(
                    job,
                    timeout=D.RETENTION_S,
                    elapsed_s=elapsed,
                    on_status=on_status,
                    safety_tolerance=params.safety_tolerance,
                    expected_s=expected,
                    expected_known=known,
                )
                return outcome
            except (JobExpired, JobTimedOut) as exc:
                log.info("run %s: %s; asking the request history", run_id, exc.message)
        outcome = yield from self._collect_from_record(row, params, job)
        return outcome

    def _expected_s(self, row: Run) -> tuple[float, bool]:
        """How long a job like this one takes, and whether that is measured: the ledger's median for
        this model and size on this server (read at most once a minute), else the prior."""
        slot = (row.model or "", int(row.width or 0) * int(row.height or 0))
        cached = self._expected.get(slot)
        if cached is None or time.monotonic() - cached[1] > D.EXPECTED_REFRESH_S:
            typical = self.ledger.typical_duration(self.client.base_url, row.model, slot[1])
            cached = self._expected[slot] = (typical or self._prior_s, time.monotonic(), typical is not None)
        return cached[0], cached[2] or self._prior_known

    def _collect_from_record(self, row: Run, params: FluxParams, job: Job) -> Ops:
        request_id = job.request_id
        delay = D.SETTLE_LOOKUP_FIRST_S
        while True:
            look = yield from settle.find_request_ops(self.client, request_id)
            record = look.record
            if not look.reachable:
                if look.final or _seconds_since(row.submitted_at) >= D.OUTPUT_RETENTION_S:
                    raise JobExpired(
                        f"Segmind no longer answers for request {request_id}, and its request history "
                        f"could not be read ({look.problem})."
                    )
                raise NetworkError(
                    f"Segmind no longer answers for request {request_id} by polling, and its request "
                    f"history could not be read ({look.problem})."
                )
            if record is None:
                raise JobExpired(f"Segmind has no record of request {request_id}.")
            if record.status == "COMPLETED":
                if not record.generation_url:
                    raise OutputUnusable(
                        f"Segmind's record of request {request_id} says COMPLETED but names no output."
                    )
                words = (
                    "Past Segmind's one-hour status retention; its request history has the result; collected."
                )
                self.ledger.transition(
                    row.id, detail=words, owner=self.owner, settlement=words, cost_usd=record.cost_usd
                )
                return Outcome(job=job, body={}, image_url=record.generation_url, metrics={})
            if record.status == "FAILED":
                raise failure_from_body({"status": "FAILED", "error": record.error}, params.safety_tolerance)
            self.ledger.transition(
                row.id,
                detail="Segmind's request history says the request is still pending.",
                owner=self.owner,
            )
            yield Sleep(delay)
            delay = min(delay * 2, D.SETTLE_LOOKUP_MAX_S)

    def _download(self, row: Run, params: FluxParams) -> Ops:
        """Fetch the image (streamed to disk, capped), check it and store it. An output that can
        never be an image, or one that failed DOWNLOAD_MAX_ATTEMPTS drives, ends UNUSABLE: the job
        was billed, and the run says so rather than being fetched again every scan."""
        attempts = int(row.download_attempts or 0) + 1
        self._set(row.id, download_attempts=attempts)
        part = self.data_dir / "tmp" / f"{row.id}.part"
        part.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(part, "w+b") as sink:
                if not row.output_url:
                    raise OutputUnusable("Segmind's result named no image")
                yield from self.client.download_ops(row.output_url, sink)
            data = part.read_bytes()
        except AuthError:
            raise  # the key may come back: the run stays open
        except CallFailed as exc:
            if exc.retryable and attempts < D.DOWNLOAD_MAX_ATTEMPTS:
                raise
            raise OutputUnusable(
                f"The image could not be downloaded ({attempts} attempt(s)): {exc.message}"
            ) from None
        finally:
            part.unlink(missing_ok=True)
        recipe = {
            "model": row.model,
            "params": params.payload(),
            "run_id": row.id,
            "request_id": row.request_id,
            "created_at": row.created_at,
            "backend": row.backend,
            "app": "flux-lab",
        }
        try:
            stored = yield Offload(images.store, (self.data_dir, data, recipe))
        except images.ImageProblem as exc:
            raise OutputUnusable(f"What Segmind sent as the image is unusable: {exc}.") from None
        self._set(
            row.id,
            store.COMPLETED,
            image_sha256=stored.sha256,
            image_path=stored.path,
            thumb_path=stored.thumb_path,
            image_width=stored.width,
            image_height=stored.height,
            image_bytes=stored.size_bytes,
            finished_at=store.now_iso(),
            error=None,
            error_kind=None,
        )


def _metric_fields(metrics: Any) -> dict[str, Any]:
    if not isinstance(metrics, dict):
        return {}
    out = {}
    for key in ("queue_time", "inference_time", "total_time", "cost", "remaining_credits"):
        try:
            if metrics.get(key) is not None:
                out[key] = float(metrics[key])
        except (TypeError, ValueError):
            continue
    return out
