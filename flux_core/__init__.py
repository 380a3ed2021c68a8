"""Flux Lab's core: the service, the ledger, the Segmind client, the runner, the emulator."""

import sys as _sys


def _import_sqlite_utils_alone() -> None:
    """sqlite-utils imports pandas and numpy when they are installed (Streamlit's dependencies, so
    they are), only to know their types when it guesses a new column's type. The ledger's tables
    are made by its migrations and what it writes is Python's own types, so that was 0.45 s for
    nothing in every process that opens a ledger: each CLI command (importing the CLI: 1.4 s ->
    0.8 s), an app server's first visit (2.9 s -> 2.6 s to a first Compose run), each test process
    (measured). So sqlite-utils is imported here first with both hidden (a None in
    sys.modules makes an import fail, as Python documents); pandas and numpy then import as usual
    for the pages and the checks that use them."""
    if "sqlite_utils" in _sys.modules:
        return
    hidden = [name for name in ("pandas", "numpy") if name not in _sys.modules]
    for name in hidden:
        _sys.modules[name] = None  # type: ignore[assignment]
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in hidden:
            del _sys.modules[name]


_import_sqlite_utils_alone()
