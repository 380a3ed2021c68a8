"""A restarted server finishes the runs left in flight before anybody opens a page (issue 9.1)."""

from __future__ import annotations

import time

import pytest

from flux_core.ledger import store
from flux_core.params import FluxParams
from flux_core.ledger.store import Ledger
from tests.browser.appserver import AppServer
from tests.conftest import TEST_KEY, client_for, left_in_flight

pytestmark = pytest.mark.browser


def test_runs_in_flight_are_resumed_when_the_server_starts_with_nobody_visiting(
    emulator, data_dir, artifacts
):
    segmind = emulator(latency_s=0.5)
    ledger = Ledger(data_dir / "ledger.db")
    client = client_for(segmind)
    ids = [  # what a server killed mid-sweep leaves: submitted, never collected
        left_in_flight(
            ledger,
            segmind,
            client,
            FluxParams.parse(prompt="a zombie at dusk", seed=seed),
            key=TEST_KEY,
            status=store.PROCESSING,
        )
        for seed in range(3)
    ]
    client.close()

    server = AppServer(data_dir, artifacts, latency=0.5)
    server.env.update({"SEGMIND_API_KEY": TEST_KEY, "SEGMIND_BASE_URL": segmind.url, "SEGMIND_RPM": "0"})
    server.start()  # and no page is opened
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a bounded watch on the ledger, not a fixed sleep
            rows = ledger.get_many(ids)
            if all(r.status not in store.ACTIVE for r in rows):
                break
            time.sleep(0.2)
        assert [r.status for r in ledger.get_many(ids)] == [store.COMPLETED] * 3
        assert segmind.stats.submits == 3  # none sent again
    finally:
        server.stop()
