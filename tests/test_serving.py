"""How the app is served: Streamlit's frontend bundle gzip-compressed (once per file, all else
untouched), thumbnails as files a browser keeps, and no Nagle delay on small responses."""

from __future__ import annotations

import asyncio
import gc
import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from flux_ui import serving
from flux_ui.serving import CompressedAssets

BUNDLE = ("export function f(){return 'flux lab';}\n" * 4000).encode()
IMMUTABLE = {"Cache-Control": "public, immutable, max-age=31536000", "ETag": '"abc"'}


def served(calls: list[str]) -> Starlette:
    async def asset(request):
        calls.append(request.url.path)
        name = request.path_params["name"]
        if name == "missing.js":
            return Response("not found", status_code=404)
        if name == "tiny.js":
            return Response("x=1", media_type="text/javascript", headers=IMMUTABLE)
        if name == "font.woff2":
            return Response(BUNDLE, media_type="font/woff2", headers=IMMUTABLE)
        if name == "index.html":
            return Response(BUNDLE, media_type="text/html", headers={"Cache-Control": "no-cache"})
        return Response(BUNDLE, media_type="text/javascript", headers=IMMUTABLE)

    async def page(request):
        calls.append(request.url.path)
        return Response(BUNDLE, media_type="text/html")

    return Starlette(routes=[Route("/static/js/{name}", asset), Route("/history", page)])


@pytest.fixture
def app():
    calls: list[str] = []
    middleware = CompressedAssets(served(calls))
    return middleware, calls


def get(app, path: str, **headers) -> httpx.Response:
    headers.setdefault("accept-encoding", "gzip, deflate, br")

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(fetch())


def test_the_bundle_is_gzipped_once_and_then_served_from_memory(app):
    middleware, calls = app
    first = get(middleware, "/static/js/index.abc.js")
    second = get(middleware, "/static/js/index.abc.js")
    for response in (first, second):
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["vary"] == "Accept-Encoding"
        assert "etag" not in response.headers  # the identity file's ETag does not name this body
        assert response.headers["cache-control"].startswith("public, immutable")
        assert response.content == BUNDLE
        assert int(response.headers["content-length"]) == response.num_bytes_downloaded < len(BUNDLE) / 20
    assert calls == ["/static/js/index.abc.js"]  # compressed once; the second came from memory


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/static/js/index.abc.js", {"accept-encoding": "identity"}),
        ("/static/js/index.abc.js", {"range": "bytes=0-99"}),
        ("/static/js/index.abc.js", {"if-none-match": '"abc"'}),
        ("/static/js/font.woff2", {}),  # already compressed
        ("/static/js/tiny.js", {}),  # too small to bother
        ("/static/js/missing.js", {}),
        ("/history", {}),  # pages, media, the WebSocket: never touched
    ],
)
def test_everything_else_passes_through_untouched(app, path, headers):
    middleware, calls = app
    response = get(middleware, path, **headers)
    assert "content-encoding" not in response.headers
    assert response.num_bytes_downloaded == len(response.content)
    assert calls == [path]


def test_files_that_may_change_are_compressed_but_not_kept(app):
    middleware, calls = app
    for _ in range(2):
        response = get(middleware, "/static/js/index.html")
        assert response.headers["content-encoding"] == "gzip" and response.content == BUNDLE
    assert calls == ["/static/js/index.html"] * 2


def test_the_cache_has_a_ceiling(app):
    middleware, calls = app
    middleware.max_cache_bytes = 10
    for _ in range(2):
        assert (get(middleware, "/static/js/index.abc.js")).content == BUNDLE
    assert len(calls) == 2


def thumbnails_app(data_dir) -> Starlette:
    return Starlette(routes=serving.routes(data_dir))


def test_a_thumbnail_is_served_from_the_data_directory_to_be_kept(tmp_path):
    digest = "c0" * 32
    (tmp_path / "thumbs" / "c0").mkdir(parents=True)
    (tmp_path / "thumbs" / "c0" / f"{digest}.jpg").write_bytes(b"\xff\xd8jpeg")
    response = get(thumbnails_app(tmp_path), f"/_flux/thumbs/{digest}.jpg")
    assert response.status_code == 200 and response.content == b"\xff\xd8jpeg"
    assert response.headers["content-type"] == "image/jpeg"
    assert "immutable" in response.headers["cache-control"]


