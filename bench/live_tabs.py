"""Issue 19, items 1 and 5: what a live sweep grid costs the server for 1 tab and for 5, and how soon
each cell's picture is on the screen after it was stored. `streamlit run app.py` with its embedded
emulator, Playwright in Debian's Chromium (each tab its own browser context, as five people would be);
asserts nothing.

    .venv/bin/python bench/live_tabs.py [--tabs 1,5] [--latency 6] [--root OTHER_CHECKOUT]

Each take: a fresh data directory and server; the first tab plans a 12-cell sweep (6 seeds × 2
tolerances) on Compare and presses Run sweep; the other tabs open the sweep's page; once every tab
shows the live grid, the server's CPU (user + system, /proc) is read, and again once every tab shows
all 12 cells done: the watching's cost, the runner's own work included (it is the same in every take).
A run made by the CLI before the server starts gives the runner the ledger's own duration to plan
by. The first tab records when each cell's thumbnail loaded (a MutationObserver takes Date.now() on its
load event); the ledger's `finished_at` says when the image was stored. FLUX_LAB_CHECKS=0, so the
background checks (OCR) do not land in the window. `--root` runs another checkout's app.py (the
"before").
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.appserver import AppServer  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

WATCH = """() => {
  window.__loaded = {};
  const mark = (img) => { if (!(img.src in window.__loaded)) window.__loaded[img.src] = Date.now(); };
  const scan = () => {  // the grid draws in its own shadow root, which a MutationObserver does not see
    const hosts = [...document.querySelectorAll('*')].filter((e) => e.shadowRoot);
    for (const img of hosts.flatMap((h) => [...h.shadowRoot.querySelectorAll('img')])) {
      if (img.dataset.watched) continue;
      img.dataset.watched = "1";
      if (img.complete && img.naturalWidth > 0) mark(img); else img.addEventListener('load', () => mark(img), {once: true});
    }
  };
  setInterval(scan, 20);
}"""

DONE = "12 done · 0 blocked · 0 failed · 0 pending"


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def stored_at(data: Path) -> dict[str, float]:
    """Each thumbnail's file name: when its run's image was stored."""
    db = sqlite3.connect(f"file:{data / 'ledger.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT thumb_path, finished_at FROM runs WHERE thumb_path IS NOT NULL").fetchall()
    finally:
        db.close()
    return {thumb.rsplit("/", 1)[-1]: _epoch(at) for thumb, at in rows if at}


def warm_up(data: Path, latency: float) -> None:
    """One run made by the CLI first, so the runner plans its looks by the ledger's own duration
    rather than FLUX.2 [max]'s 26 s prior (a fresh ledger's first sweep would wait that long)."""
    subprocess.run(
        [sys.executable, "-m", "flux_core", "--data-dir", str(data), "generate", "--emulator"]
        + ["--prompt", "a warm-up", "--width", "512", "--height", "512"],
        check=True,
        capture_output=True,
        env={**os.environ, "FLUX_LAB_EMULATOR_LATENCY": str(latency)},
        timeout=180,
    )


def take(tabs: int, latency: float, root: Path) -> tuple[float, float, list[float]]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=120_000)

    with tempfile.TemporaryDirectory() as tmp:
        data, logs = Path(tmp) / "data", Path(tmp) / "logs"
        data.mkdir()
        logs.mkdir()
        os.environ["FLUX_LAB_CHECKS"] = "0"
        warm_up(data, latency)
        server = AppServer(data, logs, latency, root=root).start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                pages = [
                    browser.new_context(viewport={"width": 1400, "height": 1300}).new_page()
                    for _ in range(tabs)
                ]
                for page in pages:
                    page.set_default_timeout(120_000)
                first = pages[0]
                first.goto(f"{server.url}/compare")
                first.get_by_label("Base prompt").fill("a red cube on a white table")
                first.get_by_label("Seeds, separated by commas").fill("1, 2, 3, 4, 5, 6")
                first.get_by_label("Seeds, separated by commas").press("Tab")
                expect(first.get_by_text("12 cells (6 seeds × 2 safety tolerances)")).to_be_visible()
                first.get_by_role("button", name="Run sweep").click()
                first.wait_for_url("**/compare?sweep=*")
                first.evaluate(WATCH)
                for page in pages[1:]:
                    page.goto(first.url)
                for page in pages:
                    expect(page.get_by_test_id("fl-sweep")).to_be_visible()
                start_wall, start_cpu = datetime.now().timestamp(), cpu_s(server.proc.pid)
                for page in pages:
                    expect(page.get_by_text(DONE)).to_be_visible()
                    expect(page.get_by_test_id("fl-cell").locator("img")).to_have_count(12)
                wall, cpu = datetime.now().timestamp() - start_wall, cpu_s(server.proc.pid) - start_cpu
                loaded = first.evaluate("window.__loaded")
                browser.close()
        finally:
            server.stop()
        stored = stored_at(data)
        delays = [
            at / 1000.0 - stored[name]
            for src, at in loaded.items()
            if (name := src.rsplit("/", 1)[-1]) in stored
        ]
        return cpu, wall, delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tabs", default="1,5", help="tab counts to measure, e.g. 1,5")
    parser.add_argument("--takes", type=int, default=2, help="takes of each tab count")
    parser.add_argument("--latency", type=float, default=6.0, help="emulated inference seconds")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app.py is served")
    args = parser.parse_args()
    print(
        "| tabs | server CPU s (grid shown → 12 done) | window s | cell stored → on screen median / p95 s |"
    )
    print("|---|---|---|---|")
    for tabs in [int(t) for t in args.tabs.split(",")]:
        for _ in range(args.takes):
            cpu, wall, delays = take(tabs, args.latency, args.root)
            shown = "?"
            if delays:
                p95 = (
                    statistics.quantiles(delays, n=20, method="inclusive")[18]
                    if len(delays) > 1
                    else delays[0]
                )
                shown = f"{statistics.median(delays):.2f} / {p95:.2f} ({len(delays)} cells)"
            print(f"| {tabs} | {cpu:.2f} | {wall:.1f} | {shown} |", flush=True)


if __name__ == "__main__":
    main()
