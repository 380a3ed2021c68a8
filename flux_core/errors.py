"""One error hierarchy, and one function from an HTTP response to an exception.

Two families are kept apart (as replicate-python does):
- `CallFailed`: the call failed: auth, credits, rate limit, server, network, an unreadable body.
- `JobFailed`: the call worked and the job itself failed: FAILED, blocked by moderation,
  expired, timed out.
Every error carries `kind` (a short word stored in the ledger) and `hint` (what to do).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import httpx


def sentence(text: str) -> str:
    """`text` ending as a sentence does (a full stop unless it already ends with . ! ? or …)."""
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else text + "."


def join(*parts: str) -> str:
    """Sentences joined into one text, each ending properly."""
    return " ".join(sentence(p) for p in parts if p and p.strip())


class FluxError(Exception):
    kind = "error"
    hint = ""  # what to do, for the command line
    app_hint: str | None = None  # what to do in the browser app, where it differs

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        if hint is not None:
            self.hint = hint

    def user_text(self) -> str:
        """One line a person can act on (at the command line)."""
        return join(self.message, self.hint)


# --- the call failed ---------------------------------------------------------------------
class CallFailed(FluxError):
    kind = "call"
    retryable = False


class AuthError(CallFailed):
    kind = "auth"
    hint = "Check SEGMIND_API_KEY: keys look like SG_ followed by 16 hex characters."
    app_hint = (
        "Check the API key: keys look like SG_ followed by 16 hex characters. A key typed into the "
        "sidebar can be corrected there; empty the field to use the offline emulator."
    )


class ForbiddenError(CallFailed):
    kind = "forbidden"
    hint = "This key's account or team may not use flux-2-max; check the team's permissions."


class NotFoundError(CallFailed):
    kind = "not_found"
    hint = "Check SEGMIND_BASE_URL and the model name."
    app_hint = "The server this app is set up for does not know this request; ask whoever runs Flux Lab."


class InsufficientCredits(CallFailed):
    kind = "credits"
    hint = "Add credits to the Segmind account, then try again. Nothing was charged."


class BadRequest(CallFailed):
    kind = "bad_request"
    hint = "Nothing was charged."


class ModelGone(CallFailed):
    kind = "gone"
    hint = "Segmind has retired this model."


class RateLimited(CallFailed):
    kind = "rate_limited"
    retryable = True

    def __init__(self, message: str, *, reset_at: datetime | None = None, status: int | None = 429):
        self.reset_at = reset_at
        when = f"after {reset_at:%H:%M:%S} UTC" if reset_at else "in a minute"
        super().__init__(message, hint=f"Too many requests for this key; retry {when}.", status=status)


class ServerError(CallFailed):
    kind = "server"
    retryable = True
    hint = "Segmind had server trouble; try again in a minute."


class SubmitServerError(ServerError):
    """A submit answered 500, 502 or 503. Segmind says it did not take the job, but a job may exist
    all the same: it is looked up in the request history before it is ever sent again."""


class NetworkError(CallFailed):
    kind = "network"
    retryable = True
    hint = "Check the network connection and SEGMIND_BASE_URL."
    app_hint = (
        "The server could not be reached; try again in a minute. If it goes on, ask whoever runs "
        "Flux Lab to check its connection."
    )


class ProtocolError(CallFailed):
    """A response that does not follow the protocol (e.g. a non-JSON body)."""

    kind = "protocol"
    retryable = True
    hint = "The server sent a reply Flux Lab could not read; try again."


class SubmitUnknown(CallFailed):
    """The submit may or may not have reached Segmind. Never resubmitted silently."""

    kind = "submit_unknown"
    hint = (
        "The submit may have reached Segmind and may be billed; it was not repeated. "
        "Check Segmind's console before running it again."
    )


class MissingKey(CallFailed):
    kind = "auth"
    hint = "Set SEGMIND_API_KEY (or run with --emulator for offline previews)."
    app_hint = "Type a key into the sidebar, or leave it empty for the offline emulator."


class ConfirmationNeeded(FluxError):
    """An operation that may cost money beyond what was asked needs the person's say-so first."""

    kind = "confirm"


