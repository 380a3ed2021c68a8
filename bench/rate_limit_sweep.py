"""A 16-seed sweep against a server that allows 60 requests a minute per key (every endpoint
counted, 429 with the reset header beyond that): Flux Lab's CLI versus the official SDK run
from 16 threads. Prints figures; asserts nothing.

    .venv/bin/python bench/rate_limit_sweep.py [--latency 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from flux_core.emulator.server import EmulatorConfig, EmulatorServer

KEY = "SG_bench0000000000"


def config(latency: float) -> EmulatorConfig:
    return EmulatorConfig(
        rpm=60,
        rate_window_s=60.0,
        count_polls=True,
        latency_s=latency,
        latency_spread_s=latency / 3,
        queue_s=0.5,
        random_seed=1,
    )


def flux_lab(latency: float, seeds: int) -> None:
    with EmulatorServer(config(latency)) as server, tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "SEGMIND_BASE_URL": server.url, "SEGMIND_API_KEY": KEY, "FLUX_LAB_DATA": data}
        env.pop("SEGMIND_RPM", None)  # the learned budget (from 50 a minute, Segmind Pro)
        started = time.monotonic()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "flux_core",
                "sweep",
                "--prompt",
                "a red cube",
                "--seeds",
                ",".join(str(s) for s in range(1, seeds + 1)),
                "--concurrency",
                str(seeds),
                "--width",
                "512",
                "--height",
                "512",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        elapsed = time.monotonic() - started
        runs = [json.loads(line) for line in out.stdout.splitlines()]
        done = sum(r["status"] == "COMPLETED" for r in runs)
        s = server.stats
        print(
            f"flux-lab sweep : {done}/{seeds} COMPLETED in {elapsed:.1f} s; submits {s.submits} "
            f"(requests {s.submit_requests}); polls {s.polls}, results {s.results}; 429s {s.rate_limited}"
        )


def official_sdk(latency: float, seeds: int) -> None:
    from segmind import SegmindClient

    with EmulatorServer(config(latency)) as server:
        outcomes: list[str] = []

        def one(seed: int) -> None:
            client = SegmindClient(api_key=KEY, base_url=f"{server.url}/v1")
            try:
                client.run("flux-2-max", prompt="a red cube", seed=seed, width=512, height=512)
                outcomes.append("COMPLETED")
            except Exception as exc:  # what the SDK raises is the figure
                outcomes.append(type(exc).__name__)
            finally:
                client._client.close()

        started = time.monotonic()
        threads = [threading.Thread(target=one, args=(s,)) for s in range(1, seeds + 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        s = server.stats
        summary = {k: outcomes.count(k) for k in sorted(set(outcomes))}
        print(
            f"official SDK   : {outcomes.count('COMPLETED')}/{seeds} COMPLETED in {elapsed:.1f} s; "
            f"outcomes {summary}; jobs submitted {s.submits} (billed, results abandoned: "
            f"{s.submits - outcomes.count('COMPLETED')}); 429s {s.rate_limited}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=3.0)
    parser.add_argument("--seeds", type=int, default=16)
    args = parser.parse_args()
    print(f"server: 60 requests/min per key, all endpoints counted; emulated inference {args.latency} s")
    flux_lab(args.latency, args.seeds)
    official_sdk(args.latency, args.seeds)
