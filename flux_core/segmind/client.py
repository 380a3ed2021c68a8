"""The Segmind client: v2 submit -> status -> result, v1 sync, upload-asset, credits, and the
control plane's request history (one page, or one request's record).

Each operation is written once, as a generator that yields what it needs done (`Send` a
request, `Sleep`) and receives the outcome. `SegmindClient` runs those generators with
`httpx.Client` and `time.sleep`; `AsyncSegmindClient` runs the very same generators with
`httpx.AsyncClient` and `asyncio.sleep`. So the twins cannot drift apart, and tests inject a
transport and a sleep function and never wait for real.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import ssl
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any, BinaryIO, Callable, Generator
from urllib.parse import quote, urlencode, urljoin, urlsplit

import httpx

from flux_core import defaults as D
from flux_core.segmind.budget import Grant, RequestBudget, budget_for
from flux_core.errors import (
    CallFailed,
    JobExpired,
    JobTimedOut,
    MissingKey,
    NetworkError,
    NotFoundError,
    OutputUnusable,
    ProtocolError,
    RateLimited,
    SubmitServerError,
    SubmitUnknown,
    error_from_response,
    failure_from_body,
)
from flux_core.segmind.jobs import Job, Outcome, decode_data_uri, image_url_from, metrics_from
from flux_core.logs import logger
from flux_core.params import FluxParams
from flux_core.segmind.records import STATUSES, HistoryPage, RequestRecord, page_from, record_from
from flux_core.segmind.retry import DurationEstimate, PollSchedule, retry_delay
from flux_core.settings import Connection

log = logger(__name__)
FAILED_STATES = {"FAILED", "CANCELLED", "CANCELED", "ERROR"}
StatusCallback = Callable[[str, dict], None]


@dataclass
class Send:
    method: str
    url: str
    json: Any = None
    api: bool = True  # send the key and draw from the key's request budget
    fresh_connection: bool = False  # a submit never rides a pooled connection the server may have closed
    timeout: float | None = None
    sink: BinaryIO | None = None  # stream a 2xx body into this file, at most `max_bytes` of it
    max_bytes: int = 0
    priority: int = D.PRIORITY_POLL  # when requests are short, the lowest goes first
    budgeted: bool = True  # draws from the key's budget (output files do not: a CDN serves them)


@dataclass
class Streamed:
    """A 2xx reply whose body went into a Send's sink rather than memory."""

    status_code: int
    content_type: str
    size: int
    too_large: bool


@dataclass
class Sleep:
    seconds: float


@dataclass
class Acquire:
    """A slot of `budget` for a request of this priority; answered with a Grant."""

    budget: RequestBudget
    priority: int


@dataclass
class Check:
    """Wait until the job is worth looking at. A plain client sleeps `fallback_s` and answers None
    (poll it); the scheduler plans it with every other job in flight, and may answer with the
    job's row from the request history instead."""

    job: Job
    started: float  # the client clock's moment of the submit
    expected_s: float | None
    fallback_s: float
    expected_known: bool = False  # measured (the ledger), not a prior


@dataclass
class Observed:
    """What a status or result request said of a job (for the scheduler's plan; else nothing)."""

    job: Job
    state: str
    hint: RequestRecord | None


