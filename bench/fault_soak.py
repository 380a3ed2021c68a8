"""Fault and abuse soak of Flux Lab, driven as a black box: the `flux-lab` CLI and `streamlit run
app.py` as subprocesses, pointed by environment variables at an independent Segmind-protocol server
(bench/soak_server.py), with the ledger read through plain read-only sqlite3. Prints one table row
per scenario; asserts nothing.

    .venv/bin/python bench/fault_soak.py [--only 1,4] [--quick] [--json] [--keep]

Columns: runs (ledger runs, or processes for row 7); lost (jobs the server completed and billed
that no ledger run in a final state holds); submitted twice (ledger runs whose request the server
received more than once); stuck (ledger runs not in a final state at the end, plus processes that
had to be killed at their time limit); peak RSS (the largest of the scenario's Flux Lab processes,
from wait4).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak_server import FaultProxy, SoakServer, bomb_bytes, submit_key  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FLUX_LAB = str(BIN / "flux-lab") if (BIN / "flux-lab").exists() else shutil.which("flux-lab") or "flux-lab"
KEY = "SG_5eedfacec0ffee11"
ACTIVE = {"CREATED", "SUBMITTING", "QUEUED", "PROCESSING", "DOWNLOADING"}  # anything else is final
TOTAL_BUDGET_S = 330.0  # no scenario starts after this; each is bounded on its own


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- child processes ---------------------------------------------------------------------------
_children: list["Child"] = []


class Child:
    """A subprocess we started; reaped with wait4 so its own peak RSS is known."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path):
        self.name = name
        self.out_path, self.err_path = logs / f"{name}.out", logs / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.started = time.monotonic()
        self.rc: int | None = None
        self.rss_kb = 0
        self.killed = False  # by the scenario, on purpose
        self.timed_out = False  # killed at its time limit
        _children.append(self)

    def _reaped(self, status: int, usage: Any) -> None:
        self.rc = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.rc
        self.rss_kb = usage.ru_maxrss

    def poll(self) -> bool:
        if self.rc is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self._reaped(status, usage)
        return self.rc is not None

    def kill(self) -> None:
        if self.rc is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status, usage = os.wait4(self.proc.pid, 0)
            self._reaped(status, usage)

    def terminate(self, grace_s: float = 10.0) -> None:
        if self.rc is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while not self.poll() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.kill()

    def wait(self, limit_s: float) -> "Child":
        deadline = time.monotonic() + limit_s
        while not self.poll():
            if time.monotonic() >= deadline:
                self.timed_out = True
                self.kill()
                break
            time.sleep(0.05)
        return self

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    @property
    def rss_mb(self) -> float:
        return self.rss_kb / 1024

    def exit_text(self) -> str:
        if self.timed_out:
            return "killed at its time limit"
        if self.killed:
            return "SIGKILLed"
        return f"exit {self.rc}"


def _cleanup() -> None:
    for child in _children:
        if child.rc is None:
            child.kill()


def _on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def looks(server: SoakServer) -> int:
    """Requests that looked at jobs in flight: status polls and request-history reads (Flux Lab's
    scheduler reads the history as one poll for many jobs)."""
    with server.lock:
        return sum(server.counts.status_gets.values()) + server.counts.history_gets


