"""A restarted server finishes the runs left in flight before anybody opens a page (issue 9.1)."""

from __future__ import annotations

import socket
import time

import pytest

from flux_core import store
from flux_core.params import FluxParams
from flux_core.store import Ledger
from tests.browser.appserver import AppServer
from tests.conftest import TEST_KEY, client_for

pytestmark = pytest.mark.browser


def test_runs_in_flight_are_resumed_when_the_server_starts_with_nobody_visiting(
    emulator, data_dir, artifacts
):
    segmind = emulator(latency_s=0.5)
    ledger = Ledger(data_dir / "ledger.db")
    client = client_for(segmind)
    dead = f"{socket.gethostname()}:999999999:killed"
    ids = []
    for seed in range(3):  # what a server killed mid-sweep leaves: submitted, never collected
        p = FluxParams.parse(prompt="a zombie at dusk", seed=seed)
        run_id = ledger.create_run(p, backend="segmind", base_url=segmind.url, lease=dead, key=TEST_KEY)
        job = client.submit(p)
        ledger.transition(
            run_id,
            store.PROCESSING,
            request_id=job.request_id,
            status_url=job.status_url,
            response_url=job.response_url,
            submitted_at=store.now_iso(),
        )
        ids.append(run_id)
    client.close()

    server = AppServer(data_dir, artifacts, latency=0.5)
    server.env.update({"SEGMIND_API_KEY": TEST_KEY, "SEGMIND_BASE_URL": segmind.url, "SEGMIND_RPM": "0"})
    server.start()  # and no page is opened
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a bounded watch on the ledger, not a fixed sleep
            rows = ledger.get_many(ids)
            if all(r["status"] not in store.ACTIVE for r in rows):
                break
            time.sleep(0.2)
        assert [r["status"] for r in ledger.get_many(ids)] == [store.COMPLETED] * 3
        assert segmind.stats.submits == 3  # none sent again
    finally:
        server.stop()
