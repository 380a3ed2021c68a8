"""The servers behind bench/fault_soak.py: an independent Segmind-protocol server written from
/work/shared/segmind-protocol.md (not Flux Lab's emulator), and a fault-injecting reverse proxy.

Both run on loopback in background threads of the bench process and count what they see, so the
bench can tell from the server's side what Flux Lab did: submits per request body, status and
result polls per request id, fetches of each output image.

What a job does is chosen by tags in its prompt:
    [out:MODE]     what its output URL serves: png (default), html, empty, redirect, gif, truncated,
                   bomb (a 30000x30000 PNG of ~110 KB), huge (a 300 MB body, streamed)
    [result:MODE]  its result body: url (default), none (no output at all), base64 (a raw base64
                   string as `output`), html (an HTML page), datauri (an invalid `data:` URI)
    [fail:key]     the job ends FAILED with an error text that quotes the caller's API key
    [submit:key]   the submit is refused with 400 and an error text that quotes the key
"""

from __future__ import annotations

import asyncio
import base64
import io
import random
import re
import socket
import struct
import threading
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

SLUG = "flux-2-max"
COST = 0.07
HUGE_BYTES = 300 * 2**20
_TAG = re.compile(r"\[(out|result|fail|submit):([a-z0-9-]+)\]")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat().replace("+00:00", "Z")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(seed: int, size: int = 64) -> bytes:
    """A real RGB PNG whose colours follow the seed (every seed gives different bytes)."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(size * 3)) for _ in range(size))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows, 6))
        + _chunk(b"IEND", b"")
    )


def gif_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("P", (64, 64), 3).save(out, "GIF")
    return out.getvalue()


_bomb: bytes | None = None


def bomb_bytes() -> bytes:
    """A complete, valid 1-bit 30000x30000 PNG: ~110 KB on the wire, 900 megapixels decoded."""
    global _bomb
    if _bomb is None:
        side = 30000
        row = b"\x00" * (1 + side // 8)
        z = zlib.compressobj(9)
        block = row * 500
        parts = [z.compress(block) for _ in range(side // 500)]
        parts.append(z.flush())
        ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
        _bomb = (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b"")
        )
    return _bomb


def submit_key(body: dict[str, Any]) -> tuple:
    """What tells two submits of one run apart from two runs (the bench gives each run of a
    scenario its own seed and tolerance): the ledger's prompt, seed and safety_tolerance columns."""
    return (body.get("prompt"), body.get("seed"), body.get("safety_tolerance"))


@dataclass
class Job:
    id: str
    key: str
    payload: dict[str, Any]
    created: float
    ready_at: float
    tags: dict[str, str]

    def state(self, now: float, queue_s: float) -> str:
        if now >= self.ready_at:
            return "FAILED" if self.tags.get("fail") else "COMPLETED"
        return "QUEUED" if now < self.created + queue_s else "PROCESSING"


@dataclass
class Counts:
    submits: Counter = field(default_factory=Counter)  # submit_key -> POSTs received
    submit_posts: int = 0
    submit_replies: int = 0
    status_gets: Counter = field(default_factory=Counter)  # request id -> GETs
    result_gets: Counter = field(default_factory=Counter)
    output_gets: Counter = field(default_factory=Counter)
    downloads_started: int = 0
    history_gets: int = 0


