"""Issue 19, item 7: the loop as a person feels it in the browser. `streamlit run app.py` with its
embedded emulator, Playwright in Debian's Chromium (/usr/bin/chromium), a fresh data directory for
each part; prints figures, asserts nothing.

    .venv/bin/python bench/browser_loop.py [--only loop,pages,watch] [--runs 1000,100000]
        [--takes 8] [--repeat 3] [--restarts 2] [--latency 20] [--ledger 100000=/tmp/hist100k]
        [--against REV]

- loop: Generate on Compose, `--takes` times: click → picture on screen, and job done → picture on
  screen (the emulator's own record of when it finished the job, as bench/app_latency.py reads it).
  The moment on screen is what the browser shows: a new picture in Compose's result has loaded.
- pages: Compose, Compare (a 60-cell sweep) and History with each ledger size of `--runs` (the
  runs of bench/history_scale.py plus the 60-run sweep of bench/warm_visits.py, newest): a first
  visit (an empty browser cache, the server already running and visited), a warm visit (the same
  address again: a new Streamlit session, the cache warm) and a first visit right after the server
  restarted. Each: seconds until the page is usable (its words shown, every picture loaded, the
  script idle), the bytes the server sent on the wire (a counting relay in front of the app:
  Chromium reports a WebSocket message inflated), the script's messages the page received and
  the server's CPU for the visit.
  `--ledger N=DIR` starts from a copy of a ledger bench/history_scale.py kept (`--keep DIR`).
  The table's first row is the floor: the same visits of a page of Streamlit alone (a title and a
  line, Flux Lab's config), what Streamlit's own frontend takes on this machine.
- watch: the server's CPU and peak RSS while 0, 1 and 5 tabs watch a live 12-cell sweep on Compare
  (driven by this process's own runner against an emulator, so the server only watches), and how
  long after the last job finished every tab shows every picture.

`--against REV` measures the pages part with another revision of Flux Lab too (exported by
bench/warm_visits.py's `exported`), served at the same time from a copy of the same ledger and
visited in turn with this checkout, for a before and after under the same conditions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the browser journeys' helpers and the other benches, shared

from bench import history_scale, warm_visits  # noqa: E402
from bench.app_latency import WATCH, _completed_at, _latest_run  # noqa: E402
from flux_core import defaults as D  # noqa: E402
from flux_core import lifecycle  # noqa: E402
from flux_core.emulator.server import EmulatorConfig, EmulatorServer  # noqa: E402
from flux_core.ledger import sweeps  # noqa: E402
from flux_core.ledger.store import Ledger  # noqa: E402
from flux_core.params import FluxParams  # noqa: E402
from flux_core.runner import Runner  # noqa: E402
from flux_core.segmind.client import SegmindClient  # noqa: E402
from flux_core.settings import Connection  # noqa: E402
from tests.browser.appserver import AppServer  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.browser.network import Transfers, Wire  # noqa: E402

SWEEP_RUNS = warm_visits.RUNS  # the 60-cell sweep Compare shows; its runs are History's first page
WATCHED_CELLS = 12
FINAL = {name for name, state in lifecycle.STATES.items() if state.terminal}
DISTINCT_THUMBS = 100  # a made ledger's older runs share these (the first page shows the sweep's own)

# usable: the script idle, the page's own words shown and every picture on it loaded (the gallery's
# and the grid's live in their elements' shadow roots)
USABLE = """([words, n]) => {
  const app = document.querySelector('[data-testid=stApp]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (!document.body.innerText.includes(words)) return false;
  const imgs = [...document.images, ...[...document.querySelectorAll('*')].flatMap(
    e => e.shadowRoot ? [...e.shadowRoot.querySelectorAll('img')] : [])];
  return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""


def quiet_environment() -> None:
    for name in ("SEGMIND_API_KEY", "SEGMIND_BASE_URL", "SEGMIND_UPLOAD_URL", "SEGMIND_RPM"):
        os.environ.pop(name, None)  # the app on its embedded emulator, whatever this shell has set
    os.environ[D.CHECKS_ENV] = "0"  # no check results landing between two visits


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# --- loop ------------------------------------------------------------------------------------------


def loop(takes: int) -> None:
    from playwright.sync_api import expect, sync_playwright

    print(f"\nloop: {takes} Generates on Compose (emulated inference {D.EMULATOR_LATENCY_S} s)", flush=True)
    rows: list[tuple[float, float, float]] = []  # (clicked, job done, on screen), wall clock
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        server = AppServer(data, data, D.EMULATOR_LATENCY_S).start()
        try:
            with sync_playwright() as p:
                browser = launch(p)
                page = browser.new_page(viewport={"width": 1400, "height": 1300})
                page.set_default_timeout(60_000)
                page.goto(server.url)
                expect(page.get_by_label("Prompt")).to_be_visible()
                for i in range(takes):
                    page.get_by_label("Prompt").fill(f"a red cube, take {i + 1}")
                    page.evaluate(WATCH)
                    clicked = time.time()
                    page.get_by_role("button", name="Generate").click()
                    page.wait_for_function("() => window.__seen !== null", polling=20)
                    seen = page.evaluate("window.__seen") / 1000.0
                    _, request_id, finished_at, _ = _latest_run(data)
                    done = _completed_at(data, request_id) if request_id else None
                    if done is None or finished_at is None:
                        print(f"  take {i + 1}: no finished job to measure", flush=True)
                        continue
                    rows.append((clicked, done, seen))
                    print(
                        f"  take {i + 1}: Generate → on screen {seen - clicked:.2f} s, "
                        f"job done → on screen {seen - done:.2f} s",
                        flush=True,
                    )
                    page.locator(warm_visits.IDLE).wait_for()
                browser.close()
        finally:
            server.stop()
    if not rows:
        return
    later = rows[1:] or rows
    print("\n| Generate on Compose | median s | p95 s |")
    print("|---|---|---|")
    print(f"| first take: Generate → visible | {rows[0][2] - rows[0][0]:.2f} | |")
    print(f"| first take: job done → visible | {rows[0][2] - rows[0][1]:.2f} | |")
    for label, values in (
        ("later takes: Generate → visible", [s - c for c, _, s in later]),
        ("later takes: job done → visible", [s - d for _, d, s in later]),
    ):
        print(f"| {label} | {statistics.median(values):.2f} | {p95(values):.2f} |")


# --- pages -----------------------------------------------------------------------------------------


def build(runs: int, ready: dict[int, Path]) -> Path:
    """A fresh data directory of `runs` runs, the newest 60 a sweep: a copy of a ledger given with
    --ledger, or one made here (bench/history_scale.py's runs, then bench/warm_visits.py's sweep)."""
    data = Path(tempfile.mkdtemp(prefix=f"flux-lab-loop-{runs}-"))
    started = time.monotonic()
    if runs in ready:
        shutil.copytree(ready[runs], data, dirs_exist_ok=True)
        for name in ("bench-sweep", "ledger.db.lock"):
            (data / name).unlink(missing_ok=True)
        made = f"copied from {ready[runs]}"
    else:
        history_scale.fill(data, max(0, runs - SWEEP_RUNS), distinct=min(DISTINCT_THUMBS, runs))
        made = "made"
    (data / "bench-sweep").write_text(warm_visits.fill(data))
    with Ledger(data / D.DB_NAME).db() as db:
        count = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    print(
        f"  ledger of {count:,} runs {made} (+ the sweep) in {time.monotonic() - started:.0f} s", flush=True
    )
    return data


@dataclass
class Visits:
    seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    kb: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    messages: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    cpu_ms: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, key: tuple[str, str], seconds: float, kb: float, messages: int, cpu_ms: float) -> None:
        self.seconds.setdefault(key, []).append(seconds)
        self.kb.setdefault(key, []).append(kb)
        self.messages.setdefault(key, []).append(messages)
        self.cpu_ms.setdefault(key, []).append(cpu_ms)


def page_list(sweep_id: str) -> list[tuple[str, str, str, int]]:
    return [  # (name, path, words only it shows, pictures on it)
        ("Compose", "/", "Recent runs", D.RECENT_RUNS),
        ("Compare", f"/compare?sweep={sweep_id}", "Colour by / rank by check", SWEEP_RUNS),
        ("History", "/history", "run(s) · showing", SWEEP_RUNS),
    ]


def visit(
    server: AppServer, page, network: Transfers, wire: Wire, path: str, words: str, pictures: int
) -> tuple[float, float, int, float]:
    """One visit: seconds until usable, KB on the wire, the script's messages, the server's CPU ms."""
    assert server.proc is not None
    network.reset()
    wire.reset()
    cpu = cpu_seconds(server.proc.pid)
    started = time.monotonic()
    page.goto(wire.url + path)
    page.wait_for_function(USABLE, arg=[words, pictures], polling=20, timeout=180_000)
    elapsed = time.monotonic() - started
    return elapsed, wire.total_bytes / 1000, network.ws_messages, (cpu_seconds(server.proc.pid) - cpu) * 1000


def pages_at(data: Path, versions: list[tuple[str, Path]], repeat: int, restarts: int) -> dict[str, Visits]:
    """Every version served at once (each from its own copy of the ledger), visited in turn, so a
    before and an after share the machine's conditions (it is shared, and busy in bursts)."""
    from playwright.sync_api import sync_playwright

    sweep_id = (data / "bench-sweep").read_text()
    found = {label: Visits() for label, _ in versions}
    served: dict[str, tuple[AppServer, Wire]] = {}
    copies = []
    try:
        for i, (label, root) in enumerate(versions):
            copy = data if i == len(versions) - 1 else data.with_name(f"{data.name}-{i}")
            if copy != data:
                shutil.copytree(data, copy)
                copies.append(copy)
            server = AppServer(copy, copy, D.EMULATOR_LATENCY_S, root=root).start()
            served[label] = (server, Wire(server.port))
        with sync_playwright() as p:
            browser = launch(p)

            def fresh_context():
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.set_default_timeout(180_000)
                return context, page, Transfers(context, page)

            for server, wire in served.values():  # each server's first session: not counted
                context, page, network = fresh_context()
                for _, path, words, pictures in page_list(sweep_id):
                    visit(server, page, network, wire, path, words, pictures)
                context.close()
            for _ in range(repeat):
                for name, path, words, pictures in page_list(sweep_id):
                    for label, (server, wire) in served.items():
                        context, page, network = fresh_context()
                        found[label].add(
                            (name, "first"), *visit(server, page, network, wire, path, words, pictures)
                        )
                        found[label].add(
                            (name, "warm"), *visit(server, page, network, wire, path, words, pictures)
                        )
                        context.close()
            for _ in range(restarts):
                for name, path, words, pictures in page_list(sweep_id):
                    for label, (server, wire) in served.items():
                        server.stop()
                        server.start()
                        context, page, network = fresh_context()
                        found[label].add(
                            (name, "restart"), *visit(server, page, network, wire, path, words, pictures)
                        )
                        context.close()
            browser.close()
    finally:
        for server, wire in served.values():
            wire.close()
            server.stop()
        for copy in copies:
            shutil.rmtree(copy, ignore_errors=True)
    return found


FLOOR_WORDS = "A page of Streamlit alone"
FLOOR_APP = f"import streamlit as st\n\nst.title('Floor')\nst.write('{FLOOR_WORDS}: nothing of Flux Lab.')\n"


def floor(repeat: int, restarts: int) -> Visits:
    """The same visits of a page with nothing of Flux Lab on it (a title and a line, Flux Lab's
    .streamlit/config.toml): what Streamlit's own frontend takes on this machine, the least a page
    of this stack can take. Its first visit downloads and compiles the same frontend as any page's."""
    from playwright.sync_api import sync_playwright

    found = Visits()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "floor"
        (root / ".streamlit").mkdir(parents=True)
        shutil.copy(ROOT / ".streamlit" / "config.toml", root / ".streamlit" / "config.toml")
        (root / "app.py").write_text(FLOOR_APP)
        server = AppServer(Path(tmp), Path(tmp), D.EMULATOR_LATENCY_S, root=root).start()
        wire = Wire(server.port)
        try:
            with sync_playwright() as p:
                browser = launch(p)

                def visits(kinds: tuple[str, ...]) -> None:
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    page.set_default_timeout(180_000)
                    network = Transfers(context, page)
                    for kind in kinds:
                        measured = visit(server, page, network, wire, "/", FLOOR_WORDS, 0)
                        if kind:
                            found.add(("Streamlit alone", kind), *measured)
                    context.close()

                visits(("",))  # the server's first session: not counted
                for _ in range(repeat):
                    visits(("first", "warm"))
                for _ in range(restarts):
                    server.stop()
                    server.start()
                    visits(("restart",))
                browser.close()
        finally:
            wire.close()
            server.stop()
    return found


def pages(runs: list[int], repeat: int, restarts: int, ready: dict[int, Path], against: str | None) -> None:
    versions = [("this checkout", ROOT)]
    if against:
        versions.insert(0, (f"revision {against}", warm_visits.exported(against)))
    results: dict[tuple[str, int], Visits] = {}
    try:
        for n in runs:
            print(f"\npages at {n:,} runs:", flush=True)
            data = build(n, ready)
            try:
                for label, found in pages_at(data, versions, repeat, restarts).items():
                    results[label, n] = found
                    for (name, kind), seconds in found.seconds.items():
                        print(
                            f"  {label}: {name:<8} {kind:<8} "
                            + " ".join(f"{s:.2f}" for s in seconds)
                            + f" s; {statistics.median(found.kb[name, kind]):.1f} KB, "
                            f"{statistics.median(found.messages[name, kind]):.0f} messages, server CPU "
                            f"{statistics.median(found.cpu_ms[name, kind]):.0f} ms",
                            flush=True,
                        )
            finally:
                shutil.rmtree(data, ignore_errors=True)
    finally:
        for _, root in versions:
            if root != ROOT:
                shutil.rmtree(root, ignore_errors=True)

    def cell(found: Visits, key: tuple[str, str]) -> str:
        if key not in found.seconds:
            return "—"
        seconds = found.seconds[key]
        spread = f" ({min(seconds):.2f}–{max(seconds):.2f})" if len(seconds) > 1 else ""
        return (
            f"{statistics.median(seconds):.2f}{spread} s, {statistics.median(found.kb[key]):.1f} KB, "
            f"{statistics.median(found.messages[key]):.0f} msgs, {statistics.median(found.cpu_ms[key]):.0f} ms CPU"
        )

    bare = floor(repeat, restarts)
    print("\n| page, runs | version | first visit | warm visit | first visit after a restart |")
    print("|---|---|---|---|---|")
    key = "Streamlit alone"
    print(
        f"| {key} (the floor), — | — | {cell(bare, (key, 'first'))} | {cell(bare, (key, 'warm'))} | "
        f"{cell(bare, (key, 'restart'))} |"
    )
    for n in runs:
        for name, *_ in page_list(""):
            for label, _ in versions:
                found = results[label, n]
                print(
                    f"| {name}, {n:,} | {label} | {cell(found, (name, 'first'))} | "
                    f"{cell(found, (name, 'warm'))} | {cell(found, (name, 'restart'))} |"
                )


# --- watch -----------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """The server's largest resident set while it runs (sampled every 0.1 s)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, rss_mb(pid), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def watch(tab_counts: list[int], latency: float) -> None:
    from playwright.sync_api import sync_playwright

    print(
        f"\nwatch: a {WATCHED_CELLS}-cell sweep ({latency:.0f} s ± 2 s a job) on Compare, by 0, 1 and 5 tabs"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        server = AppServer(data, data, D.EMULATOR_LATENCY_S).start()
        assert server.proc is not None
        pid = server.proc.pid
        emulator = EmulatorServer(EmulatorConfig(latency_s=latency, latency_spread_s=2.0, queue_s=0)).start()
        connection = Connection.resolve(
            api_key="SG_bench0000000000", base_url=emulator.url, rpm=0, backend="emulator"
        )
        ledger = Ledger(data / D.DB_NAME)
        runner = Runner(
            ledger, data, SegmindClient(connection=connection), backend="emulator", concurrency=16
        )
        try:
            with sync_playwright() as p:
                browser = launch(p)
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                warm = context.new_page()  # the server's first session and the browser's cache: not counted
                warm.goto(server.url + "/compare")
                warm.get_by_text("Compare").first.wait_for(timeout=120_000)
                warm.close()
                for round_, tabs in enumerate(tab_counts):
                    plan = sweeps.make_plan(
                        FluxParams.parse(
                            prompt=f"a kite over a beach, round {round_}", seed=0, width=512, height=512
                        ),
                        [sweeps.axis("seed", list(range(WATCHED_CELLS)))],
                    )
                    sweep_id = sweeps.start(plan, ledger, runner, name=f"watched by {tabs}")
                    opened = [context.new_page() for _ in range(tabs)]
                    for (
                        tab
                    ) in opened:  # every tab loading at once, so the sweep is still live when all show it
                        tab.set_default_timeout(120_000)
                        tab.goto(f"{server.url}/compare?sweep={sweep_id}", wait_until="commit")
                    for tab in opened:
                        tab.get_by_text("Colour by / rank by check").first.wait_for()
                    ids = [c.run.id for c in sweeps.load(ledger, sweep_id).cells]
                    if all(r.status in FINAL for r in ledger.get_many(ids)):
                        print(f"  {tabs} tab(s): the sweep ended before every tab showed it; raise --latency")
                        continue
                    peak = PeakRss(pid)
                    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
                    runner.wait(ids)
                    done = time.monotonic()
                    for tab in opened:
                        tab.wait_for_function(warm_visits.PICTURES_LOADED, arg=WATCHED_CELLS, polling=20)
                    shown = time.monotonic() - done
                    cpu, wall = cpu_seconds(pid) - cpu0, time.monotonic() - wall0
                    rows.append((tabs, cpu / wall * 100, cpu, wall, peak.stop(), shown))
                    print(
                        f"  {tabs} tab(s): server CPU {cpu:.1f} s over {wall:.1f} s ({cpu / wall * 100:.0f} %), "
                        f"peak RSS {rows[-1][4]:.0f} MB; last job done → every tab shows all: "
                        + (f"{shown:.2f} s" if tabs else "—"),
                        flush=True,
                    )
                    for tab in opened:
                        tab.close()
                browser.close()
        finally:
            runner.shutdown()
            emulator.stop()
            server.stop()
    print(
        "\n| tabs watching a live 12-cell sweep | server CPU | peak RSS | last job done → every tab shows it |"
    )
    print("|---|---|---|---|")
    for tabs, percent, cpu, wall, peak_mb, shown in rows:
        print(
            f"| {tabs} | {percent:.0f} % ({cpu:.1f} s over {wall:.1f} s) | {peak_mb:.0f} MB | "
            + (f"{shown:.2f} s |" if tabs else "— |")
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="loop,pages,watch", help="parts to run: loop, pages, watch")
    parser.add_argument("--runs", default="1000,100000", help="ledger sizes for the pages part")
    parser.add_argument("--takes", type=int, default=8, help="Generates in the loop part")
    parser.add_argument("--repeat", type=int, default=3, help="first and warm visits of each page")
    parser.add_argument("--restarts", type=int, default=2, help="first visits of each page after a restart")
    parser.add_argument("--latency", type=float, default=20.0, help="seconds a watched job takes")
    parser.add_argument(
        "--ledger", action="append", default=[], help="N=DIR: start the N-run ledger from a copy of DIR"
    )
    parser.add_argument("--against", default=None, help="a git revision to measure the pages of too")
    args = parser.parse_args()
    parts = {part.strip() for part in args.only.split(",")}
    unknown = parts - {"loop", "pages", "watch"}
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}; choose from loop, pages, watch")
    ready = {int(n): Path(d) for n, d in (item.split("=", 1) for item in args.ledger)}
    quiet_environment()
    started = time.monotonic()
    if "loop" in parts:
        loop(args.takes)
    if "pages" in parts:
        pages([int(n) for n in args.runs.split(",")], args.repeat, args.restarts, ready, args.against)
    if "watch" in parts:
        watch([0, 1, 5], args.latency)
    print(f"\nbench took {time.monotonic() - started:.0f} s")
