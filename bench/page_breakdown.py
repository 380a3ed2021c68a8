"""Issue 19, item 4: where a page visit's time goes in Chromium. One server (embedded emulator) over a
ledger of `--runs` runs (the newest 60 a sweep, as bench/browser_loop.py makes it); for Compose,
Compare and History a first visit (empty browser cache, the server running and visited once), a warm
visit (the same address in a new session, cache warm) and a first visit right after a restart. For
each, milliseconds from the navigation's start (Chromium's own clocks: Navigation/Resource Timing and
CDP Network events):

- html: the page's HTML received; js: the last script of the first paint received (its count, KB on
  the wire); dcl: DOMContentLoaded (the bundle parsed and run); ws-open: Streamlit's WebSocket
  handshake done; 1st msg / last msg: the script's first and last message received (1st msg − ws-open
  is the session's start and the script's first delta; last − first is the script's run as the
  browser sees it); pics: the last picture received; usable: bench/browser_loop.py's "usable".
- main thread: CDP Performance metrics over the visit (script, layout+style, all tasks).
- chunks: the lazily loaded scripts after DOMContentLoaded (a page's element types pick them).
- messages by kind (the ForwardMsgs decoded) and delta elements by type, for the extra messages of a
  restart.

    .venv/bin/python bench/page_breakdown.py [--runs 1000] [--repeat 2] [--ledger DIR]

Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import collections
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import browser_loop  # noqa: E402
from tests.browser.appserver import AppServer  # noqa: E402
from flux_core import defaults as D  # noqa: E402

TIMINGS = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  const r = performance.getEntriesByType('resource');
  const js = r.filter(e => /\\.js(\\?|$)/.test(e.name));
  const early = js.filter(e => e.startTime <= n.domContentLoadedEventEnd);
  const late = js.filter(e => e.startTime > n.domContentLoadedEventEnd);
  const pics = r.filter(e => e.name.includes('/_flux/') || e.name.includes('/media/'));
  const fonts = r.filter(e => /\\.woff2?(\\?|$)/.test(e.name));
  const css = r.filter(e => /\\.css(\\?|$)/.test(e.name));
  const end = a => a.length ? Math.max(...a.map(e => e.responseEnd)) : null;
  const kb = a => a.reduce((s, e) => s + e.transferSize, 0) / 1000;
  return {
    html: n.responseEnd, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,
    js_end: end(early), js_n: early.length, js_kb: kb(early),
    late_end: end(late), late_n: late.length, late_kb: kb(late),
    late_names: late.map(e => e.name.split('/').pop() + ' ' + Math.round(e.startTime) + '→' + Math.round(e.responseEnd)),
    css_end: end(css), fonts_end: end(fonts), fonts_n: fonts.length, fonts_kb: kb(fonts),
    pics_end: end(pics), pics_n: pics.length,
  };
}"""


class Probe:
    """CDP Network events of one page: the document request's start, the WebSocket's, its frames."""

    def __init__(self, context, page) -> None:
        self.cdp = context.new_cdp_session(page)
        self.cdp.send("Network.enable")
        self.cdp.send("Performance.enable")
        self.cdp.on("Network.requestWillBeSent", self._sent)
        self.cdp.on("Network.webSocketHandshakeResponseReceived", self._open)
        self.cdp.on("Network.webSocketFrameReceived", self._frame)
        self.reset()

    def reset(self) -> None:
        self.doc: float | None = None
        self.ws_open: float | None = None
        self.frames: list[tuple[float, bytes]] = []
        self.metrics = self._metrics()

    def _metrics(self) -> dict[str, float]:
        return {m["name"]: m["value"] for m in self.cdp.send("Performance.getMetrics")["metrics"]}

    def _sent(self, event: dict) -> None:
        if event.get("type") == "Document" and self.doc is None:
            self.doc = event["timestamp"]

    def _open(self, event: dict) -> None:
        if self.ws_open is None:  # Streamlit's own; the change feed's socket (flux_ui/live.py) opens later
            self.ws_open = event["timestamp"]

    def _frame(self, event: dict) -> None:
        response = event["response"]
        if response["opcode"] == 2:
            self.frames.append((event["timestamp"], base64.b64decode(response["payloadData"])))

    def main_thread_ms(self) -> dict[str, float]:
        now = self._metrics()
        d = {k: (now.get(k, 0) - self.metrics.get(k, 0)) * 1000 for k in now}
        return {
            "script": d.get("ScriptDuration", 0),
            "layout+style": d.get("LayoutDuration", 0) + d.get("RecalcStyleDuration", 0),
            "tasks": d.get("TaskDuration", 0),
        }


def kinds(frames: list[tuple[float, bytes]]) -> tuple[collections.Counter, collections.Counter]:
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    kind: collections.Counter = collections.Counter()
    elements: collections.Counter = collections.Counter()
    for _, payload in frames:
        msg = ForwardMsg.FromString(payload)
        which = msg.WhichOneof("type")
        kind[which] += 1
        if which == "delta":
            delta = msg.delta
            part = delta.WhichOneof("type")
            if part == "new_element":
                elements[delta.new_element.WhichOneof("type")] += 1
            else:
                elements[part] += 1
    return kind, elements


