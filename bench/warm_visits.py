"""Bytes a page transfers when the browser comes back to it: Compose, Compare (a 60-cell sweep, and
its plan page with the saved sweep's card) and History (60 runs a page), each first visited with an
empty browser cache, then again (the same address, the cache warm) and then from another page of
the open app (a click in the sidebar).

    .venv/bin/python bench/warm_visits.py [--against REV] [--keep DIR]

`--against REV` serves the same ledger with another revision of Flux Lab too (exported with `git
archive` into a temporary folder, run with this checkout's .venv), for a before and after. Target
(issue 19): a warm revisit of any page transfers under 30 KB. Pictures fetched are counted from
Chromium's own network events (tests/browser/network.py's Transfers), bytes from the
bytes that crossed the wire (tests/browser/network.py's Wire, a relay in front of the app: Chromium
reports a WebSocket message inflated, the wire has it as compressed). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the browser journeys' helpers, shared with this bench
from flux_core import defaults as D  # noqa: E402
from flux_core.emulator.server import EmulatorConfig, EmulatorServer  # noqa: E402
from flux_core.ledger import sweeps  # noqa: E402
from flux_core.ledger.store import Ledger  # noqa: E402
from flux_core.params import FluxParams  # noqa: E402
from flux_core.runner import Runner  # noqa: E402
from flux_core.segmind.client import SegmindClient  # noqa: E402
from flux_core.settings import Connection  # noqa: E402
from tests.browser.appserver import AppServer  # noqa: E402
from tests.browser.network import Transfers, Wire  # noqa: E402

RUNS = 60

# every picture on the page (the gallery's and the grid's live in their elements' shadow roots), loaded
PICTURES_LOADED = """n => {
  const imgs = [...document.images, ...[...document.querySelectorAll('*')].flatMap(
    e => e.shadowRoot ? [...e.shadowRoot.querySelectorAll('img')] : [])];
  return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"


def fill(data_dir: Path) -> str:
    """A sweep of RUNS seeds (so RUNS runs: History's first page, Compose's recent strip, a grid of
    RUNS cells on Compare), made by the real runner against the emulator. Returns the sweep's id."""
    with EmulatorServer(EmulatorConfig(latency_s=0.05, latency_spread_s=0, queue_s=0)) as server:
        connection = Connection.resolve(
            api_key="SG_bench0000000000", base_url=server.url, rpm=0, backend="emulator"
        )
        ledger = Ledger(data_dir / D.DB_NAME)
        runner = Runner(
            ledger, data_dir, SegmindClient(connection=connection), backend="emulator", concurrency=8
        )
        plan = sweeps.make_plan(
            FluxParams.parse(prompt="a lantern on a harbour wall at dusk", seed=0, width=512, height=512),
            [sweeps.axis("seed", list(range(RUNS)))],
        )
        sweep_id = sweeps.start(plan, ledger, runner, name="lanterns")
        runner.wait([c.run.id for c in sweeps.load(ledger, sweep_id).cells])
        runner.shutdown()
    return sweep_id


def measure(label: str, server: AppServer, sweep_id: str, detail: bool = False) -> None:
    from playwright.sync_api import sync_playwright

    # words only that page shows (so a visit waits for the page itself, not the one before), and the
    # pictures on it
    shows = {"Compose": ("Recent runs", D.RECENT_RUNS), "History": ("run(s) · showing", RUNS)}
    pages = [  # (name, path, its words, its pictures, the sidebar link that reaches it again, or Back)
        ("Compose", "/", *shows["Compose"], "Compose"),
        ("Compare: the sweep", f"/compare?sweep={sweep_id}", "Colour by / rank by check", RUNS, "back"),
        ("Compare: saved sweeps", "/compare", "Open a saved sweep", 1, "Compare"),
        ("History", "/history", *shows["History"], "History"),
    ]
    print(f"\n{label}: KB over the wire (HTTP + WebSocket), thumbnails fetched from the server")
    wire = Wire(server.port)
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        warmup = chromium.new_context()  # the server's first session pays for its imports: not counted
        first = warmup.new_page()
        first.goto(wire.url + "/history")
        first.wait_for_function(PICTURES_LOADED, arg=RUNS, timeout=120_000)
        warmup.close()

        def arrived(page, words: str, pictures: int) -> None:
            page.get_by_text(words).first.wait_for()
            page.wait_for_function(PICTURES_LOADED, arg=pictures, timeout=120_000)
            page.locator(IDLE).wait_for()

        for name, path, words, pictures, link in pages:
            context = chromium.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            network = Transfers(context, page)

            def visit(go) -> str:
                network.reset()
                wire.reset()
                go()
                arrived(page, words, pictures)
                fetched = [
                    r for r in network.to("/_flux/thumbs/") + network.to("/media/") if not r.from_cache
                ]
                if detail:  # where the bytes went: the page's data, then the largest requests
                    largest = sorted(network.requests.values(), key=lambda r: -r.bytes)[:4]
                    said = ", ".join(f"{r.url.split('/', 3)[-1][:40]} {r.bytes / 1000:.1f}" for r in largest)
                    print(
                        f"      WebSocket {wire.ws_bytes / 1000:.1f} KB on the wire "
                        f"({network.ws_bytes / 1000:.1f} inflated); {said}"
                    )
                return f"{wire.total_bytes / 1000:7.1f} KB ({len(fetched):>2} pictures fetched)"

            cold = visit(lambda: page.goto(wire.url + path))
            again = visit(lambda: page.goto(wire.url + path))
            inside = "—"
            if link is not None:
                other = "History" if link != "History" else "Compose"
                page.get_by_role("link", name=other).click()
                arrived(page, *shows[other])
                if link == "back":  # a sweep is reached again with the browser's Back
                    inside = visit(page.go_back)
                else:
                    inside = visit(lambda: page.get_by_role("link", name=link).click())
            print(f"  {name:<22} cold {cold} · again {again} · from another page {inside}")
            context.close()
        chromium.close()
    wire.close()


def exported(rev: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="flux-lab-rev-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default=None, help="a git revision to measure too (the 'before')")
    parser.add_argument("--keep", default=None, help="fill (or reuse) this folder and keep it")
    parser.add_argument("--detail", action="store_true", help="where each visit's bytes went")
    args = parser.parse_args()
    for name in ("SEGMIND_API_KEY", "SEGMIND_BASE_URL", "SEGMIND_UPLOAD_URL", "SEGMIND_RPM"):
        os.environ.pop(name, None)  # the app on its embedded emulator, whatever this shell has set
    os.environ[D.CHECKS_ENV] = "0"  # no check results landing between two visits
    data_dir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="flux-lab-bench-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    sweep_id = (data_dir / "bench-sweep").read_text() if (data_dir / "bench-sweep").exists() else ""
    if not sweep_id:
        sweep_id = fill(data_dir)
        (data_dir / "bench-sweep").write_text(sweep_id)
    versions = [("this checkout", ROOT)]
    if args.against:
        versions.insert(0, (f"revision {args.against}", exported(args.against)))
    try:
        for label, root in versions:
            server = AppServer(data_dir, log_dir=data_dir, latency=D.EMULATOR_LATENCY_S, root=root).start()
            try:
                measure(label, server, sweep_id, args.detail)
            finally:
                server.stop()
    finally:
        for _, root in versions:
            if root != ROOT:
                shutil.rmtree(root, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
