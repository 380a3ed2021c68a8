"""Reproducible installs: uv.lock agrees with pyproject.toml, this environment is exactly what the
lock names, the code imports only what pyproject.toml declares, and the tools CI runs are pinned.
Every check here is offline (`uv lock --check --offline` needs no index when the lock is current)."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
UV = Path(sys.executable).parent / "uv"


def uv(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": sys.executable}
    env.pop("UV_PROJECT_ENVIRONMENT", None)
    return subprocess.run([str(UV), *args], cwd=ROOT, env=env, capture_output=True, text=True)


def pinned(requirements_txt: str) -> dict[str, str]:
    """name -> version of the lines of an exported requirements file that apply here."""
    found = {}
    for line in requirements_txt.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", "--")) or line.startswith(" "):
            continue
        req = Requirement(line.split(" \\")[0])
        if req.marker is None or req.marker.evaluate():
            [spec] = req.specifier
            assert spec.operator == "==", line
            found[canonicalize_name(req.name)] = spec.version
    return found


def installed() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}


def test_the_lock_is_current_with_pyproject():
    check = uv("lock", "--check")
    assert check.returncode == 0, (
        "uv.lock does not match pyproject.toml: run `.venv/bin/uv lock` and commit uv.lock\n" + check.stderr
    )


def test_this_environment_is_exactly_what_the_lock_names():
    export = uv("export", "--frozen", "--extra", "test", "--no-emit-project", "--no-hashes", "--quiet")
    assert export.returncode == 0, export.stderr
    locked = pinned(export.stdout)
    have = installed()
    project = canonicalize_name(PYPROJECT["project"]["name"])
    assert have.pop(project) == PYPROJECT["project"]["version"]
    differ = {n: (v, have.get(n)) for n, v in locked.items() if have.get(n) != v}
    assert differ == {}, "locked version, installed version (run `make test` to sync)"
    # nothing the lock does not name, but for the setuptools `python -m venv` seeds (uv leaves it)
    assert sorted(set(have) - set(locked) - {"setuptools"}) == []


def test_the_tools_ci_runs_are_pinned_and_uv_is_the_version_everything_bootstraps():
    tests = {
        canonicalize_name(Requirement(r).name): Requirement(r)
        for r in PYPROJECT["project"]["optional-dependencies"]["test"]
    }
    for tool in ("ruff", "mypy"):
        [spec] = tests[tool].specifier
        assert spec.operator == "==", tool
    [uv_req] = [Requirement(r) for r in PYPROJECT["dependency-groups"]["dev"] if r.startswith("uv")]
    [spec] = uv_req.specifier
    [locked_uv] = [p["version"] for p in LOCK["package"] if p["name"] == "uv"]
    assert spec.operator == "==" and spec.version == locked_uv == metadata.version("uv")
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^UV_VERSION := (\S+)$", makefile, re.M).group(1) == locked_uv
    assert f"pip install uv=={locked_uv} " in (ROOT / "Dockerfile").read_text()


def top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party(paths: list[Path]) -> dict[str, set[str]]:
    """distribution -> the files that import it, for imports that are neither stdlib nor our own."""
    own = {"flux_core", "flux_ui", "tests", "pages", "app", "bench"} | {
        p.stem for p in (ROOT / "bench").glob("*.py")
    }
    by_module = metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for path in paths:
        for name in top_level_imports(path) - own - set(sys.stdlib_module_names):
            assert name in by_module, (
                f"{path.relative_to(ROOT)} imports {name}, which nothing installed provides"
            )
            for dist in by_module[name]:
                found.setdefault(canonicalize_name(dist), set()).add(str(path.relative_to(ROOT)))
    return found


def declared(*groups: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for group in groups for r in group}


def test_every_package_the_code_imports_is_declared():
    runtime = declared(PYPROJECT["project"]["dependencies"])
    test = runtime | declared(PYPROJECT["project"]["optional-dependencies"]["test"])
    app = [
        ROOT / "app.py",
        *(ROOT / "flux_core").rglob("*.py"),
        *(ROOT / "flux_ui").rglob("*.py"),
        *(ROOT / "pages").glob("*.py"),
    ]
    rest = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")]
    assert {d: f for d, f in third_party(app).items() if d not in runtime} == {}
    assert {d: f for d, f in third_party(rest).items() if d not in test} == {}
