"""Settling runs with Segmind's own record of them: its request history (protocol section 6b).

Polling answers only for an hour and only when the submit's reply arrived. The request history
answers for every request of the key, of any age: it finds the job a submit created when its reply
was lost (or answered 5xx), the result of a job past the status retention, each request's real
cost, and the requests made outside Flux Lab. Everything here only reads; the runner and the
service write what it finds.

Matching a submit to a request: the record's `request_body` equals the payload sent, it was created
after the submit began (less a clock allowance; a record with no time passes), and no other run in
the ledger holds its request id. Of several, the earliest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from flux_core import defaults as D
from flux_core.errors import CallFailed
from flux_core.ledger.store import Ledger
from flux_core.segmind.client import Ops, SegmindClient, _Protocol
from flux_core.segmind.records import RequestRecord, same_request


@dataclass(frozen=True)
class Lookup:
    """What one look at the request history found."""

    record: RequestRecord | None = None  # the request, when there is one
    reachable: bool = True  # False: the history could not be read (see `problem`)
    problem: str | None = None
    final: bool = False  # the history refused for good (e.g. 401/403/404), not a passing failure

    @classmethod
    def failed(cls, exc: CallFailed) -> "Lookup":
        return cls(reachable=False, problem=exc.message, final=not exc.retryable)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def clock(moment: datetime | None) -> str:
    """A moment as people read it in a run's history: 14:02:11 UTC."""
    return f"{moment.astimezone(timezone.utc):%H:%M:%S} UTC" if moment else "an unrecorded time"


def find_submit_ops(
    client: _Protocol, ledger: Ledger, payload: dict[str, Any], began: datetime, slug: str = D.MODEL_SLUG
) -> Ops:
    """The request a submit of `payload` to model `slug` that began at `began` created, if the
    history holds one that no run of the ledger has claimed (as operation: run it with a client's
    `_run`). [max] and [pro] take the same bodies, so a record of another model is never adopted."""
    earliest = began - timedelta(seconds=D.SETTLE_CLOCK_SKEW_S)
    window = (earliest.date() - timedelta(days=1), utc_now().date() + timedelta(days=1))
    try:
        for page in range(1, D.SETTLE_MAX_PAGES + 1):
            found = yield from client.history_ops(page=page, from_date=window[0], to_date=window[1])
            matches = [
                r
                for r in found.records
                if same_request(r, payload)
                and is_this_model(r, slug)
                and (r.created_at is None or r.created_at >= earliest)
            ]
            taken = ledger.claimed_request_ids([r.request_id for r in matches])
            free = [r for r in matches if r.request_id not in taken]
            if free:
                return Lookup(min(free, key=lambda r: r.created_at or began))
            older = [r for r in found.records if r.created_at is not None and r.created_at < earliest]
            if not found.has_more or (found.records and len(older) == len(found.records)):
                break  # newest first: a page all older than the submit means nothing later is
    except CallFailed as exc:
        return Lookup.failed(exc)
    return Lookup()


def find_request_ops(client: _Protocol, request_id: str) -> Ops:
    """One request by its id, of any age (as operation)."""
    try:
        record = yield from client.request_record_ops(request_id)
        return Lookup(record)
    except CallFailed as exc:
        return Lookup.failed(exc)


def find_request(client: SegmindClient, request_id: str) -> Lookup:
    """One request by its id, of any age."""
    return client._run(find_request_ops(client, request_id))


def costs_of(client: SegmindClient, request_ids: set[str], since: str) -> dict[str, float]:
    """The real cost of each of these requests that the history has, read page by page (newest
    first) from the day before `since` (an ISO time) until all are found or the pages run out."""
    start = datetime.fromisoformat(since.replace("Z", "+00:00")).date() if since else utc_now().date()
    found: dict[str, float] = {}
    for page in range(1, D.COST_MAX_PAGES + 1):
        listed = client.history(
            page=page, from_date=start - timedelta(days=1), to_date=utc_now().date() + timedelta(days=1)
        )
        for record in listed.records:
            if record.request_id in request_ids and record.cost_usd is not None:
                found[record.request_id] = record.cost_usd
        if len(found) == len(request_ids) or not listed.has_more:
            break
    return found


def records_since(
    client: SegmindClient, days: float, *, user_email: str | None = None
) -> list[RequestRecord]:
    """Every request of the key (or of `user_email`, a teammate) in the last `days`, newest first,
    asked for in windows the history accepts (at most HISTORY_MAX_WINDOW_DAYS each)."""
    today = utc_now().date()
    start = today - timedelta(days=max(0, int(days)))
    out: dict[str, RequestRecord] = {}
    to_date = today + timedelta(days=1)
    while to_date >= start:
        from_date = max(start, to_date - timedelta(days=D.HISTORY_MAX_WINDOW_DAYS - 1))
        page = 1
        while True:
            found = client.history(page=page, from_date=from_date, to_date=to_date, user_email=user_email)
            for record in found.records:
                out[record.request_id] = (
                    out[record.request_id].merged(record) if record.request_id in out else record
                )
            if not found.has_more or not found.records or page >= D.IMPORT_MAX_PAGES:
                break
            page += 1
        to_date = from_date - timedelta(days=1)
    return sorted(out.values(), key=lambda r: r.created_at or utc_now(), reverse=True)


def model_of(record: RequestRecord) -> str | None:
    """Which of the FLUX.2 models Flux Lab drives (D.MODELS) a record is a request to; None for
    another model. A record that does not name its model is taken as [max]'s if it has a prompt."""
    for slug in D.MODELS:
        if is_this_model(record, slug):
            return slug if record.model_name else D.MODEL_SLUG
    return None


def is_this_model(record: RequestRecord, slug: str = D.MODEL_SLUG) -> bool:
    """Whether a record is a request to this model (its name holds the slug; a record that does not
    name its model is judged by its inputs: a prompt)."""
    if record.model_name:
        return slug in record.model_name.lower().replace(" ", "-")
    return isinstance(record.request_body, dict) and isinstance(record.request_body.get("prompt"), str)
