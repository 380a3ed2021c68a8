"""Settling against an independent Segmind-protocol server (bench/soak_server.py, not our
emulator): the issue-12 scenarios run through `flux-lab` as a user would, each in a fresh data
directory. Prints what the ledger and the server hold; asserts nothing.

    .venv/bin/python bench/settle_soak.py [--grace 3]

A. a 6-seed sweep: 2 submits make their job and lose the reply, 2 are answered 504 with no job
B. 4 runs whose submits are answered 500 after the job was made
C. a 3-run sweep killed after its submits and resumed after the status retention ended
"""

from __future__ import annotations

import argparse
import contextlib
from collections import Counter
import io
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak_server import SoakServer, submit_key  # noqa: E402

from flux_core.cli import main  # noqa: E402

KEY = "SG_5e771e5e771e5e77"


def env_for(data_dir: Path, server: SoakServer) -> dict[str, str]:
    """What points flux-lab at the server, with its own data directory."""
    return {
        "SEGMIND_API_KEY": KEY,
        "SEGMIND_BASE_URL": server.url,
        "SEGMIND_RPM": "0",
        "FLUX_LAB_DATA": str(data_dir),
    }


def flux_lab(data_dir: Path, server: SoakServer, *argv: str) -> int:
    os.environ.update(env_for(data_dir, server))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(list(argv))


def ledger(data_dir: Path) -> list[tuple]:
    con = sqlite3.connect(data_dir / "ledger.db")
    try:
        return con.execute("SELECT status, request_id, image_path, resent FROM runs").fetchall()
    finally:
        con.close()


def report(name: str, data_dir: Path, server: SoakServer, seconds: float) -> None:
    rows = ledger(data_dir)
    completed = sum(1 for r in rows if r[0] == "COMPLETED")
    on_disk = sum(1 for r in rows if r[2] and (data_dir / r[2]).exists())
    ids = {r[1] for r in rows if r[1]}
    per_run = Counter(submit_key(job.payload) for job in server.jobs.values())
    doubles = sum(n - 1 for n in per_run.values() if n > 1)  # a run paid for twice
    print(
        f"| {name} | {len(rows)} | {completed} | {on_disk} | {len(server.jobs)} | {len(ids)} | "
        f"{server.counts.submit_posts} | {sum(r[3] for r in rows)} | {doubles} | {seconds:.1f} s |"
    )


def scenario_a(root: Path) -> None:
    with SoakServer(latency_s=1.0, spread_s=0.2, submit_script=("lost", "504", "lost", "504")) as server:
        started = time.monotonic()
        flux_lab(
            root / "a",
            server,
            "sweep",
            "--prompt",
            "a lighthouse at dusk",
            "--seeds",
            "1,2,3,4,5,6",
            "--concurrency",
            "1",
        )
        if len(ledger(root / "a")) != sum(1 for r in ledger(root / "a") if r[0] == "COMPLETED"):
            flux_lab(root / "a", server, "resume")
        report("A: 2 lost replies + 2 × 504", root / "a", server, time.monotonic() - started)


def scenario_b(root: Path) -> None:
    with SoakServer(latency_s=1.0, spread_s=0.2, submit_script=("500-after",) * 4) as server:
        started = time.monotonic()
        flux_lab(
            root / "b",
            server,
            "sweep",
            "--prompt",
            "a harbour at noon",
            "--seeds",
            "1,2,3,4",
            "--concurrency",
            "2",
        )
        report("B: 4 × 500 after the job", root / "b", server, time.monotonic() - started)


def scenario_c(root: Path) -> None:
    import signal
    import subprocess

    with SoakServer(latency_s=1.0, spread_s=0.2, retention_s=4.0) as server:
        started = time.monotonic()
        env = {**os.environ, **env_for(root / "c", server)}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flux_core",
                "sweep",
                "--prompt",
                "a red cube",
                "--seeds",
                "1,2,3",
                "--concurrency",
                "3",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while server.counts.submit_replies < 3:  # killed once all three submits were answered
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(5.0)  # past the server's 4 s status retention: polling can no longer answer
        flux_lab(root / "c", server, "resume")
        report("C: killed, resumed past retention", root / "c", server, time.monotonic() - started)


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grace", type=float, default=3.0, help="FLUX_LAB_SETTLE_GRACE_S")
    args = parser.parse_args()
    os.environ["FLUX_LAB_SETTLE_GRACE_S"] = str(args.grace)
    os.environ["FLUX_LAB_SETTLE_5XX_WAIT_S"] = "5"
    print(f"independent server (bench/soak_server.py); FLUX_LAB_SETTLE_GRACE_S={args.grace}")
    print(
        "| scenario | runs | COMPLETED | images on disk | jobs at server | request ids | submit POSTs | sent again | jobs made twice | wall |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for scenario in (scenario_a, scenario_b, scenario_c):
            scenario(root)


if __name__ == "__main__":
    run()
