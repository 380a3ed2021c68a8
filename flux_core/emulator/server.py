"""A local stand-in for Segmind's serverless API, faithful to ../shared/segmind-protocol.md.

Routes: POST /v1/{slug} (sync, image bytes), POST /v2/{slug} (submit), GET /v2/requests/{id}/status,
GET /v2/requests/{id} (result), GET /v1/requests/{id} (legacy poll_url), GET /v1/get-user-credits,
POST /upload-asset, GET /files/{name}, and the control plane's request history (protocol 6b):
GET /inference-request/request-history and GET /inference-request/request-history/{id}, served on
the same origin. GET /_emulator/stats is the emulator's own (tests read it); no client code uses it.

Knobs (EmulatorConfig) reproduce what the real API can do: latency and its spread, queue time,
moderation that depends on safety_tolerance, job failures, faults on polls and submits (429,
5xx, dropped connections, garbage bodies), a credit balance, per-key rate limits with the reset
header, retention, validation at submit or as FAILED, the upload reply's key; a scripted sequence of
submit faults (a reply lost after the job was made, a 5xx before or after), the history's lag.

A request's record outlives its status: after `retention_s` the status and result endpoints answer
404, while the history still holds the record (of any age) and its output file still downloads for
`output_retention_s` (7 days). Time is read from an injectable clock (`Emulator(clock=...)`).

It serves the three FLUX.2 slugs of D.MODELS: [pro] takes [max]'s parameters, [flex] those and
D.FLEX_FIELDS (range-checked as BFL documents them; sent to [max] or [pro] they are refused, as the
issue's words say they are [flex]'s only). `cost` is a [max] image's price; the others cost in the
proportions of the price table (D.PRICES_USD).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from flux_core import defaults as D
from flux_core.emulator.render import render_preview

# Words that trip the emulator's safety filter, and the lowest safety_tolerance that lets
# each through (0 = strictest ... 6 = most permissive). A prompt is blocked when its
# tolerance is below the highest level among its words.
RISK_WORDS = {
    "fight": 1,
    "scary": 1,
    "battle": 1,
    "weapon": 2,
    "gun": 2,
    "sword": 2,
    "zombie": 2,
    "blood": 3,
    "bloody": 3,
    "horror": 3,
    "gore": 4,
    "violent": 4,
    "corpse": 5,
    "nsfw": 6,
}
_ASSET_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
_ASSET_NAME = re.compile(r"assets/[0-9a-f]{32}\.(png|jpeg|webp|gif|bin)")
FAIL_MARKER = "#fail"  # a prompt containing it ends FAILED (for tests and demos of failures)
# Submit faults, scripted (EmulatorConfig.submit_script) or drawn (submit_faults). "<code>" and
# "<code>-before" answer that code without making a job; "<code>-after" makes the job, then answers
# the code; "drop-before"/"drop-after" close the connection mid-reply without/with a job;
# "garbage-after" makes the job and answers an HTML page; "" or "ok" is no fault.
_SUBMIT_FAULT = re.compile(r"(?:(429|5\d\d|drop)(?:-before)?|(5\d\d|drop|garbage)-after|ok|)")
_SUBMIT_FAULT_ALIASES = {"lost-reply": "drop-after"}  # the job is made, its reply never arrives
_HISTORY_SORTS = ("model_created", "model_name", "credits_deduction")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class EmulatorConfig:
    latency_s: float = D.EMULATOR_LATENCY_S
    latency_spread_s: float = D.EMULATOR_LATENCY_SPREAD_S
    queue_s: float = D.EMULATOR_QUEUE_S
    retention_s: float = D.RETENTION_S  # how long status and result answer; then 404
    output_retention_s: float = D.OUTPUT_RETENTION_S  # how long output files download
    history_lag_s: float = D.EMULATOR_HISTORY_LAG_S  # a request shows in the history this long after
    emails: tuple[tuple[str, str], ...] = ()  # (key, email) of a team's members; rows carry the email
    credits: float = D.EMULATOR_CREDITS
    cost: float = D.EMULATOR_COST
    keys: tuple[str, ...] = ()  # accepted keys; empty: any non-empty key
    rpm: int | None = None  # per-key requests per window; None: unlimited
    rate_window_s: float = 60.0  # the rate-limit window (fixed, per key)
    count_polls: bool = True  # whether status/result GETs count toward rpm
    moderation: bool = True
    fail_rate: float = 0.0  # share of jobs that end FAILED
    poll_fault_rate: float = 0.0  # share of status/result GETs that fail
    poll_faults: tuple[str, ...] = ("429", "500", "502", "503", "drop", "garbage")
    submit_fault_rate: float = 0.0
    submit_faults: tuple[str, ...] = ("500",)  # also 429, 503, drop-before, drop-after, garbage-after
    # consumed in order, one word per submit that passes the key, rate, content-type and slug checks
    # (see _SUBMIT_FAULT): e.g. ("ok", "lost-reply", "504-before", "500-after"); then no more faults
    submit_script: tuple[str, ...] = ()
    validation: str = "submit"  # "submit": 400 at submit; "failed": the job ends FAILED
    strict_image_urls: bool = False  # reject a request without image_urls (the page's "required")
    max_tolerance: int = D.SAFETY_MAX
    upload_key: str = "file_urls"  # or "urls" (the two sources disagree)
    retired_slugs: tuple[str, ...] = ()
    slugs: tuple[str, ...] = tuple(D.MODELS)
    random_seed: int | None = None  # seeds fault injection and latency spread
    state_path: str | None = None  # keep jobs and the balance in this file across restarts, and
    # uploaded assets in EMULATOR_ASSETS_DIR beside it: their hosted URLs still answer after a restart


def _submit_fault_word(word: str) -> str:
    """A submit fault's canonical name; ValueError for a word the emulator does not know."""
    word = _SUBMIT_FAULT_ALIASES.get(word.strip().lower(), word.strip().lower())
    if not _SUBMIT_FAULT.fullmatch(word):
        raise ValueError(
            f"unknown submit fault {word!r}: use ok, lost-reply, drop-before, drop-after, garbage-after, "
            "429, <5xx>, <5xx>-before or <5xx>-after"
        )
    return word