@dataclass
class Offload:
    """Run a blocking function (the scheduler: in a worker thread, off its loop)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass
class SyncReply:
    content: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


Ops = Generator[Any, Any, Any]
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class _Protocol:
    """Everything but I/O: what to send, how to read the reply, when to try again."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        connection: Connection | None = None,
        clock: Callable[[], float] = time.monotonic,
        estimate: DurationEstimate | None = None,
        budget: RequestBudget | None = None,
        control_budget: RequestBudget | None = None,
    ):
        self.connection = connection or Connection.resolve(api_key=api_key, base_url=base_url)
        self._clock = clock
        self.estimate = estimate or DurationEstimate()
        self.budget = budget or budget_for(
            self.connection.base_url, self.connection.api_key, self.connection.rpm
        )
        self._origin = _origin(self.connection.base_url)
        self._control_origin = _origin(self.connection.control_url)
        if self._control_origin == self._origin:  # one server, one budget
            self.control_budget = self.budget
        else:
            self.control_budget = control_budget or budget_for(
                self.connection.control_url, self.connection.api_key, self.connection.rpm
            )

    # --- plumbing -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self.connection.base_url

    def _is_api(self, url: str) -> bool:
        """Whether `url` may carry the key: the API host, the control host, the upload URL; no other."""
        origin = _origin(url)
        return origin in (self._origin, self._control_origin) or url == self.connection.upload_url

    def _budget_of(self, url: str) -> RequestBudget:
        return self.control_budget if _origin(url) == self._control_origin else self.budget

    def headers_for(self, send: Send) -> dict[str, str]:
        headers = {"User-Agent": D.USER_AGENT, "Accept": "application/json, */*"}
        if send.api and self.connection.api_key:
            headers["x-api-key"] = self.connection.api_key
        return headers

    def request_for(self, http: httpx.Client | httpx.AsyncClient, send: Send) -> httpx.Request:
        return http.build_request(
            send.method,
            send.url,
            json=send.json,
            headers=self.headers_for(send),
            timeout=_timeout(send.timeout),
        )

    def _send(self, send: Send) -> Ops:
        """Wait for a slot of the key's budget, then send; returns the httpx.Response (or Streamed).
        The budget hears how it went, so it learns the server's limit."""
        budget, grant = None, None
        if send.api:
            if not self.connection.api_key:
                raise MissingKey("No Segmind API key is set.")
            if send.budgeted:
                budget = self._budget_of(send.url)
                grant = yield Acquire(budget, send.priority)
        status: int | None = None
        try:
            response = yield send
            status = response.status_code
        finally:
            if budget is not None:
                budget.settle(grant, status)
        return response

    def _error(self, response: httpx.Response) -> CallFailed:
        error = error_from_response(response, secret=self.connection.api_key)
        if isinstance(error, RateLimited) and error.reset_at is not None:
            # every request with this key to that server waits for the reset
            self._budget_of(str(response.request.url)).pause_until(error.reset_at)
        return error

    def _read_state(self, response: httpx.Response) -> dict[str, Any]:
        """A status/result reply: a terminal body whatever the HTTP code (FAILED comes as 422)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and str(body.get("status", "")).upper() in FAILED_STATES | {"COMPLETED"}:
            return body
        if response.status_code >= 400:
            raise self._error(response)
        if not isinstance(body, dict):
            raise ProtocolError(
                f"Unreadable reply (HTTP {response.status_code}, "
                f"{response.headers.get('content-type', 'no content type')})."
            )
        return body

    def _json(self, what: str) -> Callable[[httpx.Response], Any]:
        """A reader for a JSON GET: an error status raised as its CallFailed, an unreadable body as
        a ProtocolError (retried like any GET)."""

        def read(response: httpx.Response) -> Any:
            if response.status_code >= 400:
                raise self._error(response)
            if response.status_code >= 300:
                raise ProtocolError(f"The {what} answered HTTP {response.status_code} (a redirect).")
            try:
                return response.json()
            except ValueError:
                ctype = response.headers.get("content-type", "no content type")
                raise ProtocolError(f"The {what} was not JSON ({ctype}).") from None

        return read

    def _get(
        self,
        url: str,
        *,
        deadline: float | None = None,
        attempts: int = D.GET_MAX_ATTEMPTS,
        read: Callable[[httpx.Response], Any] | None = None,
        sink: BinaryIO | None = None,
        priority: int = D.PRIORITY_POLL,
    ) -> Ops:
        """GET with retries (always safe): backoff + jitter, honouring the reset header. With a
        `sink`, a 2xx body is streamed into it (at most OUTPUT_MAX_BYTES) and a `Streamed` returned."""
        attempt = 0
        while True:
            try:
                try:
                    if sink is not None:
                        sink.seek(0)
                        sink.truncate()
                    send = Send(
                        "GET",
                        url,
                        api=self._is_api(url),
                        sink=sink,
                        max_bytes=D.OUTPUT_MAX_BYTES,
                        priority=priority,
                        budgeted=sink is None,
                    )
                    response = yield from self._send(send)
                except httpx.RequestError as exc:
                    raise NetworkError(f"Could not reach {_origin(url)}: {type(exc).__name__}.") from None
                if read is None:
                    if not isinstance(response, Streamed) and response.status_code >= 400:
                        raise self._error(response)
                    return response
                return read(response)
            except CallFailed as error:
                attempt += 1
                out_of_time = deadline is not None and self._clock() >= deadline
                if not error.retryable or attempt >= attempts or out_of_time:
                    raise
                delay = retry_delay(error, attempt - 1)
                log.info("GET %s failed (%s); retry %d in %.1f s", _where(url), error.kind, attempt, delay)
                yield Sleep(delay)

    # --- operations -----------------------------------------------------------------------
    def submit_ops(self, params: FluxParams) -> Ops:
        """POST /v2/{slug}, the request's model. Retried here only when it provably never landed (a connect error) or
        was refused before any job (429). A 500/502/503 is SubmitServerError: the caller looks the
        request up in Segmind's history before sending it again. Anything ambiguous: SubmitUnknown."""
        url = f"{self.base_url}/v2/{params.model}"
        attempt = 0
        while True:
            try:
                response = yield from self._send(
                    Send(
                        "POST", url, json=params.payload(), fresh_connection=True, priority=D.PRIORITY_SUBMIT
                    )
                )
            except _NEVER_SENT as exc:
                error: CallFailed = NetworkError(
                    f"Could not connect to {self._origin}: {type(exc).__name__}."
                )
            except httpx.RequestError as exc:
                raise SubmitUnknown(
                    f"The connection broke after the submit was sent ({type(exc).__name__})."
                ) from None
            else:
                if response.status_code < 300:
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    job = Job.from_submit_body(body)
                    if job is None:
                        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
                        raise SubmitUnknown(
                            f"Segmind answered the submit (HTTP {response.status_code}) without a "
                            f"request id, status_url and response_url (got {keys})."
                        )
                    return job
                error = self._error(response)
                if response.status_code in D.SUBMIT_AMBIGUOUS_STATUSES:
                    raise SubmitUnknown(
                        f"{error.message} The gateway may have queued the job before failing."
                    )
                if response.status_code in D.SUBMIT_CHECK_STATUSES:  # the history settles it
                    raise SubmitServerError(error.message, status=response.status_code)
                if response.status_code not in D.SUBMIT_RETRY_STATUSES:
                    raise error
            attempt += 1
            if attempt >= D.SUBMIT_MAX_ATTEMPTS:
                raise error
            delay = retry_delay(error, attempt - 1)
            log.info(
                "submit not taken (%s); sending again in %.1f s (attempt %d)", error.kind, delay, attempt + 1
            )
            yield Sleep(delay)

    def status_ops(self, job: Job) -> Ops:
        """One status poll (retried as a GET). 404 means the request is gone: JobExpired."""
        try:
            body = yield from self._get(job.status_url, read=self._read_state, attempts=1)
        except NotFoundError as error:
            raise JobExpired(f"Segmind no longer knows request {job.request_id}: {error.message}") from None
        return body

    def wait_ops(
        self,
        job: Job,
        *,
        timeout: float | None = None,
        elapsed_s: float = 0.0,
        on_status: StatusCallback | None = None,
        safety_tolerance: int | None = None,
        expected_s: float | None = None,
        expected_known: bool = False,
    ) -> Ops:
        """Poll until COMPLETED (returns an Outcome) or a JobFailed. Transient poll failures are
        retried until the deadline: a job that may still be running is never given up on.

        Each look waits on a `Check`: the scheduler plans it with every other job in flight, and
        when the request history already shows the job COMPLETED the result is fetched straight
        away (the result answers as a status does, so nothing is lost if the history ran ahead)."""
        start = self._clock() - elapsed_s
        deadline = start + (timeout if timeout is not None else D.RETENTION_S)
        expected = expected_s if expected_s is not None else self.estimate.seconds
        schedule = PollSchedule(expected)
        last_state, error, failures = None, None, 0
        try:
            while True:
                now = self._clock()
                hint: RequestRecord | None = None
                if error is None:
                    fallback = max(0.0, min(schedule.next_delay(now - start), deadline - now))
                    hint = yield Check(job, start, expected, fallback, expected_known)
                else:
                    yield Sleep(max(0.0, min(retry_delay(error, failures - 1), deadline - now)))
                if self._clock() >= deadline:
                    raise JobTimedOut(
                        f"Request {job.request_id} did not finish within {deadline - start:.0f} s."
                    )
                done_by_history = hint is not None and hint.status == "COMPLETED"
                try:
                    if done_by_history:
                        body = yield from self._get(
                            job.response_url, read=self._read_state, attempts=1, priority=D.PRIORITY_RESULT
                        )
                    else:
                        body = yield from self.status_ops(job)
                except NotFoundError as exc:
                    raise JobExpired(
                        f"Segmind no longer knows request {job.request_id}: {exc.message}"
                    ) from None
                except CallFailed as exc:
                    if not exc.retryable:
                        raise
                    error, failures = exc, failures + 1
                    log.info(
                        "poll of %s failed (%s), %d in a row; polling on", job.request_id, exc.kind, failures
                    )
                    continue
                error, failures = None, 0
                state = str(body.get("status", "")).upper()
                yield Observed(job, state, hint)
                if on_status is not None and state != last_state:
                    on_status(state, body)
                last_state = state
                if state in FAILED_STATES:
                    raise failure_from_body(body, safety_tolerance, secret=self.connection.api_key)
                if state == "COMPLETED":
                    url = image_url_from(body) if done_by_history else None
                    if url:
                        outcome = Outcome(job=job, body=body, image_url=url, metrics=metrics_from(body))
                    else:
                        outcome = yield from self.result_ops(
                            job, deadline=deadline, safety_tolerance=safety_tolerance
                        )
                    self.estimate.observe(self._clock() - start)
                    return outcome
        except Exception:
            yield Observed(job, "ENDED", None)  # the scheduler stops planning looks at it
            raise

    def result_ops(
        self, job: Job, *, deadline: float | None = None, safety_tolerance: int | None = None
    ) -> Ops:
        """GET the result of a COMPLETED job; return the Outcome with its image URL. A result that
        never names a usable image ends in OutputUnusable (the job was billed: it says so)."""
        body: Any = None
        for attempt in range(D.GET_MAX_ATTEMPTS):
            try:
                body = yield from self._get(
                    job.response_url, read=self._read_state, deadline=deadline, priority=D.PRIORITY_RESULT
                )
            except NotFoundError as error:
                raise JobExpired(f"The result of {job.request_id} has expired: {error.message}") from None
            except ProtocolError as error:  # retried already: the result is not readable at all
                raise OutputUnusable(
                    f"Request {job.request_id} is COMPLETED but its result could not be read: {error.message}"
                ) from None
            state = str(body.get("status", "")).upper()
            if state in FAILED_STATES:
                raise failure_from_body(body, safety_tolerance, secret=self.connection.api_key)
            url = image_url_from(body)
            if url:
                metrics = metrics_from(body)
                return Outcome(job=job, body=body, image_url=url, metrics=metrics)
            if attempt + 1 < D.GET_MAX_ATTEMPTS:  # no wait after the last look: it is over
                yield Sleep(retry_delay(ProtocolError("no image yet"), attempt))
        keys = ", ".join(sorted(map(str, body))) if isinstance(body, dict) else "nothing"
        raise OutputUnusable(
            f"Request {job.request_id} is COMPLETED but its result names no usable image (it holds: {keys})."
        )

    def download_ops(self, url: str, sink: BinaryIO) -> Ops:
        """Stream the image at `url` into `sink`; returns its content type. At most OUTPUT_MAX_BYTES,
        redirects followed by hand (the key goes only to the API host), `data:` URIs decoded here.
        An output that can never be an image raises OutputUnusable; a transient failure CallFailed."""
        where = "the output"
        for _hop in range(D.DOWNLOAD_MAX_REDIRECTS + 1):
            if url.startswith("data:"):
                data, mime = decode_data_uri(url, D.OUTPUT_MAX_BYTES)
                sink.write(data)
                return mime
            if not url.startswith(("http://", "https://")):
                raise OutputUnusable(f"The output URL is not http(s): {url[:80]!r}.")
            where = _origin(url)
            response = yield from self._get(url, sink=sink)
            if isinstance(response, Streamed):
                if response.too_large:
                    raise OutputUnusable(
                        f"The image at {where} is larger than {D.OUTPUT_MAX_BYTES // 2**20} MB; "
                        "Flux Lab stopped reading it."
                    )
                if response.size == 0:
                    raise OutputUnusable(f"The image at {where} was empty.")
                return response.content_type
            location = response.headers.get("location")
            if 300 <= response.status_code < 400 and location:
                url = urljoin(url, location)
                continue
            raise OutputUnusable(
                f"The image at {where} answered HTTP {response.status_code} without an image."
            )
        raise OutputUnusable(f"The image at {where} redirected more than {D.DOWNLOAD_MAX_REDIRECTS} times.")

    def download_ops_bytes(self, url: str) -> Ops:
        buffer = io.BytesIO()
        mime = yield from self.download_ops(url, buffer)
        return buffer.getvalue(), mime

    def run_sync_ops(self, params: FluxParams) -> Ops:
        """POST /v1/{slug}: blocks for the whole inference, returns the image. Billed, so never
        retried after it may have landed."""
        url = f"{self.base_url}/v1/{params.model}"
        try:
            response = yield from self._send(
                Send("POST", url, json=params.payload(), fresh_connection=True, timeout=D.SYNC_READ_TIMEOUT_S)
            )
        except _NEVER_SENT as exc:
            raise NetworkError(f"Could not connect to {self._origin}: {type(exc).__name__}.") from None
        except httpx.RequestError as exc:
            raise SubmitUnknown(f"The connection broke during a sync call ({type(exc).__name__}).") from None
        if response.status_code >= 400:
            error = self._error(response)
            text = str(error.message)
            if response.status_code == 422 or "moderat" in text.lower():
                raise failure_from_body(
                    {"error": _plain(response)}, params.safety_tolerance, secret=self.connection.api_key
                )
            raise error
        headers = {k: v for k, v in response.headers.items() if k.lower().startswith("x-")}
        ctype = response.headers.get("content-type", "").split(";")[0]
        if ctype.startswith("image/"):
            return SyncReply(response.content, ctype, headers)
        try:
            body = response.json()
        except ValueError:
            raise ProtocolError(f"The sync reply was neither an image nor JSON ({ctype}).") from None
        if isinstance(body, dict) and isinstance(body.get("image"), str):
            return SyncReply(base64.b64decode(body["image"]), f"image/{params.output_format}", headers)
        image_url = image_url_from(body) if isinstance(body, dict) else None
        if not image_url:
            raise ProtocolError("The sync reply held no image.")
        content, mime = yield from self.download_ops_bytes(image_url)
        return SyncReply(content, mime, headers)

    def upload_ops(self, images: list[tuple[bytes, str]]) -> Ops:
        """POST upload-asset with data URLs; returns the hosted URLs (`file_urls` or `urls`)."""
        data_urls = [f"data:{mime};base64,{base64.b64encode(data).decode()}" for data, mime in images]
        try:
            response = yield from self._send(
                Send("POST", self.connection.upload_url, json={"data_urls": data_urls}, fresh_connection=True)
            )
        except httpx.RequestError as exc:
            raise NetworkError(f"The upload failed ({type(exc).__name__}).") from None
        if response.status_code >= 400:
            raise self._error(response)
        try:
            body = response.json()
        except ValueError:
            raise ProtocolError("The upload reply was not JSON.") from None
        urls = body.get("file_urls") or body.get("urls") if isinstance(body, dict) else None
        if not isinstance(urls, list) or len(urls) != len(images):
            raise ProtocolError("The upload reply did not list one URL per image.")
        return [str(u) for u in urls]

    def history_ops(
        self,
        page: int = 1,
        per_page: int = D.HISTORY_PER_PAGE,
        from_date: str | date | None = None,
        to_date: str | date | None = None,
        model_name: str | None = None,
        status: str | None = None,
        user_email: str | None = None,
    ) -> Ops:
        """GET {control}/inference-request/request-history: one page of the key's request records,
        with the SDK's parameter names (unset ones omitted). Returns a HistoryPage."""
        params = _history_params(page, per_page, from_date, to_date, model_name, status, user_email)
        url = f"{self.connection.control_url}/inference-request/request-history?{urlencode(params)}"
        body = yield from self._get(url, read=self._json("request history"), priority=D.PRIORITY_HISTORY)
        return page_from(body, page, per_page)

    def request_record_ops(self, request_id: str) -> Ops:
        """GET {control}/inference-request/request-history/{id}: the record of one of the key's own
        requests, of any age; None when Segmind answers 404 (it holds no such request)."""
        if not isinstance(request_id, str) or not request_id.strip():
            raise ValueError("request_id must be a non-empty string")
        url = f"{self.connection.control_url}/inference-request/request-history/{quote(request_id, safe='')}"
        try:
            body = yield from self._get(url, read=self._json("request record"), priority=D.PRIORITY_HISTORY)
        except NotFoundError:
            return None
        return record_from(body, request_id)

    def credits_ops(self) -> Ops:
        response = yield from self._get(f"{self.base_url}/v1/get-user-credits", attempts=1)
        try:
            body = response.json()
        except ValueError:
            raise ProtocolError("The credits reply was not JSON.") from None
        if not isinstance(body, dict):
            raise ProtocolError("The credits reply was not an object.")
        return body


