"""Every check of one stored image against its own prompt, and the determinism probe's verdict.

What a prompt asks for comes from `expect`; the checks themselves are `text` (OCR), `palette`
(dominant colours) and `similarity` (a perceptual hash, the "print"). Each has a VERSION: a stored
result of an older version is computed again (ledger/checks.py, `pending`).
"""

from __future__ import annotations

import logging
import threading
import zlib
from pathlib import Path
from typing import Any

from PIL import Image

from flux_core.ledger import checks as table
from flux_core.ledger import store
from flux_core.ledger.records import Run
from flux_core.ledger.store import Ledger

log = logging.getLogger(__name__)


def versions() -> dict[str, int]:
    """Each image check's current version. The checks' modules (OCR, numpy, imagehash) are imported
    when first needed, not when the app starts."""
    from flux_core.checks import palette, similarity, text

    return {table.TEXT: text.VERSION, table.PALETTE: palette.VERSION, table.PRINT: similarity.VERSION}


PROBE_VERSION = 1
# One image is checked by one thread at a time in a process (the background checker and a seed hunt
# both check images as they land): the second caller finds the first one's results and reuses them.
_LOCKS = tuple(threading.Lock() for _ in range(64))
_PROBE_ENDS = (store.FAILED, store.BLOCKED, store.EXPIRED, store.UNUSABLE, store.ERROR)


def _file(data_dir: Path, row: Run | None) -> Path | None:
    if row is None or not row.image_path:
        return None
    path = Path(data_dir) / row.image_path
    return path if path.exists() else None


class _Unreadable(Exception):
    pass


def _open(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def run_checks(ledger: Ledger, data_dir: Path, row: Run, *, again: bool = False) -> dict[str, dict[str, Any]]:
    """Compute the checks of `row`'s image that are missing or stale (all of them with `again`),
    store them, and settle any determinism probe this run answers. Returns the run's checks."""
    with _LOCKS[zlib.crc32(row.id.encode()) % len(_LOCKS)]:
        _compute(ledger, data_dir, row, again)
    settle_probes(ledger, data_dir, row.id)
    return table.of_run(ledger, row.id)


def _compute(ledger: Ledger, data_dir: Path, row: Run, again: bool) -> None:
    have = table.of_run(ledger, row.id)
    current = versions()
    todo = [n for n, v in current.items() if again or have.get(n, {}).get("version", -1) < v]
    if todo and row.image_path:
        image = None
        try:
            path = _file(data_dir, row)
            image = _open(path) if path is not None else None
        except (OSError, ValueError) as exc:
            log.warning("run %s: its image could not be read for the checks: %s", row.id, exc)
        for name in todo:
            try:
                if image is None:
                    raise _Unreadable
                score, result = _one(name, image, row.prompt)
            except _Unreadable:
                score, result = None, {"score": None, "error": "The stored image could not be read."}
            except Exception:  # a check that breaks on one image must not stop the others
                log.exception("run %s: the %s check failed", row.id, name)
                score, result = (
                    None,
                    {"score": None, "error": f"The {name} check failed on this image (see the log)."},
                )
            table.save(ledger, row.id, name, current[name], score, result)


def _one(name: str, image: Image.Image, prompt: str) -> tuple[float | None, dict[str, Any]]:
    from flux_core.checks import expect, palette, similarity, text

    if name == table.TEXT:
        result = text.check(image, expect.texts(prompt))
    elif name == table.PALETTE:
        result = palette.check(image, expect.colours(prompt))
    else:
        result = {"score": None, "phash": similarity.fingerprint(image)}
    return result.get("score"), result


def settle_probes(ledger: Ledger, data_dir: Path, probe_run_id: str) -> None:
    """Give a verdict to every determinism probe whose second run is `probe_run_id`, once that run
    is stored (or say why there is none, once it ended without an image)."""
    waiting = table.probes_of(ledger, probe_run_id)
    if not waiting:
        return
    probe = ledger.get(probe_run_id)
    for run_id in waiting:
        base = {"probe_run_id": probe_run_id, "verdict": None}
        if probe is None or probe.status in _PROBE_ENDS:
            ended = probe.status if probe is not None else "deleted"
            base["error"] = f"The second run ended {ended}, so there is nothing to compare."
            table.save(ledger, run_id, table.REPRO, PROBE_VERSION, None, base)
            continue
        first, second = _file(data_dir, ledger.get(run_id)), _file(data_dir, probe)
        if first is None or second is None:
            continue  # not stored yet: the checker comes back when it is
        from flux_core.checks import similarity

        verdict, bits = similarity.verdict(_open(first), _open(second))
        table.save(
            ledger, run_id, table.REPRO, PROBE_VERSION, None, {**base, "verdict": verdict, "distance": bits}
        )
