"""Logging: one `flux_lab` logger tree, to a file in the data directory, never with a key in it.

Front ends call `configure(data_dir)` once (the CLI per command, the app as its server starts);
library code only asks for `logger(__name__)`. Every record passes through `RedactKeys`, which blanks
the configured keys and anything shaped like a Segmind key, in the message and in the traceback.
The level comes from FLUX_LAB_LOG_LEVEL (default INFO); FLUX_LAB_LOG_STDERR=1 also logs to stderr.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import threading
from pathlib import Path

from flux_core import defaults as D
from flux_core.errors import redact

ROOT = "flux_lab"
_configured: dict[str, logging.Handler] = {}
_lock = threading.Lock()


def logger(name: str) -> logging.Logger:
    """The logger of one module: `flux_lab.runner`, `flux_lab.client`, ..."""
    return logging.getLogger(f"{ROOT}.{name.rsplit('.', 1)[-1]}")


class RedactKeys(logging.Filter):
    """Formats the record once, with its traceback, and blanks every key in the result."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        if record.exc_info:
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def level() -> int:
    name = os.environ.get(D.LOG_LEVEL_ENV, "").strip().upper() or D.LOG_LEVEL
    value = logging.getLevelName(name)
    return value if isinstance(value, int) else logging.INFO


def configure(data_dir: str | os.PathLike) -> Path:
    """Send `flux_lab` records to `<data_dir>/logs/flux-lab.log` (rotated); returns that path.
    Calling it again for the same directory does nothing; where the file cannot be written
    (a read-only directory) records are dropped: a front end never prints a traceback."""
    path = Path(data_dir) / "logs" / D.LOG_FILE
    root = logging.getLogger(ROOT)
    with _lock:
        root.setLevel(level())
        if str(path) in _configured:
            return path
        for old in _configured.values():
            root.removeHandler(old)
            old.close()
        _configured.clear()
        handler: logging.Handler = logging.NullHandler()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=D.LOG_MAX_BYTES, backupCount=D.LOG_BACKUPS, encoding="utf-8"
            )
        except OSError:
            pass
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
        )
        handler.addFilter(RedactKeys())
        root.addHandler(handler)
        _configured[str(path)] = handler
        if os.environ.get(D.LOG_STDERR_ENV) == "1":
            stderr = logging.StreamHandler()
            stderr.setFormatter(handler.formatter)
            stderr.addFilter(RedactKeys())
            root.addHandler(stderr)
            _configured[f"{path}:stderr"] = stderr
        root.propagate = False
    return path
