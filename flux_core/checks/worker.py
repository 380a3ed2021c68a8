"""The background checker: checks every stored image after it is stored, never ahead of a run.

One daemon thread a workbench (the app server's). The runner pokes it when an image is stored; it
also looks in the ledger every CHECK_SCAN_S, so images stored by another process (the CLI, another
server) and results of an older check version are checked too. The ledger is its queue: nothing is
lost when the server stops, and a result computed twice is the same result. The thread runs at a
lower priority (CHECK_NICE) and OCR takes one core at most; and before each image it waits while
runs are in flight in its workbench (`yield_to`), so a check never competes with a run for the CPU
(the emulator's rendering, the download, the thumbnail) or the interpreter lock: a sweep's images
are checked once its last cell is stored (bench/checks.py measures what checks add to a sweep).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Callable

from flux_core import defaults as D
from flux_core.checks import compute
from flux_core.errors import LedgerError
from flux_core.ledger import checks as table
from flux_core.ledger.store import Ledger

log = logging.getLogger(__name__)


class Checker:
    def __init__(
        self,
        ledger: Ledger,
        data_dir: Path,
        *,
        scan_s: float = D.CHECK_SCAN_S,
        yield_to: Callable[[], bool] | None = None,
    ):
        self.ledger = ledger
        self.data_dir = Path(data_dir)
        self._scan_s = scan_s
        self._yield_to = yield_to
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="flux-checks", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """An image was stored (or a probe started): look now."""
        with self._idle:
            self._busy = True
        self._wake.set()

    def stop(self, wait: bool = False) -> None:
        """Stop after the image in hand (`wait`: until then, so nothing writes to the ledger after)."""
        self._stopped.set()
        self._wake.set()
        if wait and self._thread is not threading.current_thread():
            self._thread.join(timeout=D.CHECK_STOP_WAIT_S)

    def drain(self, timeout: float | None = None) -> bool:
        """Block until nothing is pending (for the CLI and tests): True if it got there."""
        self.poke()
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy or self._stopped.is_set(), timeout)

    def _loop(self) -> None:
        try:  # Linux: a thread's niceness is its own
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), D.CHECK_NICE)
        except (AttributeError, OSError):
            pass
        while not self._stopped.is_set():
            self._wake.clear()
            try:
                self.once()
            except LedgerError as exc:  # a busy or full ledger: the next scan tries again
                log.warning("the checks could not be stored: %s", exc)
            except Exception:
                log.exception("the background checker failed; it goes on at the next scan")
            with self._idle:
                if not self._wake.is_set():
                    self._busy = False
                    self._idle.notify_all()
            self._wake.wait(self._scan_s)

    def _wait_for_runs(self) -> None:
        """Wait while runs are in flight: each run that ends pokes the checker (Workbench._updated);
        CHECK_YIELD_S is the longest it sleeps between two looks."""
        while self._yield_to is not None and not self._stopped.is_set() and self._yield_to():
            self._wake.clear()
            self._wake.wait(D.CHECK_YIELD_S)

    def once(self) -> int:
        """Check every pending image (newest first) and settle waiting probes; returns how many."""
        done = 0
        while not self._stopped.is_set():
            batch = table.pending(self.ledger, compute.versions(), D.CHECK_BATCH)
            if not batch:
                break
            for row in self.ledger.get_many(batch):
                self._wait_for_runs()
                if self._stopped.is_set():
                    break
                compute.run_checks(self.ledger, self.data_dir, row)
                done += 1
        for _run_id, probe_id in table.waiting_probes(self.ledger):
            compute.settle_probes(self.ledger, self.data_dir, probe_id)
        return done
