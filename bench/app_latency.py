"""Issue 13, item 5: how soon a single Generate's image is on the screen after the job finished, in the
app as a person uses it. `streamlit run app.py` with its embedded emulator (no key; emulated inference
2 s ± 0.5 s, the app's default), driven by Playwright in Debian's Chromium; asserts nothing.

    .venv/bin/python bench/app_latency.py [--runs 8] [--latency 2.0] [--root OTHER_CHECKOUT]

Where the moments come from (wall clock, the same machine):
- the job finished on the emulator at created + queue_s + latency_s (its own record, kept in the data
  directory's emulator-state.json);
- the ledger had the image at the run's `finished_at` (stored on disk);
- the browser showed it when a new picture inside Compose's result had loaded (a MutationObserver in the
  page takes Date.now() on the image's load event).
The first Generate of a fresh data directory has no duration to plan by (the FLUX.2 [max] prior of
26 s); the ones after it plan by the ledger's. Both are printed.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.appserver import AppServer  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

WATCH = """() => {
  window.__before = new Set([...document.querySelectorAll('[data-testid="stImage"] img')].map(i => i.src));
  window.__seen = null;
  const mark = (img) => {
    if (window.__seen === null && !window.__before.has(img.src) && img.naturalWidth > 0) window.__seen = Date.now();
  };
  const scan = () => {
    for (const img of document.querySelectorAll('[data-testid="stImage"] img')) {
      if (img.complete) mark(img); else img.addEventListener('load', () => mark(img), {once: true});
    }
  };
  if (window.__observer) window.__observer.disconnect();
  window.__observer = new MutationObserver(scan);
  window.__observer.observe(document.body, {subtree: true, childList: true, attributes: true});
}"""


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _completed_at(data: Path, request_id: str) -> float | None:
    state = json.loads((data / "emulator-state.json").read_text())
    for job in state["jobs"]:
        if job["id"] == request_id:
            return job["created"] + job["queue_s"] + job["latency_s"]
    return None


def _latest_run(data: Path) -> tuple[str, str | None, str | None, str | None]:
    """The newest run: its id, request id, when its image was stored, and when it was seen finished."""
    db = sqlite3.connect(f"file:{data / 'ledger.db'}?mode=ro", uri=True)
    try:
        run_id, request_id, finished_at = db.execute(
            "SELECT id, request_id, finished_at FROM runs ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        noticed = db.execute(
            "SELECT at FROM run_events WHERE run_id = ? AND status = 'DOWNLOADING' ORDER BY id LIMIT 1",
            [run_id],
        ).fetchone()
    finally:
        db.close()
    return run_id, request_id, finished_at, noticed[0] if noticed else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--latency", type=float, default=2.0, help="emulated inference seconds")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the checkout whose app.py is served (a before)"
    )
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # a busy machine draws the first page slowly

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data, logs = Path(tmp) / "data", Path(tmp) / "logs"
        data.mkdir()
        logs.mkdir()
        server = AppServer(data, logs, args.latency, root=args.root).start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1300})
                page.set_default_timeout(60_000)
                page.goto(server.url)
                expect(page.get_by_label("Prompt")).to_be_visible()
                for i in range(args.runs):
                    page.get_by_label("Prompt").fill(f"a red cube, take {i + 1}")
                    page.evaluate(WATCH)
                    page.get_by_role("button", name="Generate").click()
                    page.wait_for_function("() => window.__seen !== null", polling=50)
                    seen = page.evaluate("window.__seen") / 1000.0
                    run_id, request_id, finished_at, noticed = _latest_run(data)
                    done = _completed_at(data, request_id) if request_id else None
                    if done is None or finished_at is None:
                        print(f"take {i + 1}: run {run_id} has no finished job to measure", flush=True)
                        continue
                    rows.append((done, _epoch(finished_at), seen))
                    found = f"{_epoch(noticed) - done:.2f} s" if noticed else "?"
                    print(
                        f"take {i + 1}: job finished -> seen finished {found}, "
                        f"image stored {_epoch(finished_at) - done:.2f} s; "
                        f"stored -> on screen {seen - _epoch(finished_at):.2f} s; "
                        f"job finished -> on screen {seen - done:.2f} s",
                        flush=True,
                    )
                    time.sleep(0.5)  # a person reading the result before the next Generate
                browser.close()
        finally:
            server.stop()
    if not rows:
        return

    def line(label: str, values: list[float]) -> str:
        p95 = statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]
        return f"| {label} | {statistics.median(values):.2f} | {p95:.2f} | {max(values):.2f} |"

    later = rows[1:] or rows
    print("\n| single Generate, app's emulator | median s | p95 s | max s |")
    print("|---|---|---|---|")
    print(line("first take (no duration known): job finished → on screen", [rows[0][2] - rows[0][0]]))
    print(line("later takes: job finished → image stored", [s - d for d, s, _ in later]))
    print(line("later takes: image stored → on screen", [v - s for _, s, v in later]))
    print(line("later takes: job finished → on screen", [v - d for d, _, v in later]))


if __name__ == "__main__":
    main()
