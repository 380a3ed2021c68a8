"""Start `streamlit run app.py` on free ports and wait until it answers: for the browser journeys
and for bench/history_scale.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """One `streamlit run app.py` process; restartable on the same ports and data directory. With
    `secrets` (a secrets.toml, set before `start`), the app reads that file instead of the repository's
    .streamlit/secrets.toml (Streamlit's --secrets.files); with `root`, another checkout's app.py (a
    bench's "before")."""

    def __init__(
        self, data_dir: Path, log_dir: Path, latency: float, secrets: Path | None = None, root: Path = ROOT
    ):
        self.secrets = secrets
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "FLUX_LAB_DATA": str(data_dir),
            "FLUX_LAB_EMULATOR_PORT": str(free_port()),
            "FLUX_LAB_EMULATOR_LATENCY": str(latency),
        }
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "AppServer":
        self.starts += 1
        log = open(self.log_dir / f"streamlit-{self.starts}.log", "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(self.root / "app.py"),
                "--server.headless",
                "true",
                "--server.port",
                str(self.port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                *(["--secrets.files", str(self.secrets)] if self.secrets else []),
            ],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # readiness: /_stcore/health answers ok
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited; see {self.log_dir}")
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=2).text == "ok":
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("streamlit did not become healthy in 90 s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