class _Sink:
    """Where a streamed reply goes: a 2xx body into the Send's sink up to its cap; any other reply
    is kept (its first 64 KB) as an ordinary response, for the error mapping and redirects."""

    _ERROR_BODY_BYTES = 65536

    def __init__(self, send: Send, response: httpx.Response):
        self.send, self.response = send, response
        self.ok = 200 <= response.status_code < 300
        self.size, self.too_large, self.kept = 0, False, bytearray()

    def take(self, chunk: bytes) -> bool:
        """Take one chunk; False once no more is wanted."""
        if not self.ok:
            self.kept += chunk[: self._ERROR_BODY_BYTES - len(self.kept)]
            return len(self.kept) < self._ERROR_BODY_BYTES
        if self.size + len(chunk) > self.send.max_bytes:
            self.too_large = True
            return False
        assert self.send.sink is not None
        self.send.sink.write(chunk)
        self.size += len(chunk)
        return True

    def result(self) -> "Streamed | httpx.Response":
        ctype = self.response.headers.get("content-type", "").split(";")[0].strip()
        if self.ok:
            return Streamed(self.response.status_code, ctype, self.size, self.too_large)
        headers = {
            k: v
            for k, v in self.response.headers.items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        }
        return httpx.Response(
            self.response.status_code,
            headers=headers,
            content=bytes(self.kept),
            request=self.response.request,
        )