class SoakServer:
    """A Segmind-protocol server on 127.0.0.1 in a background thread."""

    def __init__(
        self,
        *,
        latency_s: float = 2.0,
        spread_s: float = 0.5,
        queue_s: float = 0.3,
        submit_delay_s: float = 0.0,
        output_delay_s: float = 0.0,
        seed: int = 7,
        submit_script: tuple[str, ...] = (),
        retention_s: float | None = None,
    ):
        """`submit_script`: what successive submits meet, in order ("ok"; "lost": the job is made and
        the connection dropped before the reply; "504": answered 504 with no job; "500-after": the
        job is made, then 500 answered). `retention_s`: status and result 404 this long after a
        job was made (Segmind's one hour); the request history keeps it."""
        self.submit_script = list(submit_script)
        self.retention_s = retention_s
        self.latency_s, self.spread_s, self.queue_s = latency_s, spread_s, queue_s
        self.submit_delay_s, self.output_delay_s = submit_delay_s, output_delay_s
        self.rng = random.Random(seed)
        self.jobs: dict[str, Job] = {}
        self.counts = Counts()
        self.lock = threading.Lock()
        app = Starlette(
            routes=[
                Route(f"/v2/{SLUG}", self.submit, methods=["POST"]),
                Route("/v2/requests/{rid}/status", self.status),
                Route("/v2/requests/{rid}", self.result),
                Route("/v1/requests/{rid}", self.result),
                Route("/v1/get-user-credits", self.credits),
                Route("/files/{rid}.{ext}", self.output),
                Route("/inference-request/request-history", self.history),
                Route("/inference-request/request-history/{rid}", self.history_one),
            ]
        )
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off", timeout_keep_alive=30)
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="soak-server", daemon=True
        )

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "SoakServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> "SoakServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- what the bench reads ----------------------------------------------------------------
    def billed(self) -> list[Job]:
        """Jobs that completed (Segmind bills those)."""
        now = time.time()
        with self.lock:
            return [j for j in self.jobs.values() if j.state(now, self.queue_s) == "COMPLETED"]

    def all_ready(self) -> bool:
        now = time.time()
        with self.lock:
            return all(now >= j.ready_at for j in self.jobs.values())

    def wait_all_ready(self, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while not self.all_ready() and time.monotonic() < deadline:
            time.sleep(0.1)

    # --- the protocol ------------------------------------------------------------------------
    def _job(self, request: Request, *, any_age: bool = False) -> Job | None:
        with self.lock:
            job = self.jobs.get(request.path_params["rid"])
        if (
            job
            and not any_age
            and self.retention_s is not None
            and time.time() - job.created > self.retention_s
        ):
            return None  # past the status retention: only the request history still has it
        return job

    @staticmethod
    def _missing(rid: str) -> JSONResponse:
        return JSONResponse({"error": f"Request {rid} not found"}, status_code=404)

    async def submit(self, request: Request) -> Response:
        key = request.headers.get("x-api-key")
        if not key:
            return JSONResponse({"error": "Missing Authorization or x-api-key in header"}, status_code=401)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "Invalid JSON body"}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return JSONResponse({"error": "Prompt is Mandatory and must be string"}, status_code=400)
        tags = dict(_TAG.findall(body["prompt"]))
        with self.lock:
            self.counts.submit_posts += 1
            self.counts.submits[submit_key(body)] += 1
            scripted = self.submit_script.pop(0) if self.submit_script else "ok"
        if scripted == "504":
            return JSONResponse({"error": "Gateway timeout"}, status_code=504)
        if tags.get("submit") == "key":
            return JSONResponse(
                {"error": f"Request rejected: quota exhausted for api key {key}"}, status_code=400
            )
        now = time.time()
        latency = max(0.2, self.latency_s + self.rng.uniform(-self.spread_s, self.spread_s))
        job = Job(str(uuid.uuid4()), key, body, now, now + self.queue_s + latency, tags)
        with self.lock:
            self.jobs[job.id] = job
        if self.submit_delay_s:
            await asyncio.sleep(self.submit_delay_s)
        if scripted == "500-after":
            return JSONResponse({"error": "Internal server error"}, status_code=500)
        if scripted == "lost":  # the job exists; the reply breaks off before its body

            async def broken():
                yield b'{"request_id": '
                raise ConnectionResetError("reply lost")

            return StreamingResponse(
                broken(), media_type="application/json", headers={"content-length": "400"}
            )
        base = str(request.base_url).rstrip("/")
        with self.lock:
            self.counts.submit_replies += 1
        return JSONResponse(
            {
                "request_id": job.id,
                "status": "QUEUED",
                "poll_url": f"{base}/v1/requests/{job.id}",
                "status_url": f"{base}/v2/requests/{job.id}/status",
                "response_url": f"{base}/v2/requests/{job.id}",
            }
        )

    def _metrics(self, job: Job) -> dict[str, Any]:
        inference = round(job.ready_at - job.created - self.queue_s, 3)
        return {
            "inference_time": inference,
            "queue_time": self.queue_s,
            "total_time": inference + self.queue_s,
        }

    def _failed(self, job: Job) -> JSONResponse:
        return JSONResponse(
            {
                "status": "FAILED",
                "request_id": job.id,
                "error": f"Generation failed: upstream provider rejected the call for api key {job.key}",
                "metrics": {"inference_time": 0.008},
            },
            status_code=422,
        )

    async def status(self, request: Request) -> Response:
        rid = request.path_params["rid"]
        job = self._job(request)
        if job is None:
            return self._missing(rid)
        with self.lock:
            self.counts.status_gets[rid] += 1
        state = job.state(time.time(), self.queue_s)
        if state == "FAILED":
            return self._failed(job)
        body: dict[str, Any] = {"status": state, "request_id": rid, "metrics": {}}
        if state == "COMPLETED":
            body["metrics"] = self._metrics(job)
        return JSONResponse(body)

    async def result(self, request: Request) -> Response:
        rid = request.path_params["rid"]
        job = self._job(request)
        if job is None:
            return self._missing(rid)
        with self.lock:
            self.counts.result_gets[rid] += 1
        state = job.state(time.time(), self.queue_s)
        if state == "FAILED":
            return self._failed(job)
        if state != "COMPLETED":
            return JSONResponse({"status": state, "request_id": rid, "metrics": {}})
        mode = job.tags.get("result", "url")
        if mode == "html":
            return HTMLResponse(
                "<!doctype html><html><body><h1>Service temporarily unavailable</h1></body></html>"
            )
        body: dict[str, Any] = {"status": "COMPLETED", "request_id": rid, "error": None}
        body["metrics"] = {**self._metrics(job), "cost": COST}
        url = f"{str(request.base_url).rstrip('/')}/files/{rid}.{job.payload.get('output_format', 'png')}"
        if mode == "url":
            body["output"] = url
            body["images"] = [{"url": url, "content_type": "image/png", "file_name": url.rsplit("/", 1)[1]}]
            body["seed"] = str(job.payload.get("seed"))
        elif mode == "base64":
            body["output"] = base64.b64encode(png_bytes(int(job.payload.get("seed") or 0))).decode()
        elif mode == "datauri":
            body["output"] = "data:image/png;base64,%%%this is not base64%%%"
        return JSONResponse(body)

    async def output(self, request: Request) -> Response:
        rid = request.path_params["rid"]
        job = self._job(request, any_age=True)  # output files live seven days
        if job is None:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        with self.lock:
            self.counts.output_gets[rid] += 1
            self.counts.downloads_started += 1
        mode = "png" if request.query_params.get("final") else job.tags.get("out", "png")
        seed = int(job.payload.get("seed") or 0)
        if mode == "png":
            data = png_bytes(seed)
            if self.output_delay_s:

                async def slow():
                    await asyncio.sleep(self.output_delay_s)
                    yield data

                return StreamingResponse(
                    slow(), media_type="image/png", headers={"content-length": str(len(data))}
                )
            return Response(data, media_type="image/png")
        if mode == "html":
            return HTMLResponse("<!doctype html><html><body>Access denied</body></html>")
        if mode == "empty":
            return Response(b"", media_type="image/png")
        if mode == "redirect":
            return RedirectResponse(
                f"{str(request.base_url).rstrip('/')}/files/{rid}.png?final=1", status_code=302
            )
        if mode == "gif":
            return Response(gif_bytes(), media_type="image/gif")
        if mode == "truncated":
            data = png_bytes(seed, size=256)
            return Response(data[: len(data) * 2 // 5], media_type="image/png")
        if mode == "bomb":
            return Response(bomb_bytes(), media_type="image/png")
        if mode == "huge":

            async def body():
                yield b"\x89PNG\r\n\x1a\n" + b"\x00" * (2**20 - 8)
                block = b"\x00" * 2**20
                for _ in range(HUGE_BYTES // 2**20 - 1):
                    yield block

            return StreamingResponse(
                body(), media_type="image/png", headers={"content-length": str(HUGE_BYTES)}
            )
        return Response(b"unknown mode", status_code=500)

    async def credits(self, request: Request) -> Response:
        return JSONResponse({"credits": 100.0, "free-credits": 0.0})

    def _history_row(self, job: Job) -> dict[str, Any]:
        state = job.state(time.time(), self.queue_s)
        return {
            "request_id": job.id,
            "model_name": SLUG,
            "model_status": state if state in ("COMPLETED", "FAILED") else "PENDING",
            "credits_deduction": COST if state == "COMPLETED" else 0.0,
            "request_body": job.payload,
            "generation_url": f"{self.url}/files/{job.id}.{job.payload.get('output_format', 'png')}",
            "created_at": _iso(job.created),
            "updated_at": _iso(min(time.time(), job.ready_at)),
        }

    async def history(self, request: Request) -> Response:
        key = request.headers.get("x-api-key")
        with self.lock:
            self.counts.history_gets += 1
            jobs = sorted(
                (j for j in self.jobs.values() if j.key == key), key=lambda j: j.created, reverse=True
            )
        try:
            page = max(1, int(request.query_params.get("page", 1)))
            per_page = min(100, max(1, int(request.query_params.get("per_page", 20))))
        except ValueError:
            return JSONResponse({"error": "page and per_page must be whole numbers"}, status_code=400)
        rows = [self._history_row(j) for j in jobs[(page - 1) * per_page : page * per_page]]
        return JSONResponse({"data": rows, "page": page, "per_page": per_page, "total": len(jobs)})

    async def history_one(self, request: Request) -> Response:
        job = self._job(request, any_age=True)
        if job is None or job.key != request.headers.get("x-api-key"):
            return self._missing(request.path_params["rid"])
        with self.lock:
            self.counts.history_gets += 1
        return JSONResponse(self._history_row(job))


class FaultProxy:
    """A reverse proxy on 127.0.0.1 that fails a share of the polls (status and result GETs) with
    500, 429 (+ x-rate-limit-reset-at-utc) or a dropped connection; everything else is passed
    through unchanged, one request per connection, the Host header kept (so the absolute URLs the
    server hands out point back at the proxy)."""

    FAULTS = ("500", "429", "drop")

    def __init__(self, upstream_port: int, rate: float = 0.4, seed: int = 11, reset_s: float = 1.0):
        self.upstream_port, self.rate, self.reset_s = upstream_port, rate, reset_s
        self.rng = random.Random(seed)
        self.injected: Counter = Counter()
        self.polls = 0
        self.loop = asyncio.new_event_loop()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._run, name="soak-proxy", daemon=True)
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self._server = await asyncio.start_server(self._handle, sock=self._sock, limit=2**20)
            self._ready.set()
            await self._server.serve_forever()

        try:
            self.loop.run_until_complete(main())
        except asyncio.CancelledError:
            pass

    def start(self) -> "FaultProxy":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self.loop.call_soon_threadsafe(self._server.close)
            for task in asyncio.all_tasks(self.loop):
                self.loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout=10)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _fault(self, target: str, method: str) -> str | None:
        is_poll = method == "GET" and target.startswith(("/v2/requests/", "/v1/requests/"))
        if not is_poll:
            return None
        self.polls += 1
        if self.rng.random() >= self.rate:
            return None
        fault = self.rng.choice(self.FAULTS)
        self.injected[fault] += 1
        return fault

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_writer = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = [line for line in lines[1:] if line]
            length = 0
            for line in headers:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            fault = self._fault(target, method)
            if fault == "drop":
                writer.transport.abort()
                return
            if fault in ("500", "429"):
                if fault == "500":
                    status, text, extra = (
                        "500 Internal Server Error",
                        b'{"error": "Internal server error"}',
                        "",
                    )
                else:
                    reset = _iso(time.time() + self.reset_s)
                    status, text = (
                        "429 Too Many Requests",
                        b'{"error": "rate_limit_exceeded: try again later"}',
                    )
                    extra = f"x-rate-limit-reset-at-utc: {reset}\r\n"
                writer.write(
                    (
                        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(text)}\r\n"
                        f"{extra}connection: close\r\n\r\n"
                    ).encode()
                    + text
                )
                await writer.drain()
                return
            kept = [
                h for h in headers if h.partition(":")[0].strip().lower() not in ("connection", "keep-alive")
            ]
            request = "\r\n".join([lines[0], *kept, "connection: close", "", ""]).encode() + body
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            upstream_writer.write(request)
            await upstream_writer.drain()
            while True:
                data = await upstream_reader.read(2**16)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            if upstream_writer is not None:
                upstream_writer.close()
            writer.close()
