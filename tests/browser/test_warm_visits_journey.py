"""A person back on Compose in a real browser: nothing they have seen is fetched twice. Every picture
on the page comes from the app's browser-cached routes, and a warm revisit (Compose, History, Compose
again) fetches no thumbnail from the server and transfers under 30 KB in all. A new visit of History
or of a 60-cell sweep on Compare with the browser's cache warm sends under 30 KB over the wire too:
the page's own data goes over a compressed WebSocket. Counted from Chromium's own network events and
a relay that counts the bytes on the wire: what is fetched, never how long it takes."""

from __future__ import annotations

from playwright.sync_api import expect

from flux_core import defaults as D
from flux_core.emulator.server import EmulatorConfig, EmulatorServer
from flux_core.ledger import sweeps
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams
from flux_core.runner import Runner
from tests.browser.conftest import IDLE, shoot
from tests.browser.network import Transfers, Wire
from tests.conftest import client_for

WARM_REVISIT_MAX_BYTES = 30_000  # issue 19: a warm revisit of a page transfers under 30 KB

# every picture in the page's main area, its cards' (in their elements' shadow roots) included
PICTURES = """() => { const main = document.querySelector('[data-testid=stMain]');
  return [...main.querySelectorAll('img'), ...[...main.querySelectorAll('*')].flatMap(
    e => e.shadowRoot ? [...e.shadowRoot.querySelectorAll('img')] : [])]; }"""
