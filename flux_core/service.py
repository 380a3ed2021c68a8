"""The service layer: every operation a person can do, whatever the front end (the CLI, a page).

A `Workbench` holds one ledger, the backends (Segmind with the configured key or a key typed into a
browser session, or the emulator) and a runner per backend that owns all submitting and polling.
Front ends parse what a person typed, call one method here, and show what comes back; the rules
(double clicks, the sweep cap, never resending an unknown submit unasked, which key drives a run)
live here once. They never write to the ledger or touch a runner themselves.

`Workbench.shared()` is process-wide for the app: every browser session of the Streamlit server uses
the same one, so navigating away, refreshing, closing the tab or opening a second tab loses nothing,
and a restarted server resumes the runs still pending. The CLI makes its own for one command.

Every operation is done by someone: `workbench.acting(actor)` is the same workbench (one ledger, the
same runners) on behalf of one person, whose role (flux_core/team.py) is checked here before anything
is written or sent, and whose id every run, sweep, vote, curation and deletion records. A workbench
made directly acts for the local user, an admin (the CLI; the app without sign-in).
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from concurrent.futures import FIRST_COMPLETED, as_completed, wait as wait_futures
from typing import Any, Iterator, cast

from flux_core import defaults as D
from flux_core import caps
from flux_core import hunt as hunting
from flux_core import pricing
from flux_core import presentation
from flux_core import report as report_page
from flux_core.checks import report as check_report
from flux_core import snippets
from flux_core import team
from flux_core.checks import compute as check_compute
from flux_core.checks.worker import Checker
from flux_core.ledger import checks as check_table
from flux_core.team import Actor, Op
from flux_core.pricing import Pricing
from flux_core.ledger import actions
from flux_core.ledger import boards as board_store
from flux_core.ledger import changes as ledger_changes
from flux_core.ledger.boards import Board
from flux_core.ledger import history
from flux_core.ledger import hunts
from flux_core.ledger import lineage as lineages
from flux_core.ledger import presets
from flux_core.ledger import reviews
from flux_core.ledger.presets import Preset
from flux_core.ledger import store
from flux_core.ledger.records import Event, Run
from flux_core.ledger import sweeps
from flux_core.segmind.client import SegmindClient
from flux_core.emulator.server import EmulatorConfig, EmulatorServer
from flux_core import settle
from flux_core.errors import (
    AuthError,
    CallFailed,
    CapReached,
    ConfirmationNeeded,
    ForbiddenError,
    LedgerError,
    MissingKey,
    NoImage,
    UnknownRun,
    failure_from_body,
)
from flux_core.logs import logger
from flux_core.params import FluxParams, ParamsError, random_seed, text_field
from flux_core.segmind.jobs import Job
from flux_core.segmind.records import RequestRecord
from flux_core.runner import Runner, lease_alive
from flux_core.settings import CapSettings, Connection, data_dir as resolve_data_dir, key_hint
from flux_core.ledger.sweeps import SweepPlan


log = logger(__name__)


@dataclass(frozen=True)
class ImportReport:
    """What an import from Segmind's request history did."""

    imported: tuple[str, ...]  # the new runs' ids
    skipped: tuple[tuple[str, str], ...]  # (request id, why) for records Flux Lab cannot replay
    already: int  # requests the ledger held already

    def words(self) -> str:
        skipped = f"; {len(self.skipped)} skipped" if self.skipped else ""
        return f"Imported {len(self.imported)} run(s) made elsewhere{skipped}; {self.already} were in the ledger already."


@dataclass
class Backend:
    connection: Connection
    client: SegmindClient
    runner: Runner

    @property
    def is_emulator(self) -> bool:
        return self.connection.backend == "emulator"

    @property
    def label(self) -> str:
        if self.is_emulator:
            return "Offline emulator: preview images, not FLUX"
        return f"Segmind · key {key_hint(self.connection.api_key)}"


@dataclass
class _Live:
    """What a workbench sets after it is made, shared by every `acting` handle of it."""

    emulator: EmulatorServer | None = None
    emulator_expected_s: float | None = None
    last_resume: float = 0.0
    checker: Checker | None = None  # the background image checks (the app server's workbench)
    hunts: dict[str, threading.Thread] = dataclasses.field(
        default_factory=dict
    )  # seed hunts driven by this process
    # sweeps as read, by (sweep id, the digest of its topic on the change feed): Workbench.sweep
    sweep_views: dict[tuple[str, str], sweeps.SweepView] = dataclasses.field(default_factory=dict)


