"""Where configuration comes from: argument, then environment variable, then default."""

from __future__ import annotations

import getpass
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
    rpm: int | None  # forced by SEGMIND_RPM (0: no limit); None: learned from the server
    backend: str  # "segmind" or "emulator"
    control_url: str  # where the request history is read (protocol section 6b)

    def __repr__(self) -> str:
        return (
            f"Connection(backend={self.backend!r}, base_url={self.base_url!r}, "
            f"control_url={self.control_url!r}, key={key_hint(self.api_key)!r}, rpm={self.rpm})"
        )

    @classmethod
    def resolve(
        cls,
        api_key: str | None = None,
        base_url: str | None = None,
        upload_url: str | None = None,
        rpm: int | None = None,
        backend: str = "segmind",
        control_url: str | None = None,
    ) -> "Connection":
        base = str(_pick(base_url, D.BASE_URL_ENV, D.BASE_URL)).rstrip("/")
        if base.endswith("/v1") or base.endswith("/v2"):
            base = base[:-3]
        upload_default = D.UPLOAD_URL if base == D.BASE_URL else base + "/upload-asset"
        # Segmind's history lives on its control host; another protocol server serves it on its own origin
        control_default = D.CONTROL_URL if base == D.BASE_URL else base
        control = str(_pick(control_url, D.CONTROL_URL_ENV, control_default)).rstrip("/")
        rpm_value = _pick(rpm, D.RPM_ENV, None)  # unset: the key's limit is learned
        try:
            rpm_int = None if rpm_value in (None, "") else int(rpm_value)
        except (TypeError, ValueError):
            rpm_int = -1
        if rpm_int is not None and rpm_int < 0:
            raise ValueError(
                f"{D.RPM_ENV} must be a whole number of requests per minute, 0 for no limit (got {rpm_value!r})"
            )
        key = _pick(api_key, D.API_KEY_ENV, None)
        remember_secret(key)  # kept out of every log record and stored text from now on
        return cls(
            api_key=key,
            base_url=base,
            upload_url=str(_pick(upload_url, D.UPLOAD_URL_ENV, upload_default)),
            rpm=rpm_int,
            backend=backend,
            control_url=control,
        )


def _seconds(arg: float | str | None, env_name: str, default: float) -> float:
    value = _pick(arg, env_name, default)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"{env_name} must be a number of seconds, 0 or more (got {value!r})")
    return seconds


def settle_grace_s(arg: float | str | None = None) -> float:
    """How long a submit whose fate is unknown waits for its request record before it may be sent
    again: argument, then FLUX_LAB_SETTLE_GRACE_S, then SETTLE_GRACE_S."""
    return _seconds(arg, D.SETTLE_GRACE_ENV, D.SETTLE_GRACE_S)


def settle_5xx_wait_s(arg: float | str | None = None) -> float:
    """How long a submit answered 5xx waits for its request record before it is sent again:
    argument, then FLUX_LAB_SETTLE_5XX_WAIT_S, then SETTLE_5XX_WAIT_S."""
    return _seconds(arg, D.SETTLE_5XX_WAIT_ENV, D.SETTLE_5XX_WAIT_S)


def key_hint(api_key: str | None) -> str:
    """How a key may be shown: its last four characters only."""
    if not api_key:
        return "(none)"
    return "…" + api_key[-4:] if len(api_key) > 8 else "…"


def data_dir(arg: str | os.PathLike | None = None) -> Path:
    path = Path(str(_pick(arg, D.DATA_DIR_ENV, D.DATA_DIR))).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


LOCAL, SIGNED_IN, OPEN = "local", "signed-in", "open"  # who can reach the app (see exposure)


def exposure(address: str | None, sign_in: bool, opt_in: str | None = None) -> str:
    """Who can reach an app served on `address`: LOCAL (a loopback address: this computer only),
    SIGNED_IN (another address, with sign-in configured), or OPEN (another address without sign-in,
    allowed because FLUX_LAB_OPEN_NETWORK=1). Without sign-in or the opt-in, serving beyond this
    computer is a ValueError that says what to do: anyone who reached the port could spend the key,
    read every prompt and delete runs. An empty address is every interface, as in Streamlit."""
    host = (address or "").strip().strip("[]").lower()
    if host == "localhost" or host == "::1" or host.startswith("127."):
        return LOCAL
    if sign_in:
        return SIGNED_IN
    value = os.environ.get(D.OPEN_NETWORK_ENV, "") if opt_in is None else opt_in
    if value.strip() == "1":
        return OPEN
    where = f"address {address}" if host else "every network interface"
    raise ValueError(
        f"Flux Lab will not serve on {where} without sign-in: anyone who can reach the port could "
        f"spend the key, read every prompt and delete runs. Serve on {D.LOCAL_ADDRESS} (the default of "
        f"`make run`), configure sign-in ([auth] in .streamlit/secrets.toml), or set "
        f"{D.OPEN_NETWORK_ENV}=1 to open it to the network anyway."
    )


def _usd(env_name: str, default: float | None) -> float | None:
    """An amount of USD from `env_name` (unset: `default`); anything else than a number of 0 or
    more is a ValueError naming the variable."""
    value = os.environ.get(env_name, "").strip()
    if not value:
        return default
    try:
        amount = float(value.removeprefix("$"))
    except ValueError:
        amount = -1.0
    if not amount >= 0 or amount == float("inf"):
        raise ValueError(
            f"{env_name} must be an amount of US dollars, 0 or more, such as 5 or 12.50 (got {value!r})"
        )
    return amount


def price_rates(model: str = D.MODEL_SLUG) -> tuple[float, float]:
    """The default price of `model` in USD, per output megapixel and per reference image: the price
    table's (D.PRICES_USD); for FLUX.2 [max], FLUX_LAB_PRICE_PER_MP_USD and
    FLUX_LAB_PRICE_PER_REFERENCE_USD when set."""
    if model != D.MODEL_SLUG:
        return D.PRICES_USD[model]
    per_mp = _usd(D.PRICE_PER_MP_ENV, D.PRICE_PER_MP_USD)
    per_ref = _usd(D.PRICE_PER_REFERENCE_ENV, D.PRICE_PER_REFERENCE_USD)
    assert per_mp is not None and per_ref is not None
    return per_mp, per_ref


@dataclass(frozen=True)
class CapSettings:
    """The spend caps in USD (None: no such cap), from the environment."""

    person_day: float | None = None
    team_day: float | None = None
    team_month: float | None = None

    @classmethod
    def resolve(cls) -> "CapSettings":
        return cls(
            person_day=_usd(D.CAP_PERSON_DAY_ENV, None),
            team_day=_usd(D.CAP_TEAM_DAY_ENV, None),
            team_month=_usd(D.CAP_TEAM_MONTH_ENV, None),
        )


def local_user() -> str:
    """Who acts when nobody has signed in: the person logged in to this machine, "local:<name>"
    (flux_core.team.local); a signed-in person acts under their address instead."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's bare uid)
        name = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return f"local:{name}"
