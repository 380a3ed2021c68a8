"""`make run` on another port: PORT=... reaches Streamlit (a dry run: nothing is started)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("args", "port"), [((), "8501"), (("PORT=8600",), "8600")])
def test_make_run_serves_on_the_port_asked_for(args, port):
    dry = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "run", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    [serve] = [line for line in dry.stdout.splitlines() if "streamlit run app.py" in line]
    assert f"--server.port {port} " in serve + " "
