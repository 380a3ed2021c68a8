"""How the app is served: Streamlit's own server, with its frontend bundle sent compressed and the
ledger's thumbnails served as files a browser keeps.

Streamlit sends its ~3 MB of JavaScript and CSS uncompressed on purpose: compressing at the origin on
every request costs CPU, and it expects a proxy or CDN in front to do it. Flux Lab is usually run
without one (``make run``, the Docker image on a team box), so a first visit would pay the full
3 MB. ``CompressedAssets`` gzips each of those files once, the first time it is asked for, keeps the
result in memory and sends that from then on: a first visit transfers about half as much and the
CPU cost is paid once per file per server start, not per request.

Only Streamlit's content-hashed bundle under ``/static/`` is touched (those files never change while
the server runs); pages, the WebSocket, media and downloads pass through untouched, as do range
and conditional requests.

Streamlit binds its listening socket itself (``socket.socket(family)``, protocol 0), and asyncio only
turns Nagle's algorithm off for sockets whose protocol says TCP, so every small response on a kept-alive
connection waited ~40 ms for the browser's delayed ACK (headers and body go out as two writes).
``lifespan`` turns Nagle off on the listening socket, which accepted connections inherit: an image on
a reused connection now takes about 1 ms instead of 44. It also tells Streamlit that app.py routes
every page (``router_from_the_start``), so the first visit after a restart is one script run, not
three, and imports pandas and pyarrow and compiles app.py and the pages as the server starts
(``warm_imports``) rather than on that visit's time; the compiled pages are kept for the server's
life, not compiled again whenever its last tab closes (``scripts_compiled_once``).

Thumbnails are named by the hash of their image, so ``/_flux/thumbs/<hash>.jpg`` never changes: the
History gallery sends 60 short URLs rather than 60 pictures, and a browser fetches each picture once.
Full images are named by their hash as well, so ``/_flux/images/<hash>.png|jpg`` is served the same
way, for Compare's lightbox and A/B (same-origin, so the A/B difference view can read their pixels).

With sign-in configured (flux_ui/signin.py), both answer only a request that carries a valid signed
identity cookie of a person the [team] allowlist lets in: anything else gets 401 with an empty body and
``no-store``, so nothing keeps the refusal; a picture served is ``private``, kept by that browser only.
``SignedInMedia`` holds Streamlit's own ``/media/`` endpoint to the same rule.

``/_flux/changes`` is the ledger's change feed (flux_core/ledger/changes.py) on a WebSocket a tab
keeps open, held to the same sign-in rule: the live parts of pages (flux_ui/live.py) wait on it
instead of a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import re
import signal
import socket
import threading
from pathlib import Path
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from flux_core import defaults as D
from flux_core.ledger import changes
from flux_ui import signin

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

COMPRESSIBLE = (".js", ".mjs", ".css", ".json", ".map", ".svg", ".txt", ".html", ".wasm")


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return b""


class CompressedAssets:
    """ASGI middleware: gzip Streamlit's static frontend files once each and serve them from memory."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        level: int = D.ASSET_GZIP_LEVEL,
        minimum_size: int = D.ASSET_GZIP_MINIMUM_BYTES,
        max_cache_bytes: int = D.ASSET_GZIP_CACHE_BYTES,
    ) -> None:
        self.app = app
        self.level = level
        self.minimum_size = minimum_size
        self.max_cache_bytes = max_cache_bytes
        self._cache: dict[str, tuple[list[tuple[bytes, bytes]], bytes]] = {}
        self._cached_bytes = 0

    def wanted(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        return (
            scope["type"] == "http"
            and scope.get("method") == "GET"
            and "/static/" in path
            and path.lower().endswith(COMPRESSIBLE)
            and b"gzip" in _header(scope, b"accept-encoding").lower()
            and not _header(scope, b"range")
            and not _header(scope, b"if-none-match")
            and not _header(scope, b"if-modified-since")
        )

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if not self.wanted(scope):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        cached = self._cache.get(path)
        if cached is not None:
            headers, body = cached
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return

        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._respond(path, start, b"".join(chunks), send)

        await self.app(scope, receive, capture)

    async def _respond(
        self, path: str, start: Message | None, body: bytes, send: Callable[[Message], Awaitable[None]]
    ) -> None:
        assert start is not None, "a response body came before its start"
        headers = [(k.lower(), v) for k, v in start.get("headers", [])]
        names = {k for k, _ in headers}
        if start["status"] != 200 or b"content-encoding" in names or len(body) < self.minimum_size:
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        packed = await asyncio.to_thread(gzip.compress, body, self.level, mtime=0)
        headers = [(k, v) for k, v in headers if k not in (b"content-length", b"etag", b"vary")] + [
            (b"content-encoding", b"gzip"),
            (b"content-length", str(len(packed)).encode()),
            (b"vary", b"Accept-Encoding"),
        ]
        immutable = any(k == b"cache-control" and b"immutable" in v for k, v in headers)
        if immutable and path not in self._cache and self._cached_bytes + len(packed) <= self.max_cache_bytes:
            self._cache[path] = (headers, packed)
            self._cached_bytes += len(packed)
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": packed})


THUMBS_URL = "/_flux/thumbs"
_THUMB_NAME = re.compile(r"[0-9a-f]{64}\.jpg")


def thumbnail_url(thumb_path: str) -> str:
    """Where a browser fetches a stored thumbnail (``thumbs/ab/<hash>.jpg`` in the data directory).
    Relative, so it also resolves behind a proxy that serves the app under a path."""
    return f".{THUMBS_URL}/{thumb_path.rsplit('/', 1)[-1]}"


IMAGES_URL = "/_flux/images"
_IMAGE_NAME = re.compile(r"[0-9a-f]{64}\.(png|jpg)")
_IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg"}


def image_url(image_path: str) -> str:
    """Where a browser fetches a stored image (``images/ab/<hash>.png`` in the data directory);
    relative, like ``thumbnail_url``."""
    return f".{IMAGES_URL}/{image_path.rsplit('/', 1)[-1]}"


CHANGES_URL = "/_flux/changes"


def refused(request: HTTPConnection) -> Response | None:
    """A 401 for a request that sign-in does not let through (None: serve it). Without sign-in
    configured every request goes through, as before."""
    if not signin.configured() or signin.cookie_actor(request.cookies) is not None:
        return None
    return Response(status_code=401, headers={"Cache-Control": D.REFUSED_CACHE_CONTROL})


class SignedInMedia:
    """ASGI middleware: with sign-in, Streamlit's own media endpoint (``/media/<id>``: what st.image,
    st.audio and st.download_button hand the browser) answers only a request that the app's own image
    routes would answer (``refused``). Streamlit serves a live session's media files to anyone who
    has the URL, cookie or not; a URL is hard to guess but is easily passed on (a copied link, a log)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http" and "/media/" in scope.get("path", ""):
            refusal = refused(HTTPConnection(scope))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _cache_control(immutable: str) -> str:
    return D.SIGNED_IN_MEDIA_CACHE_CONTROL if signin.configured() else immutable


def routes(data_dir: Path) -> list[BaseRoute]:
    """The app's own routes: stored thumbnails and images, from ``data_dir/thumbs`` and
    ``data_dir/images`` (resolved once, here)."""
    thumbs = data_dir / "thumbs"
    stored = data_dir / "images"
    ledger = data_dir / D.DB_NAME

    async def thumbnail(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        name = request.path_params["name"]
        if not _THUMB_NAME.fullmatch(name):  # a hash and .jpg, nothing else: no way out of thumbs/
            return PlainTextResponse("No such thumbnail", status_code=404)
        path = thumbs / name[:2] / name
        if not path.is_file():
            return PlainTextResponse("No such thumbnail", status_code=404)
        return FileResponse(
            path,
            media_type="image/jpeg",
            headers={"Cache-Control": _cache_control(D.THUMBNAIL_CACHE_CONTROL)},
        )

    async def image(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        name = request.path_params["name"]
        found = _IMAGE_NAME.fullmatch(name)  # a hash and .png/.jpg, nothing else: no way out of images/
        path = stored / name[:2] / name
        if found is None or not path.is_file():
            return PlainTextResponse("No such image", status_code=404)
        return FileResponse(
            path,
            media_type=_IMAGE_TYPES[found.group(1)],
            headers={"Cache-Control": _cache_control(D.IMAGE_CACHE_CONTROL)},
        )

    async def changed(socket: WebSocket) -> None:
        """The ledger's change feed for one tab, on one WebSocket it keeps open. (Not a long poll: a
        browser opens at most six HTTP connections to a server, and a long poll held one per tab, so
        with six tabs open a seventh did not load, nor did any thumbnail, until one was answered.)

        The tab sends a question (JSON) whenever what it shows changes: ``{"n": its number, "since":
        the version it drew, "topics": [[topic, digest as drawn], ...], "any": bool}``. It is answered
        with ``{"n", "version", "digests"}`` (each topic's digest now) as soon as one of those digests
        moves, or with ``any`` (or no topic) as soon as the version is past ``since``, or after
        LIVE_WAIT_S with nothing new; a new question replaces the one waiting. A question that does
        not parse is answered ``{"n", "problem"}`` and the socket closed (1003)."""
        if refused(socket) is not None:
            await socket.close(code=1008)  # before the handshake: the browser sees it refused (403)
            return
        await socket.accept()
        feed = changes.feed(ledger)
        waiting: asyncio.Task[None] | None = None

        async def answer(n: int, since: int, wanted: dict[str, str], anything: bool) -> None:
            version, now = await feed.next_for(since, wanted, D.LIVE_WAIT_S, anything)
            await socket.send_json({"n": n, "version": version, "digests": now})
            if changes.closing():  # the server is going: the tab connects again once it is back
                await socket.close(code=1012)

        try:
            while True:
                text = await socket.receive_text()
                if waiting is not None:
                    waiting.cancel()
                try:
                    n, since, wanted, anything = _question(text)
                except ValueError as exc:
                    await socket.send_json({"n": None, "problem": str(exc)})
                    await socket.close(code=1003)
                    return
                waiting = asyncio.create_task(answer(n, since, wanted, anything))
        except (WebSocketDisconnect, RuntimeError):  # the tab went (closed, reloaded) or we closed it
            pass
        finally:
            if waiting is not None:
                waiting.cancel()

    return [
        Route(f"{THUMBS_URL}/{{name}}", thumbnail, methods=["GET", "HEAD"]),
        Route(f"{IMAGES_URL}/{{name}}", image, methods=["GET", "HEAD"]),
        WebSocketRoute(CHANGES_URL, changed),
    ]


def _question(text: str) -> tuple[int, int, dict[str, str], bool]:
    """A tab's question on the change feed: (its number, since, {topic: digest drawn}, any)."""
    try:
        asked = json.loads(text)
    except ValueError:
        asked = None
    if not isinstance(asked, dict):
        raise ValueError("a question is a JSON object: n, since, topics, any")
    n, since, topics = asked.get("n"), asked.get("since"), asked.get("topics", [])
    if not isinstance(n, int) or isinstance(n, bool):
        raise ValueError("n must be a whole number: the question's own number")
    if not isinstance(since, int) or isinstance(since, bool) or since < 0:
        raise ValueError("since must be a whole number: the version the page last drew")
    if (
        not isinstance(topics, list)
        or len(topics) > D.LIVE_TOPICS_MAX
        or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
            for pair in topics
        )
    ):
        raise ValueError(
            f"topics: give each topic its digest as [topic, digest], at most {D.LIVE_TOPICS_MAX} of them"
        )
    return n, since, dict(topics), asked.get("any") is True