def _history_params(
    page: int,
    per_page: int,
    from_date: str | date | None,
    to_date: str | date | None,
    model_name: str | None,
    status: str | None,
    user_email: str | None,
) -> dict[str, str | int]:
    """The query of a history page, checked: a bad value is a ValueError naming the parameter."""
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValueError(f"page must be a whole number, 1 or more (got {page!r})")
    if (
        isinstance(per_page, bool)
        or not isinstance(per_page, int)
        or not 1 <= per_page <= D.HISTORY_PER_PAGE_MAX
    ):
        raise ValueError(
            f"per_page must be a whole number from 1 to {D.HISTORY_PER_PAGE_MAX} (got {per_page!r})"
        )
    params: dict[str, str | int] = {"page": page, "per_page": per_page}
    for name, day in (("from_date", from_date), ("to_date", to_date)):
        if day is None or day == "":
            continue
        if isinstance(day, date):
            params[name] = day.isoformat()[:10]
            continue
        try:
            params[name] = date.fromisoformat(str(day)).isoformat()
        except ValueError:
            raise ValueError(f"{name} must be a date YYYY-MM-DD (got {day!r})") from None
    if status:
        if str(status).upper() not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)} (got {status!r})")
        params["status"] = str(status).upper()
    if model_name:
        params["model_name"] = str(model_name)
    if user_email:
        params["user_email"] = str(user_email)
    return params


