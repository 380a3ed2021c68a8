"""The layout shows the architecture: the core knows nothing of Streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_under_flux_core_imports_streamlit_or_the_ui():
    offenders = {
        str(path.relative_to(ROOT)): sorted(imports(path) & {"streamlit", "flux_ui", "pages"})
        for path in (ROOT / "flux_core").rglob("*.py")
        if imports(path) & {"streamlit", "flux_ui", "pages"}
    }
    assert offenders == {}


def test_the_product_does_not_import_the_emulator_except_to_start_the_offline_backend():
    users = sorted(
        str(path.relative_to(ROOT))
        for path in [*(ROOT / "flux_core").rglob("*.py"), *(ROOT / "flux_ui").rglob("*.py")]
        if "emulator" not in path.parts
        and any(
            isinstance(n, ast.ImportFrom) and (n.module or "").startswith("flux_core.emulator")
            for n in ast.walk(ast.parse(path.read_text()))
        )
    )
    assert users == ["flux_core/cli.py", "flux_core/service.py"]  # `flux-lab emulator`, the offline backend