# ... once each has loaded
LOADED = f"n => {{ const imgs = ({PICTURES})(); return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0); }}"
# every picture on the page, the gallery's and the grid's in their elements' shadow roots, loaded
ALL_LOADED = """n => {
  const imgs = [...document.images, ...[...document.querySelectorAll('*')].flatMap(
    e => e.shadowRoot ? [...e.shadowRoot.querySelectorAll('img')] : [])];
  return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""
SWEEP_RUNS = 60  # issue 19: under 30 KB with 60 runs on screen


def seed_runs(data_dir, n: int) -> None:
    """`n` finished runs in the ledger the app will open (the real runner and emulator)."""
    with EmulatorServer(EmulatorConfig(latency_s=0.05, latency_spread_s=0, queue_s=0)) as server:
        runner = Runner(Ledger(data_dir / D.DB_NAME), data_dir, client_for(server), backend="emulator")
        ids = [
            runner.enqueue(FluxParams.parse(prompt=f"a lantern number {i}", seed=i, width=512, height=512))
            for i in range(n)
        ]
        runner.wait(ids)
        runner.shutdown()


def seed_sweep(data_dir, n: int) -> str:
    """A finished sweep of `n` seeds (so `n` runs) in the ledger the app will open; its id."""
    with EmulatorServer(EmulatorConfig(latency_s=0.05, latency_spread_s=0, queue_s=0)) as server:
        ledger = Ledger(data_dir / D.DB_NAME)
        runner = Runner(ledger, data_dir, client_for(server), backend="emulator", concurrency=8)
        plan = sweeps.make_plan(
            FluxParams.parse(prompt="a lantern on a harbour wall", seed=0, width=512, height=512),
            [sweeps.axis("seed", list(range(n)))],
        )
        sweep_id = sweeps.start(plan, ledger, runner, name="lanterns")
        runner.wait([c.run.id for c in sweeps.load(ledger, sweep_id).cells])
        runner.shutdown()
    return sweep_id


def test_a_new_visit_with_60_runs_on_screen_sends_under_30_kb_over_the_wire(
    app_server, page, data_dir, artifacts, monkeypatch
):
    monkeypatch.setenv(D.CHECKS_ENV, "0")  # no check results landing between the two visits
    sweep_id = seed_sweep(data_dir, SWEEP_RUNS)
    wire = Wire(app_server().port)
    network = Transfers(page.context, page)
    try:
        for path, shown in (("/history", "fl-card"), (f"/compare?sweep={sweep_id}", None)):
            page.goto(wire.url + path)  # the first visit fills the browser's cache
            if shown:
                expect(page.get_by_test_id(shown)).to_have_count(SWEEP_RUNS)
            else:
                expect(page.get_by_text("Colour by / rank by check")).to_be_visible()
            page.wait_for_function(ALL_LOADED, arg=SWEEP_RUNS)
            expect(page.locator(IDLE)).to_have_count(1)
            # every file the first visit asked for in the cache: one still on its way as the page is
            # left is dropped, not kept, and the new visit would fetch it again
            page.wait_for_load_state("networkidle")
            wire.reset()
            network.reset()
            page.goto(wire.url + path)  # a new session of the app, the browser's cache warm
            if shown:
                expect(page.get_by_test_id(shown)).to_have_count(SWEEP_RUNS)
            else:
                expect(page.get_by_text("Colour by / rank by check")).to_be_visible()
            page.wait_for_function(ALL_LOADED, arg=SWEEP_RUNS)
            expect(page.locator(IDLE)).to_have_count(1)
            shoot(page, artifacts, "again-" + path.strip("/").split("?")[0])
            # must not happen: a thumbnail fetched again, or the page's own data sent uncompressed
            assert [r.url for r in network.to("/_flux/thumbs/") if not r.from_cache or r.bytes] == []
            assert network.ws_bytes > WARM_REVISIT_MAX_BYTES // 2  # the page's data, inflated: above 15 KB
            assert wire.total_bytes < WARM_REVISIT_MAX_BYTES, (
                path,
                wire.http_bytes,
                wire.ws_bytes,
                network.fetched(),
            )
    finally:
        wire.close()


def test_a_warm_revisit_of_compose_fetches_no_thumbnail_again(
    app_server, page, data_dir, artifacts, monkeypatch
):
    monkeypatch.setenv(D.CHECKS_ENV, "0")  # no check results landing between the two visits
    seed_runs(data_dir, D.RECENT_RUNS)
    wire = Wire(app_server().port)
    try:
        network = Transfers(page.context, page)
        page.goto(wire.url)
        expect(page.get_by_role("heading", name="Recent runs")).to_be_visible()
        page.wait_for_function(LOADED, arg=D.RECENT_RUNS)
        sources = page.evaluate(f"() => ({PICTURES})().map(i => i.getAttribute('src'))")
        # must not happen: a stored picture sent as one of Streamlit's per-session /media/ files
        assert len(sources) == D.RECENT_RUNS and all("/_flux/thumbs/" in s for s in sources), sources
        assert all(
            r.bytes > 0 and not r.from_cache for r in network.to("/_flux/thumbs/")
        )  # a cold visit fetches

        page.get_by_role("link", name="History").click()
        expect(page.get_by_test_id("fl-card")).to_have_count(D.RECENT_RUNS)
        expect(page.locator(IDLE)).to_have_count(1)
        page.wait_for_load_state("networkidle")  # History's own files in the cache, none still coming
        network.reset()
        wire.reset()
        page.get_by_role("link", name="Compose").click()  # the warm revisit
        expect(page.get_by_role("heading", name="Recent runs")).to_be_visible()
        page.wait_for_function(LOADED, arg=D.RECENT_RUNS)
        expect(page.locator(IDLE)).to_have_count(1)
        shoot(page, artifacts, "1-compose-revisited")
        assert network.to("/media/") == []  # no picture through Streamlit's media endpoint
        # every thumbnail the revisit asked for was answered by the browser's cache, or not asked for at all
        assert [r.url for r in network.to("/_flux/thumbs/") if not r.from_cache or r.bytes] == []
        # what went over the wire (the page's data over the compressed WebSocket; Chromium's own count
        # is of the messages inflated, 26 KB of them)
        assert wire.total_bytes < WARM_REVISIT_MAX_BYTES, (wire.http_bytes, wire.ws_bytes, network.fetched())
    finally:
        wire.close()