def _take_blocking(budget: RequestBudget, sleep: Callable[[float], None]) -> Grant:
    """A slot for a plain (blocking) client: wait as long as the budget says once, then take it."""
    taken = budget.try_take()
    if isinstance(taken, Grant):
        return taken
    sleep(taken)
    return budget.take_after()


def _where(url: str) -> str:
    """A URL for a log line: origin and path, never its query (signed output URLs carry tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _plain(response: httpx.Response) -> str:
    from flux_core.errors import body_error_text

    return body_error_text(response) or f"HTTP {response.status_code}"


def _timeout(seconds: float | None) -> httpx.Timeout:
    return httpx.Timeout(seconds or D.READ_TIMEOUT_S, connect=D.CONNECT_TIMEOUT_S)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client in the process. httpx otherwise builds one per client, and
    loading the CA bundle into it took 70 ms each time (measured), four times a backend (a client
    and the scheduler's, each with a kept-alive and a fresh-connection pool): 0.28 s of every
    server start, CLI command and new session key. It honours SSL_CERT_FILE / SSL_CERT_DIR as
    httpx's own does."""
    return httpx.create_ssl_context()


def _http_options(transport: object | None) -> dict[str, Any]:
    """What every client's pools share: the timeouts, no redirects followed, the process's TLS
    context (not made at all for an injected transport, which does its own I/O)."""
    options: dict[str, Any] = {"transport": transport, "timeout": _timeout(None), "follow_redirects": False}
    if transport is None:
        options["verify"] = _tls()
    return options


