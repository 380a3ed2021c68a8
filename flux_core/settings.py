"""Where configuration comes from: argument, then environment variable, then default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flux_core import defaults as D
from flux_core.errors import remember_secret


def _pick(arg, env_name: str, default):
    if arg not in (None, ""):
        return arg
    value = os.environ.get(env_name, "").strip()
    return value or default


@dataclass(frozen=True)
class Connection:
    """How to reach a Segmind-protocol server. `repr` never shows the key."""

    api_key: str | None
    base_url: str
    upload_url: str
    rpm: int | None
    backend: str  # "segmind" or "emulator"

    def __repr__(self) -> str:
        return (
            f"Connection(backend={self.backend!r}, base_url={self.base_url!r}, "
            f"key={key_hint(self.api_key)!r}, rpm={self.rpm})"
        )

    @classmethod
    def resolve(
        cls,
        api_key: str | None = None,
        base_url: str | None = None,
        upload_url: str | None = None,
        rpm: int | None = None,
        backend: str = "segmind",
    ) -> "Connection":
        base = str(_pick(base_url, D.BASE_URL_ENV, D.BASE_URL)).rstrip("/")
        if base.endswith("/v1") or base.endswith("/v2"):
            base = base[:-3]
        upload_default = D.UPLOAD_URL if base == D.BASE_URL else base + "/upload-asset"
        rpm_value = _pick(rpm, D.RPM_ENV, D.REQUESTS_PER_MINUTE)
        try:
            rpm_int = int(rpm_value) or None
        except (TypeError, ValueError):
            raise ValueError(
                f"{D.RPM_ENV} must be a whole number of requests per minute (got {rpm_value!r})"
            ) from None
        key = _pick(api_key, D.API_KEY_ENV, None)
        remember_secret(key)  # kept out of every log record and stored text from now on
        return cls(
            api_key=key,
            base_url=base,
            upload_url=str(_pick(upload_url, D.UPLOAD_URL_ENV, upload_default)),
            rpm=rpm_int,
            backend=backend,
        )


def key_hint(api_key: str | None) -> str:
    """How a key may be shown: its last four characters only."""
    if not api_key:
        return "(none)"
    return "…" + api_key[-4:] if len(api_key) > 8 else "…"


def data_dir(arg: str | os.PathLike | None = None) -> Path:
    path = Path(str(_pick(arg, D.DATA_DIR_ENV, D.DATA_DIR))).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()