def timeline(frames: list[tuple[float, bytes]], zero: float) -> str:
    """Each message's arrival (ms from the navigation's start) and what it carried, the gaps of
    more than 20 ms between them marked: where the script (or the wire) paused."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    out, last = [], None
    for at, payload in frames:
        msg = ForwardMsg.FromString(payload)
        which = msg.WhichOneof("type")
        if which == "delta":
            part = msg.delta.WhichOneof("type")
            which = msg.delta.new_element.WhichOneof("type") if part == "new_element" else part
        ms = (at - zero) * 1000
        gap = f" [+{ms - last:.0f}]" if last is not None and ms - last > 20 else ""
        out.append(f"{ms:.0f}{gap} {which}")
        last = ms
    return ", ".join(out)


def one(server: AppServer, page, probe: Probe, path: str, words: str, pictures: int) -> dict:
    probe.reset()
    assert server.proc is not None
    cpu = browser_loop.cpu_seconds(server.proc.pid)
    started = time.monotonic()
    page.goto(server.url + path)
    page.wait_for_function(browser_loop.USABLE, arg=[words, pictures], polling=20, timeout=180_000)
    usable = (time.monotonic() - started) * 1000
    found = page.evaluate(TIMINGS)
    found["usable"] = usable
    found["cpu"] = (browser_loop.cpu_seconds(server.proc.pid) - cpu) * 1000
    zero = probe.doc
    if zero is not None and probe.ws_open is not None:
        found["ws_open"] = (probe.ws_open - zero) * 1000
    if zero is not None and probe.frames:
        found["first_msg"] = (probe.frames[0][0] - zero) * 1000
        found["last_msg"] = (probe.frames[-1][0] - zero) * 1000
    found["msgs"] = len(probe.frames)
    found["kinds"], found["elements"] = kinds(probe.frames)
    found["timeline"] = timeline(probe.frames, zero) if zero is not None else ""
    found["main"] = probe.main_thread_ms()
    return found


COLUMNS = [
    ("html", "html"),
    ("js_end", "js"),
    ("dcl", "dcl"),
    ("ws_open", "ws-open"),
    ("first_msg", "1st msg"),
    ("last_msg", "last msg"),
    ("late_end", "chunks"),
    ("fonts_end", "fonts"),
    ("pics_end", "pics"),
    ("usable", "usable"),
    ("cpu", "srv CPU"),
]


def median(rows: list[dict], key: str) -> str:
    values = [r[key] for r in rows if r.get(key) is not None]
    return f"{statistics.median(values):.0f}" if values else "—"


def report(name: str, kind: str, rows: list[dict]) -> None:
    cells = " | ".join(median(rows, k) for k, _ in COLUMNS)
    main = {k: statistics.median(r["main"][k] for r in rows) for k in rows[0]["main"]}
    last = rows[-1]
    print(
        f"| {name} {kind} | {cells} | {main['script']:.0f} / {main['layout+style']:.0f} / {main['tasks']:.0f} "
        f"| {last['js_n']} js {last['js_kb']:.0f} KB; {last['late_n']} chunks {last['late_kb']:.0f} KB; "
        f"{last['fonts_n']} fonts {last['fonts_kb']:.0f} KB | {last['msgs']} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--ledger", default=None, help="start from a copy of this data directory")
    parser.add_argument("--frames", action="store_true", help="print every message's arrival too")
    args = parser.parse_args()
    browser_loop.quiet_environment()
    from playwright.sync_api import sync_playwright

    ready = {args.runs: Path(args.ledger)} if args.ledger else {}
    data = browser_loop.build(args.runs, ready)
    sweep_id = (data / "bench-sweep").read_text()
    pages = browser_loop.page_list(sweep_id)
    server = AppServer(data, data, D.EMULATOR_LATENCY_S).start()
    found: dict[tuple[str, str], list[dict]] = {}
    try:
        with sync_playwright() as p:
            browser = browser_loop.launch(p)

            def fresh():
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.set_default_timeout(180_000)
                return context, page, Probe(context, page)

            context, page, probe = fresh()  # the server's first session: not counted
            for _, path, words, pictures in pages:
                one(server, page, probe, path, words, pictures)
            context.close()
            for _ in range(args.repeat):
                for name, path, words, pictures in pages:
                    context, page, probe = fresh()
                    found.setdefault((name, "first"), []).append(
                        one(server, page, probe, path, words, pictures)
                    )
                    found.setdefault((name, "warm"), []).append(
                        one(server, page, probe, path, words, pictures)
                    )
                    context.close()
            for _ in range(args.repeat):
                for name, path, words, pictures in pages:
                    server.stop()
                    server.start()
                    context, page, probe = fresh()
                    found.setdefault((name, "restart"), []).append(
                        one(server, page, probe, path, words, pictures)
                    )
                    context.close()
            browser.close()
    finally:
        server.stop()
    print(f"\nms from the navigation's start, median of {args.repeat}, {args.runs:,} runs")
    head = " | ".join(label for _, label in COLUMNS)
    print(f"| visit | {head} | main thread script / layout+style / tasks ms | what loaded | msgs |")
    print("|" + "---|" * (len(COLUMNS) + 4))
    for (name, kind), rows in found.items():
        report(name, kind, rows)
    print("\nlazily loaded chunks (the last visit of each):")
    for (name, kind), rows in found.items():
        print(f"  {name} {kind}: " + ", ".join(rows[-1]["late_names"]))
    if args.frames:
        print("\nmessages as they arrived (the last visit of each):")
        for (name, kind), rows in found.items():
            print(f"  {name} {kind}: {rows[-1]['timeline']}")
    print("\nmessages by kind / delta elements by type (the last visit of each):")
    for (name, kind), rows in found.items():
        print(f"  {name} {kind}: {dict(rows[-1]['kinds'])}")
        print(f"      {dict(rows[-1]['elements'].most_common())}")


if __name__ == "__main__":
    main()