class CapReached(FluxError):
    """A run that would take a spend cap past its limit (flux_core/caps.py): refused before anything
    is written or sent. `cap` is the caps.Cap it would cross."""

    kind = "cap"

    def __init__(self, message: str, *, hint: str | None = None, cap: Any = None):
        super().__init__(message, hint=hint)
        self.cap = cap


class NotAllowed(FluxError):
    """An operation the person's role does not allow (flux_core/team.py): refused before anything is
    written or sent."""

    kind = "not_allowed"


class UnknownRun(FluxError):
    kind = "unknown_run"


class NoImage(FluxError):
    """A check or a probe of a run that has no stored image."""

    kind = "no_image"


class LedgerError(FluxError):
    """The ledger or the data directory cannot be used: a full disk, a read-only directory, a
    damaged file. Nothing about the call; what to do is on this machine."""

    kind = "storage"


class IllegalTransition(FluxError):
    """A status change the lifecycle table (flux_core/lifecycle.py) does not allow. The ledger
    refuses it and changes nothing; inside Flux Lab it is a bug, never the user's doing."""

    kind = "internal"
    hint = "The run was left as it was. This is a bug in Flux Lab: please report it with the run id."

    def __init__(self, run_id: str, current: str, wanted: str, allowed: tuple[str, ...]):
        self.run_id, self.current, self.wanted = run_id, current, wanted
        onward = [s for s in allowed if s != current]
        if onward:
            message = f"Run {run_id} cannot go from {current} to {wanted}; from {current} it can become {', '.join(onward)}."
        else:
            message = f"Run {run_id} is {current}, which is final: it cannot become {wanted}."
        super().__init__(message)