def kill_when(child: Child, condition: Callable[[], bool], limit_s: float) -> bool:
    """SIGKILL the child the moment the condition holds; False if it never did in time."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and not child.poll():
        if condition():
            child.kill()
            child.killed = True
            return True
        time.sleep(0.01)
    return False


def wait_for(condition: Callable[[], bool], limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- what Flux Lab is pointed at ---------------------------------------------------------------
def env_for(url: str | None, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMIND_", "FLUX_LAB_"))}
    env.update(FLUX_LAB_DATA=str(data_dir), PYTHONUNBUFFERED="1")
    if url:
        env.update(
            SEGMIND_API_KEY=KEY,
            SEGMIND_BASE_URL=url,
            SEGMIND_UPLOAD_URL=f"{url}/upload-asset",
            SEGMIND_RPM="0",  # no client-side budget: the server here has no rate limit of its own
            SEGMIND_CONTROL_URL=url,  # the protocol doc's request history, served by the soak server
            FLUX_LAB_SETTLE_GRACE_S="2",
        )
    env.update(extra)
    return env


def flux(data_dir: Path, *args: str) -> list[str]:
    return [FLUX_LAB, "--data-dir", str(data_dir), *args]


def sweep_args(prompt: str, seeds: int, concurrency: int) -> list[str]:
    return [
        "sweep",
        "--prompt",
        prompt,
        "--seeds",
        ",".join(str(s) for s in range(1, seeds + 1)),
        "--concurrency",
        str(concurrency),
        "--width",
        "256",
        "--height",
        "256",
        "--json",
    ]


# --- the ledger, read-only ---------------------------------------------------------------------
def _query(data_dir: Path, sql: str) -> list[dict[str, Any]]:
    path = data_dir / "ledger.db"
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql)]
    except sqlite3.Error:
        return []
    finally:
        con.close()


def runs(data_dir: Path) -> list[dict[str, Any]]:
    return _query(data_dir, "SELECT * FROM runs")


def events(data_dir: Path) -> list[dict[str, Any]]:
    return _query(data_dir, "SELECT * FROM run_events")


@dataclass
class Audit:
    runs: int
    lost: int
    twice: int
    stuck: int
    statuses: Counter
    driven_twice: int
    unmatched: int  # runs with a request id whose submit the server never saw: a bench bug

    def clean(self) -> bool:
        return self.lost == self.twice == self.stuck == 0


def audit(server: SoakServer, data_dirs: list[Path], settle_s: float = 10.0, prompt_has: str = "") -> Audit:
    """The ledgers of data_dirs against what the server saw (only its jobs whose prompt holds
    prompt_has, when one server serves several ledgers)."""
    server.wait_all_ready(settle_s)  # every job the server took is billed or failed by now
    rows = [r for d in data_dirs for r in runs(d)]
    final_ids = {r["request_id"] for r in rows if r.get("request_id") and r["status"] not in ACTIVE}
    billed = [job for job in server.billed() if prompt_has in job.payload.get("prompt", "")]
    lost = sum(job.id not in final_ids for job in billed)
    with server.lock:
        submits = Counter(server.counts.submits)
        driven = set(server.counts.output_gets)
        driven_twice = sum(
            server.counts.output_gets[rid] > 1 or server.counts.result_gets[rid] > 1 for rid in driven
        )
    sent = [submits[submit_key(r)] for r in rows]
    twice = sum(n > 1 for n in sent)
    unmatched = sum(n == 0 and bool(r.get("request_id")) for n, r in zip(sent, rows))
    stuck = sum(r["status"] in ACTIVE for r in rows)
    return Audit(len(rows), lost, twice, stuck, Counter(r["status"] for r in rows), driven_twice, unmatched)


def statuses_text(counter: Counter) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(counter.items())) or "no runs"


# --- the table ---------------------------------------------------------------------------------
@dataclass
class Row:
    scenario: str
    runs: Any
    lost: Any
    twice: Any
    stuck: Any
    rss_mb: float | None
    verdict: str
    notes: str = ""


def row_from(name: str, a: Audit, children: list[Child], problems: list[str], notes: str) -> Row:
    killed = sum(c.timed_out for c in children)
    if a.unmatched:
        problems.append(f"BENCH: {a.unmatched} runs not matched to a submit")
    if a.lost:
        problems.append(f"{a.lost} lost")
    if a.twice:
        problems.append(f"{a.twice} submitted twice")
    stuck = max(a.stuck, killed)  # a process killed at its limit counts as stuck, once with its run
    if stuck:
        problems.append(f"{stuck} stuck")
    verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    rss = max((c.rss_mb for c in children), default=None)
    return Row(name, a.runs, a.lost, a.twice, stuck, rss, verdict, notes)


def print_table(rows: list[Row]) -> None:
    head = ("scenario", "runs", "lost", "submitted twice", "stuck", "peak RSS MB", "verdict")
    cells = [
        (r.scenario, str(r.runs), str(r.lost), str(r.twice), str(r.stuck),
         "-" if r.rss_mb is None else f"{r.rss_mb:.0f}", r.verdict)
        for r in rows
    ]  # fmt: skip
    widths = [max(len(head[i]), *(len(c[i]) for c in cells)) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")  # a Markdown table
    print(
        "|"
        + "|".join(("-" * (w + 1) + ":") if i not in (0, 6) else "-" * (w + 2) for i, w in enumerate(widths))
        + "|"
    )
    for c in cells:
        cols = (v.ljust(w) if i in (0, 6) else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths)))
        print("| " + " | ".join(cols) + " |")
    print()
    for r in rows:
        if r.notes:
            print(f"{r.scenario}: {r.notes}")


# --- the scenarios -----------------------------------------------------------------------------
class Context:
    def __init__(self, quick: bool, work: Path):
        self.quick = quick
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def dir(self, name: str) -> Path:
        return self.work / name  # not created: Flux Lab makes its own data directory


def s1_poll_storm(ctx: Context) -> list[Row]:
    n = 12 if ctx.quick else 16
    with SoakServer(latency_s=2.0, spread_s=0.7) as server, FaultProxy(server.port, rate=0.4) as proxy:
        d = ctx.dir("s1")
        sweep = Child("s1-sweep", flux(d, *sweep_args("poll storm", n, 8)), env_for(proxy.url, d), ctx.logs)
        sweep.wait(100 if ctx.quick else 150)
        a = audit(server, [d])
        faults = ", ".join(f"{k} {v}" for k, v in sorted(proxy.injected.items()))
        problems = (
            [] if a.statuses.get("COMPLETED") == n else [f"{a.statuses.get('COMPLETED', 0)}/{n} completed"]
        )
        notes = (
            f"{proxy.polls} polls through the proxy, {sum(proxy.injected.values())} failed ({faults}); "
            f"sweep {sweep.exit_text()}; {statuses_text(a.statuses)}"
        )
        return [row_from(f"1. poll storm ({n}-run sweep, 40% of polls fail)", a, [sweep], problems, notes)]


def _kill_and_resume(
    ctx: Context, letter: str, tag: str, server: SoakServer, n: int, trigger: Callable[[], bool]
) -> Row:
    d = ctx.dir(f"s2-{tag}")
    env = env_for(server.url, d)
    sweep = Child(f"s2-{tag}-sweep", flux(d, *sweep_args(f"kill during {tag}", n, 4)), env, ctx.logs)
    fired = kill_when(sweep, trigger, 30)
    at_kill = Counter(r["status"] for r in runs(d))
    resume = Child(f"s2-{tag}-resume", flux(d, "resume", "--json"), env, ctx.logs).wait(
        60 if ctx.quick else 90
    )
    a = audit(server, [d])
    problems = [] if fired else [f"the kill moment never came (sweep {sweep.exit_text()})"]
    notes = (
        f"{n}-run sweep, concurrency 4; at the kill: {statuses_text(at_kill)}; resume {resume.exit_text()}; after: {statuses_text(a.statuses)}; "
        f"server took {len(server.jobs)} jobs"
    )
    return row_from(f"2{letter}. SIGKILL during {tag}, then resume", a, [sweep, resume], problems, notes)


def s2_sigkill(ctx: Context) -> list[Row]:
    n = 6 if ctx.quick else 8
    out = []
    with SoakServer(latency_s=2.0, submit_delay_s=1.5) as server:
        out.append(_kill_and_resume(ctx, "a", "submits", server, n, lambda: server.counts.submit_posts >= 2))
    with SoakServer(latency_s=4.0) as server:
        out.append(_kill_and_resume(ctx, "b", "polls", server, n, lambda: looks(server) >= 4))
    with SoakServer(latency_s=1.5, spread_s=0.3, output_delay_s=2.5) as server:
        out.append(
            _kill_and_resume(ctx, "c", "downloads", server, n, lambda: server.counts.downloads_started >= 1)
        )
    return out


def _hostname_prefix() -> list[str] | None:
    """A command prefix that runs the rest under another hostname (a new UTS namespace), or None."""
    if not shutil.which("unshare"):
        return None
    script = 'hostname "$0" && exec "$@"'
    for flags in (["--uts"], ["--user", "--map-root-user", "--uts"]):
        prefix = ["unshare", *flags, "sh", "-c", script, "soak-other-host"]
        try:
            probe = subprocess.run([*prefix, "hostname"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and probe.stdout.strip() == "soak-other-host":
            return prefix
    return None


def s3_two_drivers(ctx: Context) -> list[Row]:
    n = 6 if ctx.quick else 8
    out = []
    with SoakServer(latency_s=3.0) as server:
        d = ctx.dir("s3-two")
        env = env_for(server.url, d)
        sweep = Child("s3-two-sweep", flux(d, *sweep_args("two resumes", n, n)), env, ctx.logs)
        fired = kill_when(sweep, lambda: looks(server) >= n, 30)
        resumes = [Child(f"s3-two-resume-{i}", flux(d, "resume", "--json"), env, ctx.logs) for i in (1, 2)]
        for r in resumes:
            r.wait(60 if ctx.quick else 90)
        a = audit(server, [d])
        problems = [] if fired else ["the kill moment never came"]
        if a.driven_twice:
            problems.append(f"{a.driven_twice} runs polled/downloaded twice")
        notes = (
            f"resumes: {', '.join(r.exit_text() for r in resumes)}; {statuses_text(a.statuses)}; "
            f"runs fetched twice at the server: {a.driven_twice}"
        )
        out.append(row_from("3a. two `resume` at once after a kill", a, [sweep, *resumes], problems, notes))

    prefix = _hostname_prefix()
    name = "3b. `resume` from another hostname, owner alive"
    if prefix is None:
        out.append(Row(name, "-", "-", "-", "-", None, "SKIP: no way to change the hostname here"))
        return out
    with SoakServer(latency_s=5.0, spread_s=0.5) as server:
        d = ctx.dir("s3-host")
        env = env_for(server.url, d)
        sweep = Child("s3-host-sweep", flux(d, *sweep_args("other host", n, n)), env, ctx.logs)
        wait_for(lambda: server.counts.submit_replies >= n and len(runs(d)) >= n, 30)
        time.sleep(0.5)  # the replies are written down as QUEUED
        other = Child("s3-host-resume", [*prefix, *flux(d, "resume", "--json")], env, ctx.logs)
        other.wait(60)
        sweep.wait(60)
        a = audit(server, [d])
        taken = sum(1 for line in other.stdout.splitlines() if line.strip().startswith("{"))
        problems = [f"{a.driven_twice} runs polled/downloaded twice"] if a.driven_twice else []
        notes = (
            f"the other host's resume took {taken} run(s) ({other.exit_text()}) while the sweep "
            f"({sweep.exit_text()}) was alive; {statuses_text(a.statuses)}"
        )
        out.append(row_from(name, a, [sweep, other], problems, notes))
    return out


BAD_OUTPUTS = [  # (name, prompt tag, a COMPLETED run is acceptable: the bytes are a real image)
    ("HTML page as the image", "[out:html]", False),
    ("empty body", "[out:empty]", False),
    ("302 redirect", "[out:redirect]", True),
    ("a GIF", "[out:gif]", True),
    ("truncated PNG", "[out:truncated]", False),
    ("30000x30000 PNG bomb", "[out:bomb]", False),
    ("invalid data: URI", "[result:datauri]", False),
    ("300 MB body", "[out:huge]", False),
    ("result with no output", "[result:none]", False),
    ("result output = raw base64", "[result:base64]", True),
    ("result is an HTML page", "[result:html]", False),
]
RSS_LIMIT_MB = 250.0


def s4_bad_outputs(ctx: Context) -> list[Row]:
    limit = 30.0 if ctx.quick else 60.0
    with SoakServer(latency_s=0.5, spread_s=0.1, queue_s=0.1) as server:
        bomb_bytes()  # built once, before any run's clock starts

        def one(i: int) -> tuple[Child, Path]:
            name, tag, _ = BAD_OUTPUTS[i]
            d = ctx.dir(f"s4-{i}")
            argv = flux(d, "generate", "--prompt", f"bad output {tag}", "--seed", str(i + 1), "--width", "256",
                        "--height", "256", "--json")  # fmt: skip
            return Child(f"s4-{i}", argv, env_for(server.url, d), ctx.logs).wait(limit), d

        with ThreadPoolExecutor(max_workers=6) as pool:
            done = list(pool.map(one, range(len(BAD_OUTPUTS))))
        out = []
        for (name, tag, ok_completed), (child, d) in zip(BAD_OUTPUTS, done):
            a = audit(server, [d], settle_s=2.0, prompt_has=tag)
            rows = runs(d)
            status = rows[0]["status"] if rows else "no run"
            with server.lock:
                ids = [j.id for j in server.jobs.values() if tag in j.payload.get("prompt", "")]
                fetched = sum(server.counts.output_gets[i] for i in ids)
                results = sum(server.counts.result_gets[i] for i in ids)
            problems = []
            if child.timed_out:
                problems.append(f"did not exit in {limit:.0f} s")
            if status == "COMPLETED" and not ok_completed:
                problems.append("stored as COMPLETED")
            if child.rss_mb > RSS_LIMIT_MB:
                problems.append(f"peak RSS {child.rss_mb:.0f} MB")
            if fetched > 3:
                problems.append(f"output fetched {fetched}x")
            notes = (
                f"final status {status}; {child.exit_text()}; output fetched {fetched}x, result {results}x"
            )
            if rows and rows[0].get("error"):
                notes += f"; error: {rows[0]['error'][:120]}"
            out.append(row_from(f"4. bad output: {name}", a, [child], problems, notes))
        return out


def s5_restart_no_visit(ctx: Context) -> list[Row]:
    n = 4 if ctx.quick else 6
    wait_s = 35.0 if ctx.quick else 45.0
    with SoakServer(latency_s=4.0) as server:
        d = ctx.dir("s5")
        env = env_for(server.url, d)
        sweep = Child("s5-sweep", flux(d, *sweep_args("restart no visit", n, n)), env, ctx.logs)
        wait_for(lambda: server.counts.submit_replies >= n and len(runs(d)) >= n, 30)
        time.sleep(0.3)
        sweep.kill()
        sweep.killed = True
        at_kill = Counter(r["status"] for r in runs(d))
        polls_before = looks(server)
        port = free_port()
        argv = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
                "--server.port", str(port), "--server.address", "127.0.0.1",
                "--browser.gatherUsageStats", "false"]  # fmt: skip
        app = Child("s5-streamlit", argv, {**env, "FLUX_LAB_EMULATOR_PORT": str(free_port())}, ctx.logs)

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).text == "ok"
            except httpx.HTTPError:
                return False

        up = wait_for(lambda: healthy() or app.poll(), 60) and app.rc is None
        started = time.monotonic()
        if up:
            wait_for(lambda: all(r["status"] not in ACTIVE for r in runs(d)), wait_s)
        waited = time.monotonic() - started
        polls_after = looks(server) - polls_before
        a = audit(server, [d], settle_s=2.0)
        app.terminate()
        problems = [] if up else ["the app server did not come up"]
        notes = (
            f"left in flight: {statuses_text(at_kill)}; app up {up}, watched {waited:.0f} s with no page open; "
            f"{polls_after} looks (polls, history reads) reached the server meanwhile; after: {statuses_text(a.statuses)}"
        )
        return [row_from("5. restart, no page visited", a, [app], problems, notes)]


def s6_key_echo(ctx: Context) -> list[Row]:
    with SoakServer(latency_s=0.5, spread_s=0.1) as server:
        d = ctx.dir("s6")
        env = env_for(server.url, d)
        children = [
            Child(
                f"s6-{tag}",
                flux(
                    d,
                    "generate",
                    "--prompt",
                    f"key echo [{tag}:key]",
                    "--seed",
                    str(i),
                    "--width",
                    "256",
                    "--height",
                    "256",
                ),
                env,
                ctx.logs,
            ).wait(60)  # fmt: skip
            for i, tag in ((1, "fail"), (2, "submit"))
        ]
        rows = runs(d)
        for r in rows:
            children.append(
                Child(f"s6-show-{r['seq']}", flux(d, "show", r["id"], "--json"), env, ctx.logs).wait(30)
            )
        children.append(Child("s6-history", flux(d, "history", "--json"), env, ctx.logs).wait(30))
        secrets = (KEY, KEY[3:])
        found = []
        if any(s in json.dumps(r) for r in rows for s in secrets):
            found.append("ledger runs")
        if any(s in (e.get("detail") or "") for e in events(d) for s in secrets):
            found.append("run_events")
        for c in children:
            label = c.name.removeprefix("s6-")
            for stream, text in (("stdout", c.stdout), ("stderr", c.stderr)):
                if any(s in text for s in secrets):
                    found.append(f"{label} {stream}")
        a = audit(server, [d], settle_s=2.0)
        problems = [f"key in: {', '.join(found)}"] if found else []
        notes = f"a FAILED job and a refused submit, both quoting the key; {statuses_text(a.statuses)}"
        return [row_from("6. API key echoed by the server", a, children, problems, notes)]


def s7_fresh_dir(ctx: Context) -> list[Row]:
    reps = 10 if ctx.quick else 30
    failures, errors, children = 0, Counter(), []
    for rep in range(reps):
        d = ctx.dir(f"s7/{rep}/data")
        env = env_for(None, d)
        trio = [Child(f"s7-{rep}-{i}", flux(d, "history", "--json"), env, ctx.logs) for i in range(3)]
        for c in trio:
            c.wait(30)
            text = c.stderr.strip()
            if c.rc != 0 or text:
                failures += 1
                errors[(text.splitlines() or [c.exit_text()])[-1][:110]] += 1
        children += trio
    timed_out = sum(c.timed_out for c in children)
    verdict = "PASS" if not failures else f"FAIL: {failures}/{len(children)} processes failed"
    notes = "; ".join(f"{n}x {e}" for e, n in errors.most_common(3)) or "every process listed an empty ledger"
    rss = max(c.rss_mb for c in children)
    return [Row(f"7. 3 processes open a fresh data dir ({reps}x)", len(children), "-", "-", timed_out, rss,
                verdict, notes)]  # fmt: skip


SCENARIOS = {
    1: s1_poll_storm,
    2: s2_sigkill,
    3: s3_two_drivers,
    4: s4_bad_outputs,
    5: s5_restart_no_visit,
    6: s6_key_echo,
    7: s7_fresh_dir,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="scenario numbers, e.g. 1 or 2,5")
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter limits")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    args = parser.parse_args()
    try:
        chosen = [int(p) for p in args.only.split(",") if p.strip()] or list(SCENARIOS)
    except ValueError:
        parser.error("--only takes scenario numbers 1..7 separated by commas")
    if any(n not in SCENARIOS for n in chosen):
        parser.error("--only takes scenario numbers 1..7 separated by commas")

    atexit.register(_cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    work = Path(tempfile.mkdtemp(prefix="flux-soak-"))
    ctx = Context(args.quick, work)
    rows: list[Row] = []
    began = time.monotonic()
    try:
        for n in chosen:
            if time.monotonic() - began > TOTAL_BUDGET_S:
                rows.append(
                    Row(f"{n}. {SCENARIOS[n].__name__}", "-", "-", "-", "-", None, "SKIP: out of time")
                )
                continue
            start = time.monotonic()
            log(f"[{n}] {SCENARIOS[n].__name__} ...")
            try:
                rows += SCENARIOS[n](ctx)
            except Exception as exc:  # one broken scenario must not hide the others' figures
                rows.append(Row(f"{n}. {SCENARIOS[n].__name__}", "-", "-", "-", "-", None,
                                f"BENCH ERROR: {type(exc).__name__}: {exc}"))  # fmt: skip
            _cleanup()
            log(f"[{n}] done in {time.monotonic() - start:.0f} s")
    finally:
        _cleanup()
        if args.keep:
            log(f"data directories and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nFlux Lab fault soak ({'quick' if args.quick else 'full'}), {time.monotonic() - began:.0f} s\n")
    print_table(rows)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