def _iso(moment: float) -> str:
    return (
        datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class DroppedConnection(Exception):
    """Raised after the response has started: uvicorn then closes the connection mid-reply."""


class _Drop(Response):
    async def __call__(self, scope, receive, send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"request_id": "', "more_body": True})
        raise DroppedConnection("emulated dropped connection")


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


@dataclass
class _Job:
    id: str
    key: str
    params: dict[str, Any]
    created: float  # wall-clock seconds, so a persisted job ages across restarts
    queue_s: float
    latency_s: float
    error: str | None = None
    file_name: str | None = None
    charged: bool = False
    slug: str = D.MODEL_SLUG
    cost: float = 0.0  # what the request was charged (USD), once COMPLETED


@dataclass
class Stats:
    submits: int = 0  # v2 submits that created a job
    submit_requests: int = 0  # v2 submit requests received, whatever happened
    sync_calls: int = 0
    polls: int = 0
    results: int = 0
    downloads: int = 0
    uploads: int = 0
    rate_limited: int = 0
    faults: int = 0  # faults injected, drawn or scripted
    history_requests: int = 0  # GETs of the request history (list or one record)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Emulator:
    def __init__(self, config: EmulatorConfig | None = None, clock: Callable[[], float] = time.time):
        self.config = config or EmulatorConfig()
        self.clock = clock  # wall-clock seconds: job ages, the history's dates and lag
        self._script = [_submit_fault_word(word) for word in self.config.submit_script]
        for word in self.config.submit_faults:
            _submit_fault_word(word)
        self.balance = self.config.credits
        self.jobs: dict[str, _Job] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        # a job's image is drawn by one background thread as soon as it is submitted (a real server
        # has its output ready when it says COMPLETED; drawing it when asked would slow the answer)
        self._render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emulator-render")
        self._renders: dict[str, Future[bytes]] = {}
        self.windows: dict[str, tuple[float, int]] = {}
        self.stats = Stats()
        self.rng = random.Random(self.config.random_seed)
        self._load()
        self.app = self._build_app()

    def close(self) -> None:
        """Stop drawing ahead (the images not collected are drawn again when asked for)."""
        self._render_pool.shutdown(wait=False, cancel_futures=True)

    # --- persistence: the service outlives a restart of whoever hosts it ---------------------
    def _load(self) -> None:
        path = self.config.state_path
        if not path or not os.path.exists(path):
            return
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
            self.balance = float(state["balance"])
            self.jobs = {j["id"]: _Job(**j) for j in state["jobs"]}
        except (OSError, ValueError, KeyError, TypeError):
            return  # an unreadable state file starts a fresh emulator

    def _save(self) -> None:
        path = self.config.state_path
        if not path:
            return
        state = {"balance": self.balance, "jobs": [dict(j.__dict__) for j in self.jobs.values()]}
        tmp = f"{path}.part"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(state, f)
        os.replace(tmp, path)

    # --- helpers ---------------------------------------------------------------------------
    def _build_app(self) -> Starlette:
        routes = [
            Route("/v1/get-user-credits", self.credits, methods=["GET"]),
            Route("/v1/requests/{rid}", self.result, methods=["GET"]),
            Route("/v1/{slug}", self.sync_run, methods=["POST"]),
            Route("/v2/requests/{rid}/status", self.status, methods=["GET"]),
            Route("/v2/requests/{rid}", self.result, methods=["GET"]),
            Route("/v2/{slug}", self.submit, methods=["POST"]),
            Route("/upload-asset", self.upload, methods=["POST"]),
            Route("/files/{name:path}", self.file, methods=["GET"]),
            Route("/inference-request/request-history", self.history, methods=["GET"]),
            Route("/inference-request/request-history/{rid}", self.history_record, methods=["GET"]),
            Route("/_emulator/stats", self.stats_route, methods=["GET"]),
        ]
        return Starlette(routes=routes, exception_handlers={HTTPException: self._http_error})

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # the one class it is registered for
        if exc.status_code == 405:
            return HTMLResponse("<html><body><h1>405 Method Not Allowed</h1></body></html>", 405)
        return JSONResponse({"error": exc.detail}, exc.status_code)

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status, headers=headers)

    def _auth(self, request: Request) -> tuple[str, Response | None]:
        """The caller's key, or "" and the refusal."""
        key = request.headers.get("x-api-key")
        if not key:
            if request.headers.get("authorization", "").lower().startswith("bearer"):
                return "", self._error(
                    401,
                    "Unauthorized. API key is invalid or may have expired. Send it in the x-api-key header.",
                )
            return "", self._error(401, "Missing Authorization or x-api-key in header")
        if self.config.keys and key not in self.config.keys:
            return "", self._error(401, "Unauthorized. API key is invalid or may have expired...")
        return key, None

    def _rate_limit(self, key: str) -> Response | None:
        if not self.config.rpm:
            return None
        now = time.monotonic()
        start, count = self.windows.get(key, (now, 0))
        window = self.config.rate_window_s
        if now - start >= window:
            start, count = now, 0
        if count >= self.config.rpm:
            self.stats.rate_limited += 1
            reset = datetime.now(timezone.utc) + timedelta(seconds=window - (now - start))
            return self._error(
                429,
                "rate_limit_exceeded: too many requests for this API key",
                headers={"x-rate-limit-reset-at-utc": reset.isoformat().replace("+00:00", "Z")},
            )
        self.windows[key] = (start, count + 1)
        return None

    def _gate(self, request: Request, *, counted: bool = True) -> tuple[str, Response | None]:
        key, denied = self._auth(request)
        if denied:
            return "", denied
        if counted:
            limited = self._rate_limit(key)
            if limited:
                return "", limited
        return key, None

    async def _json_body(self, request: Request) -> tuple[Any, Response | None]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("application/json", "multipart/form-data"):
            return None, self._error(406, "Invalid content type")
        try:
            return await request.json(), None
        except ValueError:
            return None, self._error(400, "Request body is not valid JSON")

    def _slug_problem(self, slug: str) -> Response | None:
        if slug in self.config.retired_slugs:
            return self._error(410, f"Model {slug} has been retired")
        if slug not in self.config.slugs:
            return self._error(404, f"Model {slug} not found")
        return None

    def cost_of(self, slug: str) -> float:
        """What an image of model `slug` costs here: `cost` for [max], the others in proportion."""
        per_mp = D.PRICES_USD.get(slug, D.PRICES_USD[D.MODEL_SLUG])[0]
        return round(self.config.cost * per_mp / D.PRICES_USD[D.MODEL_SLUG][0], 6)

    def _validate(self, body: Any, slug: str = D.MODEL_SLUG) -> list[str]:
        if not isinstance(body, dict):
            return ["Body must be a JSON object"]
        problems = self._flex_problems(body) if slug == D.FLEX_SLUG else []
        if slug != D.FLEX_SLUG:
            problems += [f"{name} is not a parameter of {slug}" for name in D.FLEX_FIELDS if name in body]
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            problems.append("Prompt is Mandatory and must be string")
        urls = body.get("image_urls")
        if urls is None:
            if self.config.strict_image_urls:
                problems.append("image_urls is required")
        elif (
            not isinstance(urls, list)
            or len(urls) > D.MAX_IMAGE_URLS
            or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls)
        ):
            problems.append(f"image_urls must be a list of at most {D.MAX_IMAGE_URLS} http(s) URLs")
        for name in ("width", "height"):
            value = body.get(name, D.WIDTH)
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not (D.SIZE_MIN <= value <= D.SIZE_MAX)
                or value % D.SIZE_STEP
            ):
                problems.append(
                    f"{name} must be a multiple of {D.SIZE_STEP} between {D.SIZE_MIN} and {D.SIZE_MAX}"
                )
        tol = body.get("safety_tolerance", D.SAFETY_TOLERANCE)
        if not isinstance(tol, int) or isinstance(tol, bool) or not 0 <= tol <= self.config.max_tolerance:
            problems.append(f"safety_tolerance must be an integer between 0 and {self.config.max_tolerance}")
        if body.get("output_format", "png") not in D.OUTPUT_FORMATS:
            problems.append("output_format must be one of: jpeg, png")
        seed = body.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            problems.append("seed must be an integer")
        return problems

    @staticmethod
    def _flex_problems(body: dict[str, Any]) -> list[str]:
        problems = []
        steps = body.get("steps", D.FLEX_STEPS)
        if (
            not isinstance(steps, int)
            or isinstance(steps, bool)
            or not D.FLEX_STEPS_MIN <= steps <= D.FLEX_STEPS_MAX
        ):
            problems.append(f"steps must be an integer between {D.FLEX_STEPS_MIN} and {D.FLEX_STEPS_MAX}")
        guidance = body.get("guidance", D.FLEX_GUIDANCE)
        if (
            not isinstance(guidance, (int, float))
            or isinstance(guidance, bool)
            or not D.FLEX_GUIDANCE_MIN <= guidance <= D.FLEX_GUIDANCE_MAX
        ):
            problems.append(
                f"guidance must be a number between {D.FLEX_GUIDANCE_MIN} and {D.FLEX_GUIDANCE_MAX}"
            )
        if not isinstance(body.get("prompt_upsampling", D.FLEX_PROMPT_UPSAMPLING), bool):
            problems.append("prompt_upsampling must be a boolean")
        return problems

    def _verdict(self, params: dict[str, Any]) -> str | None:
        """The error a job will end with, or None when it completes."""
        prompt = str(params.get("prompt", ""))
        if FAIL_MARKER in prompt.lower() or (
            self.config.fail_rate and self.rng.random() < self.config.fail_rate
        ):
            return "Internal model error: the generation did not finish, please retry"
        if self.config.moderation:
            tol = int(params.get("safety_tolerance", D.SAFETY_TOLERANCE))
            words = {w.strip(".,;:!?'\"()").lower() for w in prompt.split()}
            needed = max((RISK_WORDS.get(w, 0) for w in words), default=0)
            if tol < needed:
                return (
                    f"Request moderated: content flagged by the safety filter "
                    f"(safety_tolerance {tol}; this prompt needs {needed} or higher)"
                )
        return None

    def _new_job(
        self, key: str, params: dict[str, Any], error: str | None = None, slug: str = D.MODEL_SLUG
    ) -> _Job:
        spread = self.config.latency_spread_s
        latency = max(0.0, self.config.latency_s + (self.rng.uniform(-spread, spread) if spread else 0.0))
        job = _Job(
            id=str(uuid.uuid4()),
            key=key,
            params=params,
            created=self.clock(),
            queue_s=self.config.queue_s,
            latency_s=latency,
            error=error if error else self._verdict(params),
            slug=slug,
        )
        self.jobs[job.id] = job
        self._save()
        if not job.error:  # drawn while it "runs", so its output is there when it says COMPLETED
            try:
                self._renders[job.id] = self._render_pool.submit(self._render, dict(job.params))
            except RuntimeError:  # closed: drawn when asked for
                pass
            while len(self._renders) > D.EMULATOR_RENDERS_KEPT:  # jobs nobody collected
                self._renders.pop(next(iter(self._renders))).cancel()
        return job

    def _state(self, job: _Job) -> str:
        age = self.clock() - job.created
        if age < job.queue_s:
            return "QUEUED"
        if age < job.queue_s + job.latency_s:
            return "PROCESSING"
        if job.error:
            return "FAILED"
        self._charge(job)
        return "COMPLETED"

    def _charge(self, job: _Job) -> None:
        """A completed job is paid for once."""
        if not job.charged:
            job.charged, job.cost = True, self.cost_of(job.slug)
            self.balance = round(self.balance - job.cost, 6)
            self._save()

    @staticmethod
    def _file_name(job: _Job) -> str:
        fmt = job.params.get("output_format", D.OUTPUT_FORMAT)
        return f"generations/{job.id}.{'jpeg' if fmt == 'jpeg' else 'png'}"

    @staticmethod
    def _render(p: dict[str, Any]) -> bytes:
        return render_preview(
            str(p["prompt"]),
            int(p.get("seed", 0)),
            int(p.get("width", D.WIDTH)),
            int(p.get("height", D.HEIGHT)),
            p.get("output_format", D.OUTPUT_FORMAT),
        )

    def _finish(self, job: _Job) -> str:
        """A completed job's image (drawn in the background since it was submitted; drawn now after
        a restart), once; its file name."""
        self._charge(job)
        if job.file_name and job.file_name in self.files:
            return job.file_name
        fmt = job.params.get("output_format", D.OUTPUT_FORMAT)
        drawing = self._renders.pop(job.id, None)
        ready = drawing is not None and not drawing.cancelled()
        image = drawing.result() if drawing is not None and ready else self._render(job.params)
        name = job.file_name = self._file_name(job)
        self._store_file(name, image, f"image/{fmt}")
        return name

    @property
    def _assets_dir(self) -> str | None:
        path = self.config.state_path
        return os.path.join(os.path.dirname(os.path.abspath(path)), D.EMULATOR_ASSETS_DIR) if path else None

    def _keep_asset(self, name: str, data: bytes) -> None:
        """An uploaded asset, written to disk (when the emulator keeps state) under a name it chose."""
        folder = self._assets_dir
        if folder is None:
            return
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, name.split("/", 1)[1])
        with open(f"{target}.part", "wb") as f:
            f.write(data)
        os.replace(f"{target}.part", target)

    def _kept_asset(self, name: str) -> tuple[bytes, str] | None:
        """An asset uploaded before a restart; only names of the emulator's own form are looked up."""
        folder = self._assets_dir
        match = _ASSET_NAME.fullmatch(name)
        if folder is None or match is None:
            return None
        try:
            with open(os.path.join(folder, name.split("/", 1)[1]), "rb") as f:
                data = f.read()
        except OSError:
            return None
        return data, _ASSET_TYPES.get(match.group(1), "application/octet-stream")

    def _store_file(self, name: str, data: bytes, ctype: str) -> None:
        self.files[name] = (data, ctype)
        while len(self.files) > 500:
            self.files.pop(next(iter(self.files)))

    def _lookup(self, rid: str) -> _Job | None:
        """A job the status and result endpoints still answer for (within `retention_s`); its
        record stays in the request history, of any age."""
        job = self.jobs.get(rid)
        if job and self.clock() - job.created > self.config.retention_s:
            return None
        return job

    def _urls(self, request: Request, rid: str) -> dict[str, str]:
        base = str(request.base_url).rstrip("/")
        return {
            "poll_url": f"{base}/v1/requests/{rid}",
            "status_url": f"{base}/v2/requests/{rid}/status",
            "response_url": f"{base}/v2/requests/{rid}",
        }

    def _metrics(self, job: _Job, state: str) -> dict[str, Any]:
        if state in ("QUEUED", "PROCESSING"):
            return {}
        metrics = {
            "inference_time": round(job.latency_s if not job.error else 0.008, 3),
            "queue_time": round(job.queue_s, 3),
            "total_time": round(job.queue_s + job.latency_s, 3),
        }
        if state == "COMPLETED":
            metrics.update(cost=job.cost, remaining_credits=round(self.balance, 6))
        return metrics

    def _poll_fault(self) -> Response | None:
        if not self.config.poll_fault_rate or self.rng.random() >= self.config.poll_fault_rate:
            return None
        self.stats.faults += 1
        return self._fault(self.rng.choice(self.config.poll_faults))

    def _fault(self, kind: str) -> Response:
        if kind == "429":
            reset = datetime.now(timezone.utc) + timedelta(seconds=1)
            return self._error(
                429,
                "rate_limit_exceeded",
                headers={"x-rate-limit-reset-at-utc": reset.isoformat().replace("+00:00", "Z")},
            )
        if kind.isdigit():
            return self._error(
                int(kind), "Internal server error" if kind == "500" else f"Upstream error {kind}"
            )
        if kind.startswith("drop"):
            return _Drop()
        return Response("<html>upstream hiccup</html>", 200, media_type="text/html")

    async def _model_call(self, request: Request) -> tuple[str, Any, Response | None]:
        """What every model call passes first: key, rate limit, content type, a known slug."""
        key, denied = self._gate(request)
        if denied:
            return "", None, denied
        body, bad = await self._json_body(request)
        if bad:
            return "", None, bad
        return key, body, self._slug_problem(request.path_params["slug"])

    def _credit_problem(self, slug: str) -> Response | None:
        if self.balance < self.cost_of(slug):
            return self._error(
                406, f"Insufficient credits: balance {self.balance:.4f}, required {self.cost_of(slug):.4f}"
            )
        return None

    # --- routes ---------------------------------------------------------------------------
    async def submit(self, request: Request) -> Response:
        self.stats.submit_requests += 1
        key, body, refused = await self._model_call(request)
        if refused:
            return refused
        fault = self._script.pop(0) if self._script else ""
        if fault in ("", "ok") and self.config.submit_fault_rate:
            if self.rng.random() < self.config.submit_fault_rate:
                fault = _submit_fault_word(self.rng.choice(self.config.submit_faults))
        if fault in ("", "ok"):
            fault = ""
        else:
            self.stats.faults += 1
            if not fault.endswith("-after"):
                return self._fault(fault.removesuffix("-before"))
        slug = request.path_params["slug"]
        problems = self._validate(body, slug)
        if problems and self.config.validation == "submit":
            return self._error(400, "; ".join(problems))
        short = self._credit_problem(slug)
        if short:
            return short
        job = self._new_job(key, body if isinstance(body, dict) else {}, "; ".join(problems) or None, slug)
        self.stats.submits += 1
        if fault == "drop-after":
            return _Drop()
        if fault == "garbage-after":
            return Response("<html>gateway hiccup</html>", 200, media_type="text/html")
        if fault:  # "<code>-after": the job exists, the reply says it failed
            return self._fault(fault.removesuffix("-after"))
        return JSONResponse({"request_id": job.id, "status": "QUEUED", **self._urls(request, job.id)})

    async def status(self, request: Request) -> Response:
        self.stats.polls += 1
        return self._poll_reply(request, with_output=False)

    async def result(self, request: Request) -> Response:
        self.stats.results += 1
        return self._poll_reply(request, with_output=True)

    def _poll_reply(self, request: Request, *, with_output: bool) -> Response:
        _, denied = self._gate(request, counted=self.config.count_polls)
        if denied:
            return denied
        fault = self._poll_fault()
        if fault:
            return fault
        rid = request.path_params["rid"]
        job = self._lookup(rid)
        if job is None:
            return self._error(404, f"Request {rid} not found")
        state = self._state(job)
        body: dict[str, Any] = {"request_id": job.id, "status": state, "metrics": self._metrics(job, state)}
        if state == "FAILED":
            body["error"] = job.error
            return JSONResponse(body, 422)
        if state in ("QUEUED", "PROCESSING"):
            body.update({k: v for k, v in self._urls(request, job.id).items() if k != "poll_url"})
            return JSONResponse(body)
        if with_output:
            base = str(request.base_url).rstrip("/")
            name = self._finish(job)
            url = f"{base}/files/{name}"
            data, ctype = self.files.get(name, (b"", ""))
            body.update(
                error=None,
                output=url,
                seed=str(job.params.get("seed", "")),
                images=[
                    {
                        "url": url,
                        "content_type": ctype,
                        "file_name": name.split("/")[-1],
                        "file_size": str(len(data)),
                    }
                ],
            )
        return JSONResponse(body)

    async def sync_run(self, request: Request) -> Response:
        self.stats.sync_calls += 1
        key, body, refused = await self._model_call(request)
        if refused:
            return refused
        slug = request.path_params["slug"]
        problems = self._validate(body, slug)
        if problems:
            return self._error(422, "; ".join(problems))
        short = self._credit_problem(slug)
        if short:
            return short
        job = self._new_job(key, body, slug=slug)
        await asyncio.sleep(job.queue_s + job.latency_s)
        del self.jobs[job.id]
        if job.error:
            return self._error(422 if "moderated" not in job.error else 400, job.error)
        data, ctype = self.files[self._finish(job)]
        return Response(
            data,
            200,
            media_type=ctype,
            headers={
                "x-remaining-credits": f"{self.balance:.6f}",
                "x-cost": f"{job.cost}",
                "x-generation-time": f"{job.latency_s:.3f}",
                "x-seed-value": str(body.get("seed", "")),
                "x-request-id": job.id,
            },
        )

    async def upload(self, request: Request) -> Response:
        self.stats.uploads += 1
        _, denied = self._gate(request)
        if denied:
            return denied
        body, bad = await self._json_body(request)
        if bad:
            return bad
        data_urls = body.get("data_urls") if isinstance(body, dict) else None
        if not isinstance(data_urls, list) or not data_urls:
            return self._error(400, "data_urls must be a non-empty list of data: URLs")
        base = str(request.base_url).rstrip("/")
        urls = []
        for item in data_urls:
            if not isinstance(item, str) or not item.startswith("data:") or ";base64," not in item:
                return self._error(400, "each data_url must be a base64 data: URL")
            header, encoded = item.split(",", 1)
            mime = header[5:].split(";")[0]
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                return self._error(400, "a data_url is not valid base64")
            ext = next((e for e, t in _ASSET_TYPES.items() if t == mime), "bin")
            name = f"assets/{uuid.uuid4().hex}.{ext}"
            self._store_file(name, data, mime)
            self._keep_asset(name, data)
            urls.append(f"{base}/files/{name}")
        return JSONResponse({self.config.upload_key: urls, "message": "Files uploaded successfully"})

    async def credits(self, request: Request) -> Response:
        _, denied = self._gate(request)
        if denied:
            return denied
        return JSONResponse({"credits": round(self.balance, 6), "free-credits": 0.0})

    async def file(self, request: Request) -> Response:
        self.stats.downloads += 1
        name = request.path_params["name"]
        item = None if name.startswith("generations/") else self.files.get(name)
        if name.startswith("generations/"):  # for output_retention_s, past the status retention
            job = self.jobs.get(name.split("/")[-1].rsplit(".", 1)[0])
            if job is not None and self._file_name(job) == name and self._output_lives(job):
                item = self.files.get(self._finish(job))  # rendered again after a restart
        if item is None and name.startswith("assets/"):  # uploaded before a restart
            item = self._kept_asset(name)
        if item is None:
            return self._error(404, "File not found")
        return Response(item[0], 200, media_type=item[1])

    # --- the control plane's request history (protocol 6b) ----------------------------------
    def _visible(self, job: _Job) -> bool:
        """A request shows in the history `history_lag_s` after it was made."""
        return self.clock() - job.created >= self.config.history_lag_s

    def _output_lives(self, job: _Job) -> bool:
        """A COMPLETED job's file downloads for `output_retention_s` after it was made."""
        return (
            self.clock() - job.created <= self.config.output_retention_s and self._state(job) == "COMPLETED"
        )

    def _row(self, request: Request, job: _Job) -> dict[str, Any]:
        """A history row, with the fields the official SDK documents."""
        state = self._state(job)
        status = {"COMPLETED": "COMPLETED", "FAILED": "FAILED"}.get(state, "PENDING")
        done = job.created + job.queue_s + job.latency_s
        base = str(request.base_url).rstrip("/")
        return {
            "request_id": job.id,
            "model_name": job.slug,
            "model_status": status,
            "credits_deduction": job.cost if status == "COMPLETED" else 0,
            "request_body": job.params,
            "generation_url": f"{base}/files/{self._file_name(job)}" if status == "COMPLETED" else None,
            "latency_ms": round((job.queue_s + job.latency_s) * 1000) if status != "PENDING" else None,
            "user_email": dict(self.config.emails).get(job.key),
            "created_at": _iso(job.created),
            "updated_at": _iso(done if status != "PENDING" else job.created),
            "error": job.error if status == "FAILED" else None,
        }

    def _history_keys(self, key: str, user_email: str | None) -> set[str]:
        """Whose rows the caller may read: inside a team (emails), any member by email; else its own."""
        emails = dict(self.config.emails)
        if user_email and key in emails:
            return {k for k, e in emails.items() if e.lower() == user_email.lower()}
        return {key}

    def _history_query(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        q = request.query_params
        out: dict[str, Any] = {}
        for name, low, high, default in (("page", 1, None, 1), ("per_page", 1, D.HISTORY_PER_PAGE_MAX, 20)):
            raw = q.get(name) or str(default)
            value = int(raw) if raw.strip().isdigit() else -1
            if value < low or (high is not None and value > high):
                allowed = f"between {low} and {high}" if high else f"{low} or more"
                return out, self._error(400, f"{name} must be an integer {allowed} (got {raw!r})")
            out[name] = value
        today = datetime.fromtimestamp(self.clock(), timezone.utc).date()
        days: dict[str, date | None] = {}
        for name in ("from_date", "to_date"):
            raw = q.get(name) or ""
            if not raw:
                days[name] = None
                continue
            try:
                days[name] = date.fromisoformat(raw) if _DAY.fullmatch(raw) else None
            except ValueError:
                days[name] = None
            if days[name] is None:
                return out, self._error(400, f"{name} must be a date YYYY-MM-DD (got {raw!r})")
        to_day = days["to_date"] or today
        from_day = days["from_date"] or to_day - timedelta(days=D.HISTORY_WINDOW_DAYS)
        if from_day > to_day:
            return out, self._error(400, f"from_date ({from_day}) must not be after to_date ({to_day})")
        if (to_day - from_day).days > D.HISTORY_MAX_WINDOW_DAYS:
            return out, self._error(
                400,
                f"from_date..to_date may span at most {D.HISTORY_MAX_WINDOW_DAYS} days (got {from_day}..{to_day})",
            )
        out.update(from_date=from_day, to_date=to_day)
        status = q.get("status")
        if status and status.upper() not in ("COMPLETED", "FAILED", "PENDING"):
            return out, self._error(400, f"status must be one of COMPLETED, FAILED, PENDING (got {status!r})")
        out["status"] = status.upper() if status else None
        sort_by, sort_order = q.get("sort_by") or "model_created", q.get("sort_order") or "desc"
        if sort_by not in _HISTORY_SORTS:
            return out, self._error(
                400, f"sort_by must be one of {', '.join(_HISTORY_SORTS)} (got {sort_by!r})"
            )
        if sort_order not in ("asc", "desc"):
            return out, self._error(400, f"sort_order must be asc or desc (got {sort_order!r})")
        out.update(sort_by=sort_by, sort_order=sort_order, model_name=q.get("model_name") or "")
        out["user_email"] = q.get("user_email") or None
        return out, None

    async def history(self, request: Request) -> Response:
        self.stats.history_requests += 1
        key, denied = self._gate(request, counted=self.config.count_polls)
        if denied:
            return denied
        fault = self._poll_fault()
        if fault:
            return fault
        query, bad = self._history_query(request)
        if bad:
            return bad
        keys = self._history_keys(key, query["user_email"])
        rows = []
        for job in list(self.jobs.values()):
            if job.key not in keys or not self._visible(job):
                continue
            day = datetime.fromtimestamp(job.created, timezone.utc).date()
            if not query["from_date"] <= day <= query["to_date"] or query["model_name"] not in job.slug:
                continue
            row = self._row(request, job)
            if query["status"] and row["model_status"] != query["status"]:
                continue
            rows.append(row)
        field = {"model_created": "created_at"}.get(query["sort_by"], query["sort_by"])
        rows.sort(key=lambda r: (r[field], r["created_at"]), reverse=query["sort_order"] == "desc")
        page, per_page = query["page"], query["per_page"]
        chunk = rows[(page - 1) * per_page : page * per_page]
        return JSONResponse({"data": chunk, "page": page, "per_page": per_page, "total": len(rows)})

    async def history_record(self, request: Request) -> Response:
        self.stats.history_requests += 1
        key, denied = self._gate(request, counted=self.config.count_polls)
        if denied:
            return denied
        fault = self._poll_fault()
        if fault:
            return fault
        rid = request.path_params["rid"]
        job = self.jobs.get(rid)
        if job is None or job.key != key or not self._visible(job):  # of any age, but only one's own
            return self._error(404, f"Request {rid} not found")
        return JSONResponse(self._row(request, job))

    async def stats_route(self, request: Request) -> Response:
        return JSONResponse({**self.stats.as_dict(), "balance": self.balance, "jobs": len(self.jobs)})


class EmulatorServer:
    """The emulator on a real loopback HTTP server (uvicorn) in a background thread."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        host: str = D.EMULATOR_HOST,
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ):
        import uvicorn

        self.emulator = Emulator(config, clock)
        # IPPROTO_TCP said out loud: asyncio turns Nagle off only for sockets that name TCP, and with
        # Nagle on every small reply on a kept-alive connection waits ~40 ms for a delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(128)  # connections queue in the kernel until uvicorn accepts them
        self.host, self.port = self._sock.getsockname()[:2]
        logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.emulator.app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_keep_alive=30,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stats(self) -> Stats:
        return self.emulator.stats

    def start(self) -> "EmulatorServer":
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="flux-lab-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()
        self.emulator.close()

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_forever(config: EmulatorConfig, host: str, port: int) -> None:
    """`flux-lab emulator`: serve in the foreground until interrupted."""
    import uvicorn

    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    uvicorn.run(
        Emulator(config).app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )
