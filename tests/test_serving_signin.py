"""The app's image routes with sign-in (flux_ui/serving.py, flux_ui/signin.cookie_actor): a thumbnail
or an image goes only to a request with a valid signed Streamlit identity cookie (chunked ones too) of a
person the [team] allowlist lets in; anything else gets 401, an empty body and no-store. Without
sign-in, nothing changes."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from streamlit.runtime.secrets import secrets_singleton
from streamlit.web.server.starlette.starlette_app_utils import create_signed_value

from flux_core import defaults as D
from flux_ui import serving
from tests.test_signin import AUTH, COOKIE_SECRET, ORIGIN, TEAM


@pytest.fixture
def secrets(monkeypatch):
    """Stand in for .streamlit/secrets.toml: `secrets({...})` (Streamlit's secrets store, whose
    parsed contents monkeypatch puts back afterwards)."""

    def use(values: dict) -> None:
        monkeypatch.setattr(secrets_singleton, "_secrets", values)

    return use


def identity_cookie(claims: dict, *, secret: str = COOKIE_SECRET, chunks: int = 1) -> dict[str, str]:
    """A `_streamlit_user` cookie as Streamlit's /oauth2callback sets it (split in `chunks` when asked,
    as Streamlit splits one too long for a browser)."""
    value = json.dumps({"origin": ORIGIN, "is_logged_in": True, "provider": "default", **claims})
    sign = lambda name, text: create_signed_value(secret, name, text).decode()  # noqa: E731
    if chunks == 1:
        return {"_streamlit_user": sign("_streamlit_user", value)}
    size = -(-len(value) // chunks)
    parts = [value[i : i + size] for i in range(0, len(value), size)]
    cookies = {"_streamlit_user": sign("_streamlit_user", f"chunks-{len(parts)}")}
    cookies |= {f"_streamlit_user_{i + 1}": sign(f"_streamlit_user_{i + 1}", p) for i, p in enumerate(parts)}
    return cookies


class Client:
    """Requests to an ASGI app in-process (httpx's ASGITransport: starlette's TestClient warns with
    httpx, and pytest makes warnings errors)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, url: str, cookies: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=ORIGIN, cookies=cookies) as client:
                return await client.request(method, url)

        return asyncio.run(go())

    def get(self, url: str, cookies: dict[str, str] | None = None) -> httpx.Response:
        return self.request("GET", url, cookies)


@pytest.fixture
def stored(tmp_path) -> tuple[Client, list[str]]:
    """The app's image routes on a data directory holding one thumbnail and one image."""
    digest = "ab" + "0" * 62
    for folder, name in (("thumbs", f"{digest}.jpg"), ("images", f"{digest}.png")):
        (tmp_path / folder / "ab").mkdir(parents=True)
        (tmp_path / folder / "ab" / name).write_bytes(b"picture bytes")
    client = Client(Starlette(routes=serving.routes(tmp_path)))
    return client, [f"/_flux/thumbs/{digest}.jpg", f"/_flux/images/{digest}.png"]


def test_without_sign_in_the_pictures_are_served_as_before(stored, secrets):
    secrets({})
    client, urls = stored
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 200 and answer.content == b"picture bytes"
        assert answer.headers["cache-control"].startswith("public")


@pytest.mark.parametrize(
    "cookies",
    [
        {},
        identity_cookie({"email": "ana@example.com"}, secret="another-secret"),
        {"_streamlit_user": "not signed"},
        identity_cookie({"email": "mallory@elsewhere.example"}),
        identity_cookie({"email": "ana@example.com", "email_verified": False}),
        identity_cookie({"email": "ana@example.com", "is_logged_in": False}),
        identity_cookie({"email": "ana@example.com", "origin": "http://evil.example"}),
        {
            k: v
            for k, v in identity_cookie({"email": "ana@example.com"}, chunks=3).items()
            if k != "_streamlit_user_2"
        },
    ],
    ids=[
        "none",
        "other-secret",
        "unsigned",
        "not-listed",
        "unverified",
        "logged-out",
        "other-origin",
        "chunk-lost",
    ],
)
def test_with_sign_in_a_request_without_an_admitted_identity_gets_401_and_nothing(stored, secrets, cookies):
    secrets({"auth": AUTH, "team": TEAM})
    client, urls = stored
    for url in urls:
        for method in ("GET", "HEAD"):
            answer = client.request(method, url, cookies=cookies)
            assert (answer.status_code, answer.content) == (401, b"")
            assert answer.headers["cache-control"] == D.REFUSED_CACHE_CONTROL
            assert "content-type" not in answer.headers and "etag" not in answer.headers


@pytest.mark.parametrize("chunks", [1, 3])
def test_with_sign_in_an_admitted_identity_gets_the_picture_kept_privately(stored, secrets, chunks):
    secrets({"auth": AUTH, "team": TEAM})
    client, urls = stored
    for url in urls:
        answer = client.get(url, cookies=identity_cookie({"email": "Ana@Example.com"}, chunks=chunks))
        assert answer.status_code == 200 and answer.content == b"picture bytes"
        assert answer.headers["cache-control"] == D.SIGNED_IN_MEDIA_CACHE_CONTROL


def test_a_team_that_cannot_be_read_lets_no_picture_out(stored, secrets):
    secrets({"auth": AUTH, "team": {"members": "nobody"}})
    client, urls = stored
    assert client.get(urls[0], cookies=identity_cookie({"email": "ana@example.com"})).status_code == 401


def media_app() -> Client:
    """SignedInMedia in front of a stand-in for Streamlit's media endpoint and another route."""

    async def media(request):
        return Response(b"media bytes", media_type="image/png")

    routes = [Route("/media/{name}", media), Route("/_stcore/health", media)]
    return Client(serving.SignedInMedia(Starlette(routes=routes)))


def test_streamlit_media_goes_only_to_an_admitted_identity(secrets):
    secrets({"auth": AUTH, "team": TEAM})
    client = media_app()
    answer = client.get("/media/abc.png")
    assert (answer.status_code, answer.content, answer.headers["cache-control"]) == (401, b"", "no-store")
    stranger = identity_cookie({"email": "mallory@elsewhere.example"})
    assert client.get("/media/abc.png", cookies=stranger).status_code == 401
    answer = client.get("/media/abc.png", cookies=identity_cookie({"email": "ana@example.com"}))
    assert (answer.status_code, answer.content) == (200, b"media bytes")
    assert client.get("/_stcore/health").status_code == 200  # the rest passes through


def test_without_sign_in_streamlit_media_is_untouched(secrets):
    secrets({})
    assert media_app().get("/media/abc.png").content == b"media bytes"
