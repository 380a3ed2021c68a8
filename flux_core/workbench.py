"""What the app works with: one ledger, the backends (the embedded emulator or Segmind), and a
runner per backend that owns all submitting and polling.

`Workbench.shared()` is process-wide: every browser session of the Streamlit server uses the same
one, so navigating away, refreshing, closing the tab or opening a second tab loses nothing, and a
restarted server resumes the runs still pending. Pages only read the ledger.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flux_core import defaults as D
from flux_core import store, sweeps
from flux_core.client import SegmindClient
from flux_core.emulator import EmulatorConfig, EmulatorServer
from flux_core.errors import AuthError, CallFailed, ForbiddenError
from flux_core.logs import logger
from flux_core.params import FluxParams
from flux_core.runner import Runner
from flux_core.settings import Connection, data_dir as resolve_data_dir, key_hint
from flux_core.sweeps import SweepPlan


log = logger(__name__)


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


class Workbench:
    _shared: dict[tuple[str, str], "Workbench"] = {}
    _shared_lock = threading.Lock()

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        api_key: str | None = None,
        emulator_port: int | None = None,
    ):
        self.data_dir = resolve_data_dir(data_dir)
        self.ledger = store.Ledger(self.data_dir / D.DB_NAME)
        self.emulator: EmulatorServer | None = None
        self._emulator_port = emulator_port or _env_number(D.EMULATOR_PORT_ENV, int, D.EMULATOR_PORT)
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        self._credits: dict[str, tuple[float, float | None]] = {}
        self._key_checks: dict[str, CallFailed | None] = {}  # per key: None = a call succeeded
        self._last_submit: dict[str, tuple[str, float, str]] = {}
        self._guard_locks: dict[str, threading.Lock] = {}
        self._credit_threads: list[threading.Thread] = []
        self.default_key = api_key or None
        self.default = self.backend(None)
        self.resumed = self.default.runner.resume()
        self._last_resume = time.monotonic()
        self._stopped = threading.Event()
        self._scanner = threading.Thread(target=self._scan_orphans, name="flux-orphans", daemon=True)
        self._scanner.start()

    @classmethod
    def shared(cls, data_dir: str | os.PathLike | None = None, api_key: str | None = None) -> "Workbench":
        """The process-wide workbench for this data directory and configured key."""
        path = str(resolve_data_dir(data_dir))
        slot = (path, _digest(api_key))
        with cls._shared_lock:
            if slot not in cls._shared:
                cls._shared[slot] = cls(path, api_key)
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
                if key:
                    connection = Connection.resolve(api_key=key)
                else:
                    connection = self._emulator_connection()
                client = SegmindClient(connection=connection)
                runner = Runner(
                    self.ledger,
                    self.data_dir,
                    client,
                    backend=connection.backend,
                    concurrency=D.SWEEP_CONCURRENCY,
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
        if self.emulator is None:
            latency = _env_number(D.EMULATOR_LATENCY_ENV, float, D.EMULATOR_LATENCY_S)
            config = EmulatorConfig(
                state_path=str(self.data_dir / D.EMULATOR_STATE_FILE),
                latency_s=latency,
                latency_spread_s=min(D.EMULATOR_LATENCY_SPREAD_S, latency / 4),
            )
            try:  # the same port as last time, so runs in flight before a restart resume
                self.emulator = EmulatorServer(config, port=self._emulator_port).start()
            except OSError:
                self.emulator = EmulatorServer(config, port=0).start()
        return Connection.resolve(
            api_key=D.EMULATOR_KEY,
            base_url=self.emulator.url,
            rpm=0,
            upload_url=f"{self.emulator.url}/upload-asset",
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
    ) -> str:
        """Upload local reference images, write the run down, hand it to the runner.

        `guard` names the caller (a browser session): the same request from it again within
        DOUBLE_SUBMIT_WINDOW_S is a double click and returns the first run instead of paying twice.
        """
        if guard is not None:
            payload = params.payload()
            if seed_random:
                payload["seed"] = "random"
            fingerprint = repr(sorted(payload.items())) + repr([r[0][:64] for r in references or []])
            return self._once(
                guard,
                fingerprint,
                lambda: self.submit(
                    params,
                    seed_random=seed_random,
                    session_key=session_key,
                    references=references,
                    sweep_id=sweep_id,
                ),
            )
        if references:
            params = params.replace(image_urls=[*params.image_urls, *self.upload(references, session_key)])
        return self.backend(session_key).runner.enqueue(params, seed_random=seed_random, sweep_id=sweep_id)

    def upload(self, references: list[tuple[bytes, str]], session_key: str | None = None) -> list[str]:
        """Upload local reference images (bytes, MIME type) through upload-asset: their URLs."""
        return self.backend(session_key).client.upload(references) if references else []

    def start_sweep(
        self,
        plan: "SweepPlan",
        *,
        session_key: str | None = None,
        name: str = "",
        run_again: bool = False,
        guard: str | None = None,
    ) -> str:
        """Save a sweep and hand its new cells to the runner (a double click starts it once)."""

        def begin() -> str:
            return sweeps.start(
                plan, self.ledger, self.backend(session_key).runner, name=name, run_again=run_again
            )

        if guard is None:
            return begin()
        return self._once(guard, repr((plan, name, run_again)), begin)

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
            if time.monotonic() - self._last_resume < min_interval_s:
                return []
            self._last_resume = time.monotonic()
            backends = list(self._backends.values())
        taken: list[str] = []
        for backend in backends:
            taken += backend.runner.resume()
        return taken

    def _scan_orphans(self) -> None:
        """Every ORPHAN_SCAN_S, whether or not anybody has a page open, pick up runs nobody drives."""
        while not self._stopped.wait(D.ORPHAN_SCAN_S):
            try:
                self.resume_orphans()
            except Exception:  # a scan that failed is tried again next time
                log.exception("the scan for runs nobody drives failed")

    def sweep_cap(self) -> int:
        return _env_number(D.SWEEP_CAP_ENV, int, D.SWEEP_CELL_CAP)

    def run(self, run_id: str) -> dict[str, Any] | None:
        return self.ledger.get(run_id)

    def recent(self, limit: int = D.RECENT_RUNS) -> list[dict[str, Any]]:
        return self.ledger.search(None, limit=limit)

    def image_path(self, row: dict[str, Any], thumb: bool = False) -> Path | None:
        rel = row.get("thumb_path" if thumb else "image_path")
        return self.data_dir / rel if rel else None

    def price_per_image(self, session_key: str | None = None) -> float | None:
        backend = self.backend(session_key)
        if backend.is_emulator and self.emulator is not None:
            return self.emulator.emulator.config.cost
        try:
            return float(os.environ[D.PRICE_ENV])
        except (KeyError, ValueError):
            return None

    def credits(self, session_key: str | None = None, max_age_s: float = 60.0) -> float | None:
        """Remaining credits as last known; a stale value is refreshed in the background, so a
        slow or unreachable server never holds up a page. None until first known."""
        backend = self.backend(session_key)
        slot = _digest(backend.connection.api_key)
        with self._lock:
            cached = self._credits.get(slot)
            stale = cached is None or time.monotonic() - cached[0] >= max_age_s
            if stale:  # mark as being refreshed, keeping the old value meanwhile
                self._credits[slot] = (time.monotonic(), cached[1] if cached else None)
        if stale:
            thread = threading.Thread(target=self._refresh_credits, args=(backend, slot), daemon=True)
            self._credit_threads = [t for t in self._credit_threads if t.is_alive()] + [thread]
            thread.start()
            if cached is None:  # the first look at a key: wait briefly, so it is verified (or not) at once
                thread.join(timeout=D.KEY_CHECK_WAIT_S)
        with self._lock:
            return self._credits[slot][1]

    def key_check(self, session_key: str | None = None) -> tuple[str, CallFailed | None]:
        """What is known of a key: ("verified", None) once a call with it succeeded (the credits call),
        ("rejected", the error) once Segmind refused it (401/403), else ("unchecked", None)."""
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
        if self.emulator is not None:
            self.emulator.stop()


def _env_number(name: str, kind: type, default: Any) -> Any:
    try:
        return kind(os.environ[name])
    except (KeyError, ValueError):
        return default


def _digest(key: str | None) -> str:
    return hashlib.sha256((key or "").encode()).hexdigest()[:16]
