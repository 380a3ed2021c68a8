"""Segmind's own record of a request, read from the control plane's request history (protocol 6b).

The official SDK documents the row fields but not the envelope around them, nor the timestamp
names, so everything here is read liberally: rows under `data`, `items`, `results`, `rows`,
`requests` or `generations` (or one level deeper, or a bare list), every field with a default,
nothing raising. One request that produced several outputs comes as one row per output, each with
the request's full cost: rows are merged on `request_id`, their URLs combined, the cost counted once.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from flux_core.errors import redact

COMPLETED, FAILED, PENDING = "COMPLETED", "FAILED", "PENDING"
STATUSES = (COMPLETED, FAILED, PENDING)
_STATUS_WORDS = {
    "COMPLETED": COMPLETED,
    "COMPLETE": COMPLETED,
    "SUCCEEDED": COMPLETED,
    "SUCCESS": COMPLETED,
    "FAILED": FAILED,
    "FAILURE": FAILED,
    "ERROR": FAILED,
    "CANCELLED": FAILED,  # never finishes: waiting on it would be waiting forever
    "CANCELED": FAILED,
}  # QUEUED, PROCESSING, IN_PROGRESS, RUNNING, PENDING and anything unknown: PENDING
_RANK = (PENDING, FAILED, COMPLETED)  # rows of one request that disagree: the most settled wins
_ROW_LISTS = ("data", "items", "results", "rows", "requests", "generations")
_ONE_ROW = ("data", "request", "result")
_OUTER = _ROW_LISTS + ("result", "response")  # where a nested envelope may sit
_ID_KEYS = ("request_id", "id", "requestId")
_CREATED_KEYS = (
    "created_at",
    "model_created",
    "createdAt",
    "created",
    "timestamp",
    "requested_at",
    "start_time",
)
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")  # nanoseconds: Python reads at most microseconds
_UPDATED_KEYS = ("updated_at", "updatedAt", "model_updated", "completed_at", "end_time")


@dataclass(frozen=True)
class RequestRecord:
    """One request as Segmind recorded it. `status` is COMPLETED, FAILED or PENDING; `cost_usd` is
    `credits_deduction` (None when the row does not say); times are aware UTC datetimes."""

    request_id: str
    status: str = PENDING
    model_name: str | None = None
    cost_usd: float | None = None
    request_body: dict[str, Any] | None = field(default=None, hash=False)
    generation_urls: tuple[str, ...] = ()
    latency_ms: float | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    error: str | None = None
    user_email: str | None = None

    @property
    def generation_url(self) -> str | None:
        return self.generation_urls[0] if self.generation_urls else None

    @classmethod
    def from_row(cls, row: Any, request_id: str | None = None) -> "RequestRecord | None":
        """A record from one history row; None when it names no request (and none is given)."""
        if not isinstance(row, dict):
            return None
        rid = next((t for k in _ID_KEYS if (t := _text(row.get(k)))), request_id)
        if not rid:
            return None
        status_word = next((row[k] for k in ("model_status", "status") if _text(row.get(k))), "")
        return cls(
            request_id=rid,
            status=_STATUS_WORDS.get(str(status_word).strip().upper(), PENDING),
            model_name=_text(row.get("model_name")) or _text(row.get("model")),
            cost_usd=_number(row.get("credits_deduction")),
            request_body=_body(row.get("request_body")),
            generation_urls=_urls(row.get("generation_url")) + _urls(row.get("generation_urls")),
            latency_ms=_number(row.get("latency_ms")),
            created_at=_first_time(row, _CREATED_KEYS),
            updated_at=_first_time(row, _UPDATED_KEYS),
            error=_error_text(row.get("error")),
            user_email=_text(row.get("user_email")) or _text(row.get("email")),
        )

    def merged(self, other: "RequestRecord") -> "RequestRecord":
        """This record with another row of the same request: URLs combined, the cost counted once."""
        status = max(self.status, other.status, key=_RANK.index)
        times = [t for t in (self.created_at, other.created_at) if t is not None]
        return RequestRecord(
            request_id=self.request_id,
            status=status,
            model_name=self.model_name or other.model_name,
            cost_usd=self.cost_usd if self.cost_usd is not None else other.cost_usd,
            request_body=self.request_body if self.request_body is not None else other.request_body,
            generation_urls=self.generation_urls
            + tuple(u for u in other.generation_urls if u not in self.generation_urls),
            latency_ms=self.latency_ms if self.latency_ms is not None else other.latency_ms,
            created_at=min(times) if times else None,
            updated_at=self.updated_at or other.updated_at,
            error=self.error or other.error,
            user_email=self.user_email or other.user_email,
        )


@dataclass(frozen=True)
class HistoryPage:
    """One page of the request history: its records (merged per request) and whether a next page
    may hold more (a full page, or the envelope says so)."""

    records: tuple[RequestRecord, ...]
    page: int
    per_page: int
    has_more: bool


def rows_from(body: Any) -> list[Any]:
    """The rows of a history reply, whatever the envelope: a bare list, or a list under one of the
    usual keys, possibly one level deeper ({"data": {"rows": [...]}})."""
    if isinstance(body, list):
        return body
    if not isinstance(body, dict):
        return []
    for key in _ROW_LISTS:
        inner = body.get(key)
        if isinstance(inner, list):
            return inner
    for key in _OUTER:
        inner = body.get(key)
        if isinstance(inner, dict):
            for deeper in _ROW_LISTS:
                if isinstance(inner.get(deeper), list):
                    return inner[deeper]
    return []


def records_from(rows: list[Any], request_id: str | None = None) -> list[RequestRecord]:
    """Rows as records in their order, one per request (later rows of a request merged into it)."""
    merged: dict[str, RequestRecord] = {}
    for row in rows:
        record = RequestRecord.from_row(row, request_id)
        if record is None:
            continue
        known = merged.get(record.request_id)
        merged[record.request_id] = record if known is None else known.merged(record)
    return list(merged.values())


def page_from(body: Any, page: int, per_page: int) -> HistoryPage:
    rows = rows_from(body)
    return HistoryPage(
        records=tuple(records_from(rows)),
        page=page,
        per_page=per_page,
        has_more=len(rows) >= per_page or _envelope_says_more(body, page, per_page),
    )


def record_from(body: Any, request_id: str) -> RequestRecord | None:
    """The record of `request_id` in a one-request reply: the row itself, a wrapped row, or rows."""
    candidates: list[Any] = rows_from(body)
    if not candidates and isinstance(body, dict):
        wrapped = next((body[k] for k in _ONE_ROW if isinstance(body.get(k), dict)), None)
        candidates = [wrapped if wrapped is not None and not _names_request(body) else body]
    records = records_from(candidates, request_id)
    match = next((r for r in records if r.request_id == request_id), None)
    if match is None and len(records) == 1:  # the one row answered for this id names it otherwise
        match = replace(records[0], request_id=request_id)
    return match


def same_request(record: RequestRecord, payload: dict[str, Any]) -> bool:
    """Whether the record's request_body is the payload sent: key order is irrelevant, a numeric
    string equals its number ("42" == 42, servers may stringify), lists compare in order, and a key
    set to null counts as absent."""
    if record.request_body is None:
        return False
    return canonical(record.request_body) == canonical(payload)


def canonical(value: Any) -> Any:
    """A JSON value in a form that compares as `same_request` describes."""
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), canonical(v)) for k, v in value.items() if v is not None)))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(canonical(v) for v in value))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", _decimal(value))
    if isinstance(value, str):
        number = _decimal(value)
        return ("number", number) if number is not None else ("text", value)
    return ("other", repr(value))


# --- reading one field: never raises ----------------------------------------------------------
def _names_request(row: dict[str, Any]) -> bool:
    return any(_text(row.get(k)) for k in _ID_KEYS)


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value).strip()
        return text or None
    return None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip()) if isinstance(value, (str, int, float)) else None
    except (InvalidOperation, ValueError):
        return None
    return number if number is not None and number.is_finite() else None


def _number(value: Any) -> float | None:
    number = _decimal(value)
    if number is None:
        return None
    result = float(number)
    return result if math.isfinite(result) else None


def _body(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return dict(value) if isinstance(value, dict) else None


def _urls(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    urls: list[str] = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("url")
        if isinstance(item, str) and item.strip() and item.strip() not in urls:
            urls.append(item.strip())
    return tuple(urls)


def _first_time(row: dict[str, Any], keys: tuple[str, ...]) -> datetime | None:
    for key in keys:
        moment = parse_time(row.get(key))
        if moment is not None:
            return moment
    return None


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO string (with or without Z or an offset; naive = UTC) or
    epoch seconds or milliseconds (a number or a numeric string); None if it is neither."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        iso = _LONG_FRACTION.sub(r"\1", text[:-1] + "+00:00" if text[-1] in "zZ" else text)
        try:
            moment = datetime.fromisoformat(iso)
        except ValueError:
            number = _number(text)
            return _epoch(number) if number is not None else None
        return (
            moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
        )
    if isinstance(value, (int, float)):
        return _epoch(float(value))
    return None


def _epoch(seconds: float) -> datetime | None:
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    if seconds > 1e11:  # past the year 5138 in seconds: these are milliseconds
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _error_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("message") or value.get("error") or value.get("detail") or json.dumps(value)
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value if v)
    if not isinstance(value, str) or not value.strip():
        return None
    return redact(value.strip())


def _envelope_says_more(body: Any, page: int, per_page: int) -> bool:
    """A next page per the envelope's own words: has_more, next, total or pages (top or one deep)."""
    if not isinstance(body, dict):
        return False
    levels = [body] + [body[k] for k in _OUTER if isinstance(body.get(k), dict)]
    for level in levels:
        for key in ("has_more", "hasMore", "has_next"):
            if level.get(key) is True:
                return True
        for key in ("next", "next_page", "nextPage"):
            if level.get(key) not in (None, False, "", 0):
                return True
        total = _number(level.get("total")) or _number(level.get("total_count"))
        if total is not None and page * per_page < total:
            return True
        pages = _number(level.get("pages")) or _number(level.get("total_pages"))
        if pages is not None and page < pages:
            return True
    return False