def no_delay_on_listening_sockets(fds: list[int] | None = None) -> int:
    """Set TCP_NODELAY on this process's listening TCP sockets (connections accepted from them
    inherit it). Returns how many were set."""
    if fds is None:
        try:
            fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
        except OSError:  # no /proc (not Linux): leave things as they are
            return 0
    done = 0
    for fd in fds:
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:  # not a socket, or already closed
            continue
        with sock:
            try:
                if (
                    sock.family in (socket.AF_INET, socket.AF_INET6)
                    and sock.type == socket.SOCK_STREAM
                    and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                ):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    done += 1
            except OSError:
                continue
    return done


def router_from_the_start() -> None:
    """Every session runs app.py (the router) from the server's first visit on.

    Streamlit decides once per server whether an app uses its legacy ``pages/`` directory (a
    ``pages`` folder beside the main script) and keeps thinking so until some session's script calls
    ``st.navigation`` (streamlit/commands/navigation.py then sets
    ``PagesManager.uses_pages_directory = False``). Flux Lab's pages live in ``pages/`` but are
    routed by app.py's ``st.navigation``, so until then a visit to ``/compare`` or ``/history`` ran
    that page's file directly, which sent the visitor back through app.py (``?goto=``) to be routed:
    three script runs and three sessions' worth of messages for the first visit after a restart
    (88 messages for Compare instead of 61). Setting the flag the way ``st.navigation`` does, as the
    server starts, makes that first visit one run like every other."""
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False