class SegmindClient(_Protocol):
    """Synchronous client. `transport` and `sleep` are injectable for tests."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ):
        super().__init__(api_key, base_url, **kwargs)
        self._sleep = sleep
        self._transport = transport
        self.instant = sleep is not time.sleep  # a test's sleep: the scheduler waits for nothing either
        self._http = httpx.Client(**_http_options(transport))
        self._fresh = httpx.Client(
            **_http_options(transport), limits=httpx.Limits(max_keepalive_connections=0)
        )

    def _run(self, ops: Ops) -> Any:
        value: Any = None
        exc: BaseException | None = None
        while True:
            try:
                effect = ops.throw(exc) if exc is not None else ops.send(value)
            except StopIteration as stop:
                return stop.value
            value, exc = None, None
            if isinstance(effect, Sleep):
                if effect.seconds > 0:
                    self._sleep(effect.seconds)
                continue
            if isinstance(effect, Check):
                if effect.fallback_s > 0:
                    self._sleep(effect.fallback_s)
                continue
            if isinstance(effect, Observed):
                continue
            if isinstance(effect, Acquire):
                value = _take_blocking(effect.budget, self._sleep)
                continue
            if isinstance(effect, Offload):
                try:
                    value = effect.fn(*effect.args)
                except BaseException as error:  # handed back to the operation
                    exc = error
                continue
            http = self._fresh if effect.fresh_connection else self._http
            request = self.request_for(http, effect)
            try:
                response = http.send(request, stream=effect.sink is not None)
                if effect.sink is None:
                    value = response
                else:
                    with contextlib.closing(response):
                        sink = _Sink(effect, response)
                        for chunk in response.iter_bytes():
                            if not sink.take(chunk):
                                break
                        value = sink.result()
            except httpx.RequestError as error:
                exc = error

    def async_transport(self) -> httpx.AsyncBaseTransport | None:
        """The injected transport, when it can serve the async twin too (httpx.MockTransport)."""
        transport = self._transport
        return transport if isinstance(transport, httpx.AsyncBaseTransport) else None

    def submit(self, params: FluxParams) -> Job:
        return self._run(self.submit_ops(params))

    def status(self, job: Job) -> dict[str, Any]:
        return self._run(self.status_ops(job))

    def wait(self, job: Job, **kwargs: Any) -> Outcome:
        return self._run(self.wait_ops(job, **kwargs))

    def result(self, job: Job) -> Outcome:
        return self._run(self.result_ops(job))

    def download(self, url: str) -> tuple[bytes, str]:
        return self._run(self.download_ops_bytes(url))

    def download_to(self, url: str, sink: BinaryIO) -> str:
        return self._run(self.download_ops(url, sink))

    def run_sync(self, params: FluxParams) -> SyncReply:
        return self._run(self.run_sync_ops(params))

    def upload(self, images: list[tuple[bytes, str]]) -> list[str]:
        return self._run(self.upload_ops(images))

    def credits(self) -> dict[str, Any]:
        return self._run(self.credits_ops())

    def history(
        self,
        page: int = 1,
        per_page: int = D.HISTORY_PER_PAGE,
        from_date: str | date | None = None,
        to_date: str | date | None = None,
        model_name: str | None = None,
        status: str | None = None,
        user_email: str | None = None,
    ) -> HistoryPage:
        return self._run(self.history_ops(page, per_page, from_date, to_date, model_name, status, user_email))

    def request_record(self, request_id: str) -> RequestRecord | None:
        return self._run(self.request_record_ops(request_id))

    def close(self) -> None:
        self._http.close()
        self._fresh.close()

    def __enter__(self) -> "SegmindClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncSegmindClient(_Protocol):
    """The asyncio twin: the same methods, awaited."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        **kwargs: Any,
    ):
        super().__init__(api_key, base_url, **kwargs)
        self._sleep = sleep
        self._http = httpx.AsyncClient(**_http_options(transport))
        self._fresh = httpx.AsyncClient(
            **_http_options(transport), limits=httpx.Limits(max_keepalive_connections=0)
        )

    async def _run(self, ops: Ops) -> Any:
        try:
            return await self._steps(ops)
        except asyncio.CancelledError:  # a stopping runner: the operation ends where it is
            ops.close()
            raise

    async def _steps(self, ops: Ops) -> Any:
        value: Any = None
        exc: BaseException | None = None
        while True:
            try:
                effect = ops.throw(exc) if exc is not None else ops.send(value)
            except StopIteration as stop:
                return stop.value
            value, exc = None, None
            if not isinstance(effect, Send):
                try:
                    value = await self.effect(effect)
                except asyncio.CancelledError:
                    raise
                except BaseException as error:  # handed back to the operation
                    exc = error
                continue
            http = self._fresh if effect.fresh_connection else self._http
            request = self.request_for(http, effect)
            try:
                response = await http.send(request, stream=effect.sink is not None)
                if effect.sink is None:
                    value = response
                else:
                    try:
                        sink = _Sink(effect, response)
                        async for chunk in response.aiter_bytes():
                            if not sink.take(chunk):
                                break
                        value = sink.result()
                    finally:
                        await response.aclose()
            except httpx.RequestError as error:
                exc = error

    async def effect(self, effect: Any) -> Any:
        """Carry out what an operation asked for besides a request (the scheduler plans these)."""
        if isinstance(effect, Sleep):
            if effect.seconds > 0:
                await self._sleep(effect.seconds)
            return None
        if isinstance(effect, Check):
            if effect.fallback_s > 0:
                await self._sleep(effect.fallback_s)
            return None
        if isinstance(effect, Observed):
            return None
        if isinstance(effect, Acquire):
            taken = effect.budget.try_take()
            if isinstance(taken, Grant):
                return taken
            await self._sleep(taken)
            return effect.budget.take_after()
        if isinstance(effect, Offload):
            return effect.fn(*effect.args)
        raise TypeError(f"unknown effect {effect!r}")

    async def submit(self, params: FluxParams) -> Job:
        return await self._run(self.submit_ops(params))

    async def status(self, job: Job) -> dict[str, Any]:
        return await self._run(self.status_ops(job))

    async def wait(self, job: Job, **kwargs: Any) -> Outcome:
        return await self._run(self.wait_ops(job, **kwargs))

    async def result(self, job: Job) -> Outcome:
        return await self._run(self.result_ops(job))

    async def download(self, url: str) -> tuple[bytes, str]:
        return await self._run(self.download_ops_bytes(url))

    async def download_to(self, url: str, sink: BinaryIO) -> str:
        return await self._run(self.download_ops(url, sink))

    async def run_sync(self, params: FluxParams) -> SyncReply:
        return await self._run(self.run_sync_ops(params))

    async def upload(self, images: list[tuple[bytes, str]]) -> list[str]:
        return await self._run(self.upload_ops(images))

    async def credits(self) -> dict[str, Any]:
        return await self._run(self.credits_ops())

    async def history(
        self,
        page: int = 1,
        per_page: int = D.HISTORY_PER_PAGE,
        from_date: str | date | None = None,
        to_date: str | date | None = None,
        model_name: str | None = None,
        status: str | None = None,
        user_email: str | None = None,
    ) -> HistoryPage:
        return await self._run(
            self.history_ops(page, per_page, from_date, to_date, model_name, status, user_email)
        )

    async def request_record(self, request_id: str) -> RequestRecord | None:
        return await self._run(self.request_record_ops(request_id))

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._fresh.aclose()

    async def __aenter__(self) -> "AsyncSegmindClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


__all__ = [
    "SegmindClient",
    "AsyncSegmindClient",
    "Job",
    "Outcome",
    "SyncReply",
    "HistoryPage",
    "RequestRecord",
]