# --- the job failed ------------------------------------------------------------------------
class JobFailed(FluxError):
    kind = "failed"
    status_name = "FAILED"
    hint = "Nothing was charged for a failed job."

    def __init__(self, message: str, *, body: dict[str, Any] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.body = body or {}


class JobBlocked(JobFailed):
    kind = "blocked"
    status_name = "BLOCKED"


class JobExpired(JobFailed):
    kind = "expired"
    status_name = "EXPIRED"
    hint = "Segmind keeps a request's status for one hour and its output for seven days."


class OutputUnusable(JobFailed):
    """Segmind completed the job (so it was billed), but what it handed back is not a usable image:
    not an image, too large, truncated, or no image named at all."""

    kind = "unusable"
    status_name = "UNUSABLE"
    hint = (
        "Segmind completed this job, so it was billed, but its output could not be used. "
        "Run it again if you need the image; report the request id to Segmind for a refund."
    )


class JobTimedOut(JobFailed):
    kind = "timed_out"
    status_name = "TIMED_OUT"
    hint = "The job may still finish on Segmind; `flux-lab resume` picks it up within the hour."
    app_hint = "The job may still finish on Segmind; Flux Lab picks it up again within the hour."


_MODERATION = re.compile(
    r"moderat|safety|nsfw|content[ _-]?polic|flagged|\brai\b|inappropriate|blocked", re.I
)


def failure_from_body(
    body: dict[str, Any], safety_tolerance: int | None = None, *, secret: str | None = None
) -> JobFailed:
    """A FAILED status body as JobFailed, or JobBlocked when it reads as a moderation block."""
    text = sentence(redact(str(body.get("error") or "the job failed without an error message"), secret))
    if _MODERATION.search(text):
        at = f" at safety tolerance {safety_tolerance}" if safety_tolerance is not None else ""
        return JobBlocked(
            f"Blocked by the safety filter{at}: {text}",
            body=body,
            hint="A higher safety_tolerance is more permissive (0 strictest, 6 most permissive). "
            "Nothing was charged.",
        )
    return JobFailed(f"The job failed: {text}", body=body)


def parse_reset_at(value: str | None) -> datetime | None:
    """`x-rate-limit-reset-at-utc`: ISO-8601, or epoch seconds/milliseconds; None if unreadable."""
    from datetime import timezone

    if not value:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if number > 1e11:
            number /= 1000.0
        return datetime.fromtimestamp(number, tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def body_error_text(response: httpx.Response) -> str:
    """The server's own words: `error` of a JSON object, else a short slice of the text."""
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if body.get(key):
                return str(body[key])
    text = response.text.strip()
    if text.startswith("<"):
        return ""
    return text[:300]


_KEY_LIKE = re.compile(r"SG_[A-Za-z0-9_-]{4,}")
_known_secrets: set[str] = set()


def remember_secret(secret: str | None) -> None:
    """A key this process uses: from now on `redact` blanks it wherever it appears."""
    if secret and len(secret) >= 4:
        _known_secrets.add(secret)


def redact(text: str, secret: str | None = None) -> str:
    """Server or user text with the key, every key this process uses, and anything shaped like a
    Segmind key (`SG_…`) blanked: applied before any such text is stored, shown or logged."""
    secrets = {s for s in (secret, *_known_secrets) if s and len(s) >= 4}
    for known in sorted(secrets, key=len, reverse=True):  # a key inside a longer one: longest first
        text = text.replace(known, "***")
    return _KEY_LIKE.sub("SG_***", text)


def error_from_response(response: httpx.Response, *, secret: str | None = None) -> CallFailed:
    """Map an HTTP error response to one CallFailed subclass. The key never appears in it."""
    status = response.status_code
    said = redact(body_error_text(response), secret).strip().rstrip(".")
    detail = f": {said}" if said else ""
    if status == 401:
        return AuthError(f"Segmind rejected the API key (HTTP 401){detail}.", status=status)
    if status == 403:
        return ForbiddenError(f"Not permitted (HTTP 403){detail}.", status=status)
    if status == 404:
        return NotFoundError(f"Not found (HTTP 404){detail}.", status=status)
    if status == 406:
        if "content" in said.lower() and "type" in said.lower():
            return BadRequest(
                f"Segmind refused the request's content type (HTTP 406){detail}.", status=status
            )
        return InsufficientCredits(f"Not enough credits (HTTP 406){detail}.", status=status)
    if status == 410:
        return ModelGone(f"The model is no longer served (HTTP 410){detail}.", status=status)
    if status == 429:
        reset = parse_reset_at(response.headers.get("x-rate-limit-reset-at-utc"))
        return RateLimited(f"Rate limited (HTTP 429){detail}.", reset_at=reset)
    if status >= 500:
        return ServerError(f"Server trouble (HTTP {status}){detail}.", status=status)
    if status == 405:
        return BadRequest("The server does not allow this method (HTTP 405).", status=status)
    return BadRequest(f"The request was refused (HTTP {status}){detail}.", status=status)


# --- advice for the browser app ------------------------------------------------------------
def _classes(base: type[FluxError]) -> list[type[FluxError]]:
    found = [base]
    for sub in base.__subclasses__():
        found += _classes(sub)
    return found


STAYS_OPEN = "The run stays open: `flux-lab resume` picks it up."
STAYS_OPEN_APP = "The run stays open: Flux Lab picks it up again by itself."


def for_app(text: str) -> str:
    """A stored error text (written with the command line's advice) as the browser app shows it:
    advice about environment variables and commands becomes advice a person can act on in the app."""
    for cls in _classes(FluxError):
        if cls.app_hint and cls.hint and cls.hint in text:
            text = text.replace(cls.hint, cls.app_hint)
    return text.replace(STAYS_OPEN, STAYS_OPEN_APP)