def scripts_compiled_once() -> bool:
    """Compile app.py and every page once per server, and keep them compiled.

    Streamlit keeps each script's compiled code in one cache for the server, but empties it whenever
    the last tab goes (streamlit/runtime/websocket_session_manager.py: "avoid stale cached scripts
    when all file watchers and sessions are disconnected"), so a person alone reloading a page, or
    going to it from another address, had app.py and the page compiled again: 20 ms of the server's
    CPU a visit for a page of ~1,000 lines, before its first message. With no source-file watcher
    (.streamlit/config.toml: ``fileWatcherType = "none"``) the code cannot change while the server
    runs, so nothing is stale: the cache is kept, filled here as the server starts. With a watcher
    (``--server.fileWatcherType auto``, for editing) Streamlit's own rule stands. False then, or
    where the runtime is not running."""
    from streamlit import config
    from streamlit.runtime import Runtime

    if config.get_option("server.fileWatcherType") != "none" or not Runtime.exists():
        return False
    runtime = Runtime.instance()
    cache = runtime._script_cache
    cache.clear = lambda: None  # type: ignore[method-assign]
    main = Path(runtime._main_script_path).resolve()
    for script in (main, *sorted((main.parent / "pages").glob("*.py"))):
        try:
            cache.get_bytecode(str(script))
        except (OSError, SyntaxError):  # the visit that runs it shows what is wrong, as before
            continue
    return True