class Workbench:
    _shared: dict[tuple[str, str], "Workbench"] = {}
    _shared_lock = threading.Lock()

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        api_key: str | None = None,
        emulator_port: int | None = None,
        *,
        emulator: str = "embedded",
        concurrency: int | None = None,
        on_update: Any = None,
        background: bool = True,
        checks: bool = False,
    ):
        """`emulator`: "embedded" (the app: with no key, the emulator that keeps its jobs in the data
        directory), "ephemeral" (`--emulator` on the CLI: always a fresh in-process emulator) or
        "never" (the CLI without it: no key is a MissingKey). `background`: resume runs left in
        flight now and scan for orphans every ORPHAN_SCAN_S (the app server). `checks`: check every stored
        image in the background (flux_core/checks/worker.py; the app server, unless FLUX_LAB_CHECKS=0)."""
        self.data_dir = resolve_data_dir(data_dir)
        self.ledger = store.Ledger(self.data_dir / D.DB_NAME)
        self._live = _Live(last_resume=time.monotonic())
        self.actor: Actor = team.local()
        self._emulator_mode = emulator
        self._concurrency = concurrency
        self._on_update = self._updated
        self._on_update_outer = on_update
        self._emulator_port = emulator_port or _env_number(D.EMULATOR_PORT_ENV, int, D.EMULATOR_PORT)
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        self._credits: dict[str, tuple[float, float | None]] = {}
        self._key_checks: dict[str, CallFailed | None] = {}  # per key: None = a call succeeded
        self._last_submit: dict[str, tuple[str, float, str]] = {}
        self._guard_locks: dict[str, threading.Lock] = {}
        self._credit_threads: list[threading.Thread] = []
        self.default_key = api_key or None
        self._stopped = threading.Event()
        self.resumed: list[str] = []
        if checks:
            self._live.checker = Checker(self.ledger, self.data_dir, yield_to=self._runs_in_flight)
        if background:
            self.resumed = self.default.runner.resume()
            self.resume_hunts()
            self._scanner = threading.Thread(target=self._scan_orphans, name="flux-orphans", daemon=True)
            self._scanner.start()

    def _runner_idle(self) -> None:
        """A runner's last run in flight landed: the checker, which yields to runs, goes on now."""
        if self._live.checker is not None:
            self._live.checker.poke()

    def _runs_in_flight(self) -> bool:
        """Whether a runner of this workbench is driving a run (the checker waits until none is)."""
        return any(backend.runner.busy() for backend in list(self._backends.values()))

    def acting(self, actor: Actor) -> "Workbench":
        """This workbench on behalf of `actor`: the same ledger, backends and runners, with every
        operation checked against the actor's role and recorded under their id."""
        handle = copy.copy(self)
        handle.actor = actor
        return handle

    @property
    def emulator(self) -> EmulatorServer | None:
        """The emulator this workbench started (None until a backend needs it)."""
        return self._live.emulator

    def may(self, op: Op, owner: str | None = None) -> bool:
        """Whether the actor may do `op` (on something `owner` made): what pages ask to leave out
        what a role may not do. The service checks again whatever a page shows."""
        return team.allowed(self.actor, op, owner)

    def _may(self, op: Op, owner: str | None = None) -> None:
        team.require(self.actor, op, owner)

    @property
    def default(self) -> Backend:
        """The backend of the configured key (or the emulator), made when first needed."""
        return self.backend(None)

    @classmethod
    def shared(cls, data_dir: str | os.PathLike | None = None, api_key: str | None = None) -> "Workbench":
        """The process-wide workbench for this data directory and configured key."""
        path = str(resolve_data_dir(data_dir))
        slot = (path, _digest(api_key))
        with cls._shared_lock:
            if slot not in cls._shared:
                checks = os.environ.get(D.CHECKS_ENV, "1").strip() != "0"
                cls._shared[slot] = cls(path, api_key, checks=checks)
            return cls._shared[slot]

    @classmethod
    def shutdown_all(cls, wait: bool = False) -> None:
        with cls._shared_lock:
            for bench in cls._shared.values():
                bench.shutdown(wait=wait)
            cls._shared.clear()

    # --- backends ---------------------------------------------------------------------------
    def backend(self, session_key: str | None) -> Backend:
        """The backend for a session: its own typed key, else the configured key, else the emulator."""
        key = (session_key or "").strip() or self.default_key
        slot = _digest(key)
        with self._lock:
            if slot not in self._backends:
                if self._emulator_mode == "ephemeral" or (not key and self._emulator_mode == "embedded"):
                    connection = self._emulator_connection()
                else:
                    connection = Connection.resolve(api_key=key)
                client = SegmindClient(connection=connection)
                runner = Runner(
                    self.ledger,
                    self.data_dir,
                    client,
                    backend=connection.backend,
                    concurrency=self._concurrency,
                    on_update=self._on_update,
                    on_idle=self._runner_idle,
                    expected_s=self._live.emulator_expected_s if connection.backend == "emulator" else None,
                )
                self._backends[slot] = Backend(connection, client, runner)
                created = bool(session_key and session_key.strip())
            else:
                created = False
            backend = self._backends[slot]
        if created:  # runs this key submitted before a restart have waited for it: drive them now
            backend.runner.resume()
        return backend

    def _emulator_connection(self) -> Connection:
        live = self._live
        if live.emulator is None and self._emulator_mode == "ephemeral":
            live.emulator = EmulatorServer().start()
            live.emulator_expected_s = D.EMULATOR_LATENCY_S + D.EMULATOR_QUEUE_S
        if live.emulator is None:
            latency = _env_number(D.EMULATOR_LATENCY_ENV, float, D.EMULATOR_LATENCY_S)
            config = EmulatorConfig(
                state_path=str(self.data_dir / D.EMULATOR_STATE_FILE),
                latency_s=latency,
                latency_spread_s=min(D.EMULATOR_LATENCY_SPREAD_S, latency / 4),
            )
            live.emulator_expected_s = latency + config.queue_s  # what its jobs take, before the ledger knows
            try:  # the same port as last time, so runs in flight before a restart resume
                live.emulator = EmulatorServer(config, port=self._emulator_port).start()
            except OSError:
                live.emulator = EmulatorServer(config, port=0).start()
        return Connection.resolve(
            api_key=D.EMULATOR_KEY,
            base_url=live.emulator.url,
            rpm=0,
            upload_url=f"{live.emulator.url}/upload-asset",
            backend="emulator",
        )

    # --- work --------------------------------------------------------------------------------
    def submit(
        self,
        params: FluxParams,
        *,
        seed_random: bool = False,
        session_key: str | None = None,
        references: list[tuple[bytes, str]] | None = None,
        sweep_id: str | None = None,
        guard: str | None = None,
        parent: str | None = None,
        lineage: str | None = None,
    ) -> str:
        """Upload local reference images, write the run down, hand it to the runner.

        `guard` names the caller (a browser session): the same request from it again within
        DOUBLE_SUBMIT_WINDOW_S is a double click and returns the first run instead of paying twice.
        The run is the actor's: only a member or an admin may spend, and a run that would go past a
        spend cap is a CapReached; either way nothing is uploaded, written or sent.
        `parent` is the run this one is made from (Compose's form was recalled from it) and
        `lineage` how (store.LINEAGE_KINDS); without it, "recall" when the request is the parent's
        exactly, else "edit".
        """
        self._may(Op.SPEND)
        came_from = self._came_from(parent, lineage, params)
        if guard is not None:
            payload = params.fields()  # its model too: the same body to another model is another request
            if seed_random:
                payload["seed"] = "random"
            fingerprint = repr(sorted(payload.items())) + repr([r[0][:64] for r in references or []])
            return self._once(
                guard,
                fingerprint,  # not its parent: a double click names the first click's run as its own
                lambda: self.submit(
                    params,
                    seed_random=seed_random,
                    session_key=session_key,
                    references=references,
                    sweep_id=sweep_id,
                    parent=parent,
                    lineage=lineage,
                ),
            )
        if references:
            self._check_caps([params], len(references), session_key)  # before the upload
            params = params.replace(image_urls=[*params.image_urls, *self.upload(references, session_key)])
        return self.backend(session_key).runner.enqueue(
            params,
            seed_random=seed_random,
            sweep_id=sweep_id,
            created_by=self.actor.id,
            admit=self._admit(session_key),
            came_from=came_from,
        )

    def _came_from(self, parent: str | None, kind: str | None, params: FluxParams) -> tuple[str, str] | None:
        """(parent id, kind) for a new run made from `parent`; an UnknownRun for a parent the
        ledger does not hold, before anything is uploaded, written or sent."""
        if parent is None:
            return None
        if kind is not None and kind not in store.LINEAGE_KINDS:
            raise ParamsError([f"lineage: one of {', '.join(store.LINEAGE_KINDS)} (got {kind!r})"])
        row = self._row(parent)
        if kind is None:
            kind = store.RECALL if params.fields() == row.params.fields() else store.EDIT
        return row.id, kind

    # --- spend caps (flux_core/caps.py) ------------------------------------------------------
    def spend(self, *, session_key: str | None = None) -> caps.Standing:
        """The spend caps that are set, what the team and the actor spent on this backend's server
        today and this month, and what is left."""
        return caps.standing(
            self.ledger,
            base_url=self.backend(session_key).connection.base_url,
            person=self.actor.id,
            pricing=self.pricing(session_key),
        )

    def spend_line(self, *, session_key: str | None = None) -> str | None:
        """What a page that can spend shows of the caps (Standing.line); None when no cap is set,
        and then the ledger is not read: pages draw this on every rerun."""
        if not caps.any_set(self.ledger):
            return None
        return self.spend(session_key=session_key).line()

    def cap_limits(self) -> tuple[CapSettings, tuple[tuple[str, str], ...]]:
        """The caps in force and (cap, who) of those set in Flux Lab, without reading what was spent."""
        with self.ledger.db() as db:
            return caps.limits(db)

    def set_caps(self, **changes: Any) -> caps.Standing:
        """Set spend caps in Flux Lab (admins only): person_day, team_day and team_month, each a number
        of USD (0 or more), None for no cap, or caps.RESET for the server's environment value. Every
        value is checked first (a ParamsError naming the cap); then all change in one transaction,
        recorded under the admin. Returns the standing after."""
        self._may(Op.CAPS)
        fields = {field: flag for field, _, _, flag in caps.CAPS}
        problems, checked = [], {}
        for field, value in changes.items():
            if field not in fields:
                problems.append(f"{field}: not a cap (the caps are {', '.join(fields)})")
            elif value is None or value == caps.RESET:
                checked[field] = value
            elif (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value < float("inf")
            ):
                problems.append(f"{field}: an amount of US dollars, 0 or more (got {value!r})")
            else:
                checked[field] = round(float(value), 2)
        if not changes:
            problems.append("nothing to change: give a cap and its amount")
        if problems:
            raise ParamsError(problems)
        caps.set_limits(self.ledger, self.actor.id, checked)
        return self.spend()

    def _admit(self, session_key: str | None, person: str | None = None) -> store.Admit | None:
        """The caps' check for the ledger's write transaction that inserts new runs (None: no cap,
        and then no price is looked up); `person`: whose runs they are (default: the actor's)."""
        if not caps.any_set(self.ledger):
            return None
        return caps.admit(
            base_url=self.backend(session_key).connection.base_url,
            person=person or self.actor.id,
            pricing=self.pricing(session_key),
        )

    def _check_caps(self, batch: list[FluxParams], references: int, session_key: str | None) -> None:
        """The caps checked early, before reference images are uploaded (`references` more each).
        The check that holds is the one in the write transaction (`_admit`)."""
        if not batch or not caps.any_set(self.ledger):
            return
        price = self.pricing(session_key)
        cost = sum(price.usd(p.width, p.height, len(p.image_urls) + references, p.model) for p in batch)
        caps.check(self.spend(session_key=session_key), round(cost, 6), len(batch))

    def upload(self, references: list[tuple[bytes, str]], session_key: str | None = None) -> list[str]:
        """Upload local reference images (bytes, MIME type) through upload-asset: their URLs."""
        self._may(Op.SPEND)
        return self.backend(session_key).client.upload(references) if references else []

    def rerun(
        self,
        run_id: str,
        *,
        vary_seed: bool = False,
        confirmed_unknown: bool = False,
        overrides: dict[str, Any] | None = None,
        session_key: str | None = None,
        guard: str | None = None,
    ) -> str:
        """Run a past run again, identically, with a new random seed, or with `overrides` (fields of
        FluxParams, checked by its rules). A run whose submit may have
        reached Segmind (SUBMIT_UNKNOWN) is sent identically again only once the person confirms
        that Segmind's console does not list it: it may have been billed already."""
        self._may(Op.SPEND)
        row = self._row(run_id)
        if row.status == store.SUBMIT_UNKNOWN and not vary_seed and not confirmed_unknown:
            raise ConfirmationNeeded(
                "This run's submit may have reached Segmind and may be billed.",
                hint="Check Segmind's console first; send it again only if the request is not there.",
            )
        params = row.params
        if vary_seed:
            params = params.replace(seed=random_seed())
        if overrides:  # e.g. a blocked run again at a higher tolerance: a new run that names the old
            return self._rerun_changed(row, params.replace(**overrides), overrides, session_key, guard)
        return self.submit(
            params,
            seed_random=vary_seed or bool(row.seed_random),
            session_key=session_key,
            guard=guard,
            parent=row.id,
            lineage=store.SEED if vary_seed else store.RERUN,
        )

    def estimate(
        self, plan: "SweepPlan", *, session_key: str | None = None, run_again: bool = False
    ) -> sweeps.Estimate:
        """Cells, new images, time and cost of a sweep before anything runs."""
        backend = self.backend(session_key)
        return sweeps.estimate(
            plan,
            self.ledger,
            base_url=backend.connection.base_url,
            pricing=self.pricing(session_key),
            run_again=run_again,
        )

    def start_sweep(
        self,
        plan: "SweepPlan",
        *,
        session_key: str | None = None,
        name: str = "",
        run_again: bool = False,
        confirmed: bool = False,
        references: list[tuple[bytes, str]] | None = None,
        guard: str | None = None,
        parent: str | None = None,
    ) -> str:
        """Save a sweep and hand its new cells to the runner (a double click starts it once). More
        new images than the cap (FLUX_LAB_SWEEP_CAP) need `confirmed`; local reference images are
        uploaded first and join every cell's image URLs. The whole sweep's new cells are checked
        against the spend caps at once: all of them start, or none (CapReached). `parent`: the run
        the plan's base came from, which every new cell names as its parent ("sweep")."""

        self._may(Op.SPEND)
        base_run = self._row(parent).id if parent is not None else None

        def begin() -> str:
            chosen = plan
            est = self.estimate(plan, session_key=session_key, run_again=run_again)
            if sweeps.needs_confirmation(est, self.sweep_cap()) and not confirmed:
                raise ConfirmationNeeded(
                    f"This sweep makes {est.new} new images, more than {self.sweep_cap()}.",
                    hint="Confirm that you want them all (the CLI: --yes), or make the sweep smaller.",
                )
            if references:  # every cell checked with stand-ins first: nothing is uploaded for a bad plan
                stand_ins = [f"https://upload.invalid/{i}" for i in range(len(references))]
                sweeps.make_plan(
                    plan.base.replace(image_urls=[*plan.base.image_urls, *stand_ins]), list(plan.axes)
                )
                new = sweeps.new_cells(plan, self.ledger, run_again=run_again)
                self._check_caps(new, len(references), session_key)
                urls = [*plan.base.image_urls, *self.upload(references, session_key)]
                chosen = sweeps.make_plan(plan.base.replace(image_urls=urls), list(plan.axes))
            return sweeps.start(
                chosen,
                self.ledger,
                self.backend(session_key).runner,
                name=name,
                run_again=run_again,
                created_by=self.actor.id,
                admit=self._admit(session_key),
                base_run=base_run,
            )

        if guard is None:
            return begin()
        fingerprint = repr((plan, name, run_again, base_run)) + repr([r[0][:64] for r in references or []])
        return self._once(guard, fingerprint, begin)

    def retry_failed(self, sweep_id: str, *, session_key: str | None = None) -> list[str]:
        """Run a sweep's failed cells again (never one whose submit outcome is unknown). All of them
        are checked against the spend caps first: when they would go past one, none is run."""
        self._may(Op.SPEND)
        view = self.sweep(sweep_id)
        if view is None:
            return []
        self._check_caps([c.run.params for c in sweeps.failed_cells(view)], 0, session_key)
        return sweeps.retry_failed(
            view,
            self.ledger,
            self.backend(session_key).runner,
            created_by=self.actor.id,
            admit=self._admit(session_key),
        )

    # --- the seed hunt (issue 20, item 3: flux_core/hunt.py) ------------------------------------
    def hunt_batch(self, session_key: str | None = None) -> int:
        """Seeds a hunt keeps in flight: HUNT_BATCH, fewer under a runner's cap or a known request
        budget (each job needs about HUNT_REQUESTS_PER_JOB requests a minute of it)."""
        batch = D.HUNT_BATCH
        if self._concurrency is not None:
            batch = min(batch, self._concurrency)
        budget = self.backend(session_key).client.budget
        if budget.limit:
            batch = min(batch, max(1, budget.limit // D.HUNT_REQUESTS_PER_JOB))
        return max(1, batch)

    def start_hunt(
        self,
        base: FluxParams,
        *,
        checks: list[str],
        hits: Any,
        seeds: str,
        max_images: Any = None,
        max_usd: Any = None,
        name: str = "",
        session_key: str | None = None,
        drive: bool = True,
        guard: str | None = None,
    ) -> str:
        """Start a seed hunt: the same request over seeds (`seeds`: "1-100", "1,5,9" or "random"),
        each image checked as it lands against `checks` ("text", "palette:0.8", "distinct"), until
        `hits` images pass or the limit (`max_images`, `max_usd`: inside the spend caps) is reached.
        Every field is checked first (a ParamsError naming each bad one) and the first batch against
        the caps (CapReached): then nothing is written. The hunt is a sweep (Compare opens it);
        its first batch is submitted before this returns. `drive`: go on in a thread of this
        process (the app); the CLI drives it itself with `drive_hunt`. Returns its id."""
        self._may(Op.SPEND)
        spec = hunting.plan(
            base,
            checks=checks,
            hits=hits,
            seeds=seeds,
            max_images=max_images,
            max_usd=max_usd,
            batch=self.hunt_batch(session_key),
        )
        name = sweeps.clean_name(name)

        def begin() -> str:
            backend = self.backend(session_key)
            price = self.pricing(session_key).usd(base.width, base.height, len(base.image_urls))
            first = hunting.room(spec, 0, 0, 0.0, price)
            self._check_caps([spec.params(s) for s in spec.seeds[:first]], 0, session_key)
            sweep_id, _ = self.ledger.create_sweep(
                spec.params(spec.seeds[0]).payload(),
                hunting.seed_axis([]),
                name,
                cells=[],
                created_by=self.actor.id,
            )
            record = {**spec.as_json(), "base_url": backend.connection.base_url}
            record["key_id"] = store.key_id(backend.connection.api_key)
            hunts.create(self.ledger, sweep_id, record, created_by=self.actor.id, lease=backend.runner.owner)
            self._hunt_step(sweep_id, backend, session_key)
            if drive:
                self._drive_in_thread(sweep_id, session_key)
            return sweep_id

        if guard is None:
            return begin()
        return self._once(guard, repr((spec.as_json(), name, seeds)), begin)

    def hunt(self, sweep_id: str, session_key: str | None = None) -> "hunting.HuntView | None":
        """A hunt as people read it (hits, misses, hit rate, cost per hit, why it stopped); None for
        a sweep that is not a hunt."""
        row = hunts.load(self.ledger, sweep_id)
        if row is None:
            return None
        view = self.sweep(sweep_id)
        if view is None:
            return None
        return hunting.summarise(row, view, self.pricing(session_key))

    def hunts_among(self, sweep_ids: list[str]) -> set[str]:
        """Which of these sweeps are hunts (Compare marks their cards)."""
        return hunts.which(self.ledger, list(sweep_ids))

    def stop_hunt(self, sweep_id: str) -> None:
        """Submit no more seeds; those in flight finish, are checked and kept."""
        self._may(Op.SPEND)
        if hunts.load(self.ledger, sweep_id) is None:
            raise ParamsError([f"hunt: there is no hunt {sweep_id!r} in the ledger"])
        hunts.stop(self.ledger, sweep_id, hunting.STOPPED)

    def drive_hunt(self, sweep_id: str, session_key: str | None = None) -> Iterator[tuple[Run, hunts.Result]]:
        """Drive a hunt to its end in the caller's thread (never the scheduler's): each image is
        checked as it lands and judged, the stop rule applied after each, and the next seeds
        submitted while the rule allows. Yields (run, verdict) as each is judged. A hunt another
        live process drives is left to it (nothing is yielded)."""
        backend = self.backend(session_key)
        owner = backend.runner.owner
        row = hunts.load(self.ledger, sweep_id)
        if row is None:
            raise ParamsError([f"hunt: there is no hunt {sweep_id!r} in the ledger"])
        if row.lease != owner:
            if lease_alive(row.lease, row.lease_until) or not hunts.claim(
                self.ledger, sweep_id, owner, expected_lease=row.lease
            ):
                return
        while not self._stopped.is_set():
            judged, in_flight, finished = self._hunt_step(sweep_id, backend, session_key)
            yield from judged
            if finished:
                break
            if not hunts.renew(self.ledger, sweep_id, owner):
                return  # another process took it over
            if not in_flight:
                continue  # some landed while the others were judged: judge them now
            futures = backend.runner.futures(in_flight)
            if futures:
                wait_futures(list(futures), timeout=D.LEASE_RENEW_S, return_when=FIRST_COMPLETED)
            else:  # driven by another process (or not yet): look again soon
                self._stopped.wait(D.HUNT_LOOK_S)
        if self._stopped.is_set():
            return  # the workbench stopped: the hunt goes on when the next one starts
        try:
            self._settle_costs(backend)
        except (CallFailed, LedgerError) as exc:
            log.info("real costs could not be looked up: %s", exc.message)

    def _drive_in_thread(self, sweep_id: str, session_key: str | None) -> None:
        def drive() -> None:
            try:
                for _ in self.drive_hunt(sweep_id, session_key):
                    pass
            except Exception:  # a hunt that breaks stops; its runs and results stay in the ledger
                log.exception("hunt %s stopped on an error", sweep_id)

        thread = threading.Thread(target=drive, name=f"flux-hunt-{sweep_id}", daemon=True)
        self._live.hunts[sweep_id] = thread
        thread.start()

    def orphaned_hunts(self, session_key: str | None = None) -> list[str]:
        """The unfinished hunts of this backend's server and key that nobody drives (their driver
        stopped: a closed terminal, a crashed server), oldest first."""
        backend = self.backend(session_key)
        return [
            row.sweep_id
            for row in hunts.unfinished(self.ledger)
            if row.spec.get("base_url") == backend.connection.base_url
            and row.spec.get("key_id") == store.key_id(backend.connection.api_key)
            and not lease_alive(row.lease, row.lease_until)
            and row.sweep_id not in self._live.hunts
        ]

    def resume_hunts(self) -> list[str]:
        """Go on with the unfinished hunts of this server and key whose driver is gone (the app
        server, as it starts): each in a thread of its own. Returns their ids."""
        taken = self.orphaned_hunts()
        for sweep_id in taken:
            self._drive_in_thread(sweep_id, None)
        return taken

    def _hunt_step(
        self, sweep_id: str, backend: Backend, session_key: str | None
    ) -> tuple[list[tuple[Run, hunts.Result]], list[str], bool]:
        """One look at a hunt: judge every image that landed (checking it now), apply the stop rule,
        submit the seeds it allows. Returns (what was judged, the runs in flight, finished)."""
        row = hunts.load(self.ledger, sweep_id)
        view = self.sweep(sweep_id)
        if row is None or view is None:
            return [], [], True
        spec = hunting.HuntSpec.from_json(row.spec)
        done = {r.run_id: r for r in row.results}
        checks = self.checks([c.run.id for c in view.cells])
        prints = [
            checks.get(r.run_id, {}).get(check_table.PRINT, {}).get("phash") for r in row.results if r.hit
        ]
        hit_prints = [p for p in prints if p]
        hits = row.hits
        judged: list[tuple[Run, hunts.Result]] = []
        stopped = row.stop_reason
        for cell in view.cells:
            run = cell.run
            if run.id in done or not run.state.terminal:
                continue
            found = check_compute.run_checks(self.ledger, self.data_dir, run) if run.image_path else {}
            hit, why = hunting.judge(spec, run, found, hit_prints)
            result = hunts.record(self.ledger, sweep_id, run.id, hit, why)
            judged.append((run, result))
            if hit:
                hits += 1
                phash = found.get(check_table.PRINT, {}).get("phash")
                if phash:
                    hit_prints.append(phash)
            if stopped is None and hits >= spec.hits:  # the moment enough hits exist
                hunts.stop(self.ledger, sweep_id, hunting.HITS)
                stopped = hunting.HITS
        row = hunts.load(self.ledger, sweep_id) or row
        view = self.sweep(sweep_id) or view
        price = self.pricing(session_key)
        each = price.usd(spec.base.width, spec.base.height, len(spec.base.image_urls))
        spent = sum(hunting.run_cost(c.run, price)[0] for c in view.cells)
        # a run that landed while the others were judged is not judged yet: it counts as in flight,
        # so no seed is submitted before its verdict is in
        judged_ids = {r.run_id for r in row.results}
        pending = [c.run.id for c in view.cells if c.run.id not in judged_ids]
        in_flight = [c.run.id for c in view.cells if not c.run.state.terminal]
        submitted = len(view.cells)
        if row.stop_reason is None:
            reason = hunting.stop_reason(spec, row.hits, submitted, spent, each)
            free = hunting.room(spec, submitted, len(pending), spent, each)
            if reason is not None:
                hunts.stop(self.ledger, sweep_id, reason)
            elif free > 0 and not self._stopped.is_set():
                seeds = list(spec.seeds[: submitted + free])
                cells = [([submitted + n], spec.params(s)) for n, s in enumerate(seeds[submitted:])]
                try:
                    pending += backend.runner.extend_sweep(
                        sweep_id,
                        hunting.seed_axis(seeds),
                        cells,
                        created_by=row.created_by,
                        admit=self._admit(session_key, person=row.created_by),
                    )
                except CapReached as exc:
                    hunts.stop(self.ledger, sweep_id, f"{hunting.CAP}: {exc.message}")
        row = hunts.load(self.ledger, sweep_id) or row
        finished = row.stop_reason is not None and not pending
        if finished and row.finished_at is None:
            hunts.finish(self.ledger, sweep_id)
        if len(pending) > len(in_flight):  # some landed meanwhile: no wait before judging them
            in_flight = []
        return judged, in_flight, finished

    def voter(self, name: str | None = None) -> str:
        """Whose votes these are: a signed-in person's own id, always (one vote per person per
        pair); without sign-in, the name typed for a demo at one computer, else the local user."""
        if self.actor.signed_in:
            return self.actor.id
        return " ".join((name or "").split()) or self.actor.id

    def vote(self, sweep_id: str, winner_run_id: str, loser_run_id: str, *, voter: str | None = None) -> None:
        """One vote on a pair of a sweep's cells; voting on the same pair again replaces it."""
        self._may(Op.VOTE)
        view = self._sweep(sweep_id)
        ids = {c.run.id for c in view.cells}
        if winner_run_id not in ids or loser_run_id not in ids or winner_run_id == loser_run_id:
            raise ParamsError([f"vote: both runs must be two different cells of sweep {sweep_id!r}"])
        sweeps.record_vote(
            self.ledger, sweep_id, self.voter(voter), winner_run_id, loser_run_id, actor=self.actor.id
        )

    # --- review (issue 17): threaded comments and one verdict per reviewer on any run ------------
    def comment(
        self, run_id: str, body: str, *, reply_to: int | None = None, author: str | None = None
    ) -> reviews.Comment:
        """A comment on a run, or a reply to one of its comments, under the reviewer's name (see
        `voter`: the signed-in person, always). Blank or longer than COMMENT_MAX_CHARS is a
        ParamsError, and nothing is written."""
        self._may(Op.REVIEW)
        self._row(run_id)
        text = text_field("comment", body, D.COMMENT_MAX_CHARS, one_line=False)
        if reply_to is not None:
            parent = reviews.comment(self.ledger, reply_to)
            if parent is None or parent.run_id != run_id:
                raise ParamsError([f"reply to: there is no comment {reply_to!r} on run {run_id}"])
        return reviews.add_comment(
            self.ledger, run_id, self.voter(author), text, parent_id=reply_to, actor=self.actor.id
        )

    def delete_comment(self, comment_id: int) -> None:
        """Take a comment's words back (its author, or an admin); its replies stay."""
        found = reviews.comment(self.ledger, comment_id)
        if found is None:
            raise ParamsError([f"comment: there is no comment {comment_id!r}"])
        self._may(Op.UNCOMMENT, found.author)
        reviews.delete_comment(self.ledger, found, actor=self.actor.id)

    def comments(self, run_id: str) -> list[tuple[int, reviews.Comment]]:
        """A run's comments as a thread: (depth, comment), in reading order."""
        self._row(run_id)
        return reviews.thread(reviews.comments(self.ledger, [run_id])[run_id])

    def comment_counts(self, run_ids: list[str]) -> dict[str, int]:
        """How many live comments each run has (History's cards, the report)."""
        found = reviews.comments(self.ledger, run_ids)
        return {run_id: sum(not c.deleted for c in items) for run_id, items in found.items()}

    def set_verdict(self, run_ids: list[str], verdict: str | None, *, reviewer: str | None = None) -> None:
        """The reviewer's verdict on each of these runs: "approve", "reject" or "needs work" (giving
        another replaces it; None takes it back). An unknown run or verdict changes nothing."""
        self._may(Op.REVIEW)
        if verdict is not None and verdict not in reviews.VERDICTS:
            raise ParamsError([f"verdict: must be one of {', '.join(reviews.VERDICTS)}, not {verdict!r}"])
        rows = self._rows(list(run_ids))
        reviews.set_verdict(
            self.ledger, [r.id for r in rows], self.voter(reviewer), verdict, actor=self.actor.id
        )

    def verdicts(self, run_ids: list[str]) -> dict[str, list[reviews.Verdict]]:
        """Every reviewer's verdict on each of these runs."""
        return reviews.verdicts(self.ledger, list(run_ids))

    def sweep_verdicts(self, sweep_id: str) -> dict[str, dict[str, int]]:
        """A sweep's review: each reviewer's count of approved, rejected and needs-work cells."""
        view = self._sweep(sweep_id)
        return reviews.by_reviewer(reviews.verdicts(self.ledger, [c.run.id for c in view.cells]))

    # --- the report that travels (issue 17, item 2: flux_core/report.py) ------------------------
    def report(
        self,
        sweep_id: str | None = None,
        run_ids: list[str] | None = None,
        *,
        bundle: str = "html",
        layout: list[str] | None = None,
    ) -> tuple[str, bytes]:
        """A sweep (its grid placed as `layout` names its axes, like Compare's ?layout=) or these runs
        as one self-contained HTML file (bundle "html", the images inlined) or a ZIP of that page and
        the full-size images beside it (bundle "zip"): (file name, bytes). It is made from the ledger
        alone, so it holds no key; everyone let in may make one (like an export)."""
        problems = []
        if bundle not in report_page.BUNDLES:
            problems.append(f"bundle: must be one of {', '.join(report_page.BUNDLES)}, not {bundle!r}")
        if sweep_id is not None and run_ids:
            problems.append("report: give a sweep or runs, not both")
        elif sweep_id is None and not run_ids:
            problems.append("report: give a sweep or at least one run")
        if problems:
            raise ParamsError(problems)
        sweep_part = None
        if sweep_id is not None:
            view = self._sweep(sweep_id)
            rows = [c.run for c in view.cells]
            labels = [view.label(c) for c in view.cells]
            reused = [c.reused for c in view.cells]
            title = f"Sweep: {view.name}" if view.name else f"Sweep {view.id}"
            about = f"{view.summary(named=False).describe()} · base prompt: {' '.join(str(view.base.get('prompt', '')).split())}"
        else:
            found = {r.id: r for r in self._rows(list(run_ids or []))}
            rows = [found[i] for i in dict.fromkeys(run_ids or [])]
            labels, reused = [""] * len(rows), [False] * len(rows)
            title = f"{len(rows)} run{'s' if len(rows) != 1 else ''} from Flux Lab"
            about = ""
        ids = [r.id for r in rows]
        checks, given = self.checks(ids), self.verdicts(ids)
        threads = reviews.comments(self.ledger, ids)
        prices: dict[str, Pricing] = {}
        entries = []
        for number, (row, label, was_reused) in enumerate(zip(rows, labels, reused), start=1):
            image = self.image_path(row)
            stored = row.status == store.COMPLETED and image is not None and image.is_file()
            entries.append(
                report_page.Entry(
                    number,
                    row,
                    label,
                    image if stored else None,
                    self._report_cost(row, was_reused, prices),
                    tuple(check_report.lines(checks.get(row.id, {}))),
                    tuple(given[row.id]),
                    tuple(reviews.thread(threads[row.id])),
                )
            )
        if sweep_id is not None:
            standings = self.tally(view)
            with self.ledger.db() as db:
                voters = db.execute(
                    "SELECT COUNT(DISTINCT voter) FROM votes WHERE sweep_id = ?", [view.id]
                ).fetchone()[0]
            votes = standings.pop("votes")[0]["wins"]
            sweep_part = report_page.SweepPart(
                view.id,
                sweeps.layout(view, sweeps.arrange([a.name for a in view.axes], layout or [])),
                {cell.idx: number for number, cell in enumerate(view.cells, start=1)},
                tuple(sweeps.safety_matrix(view)),
                standings,
                votes,
                voters,
                presentation.sweep_review(self.sweep_verdicts(view.id), len(view.cells)),
            )
        made = report_page.Report(title, store.now_iso(), self.actor.id, tuple(entries), sweep_part, about)
        name = report_page.file_name(sweep_id=sweep_id, runs=len(rows), bundle=bundle)
        return name, report_page.build(made, bundle)

    def _report_cost(self, row: Run, reused: bool, prices: dict[str, Pricing]) -> report_page.Cost:
        """A run's cost in a report: Segmind's real cost, else nothing for a run that made no job,
        else an estimate from that server's real costs (or the default price)."""
        if reused:
            return report_page.Cost(0.0, report_page.REUSED)
        if row.cost_usd is not None:
            return report_page.Cost(row.cost_usd, report_page.REAL)
        if row.state.billed == "no":
            return report_page.Cost(0.0, report_page.NOT_BILLED)
        price = prices.setdefault(row.base_url, pricing.learn(self.ledger, row.base_url, None))
        return report_page.Cost(
            price.usd(row.width, row.height, len(row.image_urls), row.model), report_page.ESTIMATE
        )

    # --- Compose (issue 14): images per Generate, presets, the request as code, one-click fixes ---
    @staticmethod
    def batch_params(params: FluxParams, count: int, *, seed_random: bool = False) -> list[FluxParams]:
        """The `count` requests of one Generate: seeds drawn afresh for a random seed (the first is
        params.seed), else params.seed, params.seed + 1, ... A bad count or a seed that would run
        past SEED_MAX is a ParamsError naming the field."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= D.COMPOSE_MAX_IMAGES:
            raise ParamsError(
                [f"images must be a whole number from 1 to {D.COMPOSE_MAX_IMAGES} (got {count!r})"]
            )
        if seed_random:
            seeds = [params.seed, *(random_seed() for _ in range(count - 1))]
        else:
            if params.seed + count - 1 > D.SEED_MAX:
                raise ParamsError(
                    [
                        f"seed {params.seed} with {count} images would go past {D.SEED_MAX}: "
                        f"choose a seed of at most {D.SEED_MAX - count + 1}"
                    ]
                )
            seeds = [params.seed + i for i in range(count)]
        return [params if seed == params.seed else params.replace(seed=seed) for seed in seeds]

    def submit_many(
        self,
        params: FluxParams,
        count: int = 1,
        *,
        seed_random: bool = False,
        session_key: str | None = None,
        references: list[tuple[bytes, str]] | None = None,
        guard: str | None = None,
        parent: str | None = None,
    ) -> list[str]:
        """`count` runs of one request at once, one seed each (see batch_params): every one checked
        before anything is uploaded or written, local references uploaded once for all, each run
        written to the ledger before it is submitted. With `guard`, the same batch from the same
        caller within DOUBLE_SUBMIT_WINDOW_S (a double click) is submitted once: its ids again. The
        whole batch is checked against the spend caps at once: all of it runs, or none (CapReached).
        `parent`: the run Compose's form was recalled from; every run of the batch names it, as an
        "edit" when `params` differ from its request, else a "recall"."""
        self._may(Op.SPEND)
        batch = self.batch_params(params, count, seed_random=seed_random)
        came_from = self._came_from(parent, None, params)
        if guard is not None:
            payload = params.fields()  # its model too: the same body to another model is another request
            if seed_random:
                payload["seed"] = "random"
            fingerprint = repr((sorted(payload.items()), count)) + repr([r[0][:64] for r in references or []])
            ids = self._once(
                guard,
                fingerprint,  # not its parent: a double click names the first click's run as its own
                lambda: self.submit_many(
                    params,
                    count,
                    seed_random=seed_random,
                    session_key=session_key,
                    references=references,
                    parent=parent,
                ),
            )
            return cast(list[str], ids)
        if references:
            self._check_caps(batch, len(references), session_key)  # before the upload
        urls = self.upload(references, session_key) if references else []
        return self.backend(session_key).runner.enqueue_many(
            [p.replace(image_urls=[*p.image_urls, *urls]) if urls else p for p in batch],
            seed_random=seed_random,
            created_by=self.actor.id,
            admit=self._admit(session_key),
            came_from=came_from,
        )

    def _rerun_changed(
        self,
        row: Run,
        params: FluxParams,
        overrides: dict[str, Any],
        session_key: str | None,
        guard: str | None,
    ) -> str:
        """A past run again with some fields changed: a new run whose parent is the old one (an
        "edit"), and whose first note says what changed."""

        def begin() -> str:
            run_id = self.submit(
                params,
                seed_random=bool(row.seed_random),
                session_key=session_key,
                parent=row.id,
                lineage=store.EDIT,
            )
            changed = ", ".join(f"{k} {v}" for k, v in sorted(overrides.items()))
            self.ledger.transition(run_id, detail=f"Run again from run {row.id} with {changed}.")
            return run_id

        if guard is None:
            return begin()
        return cast(str, self._once(guard, f"rerun {row.id} {sorted(overrides.items())!r}", begin))

    def save_preset(
        self,
        name: str,
        *,
        width: Any = D.WIDTH,
        height: Any = D.HEIGHT,
        seed: Any = None,
        safety_tolerance: Any = D.SAFETY_TOLERANCE,
        output_format: Any = D.OUTPUT_FORMAT,
        prompt: str | None = None,
    ) -> Preset:
        """Save a parameter set under a name (saving a name again replaces it). Every value is
        checked by FluxParams' rules first: a bad one is a ParamsError naming it, and nothing is saved.
        `seed` None or "random": a random seed per run. `prompt` None: the preset keeps no prompt."""
        self._may(Op.PRESET)
        preset = presets.make(
            name,
            width=width,
            height=height,
            seed=seed,
            safety_tolerance=safety_tolerance,
            output_format=output_format,
            prompt=prompt,
        )
        return presets.save(self.ledger, preset)

    def presets(self) -> list[Preset]:
        return presets.all_presets(self.ledger)

    def preset(self, name: str) -> Preset | None:
        return presets.get(self.ledger, name)

    def delete_preset(self, name: str) -> bool:
        """Delete a preset; whether one of that name existed."""
        self._may(Op.PRESET)
        return presets.delete(self.ledger, name)

    def snippet(self, run_id: str, language: str) -> str:
        """The run's exact request (the payload it sent) as code: curl, httpx or sdk. The key is an
        environment variable reference, never the key."""
        row = self._row(run_id)
        return snippets.build(language, row.request, base_url=row.base_url, model=row.model)

    # --- Compare's sweep viewer (issue 14, COMPARE): one cell again, a name given later -------
    def retry_cell(self, sweep_id: str, idx: int, *, session_key: str | None = None) -> str:
        """Run one failed or blocked cell of a sweep again (never one whose submit outcome is
        unknown); the cell then shows the new run. Returns the new run's id."""
        self._may(Op.SPEND)
        return sweeps.retry_cell(
            self._sweep(sweep_id),
            idx,
            self.ledger,
            self.backend(session_key).runner,
            created_by=self.actor.id,
            admit=self._admit(session_key),
        )

    def rename_sweep(self, sweep_id: str, name: str) -> str:
        """Name a saved sweep after the fact (trimmed, at most SWEEP_NAME_MAX_CHARS; empty clears
        it); returns the name as kept. The sweep's maker or an admin only."""
        self._may(Op.SWEEP, self._sweep(sweep_id).created_by)
        return sweeps.rename(self.ledger, sweep_id, name, actor=self.actor.id)

    def _sweep(self, sweep_id: str) -> sweeps.SweepView:
        view = self.sweep(sweep_id)
        if view is None:
            raise ParamsError([f"sweep: there is no sweep {sweep_id!r} in the ledger"])
        return view

    # --- curation -----------------------------------------------------------------------------
    def curate(
        self,
        run_id: str,
        *,
        favourite: bool | None = None,
        rating: int | None = None,
        notes: str | None = None,
        tags: list[str] | None = None,
    ) -> None:
        """Favourite, rating (1-5), note and tags of a run: its maker's or an admin's to change."""
        self._may(Op.CURATE, self._row(run_id).created_by)
        history.curate(
            self.ledger,
            run_id,
            actor=self.actor.id,
            favourite=favourite,
            rating=rating,
            notes=notes,
            tags=tags,
        )

    def delete(self, run_ids: list[str]) -> None:
        """Move runs to the trash (restorable): one's own runs, or anyone's for an admin."""
        self._may_all(Op.DELETE, run_ids)
        history.delete(self.ledger, run_ids, actor=self.actor.id)

    def restore(self, run_ids: list[str]) -> None:
        self._may_all(Op.DELETE, run_ids)
        history.restore(self.ledger, run_ids, actor=self.actor.id)

    def purge(self, run_ids: list[str] | None = None) -> int:
        """Delete runs in the trash for good, their image files with them; returns how many.
        Admins only."""
        self._may(Op.PURGE)
        return history.purge(self.ledger, self.data_dir, run_ids, actor=self.actor.id)

    def _may_all(self, op: Op, run_ids: list[str]) -> None:
        """NotAllowed unless the actor may do `op` to every one of these runs (UnknownRun first)."""
        for row in self._rows(run_ids):
            self._may(op, row.created_by)

    def activity(self, run_id: str) -> list[actions.Action]:
        """Who did what to a run, oldest first (its maker is the run's created_by)."""
        return actions.of_run(self.ledger, run_id)

    # --- prompt lineage (issue 17): where runs came from, versions named and pinned -------------
    def lineage(self, run_id: str) -> lineages.Tree:
        """The run's lineage tree: its ancestors, it, its descendants, with the word diff of the
        prompts and the other fields that changed along every edge."""
        return lineages.tree(self.ledger, self._row(run_id).id)

    def diff(self, a_id: str, b_id: str) -> dict[str, Any]:
        """Two runs compared as every front end shows them: the settings that differ (`field`, `a`,
        `b`), the prompt's fields that changed (`path: old → new`, for structured prompts) and the
        word diff of the prompts ((op, text), see presentation.word_diff)."""
        a, b = self._row(a_id), self._row(b_id)
        settings = [
            {"field": line["field"], "a": line["A"], "b": line["B"]}
            for line in presentation.compare_fields([a, b], ["A", "B"])
            if line["differs"] and line["field"] != "prompt"
        ]
        return {
            "a": a.id,
            "b": b.id,
            "settings": settings,
            "fields": presentation.field_changes(a.prompt, b.prompt),
            "words": presentation.word_diff(a.prompt, b.prompt),
        }

    def name_version(self, run_id: str, name: str) -> str:
        """Name a run's version ("v3 – tighter headline"): trimmed, 1 to VERSION_NAME_MAX_CHARS
        characters (a ParamsError naming the field otherwise, and nothing changes). Returns it."""
        self._may(Op.VERSION)
        row = self._row(run_id)
        return lineages.name(self.ledger, row.id, name, actor=self.actor.id)

    def pin(self, run_id: str, *, pinned: bool = True) -> str | None:
        """Pin a run as the best of its lineage tree (the run pinned before in that tree is
        unpinned), or unpin it. Returns the id of the run unpinned, if any."""
        self._may(Op.VERSION)
        row = self._row(run_id)
        return lineages.pin(self.ledger, row.id, actor=self.actor.id, pinned=pinned)

    def people(self) -> list[str]:
        """Everyone who made a run (History's filter by person)."""
        return history.people(self.ledger)

    # --- organise: boards and curation of many runs at once (issue 14, ORGANISE) ----------------
    def boards(self) -> list[Board]:
        """Every board, by name, with how many runs each holds."""
        return board_store.all_boards(self.ledger, D.BOARD_OWNER)

    def board(self, ref: str) -> Board:
        """The board with this id or name (whatever its case); a ParamsError naming it otherwise."""
        found = board_store.find(self.ledger, ref or "", D.BOARD_OWNER) if (ref or "").strip() else None
        if found is None:
            raise ParamsError([f"board: there is no board named {(ref or '').strip()!r}"])
        return found

    def create_board(self, name: str, run_ids: list[str] | None = None) -> Board:
        """A new board (with these runs on it, in the same transaction). The name is trimmed, not
        empty, at most BOARD_NAME_MAX_CHARS, and not taken whatever its case."""
        self._may(Op.BOARD)
        checked = board_name(name)
        self._rows(run_ids or [])
        made = board_store.create(self.ledger, checked, D.BOARD_OWNER, run_ids or [], actor=self.actor.id)
        return self.board(made)

    def _my_board(self, board: str) -> Board:
        """The board, when the actor may change it: its maker, or an admin."""
        found = self.board(board)
        self._may(Op.BOARD, found.created_by)
        return found

    def rename_board(self, board: str, name: str) -> Board:
        checked = board_name(name)
        found = self._my_board(board)
        board_store.rename(self.ledger, found.id, checked, D.BOARD_OWNER, actor=self.actor.id)
        return self.board(found.id)

    def delete_board(self, board: str) -> None:
        """The board goes; its runs stay."""
        board_store.delete(self.ledger, self._my_board(board).id, actor=self.actor.id)

    def add_to_board(self, board: str, run_ids: list[str], *, create: bool = False) -> Board:
        """Put runs on a board; with `create`, a board of that name is made when there is none
        (in the same transaction)."""
        self._rows(run_ids)
        if create and board_store.find(self.ledger, board or "", D.BOARD_OWNER) is None:
            return self.create_board(board, run_ids)
        found = self._my_board(board)
        board_store.add(self.ledger, found.id, run_ids, actor=self.actor.id)
        return self.board(found.id)

    def remove_from_board(self, board: str, run_ids: list[str]) -> int:
        """Take runs off a board (the runs stay); returns how many were on it."""
        found = self._my_board(board)
        return board_store.remove(self.ledger, found.id, run_ids, actor=self.actor.id)

    def boards_of(self, run_id: str) -> list[Board]:
        return board_store.of_runs(self.ledger, [run_id], D.BOARD_OWNER)[run_id]

    def set_boards(self, run_id: str, names: list[str]) -> list[Board]:
        """Exactly these boards for one run (a run's panel in History): names not in use yet make
        new boards; every name is checked before anything changes."""
        checked = list(dict.fromkeys(board_name(n) for n in names))
        self._may(Op.CURATE, self._row(run_id).created_by)
        board_store.set_for_run(self.ledger, run_id, checked, D.BOARD_OWNER, actor=self.actor.id)
        return self.boards_of(run_id)

    def curate_many(
        self,
        run_ids: list[str],
        *,
        add_tags: list[str] | None = None,
        remove_tags: list[str] | None = None,
        rating: int | None = None,
        favourite: bool | None = None,
    ) -> int:
        """The same curation for every one of these runs, in one transaction: tags added, tags
        taken away, a rating (1-5), favourite or not. Everything is checked first; a bad value
        changes nothing. Returns how many runs were changed."""
        problems = []
        added = [t.strip() for t in add_tags or []]
        removed = [t.strip() for t in remove_tags or []]
        for field, tags in (("add tags", added), ("remove tags", removed)):
            if any(not t or len(t) > D.TAG_MAX_CHARS or not t.isprintable() for t in tags):
                problems.append(f"{field}: each tag is one line of 1 to {D.TAG_MAX_CHARS} characters")
        if rating is not None and (
            isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5
        ):
            problems.append(f"rating: a whole number from 1 to 5 (got {rating!r})")
        if not (added or removed or rating is not None or favourite is not None):
            problems.append("nothing to change: give tags to add or remove, a rating or a favourite mark")
        if problems:
            raise ParamsError(problems)
        self._may_all(Op.CURATE, run_ids)
        return history.curate_many(
            self.ledger,
            run_ids,
            add_tags=tuple(added),
            remove_tags=tuple(removed),
            rating=rating,
            favourite=favourite,
            actor=self.actor.id,
        )

    def _rows(self, run_ids: list[str]) -> list[Run]:
        """These runs; an UnknownRun naming every id the ledger does not hold."""
        found = self.ledger.get_many(list(dict.fromkeys(run_ids)))
        missing = sorted(set(run_ids) - {r.id for r in found})
        if missing:
            raise UnknownRun(
                f"There is no run {', '.join(repr(m) for m in missing)} in the ledger.",
                hint="`flux-lab history` lists them.",
            )
        return found

    # --- reading ------------------------------------------------------------------------------
    def find(self, query: history.Query) -> history.Page:
        return history.find(self.ledger, query)

    def sweep(self, sweep_id: str) -> sweeps.SweepView | None:
        """A sweep as the ledger holds it now. Read once for each state of it (its topic's digest,
        read from the ledger on each call: a few indexed rows) and shared: five tabs watching a live grid, and the hunt's summary of it on
        the same page, read it once per change rather than once each. Nobody changes a view."""
        digest = ledger_changes.digest_now(
            self.ledger.path, ledger_changes.topic(ledger_changes.SWEEP, sweep_id)
        )
        if digest is None:
            return sweeps.load(self.ledger, sweep_id)
        views = self._live.sweep_views
        with self._lock:
            found = views.get((sweep_id, digest))
        if found is None:
            found = sweeps.load(self.ledger, sweep_id)
            if found is not None:
                with self._lock:
                    views[(sweep_id, digest)] = found
                    while len(views) > D.SWEEP_VIEWS_KEPT:
                        views.pop(next(iter(views)))
        return found

    def recent_sweeps(self, limit: int = 10) -> list[sweeps.SweepSummary]:
        return sweeps.recent(self.ledger, limit=limit)

    def voted_pairs(self, sweep_id: str, voter: str | None = None) -> Any:
        """The pairs this voter (see `voter`) has voted on."""
        return sweeps.voted_pairs(self.ledger, sweep_id, self.voter(voter))

    def tally(self, view: sweeps.SweepView) -> Any:
        return sweeps.tally(view, self.ledger)

    def tags(self) -> list[str]:
        return history.all_tags(self.ledger)

    def insights(self) -> dict[str, list[dict[str, Any]]]:
        return history.insights(self.ledger)

    def export_zip(self, run_ids: list[str]) -> bytes:
        """The runs' images (recipes embedded), manifest.json and runs.csv, as one ZIP."""
        on = board_store.of_runs(self.ledger, run_ids, D.BOARD_OWNER)
        names = {run_id: [b.name for b in found] for run_id, found in on.items()}
        return history.export_zip(self.ledger.get_many(run_ids), self.data_dir, names)

    def search(
        self,
        text: str | None = None,
        *,
        limit: int = 50,
        status: str | None = None,
        board: str | None = None,
        verdict: str | None = None,
        text_check: str | None = None,
        field: str | None = None,
        sort: str = "newest",
    ) -> list[Run]:
        """Runs (newest first, or History's `sort`): words in the prompt, notes or tags, and/or one
        status, on a board, with a reviewer's verdict (reviews.VERDICTS, or "none": nobody's), what
        the text check said (history.TEXT_FILTERS), and/or a structured prompt's field holding some
        words (`path = words`). A bad value is a ParamsError naming it."""
        field_words = history.field_filter(field) if field is not None else None
        board_id = self.board(board).id if board is not None else None
        if verdict is not None:
            reviews.check_filter(verdict)
        if text_check is not None:
            history.text_check_sql(text_check)
        history.check_sort(sort)
        return self.ledger.search(
            text,
            limit=limit,
            status=status,
            board_id=board_id,
            verdict=verdict,
            text_check=text_check,
            field=field_words,
            sort=sort,
        )

    def events(self, run_id: str) -> list[Event]:
        return self.ledger.events(run_id)

    def runs(self, run_ids: list[str]) -> list[Run]:
        return self.ledger.get_many(run_ids)

    def wait(self, run_ids: list[str]) -> list[Run]:
        """Block until these runs are no longer driven here; their rows as they ended, with the real
        cost of those that finished (one read of Segmind's record; never fails the wait)."""
        for backend in list(self._backends.values()):
            backend.runner.wait(run_ids)
            try:
                self._settle_costs(backend)
            except (CallFailed, LedgerError) as exc:  # the app's scan, or the next command, tries again
                log.info("real costs could not be looked up: %s", exc.message)
        return self.ledger.get_many(run_ids)

    def as_completed(self, run_ids: list[str]) -> Iterator[Run]:
        """Each run's row as soon as it stops being driven here (runs not driven here first)."""
        futures: dict[Any, str] = {}
        for backend in list(self._backends.values()):
            futures.update(backend.runner.futures(run_ids))
        for row in self.ledger.get_many([r for r in run_ids if r not in futures.values()]):
            yield row
        for future in as_completed(futures):
            finished = self.ledger.get(futures[future])
            if finished is not None:
                yield finished

    def problem(self, run_id: str) -> str | None:
        """What stopped a run that the ledger itself could not record (a full disk)."""
        for backend in list(self._backends.values()):
            text = backend.runner.problem(run_id)
            if text:
                return text
        return None

    def resume(self, session_key: str | None = None) -> list[str]:
        """Take over the runs of this server and key that nobody drives; returns their ids."""
        self._may(Op.SPEND)
        return self.backend(session_key).runner.resume()

    def elsewhere(self, session_key: str | None = None) -> list[Run]:
        """Unfinished runs that belong to another server than this backend's."""
        base_url = self.backend(session_key).connection.base_url
        return [r for r in self.ledger.active() if r.base_url != base_url]

    def require_key(self, session_key: str | None = None) -> None:
        if not self.backend(session_key).connection.api_key:
            raise MissingKey("No Segmind API key.")

    def _row(self, run_id: str) -> Run:
        row = self.ledger.get(run_id)
        if row is None:
            raise UnknownRun(
                f"There is no run {run_id!r} in the ledger.", hint="`flux-lab history` lists them."
            )
        return row

    def _once(self, guard: str, fingerprint: str, action: Any) -> str:
        """Run `action` unless the same caller did the same within DOUBLE_SUBMIT_WINDOW_S. The check,
        the action and the record happen under the caller's own lock: two clicks that arrive at the
        same moment make one run, and other callers are not held up."""
        digest = _digest(fingerprint)
        with self._lock:
            guard_lock = self._guard_locks.setdefault(guard, threading.Lock())
        with guard_lock:
            last = self._last_submit.get(guard)
            if last and last[0] == digest and time.monotonic() - last[1] < D.DOUBLE_SUBMIT_WINDOW_S:
                return last[2]
            result = action()
            self._last_submit[guard] = (digest, time.monotonic(), result)
            return result

    def resume_orphans(self, min_interval_s: float = D.ORPHAN_SCAN_S) -> list[str]:
        """Pick up runs nobody is driving (left open by a failed poll, or by a process that died),
        at most once every `min_interval_s`; each backend takes the runs of its own server."""
        with self._lock:
            if time.monotonic() - self._live.last_resume < min_interval_s:
                return []
            self._live.last_resume = time.monotonic()
            backends = list(self._backends.values())
        taken: list[str] = []
        for backend in backends:
            taken += backend.runner.resume()
            try:
                self._settle_costs(backend)
            except (CallFailed, LedgerError):  # tried again on the next scan
                log.info("real costs could not be looked up this time", exc_info=True)
        return taken

    def _scan_orphans(self) -> None:
        """Every ORPHAN_SCAN_S, whether or not anybody has a page open, pick up runs nobody drives."""
        while not self._stopped.wait(D.ORPHAN_SCAN_S):
            try:
                self.resume_orphans()
            except Exception:  # a scan that failed is tried again next time
                log.exception("the scan for runs nobody drives failed")

    # --- Segmind's own record: real costs, and the runs made elsewhere ------------------------
    def settle_costs(self, session_key: str | None = None, limit: int = D.COST_CHECK_BATCH) -> int:
        """Look up the real cost of finished runs that lack it, from one read of Segmind's request
        history (a page or two, not a request per run); each run is asked about at most every
        COST_CHECK_EVERY_S, for COST_CHECK_FOR_S. Returns how many got theirs."""
        self._may(Op.USE_KEY)
        return self._settle_costs(self.backend(session_key), limit)

    def _settle_costs(self, backend: "Backend", limit: int = D.COST_CHECK_BATCH) -> int:
        key = store.key_id(backend.connection.api_key)
        due = self.ledger.runs(
            "SELECT * FROM runs INDEXED BY runs_cost_open WHERE cost_usd IS NULL AND request_id IS NOT NULL AND status IN (?, ?) "
            "AND base_url = ? AND key_id = ? AND finished_at >= ? "
            "AND (cost_checked_at IS NULL OR cost_checked_at < ?) ORDER BY seq DESC LIMIT ?",
            [
                store.COMPLETED,
                store.UNUSABLE,
                backend.connection.base_url,
                key,
                store.now_iso(-D.COST_CHECK_FOR_S),
                store.now_iso(-D.COST_CHECK_EVERY_S),
                limit,
            ],
        )
        if not due:
            return 0
        costs = settle.costs_of(
            backend.client, {r.request_id or "" for r in due}, since=min(r.finished_at or "" for r in due)
        )
        for row in due:
            cost = costs.get(row.request_id or "")
            if cost is not None:
                self.ledger.transition(row.id, cost_checked_at=store.now_iso(), cost_usd=cost)
            else:
                self.ledger.transition(row.id, cost_checked_at=store.now_iso())
        return sum(1 for row in due if costs.get(row.request_id or "") is not None)

    def real_cost(self, run_id: str, session_key: str | None = None) -> Run:
        """The run, with its real cost looked up in Segmind's record if the ledger lacks it."""
        row = self._row(run_id)
        if not team.allowed(self.actor, Op.USE_KEY):  # a viewer's look never uses the team key
            return row
        backend = self.backend(session_key)
        if (
            backend.connection.api_key
            and row.cost_usd is None
            and row.request_id
            and row.state.billed != "no"
            and row.base_url == backend.connection.base_url
            and row.key_id == store.key_id(backend.connection.api_key)
        ):
            look = settle.find_request(backend.client, row.request_id)
            if look.record is not None and look.record.cost_usd is not None:
                self.ledger.transition(row.id, cost_usd=look.record.cost_usd, cost_checked_at=store.now_iso())
                return self._row(run_id)
        return row

    def import_history(
        self, *, days: int = D.IMPORT_DAYS, user_email: str | None = None, session_key: str | None = None
    ) -> "ImportReport":
        """Bring the key's FLUX.2 [max], [pro] and [flex] requests of the last `days` that the
        ledger does not hold (made in Segmind's playground, by scripts, by a teammate when
        `user_email` is given) into the ledger, marked imported, each under its model; their images
        are downloaded while their URLs live. Running it again imports nothing new. Admins only: it
        reads every request of the key."""
        self._may(Op.IMPORT)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= D.IMPORT_MAX_DAYS:
            raise ParamsError([f"days must be a whole number from 1 to {D.IMPORT_MAX_DAYS} (got {days!r})"])
        email = (user_email or "").strip() or None
        if email is not None and ("@" not in email or any(c.isspace() for c in email)):
            raise ParamsError([f"user_email must be an e-mail address (got {email!r})"])
        backend = self.backend(session_key)
        records = [
            r for r in settle.records_since(backend.client, days, user_email=email) if settle.model_of(r)
        ]
        known = self.ledger.claimed_request_ids([r.request_id for r in records])
        imported: list[str] = []
        skipped: list[tuple[str, str]] = []
        for record in records:
            if record.request_id in known:
                continue
            try:
                imported.append(self._import_one(backend, record))
            except ParamsError as exc:
                skipped.append((record.request_id, "; ".join(exc.problems)))
        if imported:
            backend.runner.resume()  # download what finished, poll what is still pending
        log.info(
            "imported %d runs from the request history (%d skipped, %d held already)",
            len(imported),
            len(skipped),
            len(known),
        )
        return ImportReport(tuple(imported), tuple(skipped), len(known))

    def _import_one(self, backend: "Backend", record: RequestRecord) -> str:
        body = dict(record.request_body or {})
        if "seed" not in body:
            raise ParamsError(["Segmind's record does not say which seed it used"])
        left_out = sorted(k for k in body if k not in FluxParams.model_fields or k == "model")
        sent = {k: v for k, v in body.items() if k in FluxParams.model_fields and k != "model"}
        params = FluxParams.parse(sent, model=settle.model_of(record))
        made = record.created_at or settle.utc_now()
        words = (
            f"Imported from Segmind's request history: made outside Flux Lab at {made:%Y-%m-%d %H:%M:%S} UTC."
        )
        if left_out:
            words += f" Inputs Flux Lab does not model were left out: {', '.join(left_out)}."
        job = Job.from_request_id(record.request_id, backend.connection.base_url)
        fields: dict[str, Any] = dict(
            origin=D.IMPORTED,
            settlement=words,
            request_id=record.request_id,
            status_url=job.status_url,
            response_url=job.response_url,
            poll_url=job.poll_url,
            submitted_at=made.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            cost_usd=record.cost_usd,
            # whose Segmind account made it, where the record says (a teammate's e-mail address)
            created_by=(record.user_email or "").strip().lower(),
        )
        status = store.QUEUED
        if record.status == "COMPLETED":
            age = (settle.utc_now() - made).total_seconds()
            if record.generation_url and age < D.OUTPUT_RETENTION_S:
                status, fields["output_url"] = store.DOWNLOADING, record.generation_url
            else:
                status = store.EXPIRED if record.generation_url else store.UNUSABLE
                fields["finished_at"] = store.now_iso()
                fields["error"] = (
                    "Segmind deletes outputs after seven days, and this one is older."
                    if record.generation_url
                    else "Segmind's record of it names no output."
                )
        elif record.status == "FAILED":
            failure = failure_from_body({"status": "FAILED", "error": record.error}, params.safety_tolerance)
            status, fields["error"], fields["error_kind"] = (
                failure.status_name,
                failure.user_text(),
                failure.kind,
            )
            fields["finished_at"] = store.now_iso()
        return self.ledger.record_run(
            params,
            status,
            backend=backend.connection.backend,
            base_url=backend.connection.base_url,
            key=backend.connection.api_key,
            detail=words,
            **fields,
        )

    def sweep_cap(self) -> int:
        return _env_number(D.SWEEP_CAP_ENV, int, D.SWEEP_CELL_CAP)

    def run(self, run_id: str) -> Run | None:
        return self.ledger.get(run_id)

    def recent(self, limit: int = D.RECENT_RUNS) -> list[Run]:
        return self.ledger.search(None, limit=limit)

    def image_path(self, row: Run, thumb: bool = False) -> Path | None:
        rel = row.thumb_path if thumb else row.image_path
        return self.data_dir / rel if rel else None

    def pricing(self, session_key: str | None = None) -> Pricing:
        """What requests cost on this backend, per model: learned from the ledger's real costs of
        each model once it holds some, else the flat price of a [max] image (FLUX_LAB_PRICE, or the
        embedded emulator's) in the price table's proportions."""
        backend = self.backend(session_key)
        flat: float | None
        if backend.is_emulator and self.emulator is not None:
            flat = self.emulator.emulator.config.cost
        else:
            try:
                flat = float(os.environ[D.PRICE_ENV])
            except (KeyError, ValueError):
                flat = None
        return pricing.learn(self.ledger, backend.connection.base_url, flat)

    def credits(self, session_key: str | None = None, max_age_s: float = 60.0) -> float | None:
        """Remaining credits as last known; a stale value is refreshed in the background, so a
        slow or unreachable server never holds up a page. None until first known. Viewers never use
        the team key: NotAllowed."""
        self._may(Op.USE_KEY)
        backend = self.backend(session_key)
        slot = _digest(backend.connection.api_key)
        with self._lock:
            cached = self._credits.get(slot)
            stale = cached is None or time.monotonic() - cached[0] >= max_age_s
            if stale:  # mark as being refreshed, keeping the old value meanwhile
                self._credits[slot] = (time.monotonic(), cached[1] if cached else None)
        if stale:
            thread = threading.Thread(target=self._refresh_credits, args=(backend, slot), daemon=True)
            self._credit_threads[:] = [t for t in self._credit_threads if t.is_alive()] + [thread]
            thread.start()
            if cached is None:  # the first look at a key: wait briefly, so it is verified (or not) at once
                thread.join(timeout=D.KEY_CHECK_WAIT_S)
        with self._lock:
            return self._credits[slot][1]

    def key_check(self, session_key: str | None = None) -> tuple[str, CallFailed | None]:
        """What is known of a key: ("verified", None) once a call with it succeeded (the credits call),
        ("rejected", the error) once Segmind refused it (401/403), else ("unchecked", None)."""
        self._may(Op.USE_KEY)
        slot = _digest(self.backend(session_key).connection.api_key)
        with self._lock:
            if slot not in self._key_checks:
                return "unchecked", None
            error = self._key_checks[slot]
        return ("verified", None) if error is None else ("rejected", error)

    def _refresh_credits(self, backend: Backend, slot: str) -> None:
        try:
            body = backend.client.credits()
            value: float | None = float(body.get("credits", 0.0)) + float(body.get("free-credits", 0.0))
        except (AuthError, ForbiddenError) as exc:
            with self._lock:
                self._key_checks[slot] = exc
            return
        except (CallFailed, TypeError, ValueError, AttributeError):
            return
        with self._lock:
            self._credits[slot] = (time.monotonic(), value)
            self._key_checks[slot] = None

    def shutdown(self, wait: bool = False) -> None:
        """Stop the runners (wait=True lets the runs in hand finish first) and the emulator."""
        self._stopped.set()
        if wait:
            for thread in self._credit_threads:
                thread.join(timeout=10)
        for backend in self._backends.values():
            backend.runner.shutdown(wait=wait)
            backend.client.close()
        if self._live.checker is not None:
            self._live.checker.stop(wait=wait)
        if wait:  # a hunt's thread ends at its next look (it submits nothing more once stopped)
            for thread in list(self._live.hunts.values()):
                thread.join(timeout=D.CHECK_STOP_WAIT_S)
        if self.emulator is not None:
            self.emulator.stop()

    def _updated(self, row: Run) -> None:
        """Every transition a runner makes: the pages following the ledger are told at once (its
        change feed looks now), and a stored image goes to the background checker. The start of a
        download is not hurried: it usually ends within milliseconds, and a page drawing it again
        then would only slow the storing of the image it waits for (the feed's next look finds a
        download that takes longer)."""
        if row.status != store.DOWNLOADING:
            ledger_changes.poke(self.ledger.path)
        if row.status == store.COMPLETED and self._live.checker is not None:
            self._live.checker.poke()
        if self._on_update_outer is not None:
            self._on_update_outer(row)

    @property
    def changes(self) -> ledger_changes.Feed:
        """The ledger's change feed in this process: what live pages listen on (flux_ui/live.py)."""
        return ledger_changes.feed(self.ledger.path)

    # --- automatic checks (flux_core/checks) --------------------------------------------------
    def checks(self, run_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """The stored check results of these runs: run id -> check name -> result."""
        return check_table.of_runs(self.ledger, list(run_ids))

    @property
    def checking(self) -> bool:
        """Whether this workbench checks every stored image in the background (the app server's,
        unless FLUX_LAB_CHECKS=0): if not, a run's checks come only from `check` (or another process)."""
        return self._live.checker is not None

    def check(self, run_ids: list[str], *, again: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
        """Compute now (in the caller) the checks these runs' images lack, or all of them `again`,
        and store them. A run without a stored image is named in a NotFound."""
        rows = self._rows(list(run_ids))
        unstored = [r.id for r in rows if not r.image_path]
        if unstored:
            raise NoImage(
                f"No stored image to check for run(s) {', '.join(unstored)}",
                hint="Only a completed run has an image; `flux-lab show RUN` says where a run is.",
            )
        return {r.id: check_compute.run_checks(self.ledger, self.data_dir, r, again=again) for r in rows}

    def probe_estimate(self, run_id: str, session_key: str | None = None) -> str:
        """What checking this run's reproducibility costs, in words (one more image)."""
        row = self._row(run_id)
        pricing = self.pricing(session_key)
        cost = (
            pricing.words(pricing.for_params(row.params), models=[row.model]) or "Its cost is not known yet."
        )
        return f"Checking reproducibility sends this run's exact request (seed {row.seed}) once more: one image. {cost}."

    def probe(
        self,
        run_id: str,
        *,
        confirmed: bool = False,
        session_key: str | None = None,
        guard: str | None = None,
    ) -> str:
        """The determinism probe: send this run's exact request (its seed included) once more; when
        the second image is stored, the two are compared and the verdict lands on this run's checks
        ("same image", "small drift", "different"). It costs one image, so it needs `confirmed`
        (a ConfirmationNeeded with the estimate otherwise) and spends as any run does."""
        self._may(Op.SPEND)
        row = self._row(run_id)
        if not row.image_path:
            raise NoImage(
                f"Run {run_id} has no stored image to compare a second run with",
                hint="Check the reproducibility of a completed run.",
            )
        if not confirmed:
            raise ConfirmationNeeded(
                self.probe_estimate(run_id, session_key),
                hint="Add --yes to send it.",
            )
        # a guard of its own: the run's own submit from this session is not the probe's double click
        probe_guard = f"{guard}\x00probe:{run_id}" if guard is not None else None
        probe_id = self.submit(
            row.params,
            seed_random=False,
            session_key=session_key,
            guard=probe_guard,
            parent=row.id,
            lineage=store.PROBE,
        )
        check_table.save(
            self.ledger,
            run_id,
            check_table.REPRO,
            check_compute.PROBE_VERSION,
            None,
            {"probe_run_id": probe_id, "verdict": None},
        )
        if self._live.checker is not None:
            self._live.checker.poke()
        return probe_id


def _env_number(name: str, kind: type, default: Any) -> Any:
    try:
        return kind(os.environ[name])
    except (KeyError, ValueError):
        return default


def _digest(key: str | None) -> str:
    return hashlib.sha256((key or "").encode()).hexdigest()[:16]


def board_name(name: str) -> str:
    """A board's name as kept: trimmed, one line, 1 to BOARD_NAME_MAX_CHARS characters."""
    return text_field("board name", name, D.BOARD_NAME_MAX_CHARS)