@pytest.mark.parametrize(
    "name",
    ["c0" * 32 + ".png", "../ledger.db", "..%2F..%2Fledger.db", "C0" * 32 + ".jpg", "d1" * 32 + ".jpg"],
)
def test_anything_but_a_stored_thumbnail_is_not_found(tmp_path, name):
    (tmp_path / "ledger.db").write_bytes(b"secret")
    response = get(thumbnails_app(tmp_path), f"/_flux/thumbs/{name}")
    assert response.status_code == 404 and b"secret" not in response.content


def test_listening_sockets_hand_no_delay_to_the_connections_they_accept():
    with socket.socket(socket.AF_INET) as listener:  # as Streamlit binds it: protocol 0
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.socket() as plain:  # not listening: left alone
            assert serving.no_delay_on_listening_sockets([listener.fileno(), plain.fileno(), 987654]) == 1
            assert plain.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        with socket.create_connection(listener.getsockname()):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_streamlit_reads_the_repository_config_as_compressing_its_websocket_and_watching_no_files():
    """What Streamlit itself makes of .streamlit/config.toml (run from the repository, as `make run`
    and the Docker image are): the page's data over a compressed WebSocket, and no source watcher set
    up for each new session (a walk over every imported module's path on each visit)."""
    import subprocess
    import sys
    from pathlib import Path

    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from streamlit import config; config.get_config_options(); "
            "print(config.get_option('server.enableWebsocketCompression'), "
            "config.get_option('server.fileWatcherType'))",
        ],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert shown.stdout.split() == ["True", "none"], shown.stdout + shown.stderr


def test_the_server_routes_through_app_py_from_its_first_visit():
    """A fresh server must not run pages/compare.py on its own (Streamlit's legacy pages/ mode): the
    first visit after a restart would be three script runs (one that sends it back to app.py)."""
    from streamlit.runtime.pages_manager import PagesManager

    before = PagesManager.uses_pages_directory
    PagesManager.uses_pages_directory = True  # what Streamlit concludes from the pages/ folder
    try:
        serving.router_from_the_start()
        assert PagesManager.uses_pages_directory is False
    finally:
        PagesManager.uses_pages_directory = before


def test_warming_the_imports_passes_over_a_module_that_is_not_installed():
    try:
        serving.warm_imports(("json", "no_such_module_for_flux_lab"))
        assert gc.get_freeze_count() > 0  # what the server made as it started is out of the collector's walk
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("watcher", ["none", "auto"])
def test_the_scripts_are_compiled_once_a_server_when_no_file_is_watched(monkeypatch, watcher):
    """Streamlit empties its compiled-script cache whenever the last tab goes, so a person alone
    reloading a page had it compiled again on every visit. Without a source watcher the code cannot
    change while the server runs: app.py and every page are compiled as it starts and kept."""
    import types
    from pathlib import Path

    from streamlit import config
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache

    root = Path(__file__).resolve().parents[1]
    cache = ScriptCache()
    monkeypatch.setattr(
        Runtime,
        "_instance",
        types.SimpleNamespace(_script_cache=cache, _main_script_path=str(root / "app.py")),
    )
    before = config.get_option("server.fileWatcherType")
    config.set_option("server.fileWatcherType", watcher)
    try:
        kept = serving.scripts_compiled_once()
        cache.clear()  # what Streamlit does as the last session disconnects
    finally:
        config.set_option("server.fileWatcherType", before)
    compiled = set(cache._cache)
    if watcher == "none":
        assert kept
        assert compiled == {str(root / "app.py"), *(str(p) for p in (root / "pages").glob("*.py"))}
    else:  # editing with a watcher: Streamlit's own rule, scripts compiled as they run
        assert not kept and compiled == set()
