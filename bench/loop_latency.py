"""Issue 13's baseline: how soon a result is in the client's hands after the job finished on the server,
and what that costs in requests and CPU. Flux Lab's CLI (`flux-lab sweep --concurrency N --json`, a
subprocess, a fresh data directory) versus the official SDK's `run()` from N threads, each against a
fresh in-process emulator on loopback. Prints figures side by side and a markdown table; asserts nothing.

    .venv/bin/python bench/loop_latency.py                    # scenarios 1-4 at the issue's sizes
    .venv/bin/python bench/loop_latency.py --only 1,3
    .venv/bin/python bench/loop_latency.py --scale --jobs 16,64,256   # scenario 1 at those sizes only
    .venv/bin/python bench/loop_latency.py --scale --only 1,2,3,4     # both
    .venv/bin/python bench/loop_latency.py --scale --jobs 256 --scale-rpm 0   # Flux Lab without its budget

Where the moments come from (wall clock, time.time(), the same machine on both sides):
- a job completed on the server at created + queue_s + latency_s (the emulator's own job record);
- Flux Lab had it at the run's `finished_at` in <data dir>/ledger.db (set once the image is on disk),
  matched to the job by request_id;
- the SDK had it when `run()` returned in its thread (the result body with the image URL; the SDK does
  not download the image), matched by the request_id it returned, else by seed.
CPU per job: Flux Lab's is the subprocess's (getrusage(RUSAGE_CHILDREN) delta); the SDK's is this
process's time.process_time() delta, which includes the in-process emulator (shown on its own).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flux_core.emulator.server import EmulatorConfig, EmulatorServer

KEY = "SG_bench0000000000"
PROMPT = "a red cube"
SIZE = 512


@dataclass
class Scenario:
    label: str
    title: str
    jobs: int
    server: dict[str, Any]
    flux_rpm: str | None = None  # SEGMIND_RPM for Flux Lab; None: unset


def scenarios(scale_jobs: list[int], scale_rpm: str | None = None) -> dict[str, Scenario]:
    fast = {"latency_s": 4.0, "latency_spread_s": 1.2}
    out = {
        "1": Scenario("1", "16 jobs of ~4 s ±30 %, server without a limit", 16, fast),
        "2": Scenario("2", "same, SEGMIND_RPM=0 for Flux Lab", 16, fast, flux_rpm="0"),
        "3": Scenario(
            "3",
            "16 jobs of ~26 s ±40 %, server without a limit",
            16,
            {"latency_s": 26.0, "latency_spread_s": 10.4},
        ),
        "4": Scenario(
            "4",
            "32 jobs of ~4 s, server allows 60 requests/min (all endpoints counted)",
            32,
            {**fast, "rpm": 60, "rate_window_s": 60.0, "count_polls": True},
        ),
    }
    rpm_note = "" if scale_rpm is None else f", SEGMIND_RPM={scale_rpm} for Flux Lab"
    for n in scale_jobs:
        title = f"{n} jobs of ~4 s ±30 %, server without a limit{rpm_note}"
        out[f"1x{n}"] = Scenario(f"1 @{n}", title, n, fast, flux_rpm=scale_rpm)
    return out


def emulator_config(s: Scenario) -> EmulatorConfig:
    return EmulatorConfig(queue_s=0.3, random_seed=1, **s.server)


@dataclass
class Result:
    contender: str
    jobs: int
    completed: int = 0
    wall_s: float = 0.0
    overhead_s: float | None = None  # client end minus the last job's completion on the server
    lags: list[float] = field(default_factory=list)  # per job: client had it minus server completed it
    polls: int = 0
    results: int = 0
    downloads: int = 0
    history: int = 0  # request-history reads (Flux Lab's scheduler polls with them; and real costs)
    submit_requests: int = 0
    submits: int = 0
    rate_limited: int = 0
    cpu_s: float = 0.0
    server_cpu_s: float = 0.0  # the emulator's thread (in this process)
    submit_span: tuple[float, float] | None = None  # first and last job made, seconds after the start
    outcomes: dict[str, int] = field(default_factory=dict)

    def per_job(self, value: float) -> float:
        return value / self.jobs if self.jobs else 0.0


def _thread_cpu_s(native_id: int | None) -> float:
    """CPU seconds (user + system) of one thread of this process, from /proc; 0 where unreadable."""
    if native_id is None:
        return 0.0
    try:
        with open(f"/proc/self/task/{native_id}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu(server: EmulatorServer) -> float:
    thread = server._thread  # the uvicorn loop: every request and every image render runs there
    return _thread_cpu_s(thread.native_id if thread else None)


def _completions(server: EmulatorServer) -> dict[str, tuple[float, Any]]:
    """request_id -> (moment the job completed on the server, its seed)."""
    return {
        j.id: (j.created + j.queue_s + j.latency_s, j.params.get("seed"))
        for j in list(server.emulator.jobs.values())
        if not j.error
    }


def _fill_server_side(
    r: Result, server: EmulatorServer, started: float, ended: float
) -> dict[str, tuple[float, Any]]:
    s = server.stats
    made = [j.created - started for j in list(server.emulator.jobs.values())]
    if made:
        r.submit_span = (min(made), max(made))
    r.polls, r.results, r.downloads, r.history = s.polls, s.results, s.downloads, s.history_requests
    r.submit_requests, r.submits, r.rate_limited = s.submit_requests, s.submits, s.rate_limited
    done = _completions(server)
    if done and r.completed:  # a client that got nothing has no overhead to speak of
        r.overhead_s = ended - max(moment for moment, _ in done.values())
    return done


def _flux_lab_command() -> list[str]:
    script = Path(sys.executable).with_name("flux-lab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "flux_core"]


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def flux_lab(s: Scenario) -> Result:
    r = Result("Flux Lab", s.jobs)
    with EmulatorServer(emulator_config(s)) as server, tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "SEGMIND_BASE_URL": server.url, "SEGMIND_API_KEY": KEY, "FLUX_LAB_DATA": data}
        env.pop("SEGMIND_RPM", None)
        if s.flux_rpm is not None:
            env["SEGMIND_RPM"] = s.flux_rpm
        command = [
            *_flux_lab_command(),
            "sweep",
            "--prompt",
            PROMPT,
            "--seeds",
            ",".join(str(seed) for seed in range(1, s.jobs + 1)),
            "--concurrency",
            str(s.jobs),
            "--width",
            str(SIZE),
            "--height",
            str(SIZE),
            "--yes",  # past the sweep cap of 24 new images
            "--json",
        ]
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu = _server_cpu(server)
        started = time.time()
        out = subprocess.run(command, capture_output=True, text=True, env=env)
        ended = time.time()
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        r.server_cpu_s = _server_cpu(server) - server_cpu
        r.wall_s = ended - started
        r.cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
        for line in out.stdout.splitlines():
            try:
                status = json.loads(line).get("status", "?")
            except ValueError:
                status = "unparsed output"
            r.outcomes[status] = r.outcomes.get(status, 0) + 1
        if out.returncode and not out.stdout.strip():
            r.outcomes[f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}"] = 1
        db = sqlite3.connect(f"file:{Path(data) / 'ledger.db'}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT request_id, finished_at FROM runs WHERE status = 'COMPLETED'"
            ).fetchall()
        finally:
            db.close()
        r.completed = len(rows)
        done = _fill_server_side(r, server, started, ended)
        for request_id, finished_at in rows:
            if request_id in done and finished_at:
                r.lags.append(_epoch(finished_at) - done[request_id][0])
    return r


def official_sdk(s: Scenario) -> Result:
    from segmind import SegmindClient

    r = Result("official SDK", s.jobs)
    with EmulatorServer(emulator_config(s)) as server:
        returned: dict[int, tuple[float, Any]] = {}  # seed -> (moment run() returned, its request_id)
        outcomes: list[str] = []
        lock = threading.Lock()

        def one(seed: int) -> None:
            client = SegmindClient(api_key=KEY, base_url=f"{server.url}/v1")
            try:
                body = client.run("flux-2-max", prompt=PROMPT, seed=seed, width=SIZE, height=SIZE)
                moment = time.time()
                with lock:
                    returned[seed] = (moment, body.get("request_id") if isinstance(body, dict) else None)
                    outcomes.append("COMPLETED")
            except Exception as exc:  # what the SDK raises is the figure
                with lock:
                    outcomes.append(type(exc).__name__)
            finally:
                client._client.close()

        threads = [threading.Thread(target=one, args=(seed,)) for seed in range(1, s.jobs + 1)]
        cpu = time.process_time()
        server_cpu = _server_cpu(server)
        started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ended = time.time()
        r.cpu_s = time.process_time() - cpu
        r.server_cpu_s = _server_cpu(server) - server_cpu
        r.wall_s = ended - started
        r.outcomes = {k: outcomes.count(k) for k in sorted(set(outcomes))}
        r.completed = outcomes.count("COMPLETED")
        done = _fill_server_side(r, server, started, ended)
        by_seed = {seed: moment for moment, seed in done.values()}  # one job per seed here
        for seed, (moment, request_id) in returned.items():
            completed_at = done[request_id][0] if request_id in done else by_seed.get(seed)
            if completed_at is not None:
                r.lags.append(moment - completed_at)
    return r


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def _cells(r: Result) -> list[str]:
    lag = f"{statistics.median(r.lags):.2f} / {_p95(r.lags):.2f}" if r.lags else "n/a"
    return [
        r.contender,
        f"{r.completed}/{r.jobs}",
        f"{r.wall_s:.1f}",
        f"{r.overhead_s:.2f}" if r.overhead_s is not None else "n/a",
        lag,
        f"{r.per_job(r.polls + r.results + r.history):.2f}",
        f"{r.per_job(r.polls):.2f} + {r.per_job(r.results):.2f} + {r.per_job(r.history):.2f}",
        f"{r.per_job(r.submit_requests):.2f} ({r.submits} made)",
        f"{r.per_job(r.downloads):.2f}",
        str(r.rate_limited),
        f"{r.per_job(r.cpu_s):.3f}" + (" *" if r.contender == "official SDK" else ""),
        f"{r.per_job(r.server_cpu_s):.3f}",
    ]


HEADER = [
    "contender",
    "completed",
    "wall s",
    "overhead s",
    "completion→result median / p95 s",
    "looks req/job (status+result+history)",
    "status + result + history",
    "submit req/job",
    "download req/job",
    "429s",
    "client CPU s/job",
    "emulator CPU s/job",
]


def _span(r: Result) -> str:
    return f"from +{r.submit_span[0]:.1f} s to +{r.submit_span[1]:.1f} s" if r.submit_span else "none"


def print_pair(s: Scenario, pair: list[Result]) -> None:
    print(f"\n== scenario {s.label}: {s.title}")
    for r in pair:
        cells = dict(zip(HEADER, _cells(r)))
        print(
            f"  {r.contender:13}: {cells['completed']} in {cells['wall s']} s; overhead beyond the last job "
            f"{cells['overhead s']} s; completion→result median/p95 {cells['completion→result median / p95 s']} s; "
            f"{cells['looks req/job (status+result+history)']} status+result+history requests a job ({r.polls} status, "
            f"{r.results} result, {r.history} history reads, {r.downloads} downloads); submit requests a job "
            f"{cells['submit req/job']}; 429s {r.rate_limited}; "
            f"CPU a job {cells['client CPU s/job']} s (emulator thread {cells['emulator CPU s/job']} s); "
            f"jobs made {_span(r)}; outcomes {r.outcomes}",
            flush=True,
        )


def print_table(rows: list[tuple[Scenario, list[Result]]]) -> None:
    print("\n| scenario | " + " | ".join(HEADER) + " |")
    print("|---|" + "---|" * len(HEADER))
    for s, pair in rows:
        for r in pair:
            print(f"| {s.label}: {s.title} | " + " | ".join(_cells(r)) + " |")
    print(
        "\n* the SDK's CPU is this process's time.process_time() delta, minus nothing: it includes the "
        "in-process emulator (its thread's share is the last column). Flux Lab's is its subprocess's "
        "getrusage(RUSAGE_CHILDREN) delta. Flux Lab's result moment is `finished_at` (image stored on disk); "
        "the SDK's is run() returning the result body (it downloads no image)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default=None, help="scenarios to run, e.g. 1,3 (default 1,2,3,4 without --scale)"
    )
    parser.add_argument("--scale", action="store_true", help="run scenario 1 at the sizes of --jobs")
    parser.add_argument("--jobs", default="16,64,256", help="sizes for --scale (default 16,64,256)")
    parser.add_argument(
        "--scale-rpm", default=None, help="SEGMIND_RPM for Flux Lab in the --scale rows (default: unset)"
    )
    parser.add_argument(
        "--contenders", default="flux-lab,sdk", help="flux-lab, sdk or both (default flux-lab,sdk)"
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.jobs.split(",") if n.strip()] if args.scale else []
    table = scenarios(sizes, args.scale_rpm)
    chosen = args.only.split(",") if args.only is not None else ([] if args.scale else ["1", "2", "3", "4"])
    chosen = [c.strip() for c in chosen if c.strip()] + [f"1x{n}" for n in sizes]
    unknown = [c for c in chosen if c not in table]
    if unknown:
        parser.error(f"--only: unknown scenario(s) {', '.join(unknown)}; use 1, 2, 3 or 4")
    contenders = [c.strip() for c in args.contenders.split(",")]
    if not set(contenders) <= {"flux-lab", "sdk"} or not contenders:
        parser.error("--contenders: use flux-lab, sdk or flux-lab,sdk")
    print(
        f"emulator on loopback, queue 0.3 s, random_seed 1; {os.cpu_count()} CPU(s), shared with other work; "
        f"images {SIZE}x{SIZE}; concurrency = jobs; started {time.strftime('%H:%M:%S', time.gmtime())} UTC",
        flush=True,
    )
    rows = []
    for name in chosen:
        s = table[name]
        pair = []
        if "flux-lab" in contenders:
            pair.append(flux_lab(s))
        if "sdk" in contenders:
            pair.append(official_sdk(s))
        print_pair(s, pair)
        rows.append((s, pair))
    print_table(rows)


if __name__ == "__main__":
    main()
