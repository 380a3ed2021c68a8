"""Docker cannot run here, so the Dockerfile is checked by reading it and by running its own
install, start and health-check commands outside Docker: the requirement list its export command
makes from uv.lock, installed by its pip command, must be exactly the test environment's versions."""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

import httpx

from tests.test_lock import installed, pinned

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_image_is_slim_non_root_with_a_data_volume_port_and_healthcheck():
    found = instructions()
    kinds = [k for k, _ in found]
    assert found[0] == ("FROM", "python:3.11-slim")
    assert ("USER", "flux") in found and kinds.index("USER") > kinds.index("RUN")
    assert ("VOLUME", '["/data"]') in found and ("EXPOSE", "8501") in found
    assert any(k == "HEALTHCHECK" and "/_stcore/health" in v for k, v in found)
    cmd = json.loads(dict(found)["CMD"])
    assert cmd[:3] == ["streamlit", "run", "app.py"] and "--server.address=0.0.0.0" in cmd
    env = dict(found)["ENV"]
    assert "FLUX_LAB_DATA=/data" in env


def test_every_copied_path_exists_and_secrets_stay_out():
    for kind, value in instructions():
        if kind == "COPY":
            *sources, _ = value.split()
            for source in sources:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".streamlit/secrets.toml" in ignored and ".venv" in ignored


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_commands() -> list[list[str]]:
    """Every command of the RUN lines, in order (each line's `&&` chain split up)."""
    return [shlex.split(c) for k, v in instructions() if k == "RUN" for c in v.split("&&")]


def test_the_install_start_and_healthcheck_commands_work(tmp_path):
    found = instructions()
    commands = run_commands()
    [uv_install] = [c for c in commands if c[:2] == ["pip", "install"] and c[-1].startswith("uv==")]
    [export] = [c for c in commands if c[:2] == ["uv", "export"]]
    [deps] = [c for c in commands if c[:2] == ["pip", "install"] and "--requirement" in c]
    [install] = [c for c in commands if c[:2] == ["pip", "install"] and c[-1] == "."]
    [compile_] = [c for c in commands if c[:3] == ["python", "-m", "compileall"]]
    assert commands.index(["pip", "uninstall", "--yes", "uv"]) < commands.index(deps)  # uv stays out
    assert "--frozen" in export and "--no-dev" in export
    workdir = tmp_path / "app"
    for kind, value in found:  # the build context, laid out as the COPY lines say (Docker's rules)
        if kind == "COPY":
            *sources, dest = value.split()
            for source in sources:
                src, target = ROOT / source, workdir / dest
                if src.is_dir():
                    shutil.copytree(src, target, dirs_exist_ok=True)
                elif dest.endswith("/") or len(sources) > 1:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy(src, target / src.name)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(src, target)
    # The requirement list, made by the Dockerfile's own export command with the test environment's
    # uv (the version the Dockerfile installs), offline: nothing but uv.lock decides it.
    assert uv_install[-1] == f"uv=={metadata.version('uv')}"
    uv = Path(sys.executable).parent / "uv"
    offline = {k: v for k, v in os.environ.items() if k != "UV_PROJECT_ENVIRONMENT"} | {"UV_OFFLINE": "1"}
    subprocess.run([str(uv), *export[1:]], cwd=workdir, env=offline, check=True, capture_output=True)
    requirements = (workdir / export[export.index("--output-file") + 1]).read_text()
    locked = pinned(requirements)
    assert "flux-lab" not in locked and "uv" not in locked and "pytest" not in locked
    assert requirements.count("--hash=sha256:") >= len(locked)  # pip checks every download
    # the image's dependencies are exactly the test environment's versions of them
    assert {n: v for n, v in installed().items() if n in locked} == locked

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    bindir = env_dir / "bin"
    # the dependencies come from the test environment (its pip too, so pip has nothing to
    # download); the Dockerfile's own commands install them and the project
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    parents = [p for p in sys.path if p.endswith("site-packages")]
    (site / "test-env.pth").write_text("\n".join(parents) + "\n")
    outputs = []
    for args in (deps, install):
        done = subprocess.run(
            [str(bindir / "python"), "-m", *args], cwd=workdir, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout)
    assert "Successfully installed" not in outputs[0]  # every locked version was already there
    probe_install = subprocess.run(
        [str(bindir / "python"), "-c", "import flux_core, sys; print(flux_core.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(env_dir) in probe_install.stdout  # the project as the image installs it, not the checkout
    # the packages the app imports from /app, compiled by the image's own command: none left as source
    subprocess.run([str(bindir / "python"), *compile_[1:]], cwd=workdir, check=True, capture_output=True)
    packages = [a for a in compile_[3:] if not a.startswith("-")]
    assert packages == ["flux_core", "flux_ui"]
    sources = [p for package in packages for p in (workdir / package).rglob("*.py")]
    assert sources and all(Path(importlib.util.cache_from_source(str(p))).is_file() for p in sources)

    port = free_port()
    cmd = [
        a.replace("8501", str(port)).replace("0.0.0.0", "127.0.0.1") for a in json.loads(dict(found)["CMD"])
    ]
    data = tmp_path / "data"
    data.mkdir()
    env = {
        **os.environ,
        "FLUX_LAB_DATA": str(data),
        "FLUX_LAB_EMULATOR_PORT": "0",
        "PATH": f"{bindir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    server = subprocess.Popen(
        [str(bindir / "python"), shutil.which(cmd[0], path=env["PATH"]), *cmd[1:]],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        health = re.search(r'CMD (python -c ".*")', dict(found)["HEALTHCHECK"]).group(1)
        probe = shlex.split(health.replace("8501", str(port)))
        deadline = time.monotonic() + 90
        while True:  # readiness, as Docker's HEALTHCHECK would retry it
            result = subprocess.run([str(bindir / "python"), *probe[1:]], capture_output=True)
            if result.returncode == 0 or time.monotonic() > deadline or server.poll() is not None:
                break
            time.sleep(0.5)
        assert result.returncode == 0, result.stderr.decode()[-500:]
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