WARM_IMPORTS = ("pandas", "pyarrow")


def warm_imports(names: tuple[str, ...] = WARM_IMPORTS) -> None:
    """Import what the first page view would otherwise import on the visitor's time: pandas (History
    and Compare import it, and Streamlit imports it to look for data frames in any custom element's
    data, which every page has) and pyarrow (st.table's data). About 0.6 s of CPU, once per server.

    Then app.py and the pages are compiled (``scripts_compiled_once``), and everything the server
    has made so far (modules, classes, Streamlit's own state) is frozen out of the garbage
    collector's reach (``gc.freeze``): it lives as long as the server, and a full collection that
    walked it cost ~95 ms of CPU under the GIL; now it walks only what came since."""
    import gc
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:  # not installed: the page that needs it says so, as before
            continue
    scripts_compiled_once()
    gc.collect()
    gc.freeze()


def answer_long_polls_on_shutdown(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> bool:
    """Chain the server's own handler of SIGTERM and SIGINT (uvicorn's, installed by the time the
    app starts) with one that answers every waiting long poll first: uvicorn lets open requests
    finish before it exits, and a page's long poll waits up to LIVE_WAIT_S, so `docker stop` or a
    Ctrl+C waited 25 s for it. False where handlers cannot be set (not the main thread)."""
    for number in signals:
        try:
            before = signal.getsignal(number)

            def handler(signum: int, frame: Any, before: Any = before) -> None:
                changes.close_all()
                if callable(before):
                    before(signum, frame)
                elif before == signal.SIG_DFL:
                    signal.default_int_handler(signum, frame) if signum == signal.SIGINT else os._exit(
                        128 + signum
                    )

            signal.signal(number, handler)
        except ValueError:  # not the main thread of the main interpreter
            return False
    return True


@contextlib.asynccontextmanager
async def lifespan(app: object) -> AsyncIterator[None]:
    """Runs as the server starts, once its listening socket exists. The imports a page view needs
    are made in the background as the server starts serving, while a browser that arrives at once is
    still loading Streamlit's frontend (a second or so of its own work before its first message)."""
    no_delay_on_listening_sockets()
    router_from_the_start()
    answer_long_polls_on_shutdown()
    threading.Thread(target=warm_imports, name="flux-lab-warm-imports", daemon=True).start()
    yield
