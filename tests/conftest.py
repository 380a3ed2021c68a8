from __future__ import annotations

import functools
import socket
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from streamlit.components.v2 import manifest_scanner

from flux_core import defaults as D
from flux_core.ledger import changes, store, sweeps
from flux_core.ledger.records import Run
from flux_core.ledger.store import Ledger
from flux_core.runner import Runner
from flux_core.segmind.client import SegmindClient
from flux_core.emulator.server import EmulatorConfig, EmulatorServer
from flux_core.settings import Connection

TEST_KEY = "SG_0123456789abcdef"

# Every new AppTest scans the metadata of every installed distribution for Streamlit components
# (0.2-0.3 s each, a twelfth of the AppTest files' time, measured); what is installed does not
# change during a session, so the scan is made once. (The app server makes it once at its start.)
manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data directory and no Segmind settings from the machine. Settling
    waits are zero unless a test sets its own: a lost submit is adopted on the first look at the
    history when its job exists (the emulator's history has no lag), and sent again at once when
    the history shows none; a test about the waits sets them. The background image checks (OCR
    of every stored image, seconds of CPU each) are off in every app workbench and app server a
    test starts: a test that reads or waits for their results turns them on (FLUX_LAB_CHECKS=1)."""
    for name in (
        "SEGMIND_API_KEY",
        "SEGMIND_BASE_URL",
        "SEGMIND_UPLOAD_URL",
        "SEGMIND_RPM",
        "SEGMIND_CONTROL_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLUX_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FLUX_LAB_SETTLE_GRACE_S", "0")
    monkeypatch.setenv("FLUX_LAB_SETTLE_5XX_WAIT_S", "0")
    monkeypatch.setenv(D.CHECKS_ENV, "0")
    yield
    changes.stop_all()  # the test's ledgers are gone with it: their watchers too


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def emulator() -> Iterator[Callable[..., EmulatorServer]]:
    """Start real emulators on free loopback ports: `emulator(latency_s=0, ...)`."""
    servers: list[EmulatorServer] = []

    def start(**config) -> EmulatorServer:
        config.setdefault("latency_s", 0.2)
        config.setdefault("latency_spread_s", 0.0)
        config.setdefault("queue_s", 0.05)
        config.setdefault("random_seed", 7)
        server = EmulatorServer(EmulatorConfig(**config)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class Sleeps(list):
    """A sleep function that records what it was asked to wait and never waits."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def client_for(server: EmulatorServer, key: str = TEST_KEY, **kwargs) -> SegmindClient:
    connection = Connection.resolve(
        api_key=key, base_url=server.url, rpm=kwargs.pop("rpm", 0), backend="emulator"
    )
    return SegmindClient(connection=connection, **kwargs)


@pytest.fixture
def fast_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The app's embedded emulator on a free port with quick inference; stopped afterwards."""
    from flux_core.service import Workbench

    monkeypatch.setenv("FLUX_LAB_EMULATOR_LATENCY", "0.2")
    monkeypatch.setenv("FLUX_LAB_EMULATOR_PORT", "0")
    yield
    Workbench.shutdown_all(wait=True)  # runs a test left in flight finish before their client closes


DEAD_LEASE = f"{socket.gethostname()}:999999999:dead"  # a process of this host that is gone


def left_in_flight(
    ledger, server, client: SegmindClient, params, *, key=None, status="QUEUED", backend="segmind"
):
    """What a process killed right after a submit leaves: the job taken by `server`, the run
    recorded as submitted, its lease naming a dead process. Returns the run id."""
    job = client.submit(params)
    return ledger.record_run(
        params,
        status,
        backend=backend,
        base_url=server.url,
        lease=DEAD_LEASE,
        key=key,
        request_id=job.request_id,
        status_url=job.status_url,
        response_url=job.response_url,
        submitted_at=store.now_iso(),
    )


def _is_browser(item: pytest.Item) -> bool:
    return "tests/browser/" in item.path.as_posix() or item.get_closest_marker("browser") is not None


def _stop_shared_chromium() -> None:
    journeys = sys.modules.get("tests.browser.conftest")  # loaded only where journeys were collected
    if journeys is not None:
        journeys.SharedChromium.stop()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not _is_browser(item):  # the journeys' Chromium, if this worker ran some: see SharedChromium
        _stop_shared_chromium()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _stop_shared_chromium()


@pytest.fixture
def sweep_lab(emulator, data_dir):
    """An emulator, a ledger and a runner on it, for sweeps: (server, ledger, runner)."""
    server = emulator(latency_s=0.1)
    ledger = Ledger(data_dir / "ledger.db")
    runner = Runner(ledger, data_dir, client_for(server), backend="emulator", concurrency=8)
    yield server, ledger, runner
    runner.shutdown()


def run_sweep(ledger, runner, plan, **kw):
    """Start a sweep, wait for every cell, and return its finished view."""
    sweep_id = sweeps.start(plan, ledger, runner, **kw)
    view = sweeps.load(ledger, sweep_id)
    runner.wait([c.run.id for c in view.cells])
    return sweeps.load(ledger, sweep_id)


def run_row(**fields) -> Run:
    """A COMPLETED emulator run's ledger row, as the ledger would hand it out, with `fields` changed."""
    base = dict(
        id="01RUN",
        created_at="2026-12-01T10:00:00.000Z",
        updated_at="2026-12-01T10:00:00.000Z",
        status=store.COMPLETED,
        model="flux-2-max",
        backend="emulator",
        base_url="http://127.0.0.1:1",
        prompt="a red cube",
        seed=42,
        width=1024,
        height=1024,
        safety_tolerance=2,
        output_format="png",
        request={},
        request_hash="",
    )
    return Run.model_validate({**base, **fields})
