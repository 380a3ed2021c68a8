"""Sign-in: who is at the browser, and whether the [team] allowlist lets them in.

Without an [auth] section in .streamlit/secrets.toml, Flux Lab is a personal tool and whoever uses it
is the local user (flux_core.team.local, an admin). With one, Streamlit's own st.login / st.user does
the signing in (an OpenID Connect provider), and the same file's [team] section decides who gets in
and with which role (flux_core.team.Team). Two front doors ask the same question:

- ``gate()``, at the top of every page view, before anything of the workbench is opened or drawn;
- ``cookie_actor()``, for the app's own image routes (flux_ui/serving.py), which a browser fetches
  without a session: it reads the signed identity cookie Streamlit set at sign-in.

Whatever came from the identity token (an e-mail address, a name) is drawn with st.text, never as
Markdown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlparse

import streamlit as st

from flux_core import team as teams
from flux_core.team import Actor, Team

SIGN_OUT_KEY = "signin_sign_out"
PAGES = Path(__file__).resolve().parents[1] / "pages"  # the app's pages: one URL each


def configured() -> bool:
    """Whether sign-in is set up: an [auth] section in .streamlit/secrets.toml (st.login)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def team() -> Team:
    """The [team] allowlist when sign-in is configured; a ValueError naming what is wrong with it (or
    that it is missing). Without sign-in there is no allowlist: an empty Team."""
    if not configured():
        return Team()
    section = st.secrets.get("team")
    if section is not None and not isinstance(section, Mapping):
        raise ValueError("[team] in .streamlit/secrets.toml must be a section: [team] then admins = [...]")
    return Team.parse(section)


def providers() -> list[str | None]:
    """The sign-in providers: one per [auth.<name>] section, as Streamlit reads them (a section with a
    client_id or server_metadata_url), and None for the one configured in [auth] itself."""
    auth = st.secrets.get("auth") or {}
    named: list[str | None] = [
        str(name)
        for name, value in auth.items()
        if isinstance(value, Mapping) and ("client_id" in value or "server_metadata_url" in value)
    ]
    if "client_id" in auth or not named:
        return [None, *named]
    return named


def admitted(user: Mapping, allowlist: Team) -> Actor | None:
    """The Actor for identity claims `user` (what st.user holds, or the identity cookie), or None: not
    signed in, an e-mail address the provider says it has not verified, or one the allowlist does not
    let in. The address is lower-cased; the name is the token's."""
    if not user.get("is_logged_in"):
        return None
    if _unverified(user):
        return None
    email = user.get("email")
    if not isinstance(email, str):
        return None
    name = user.get("name")
    return allowlist.actor(email, name if isinstance(name, str) else None)


def _unverified(user: Mapping) -> bool:
    """Whether the identity token says the provider has not verified the e-mail address."""
    return str(user.get("email_verified")).lower() == "false"


def gate() -> Actor:
    """Who is at the browser, or nothing else on the page: a visitor who is not signed in sees the
    sign-in page, a person the allowlist does not let in sees why and a Sign out button; both end the
    script run here (st.stop). Without sign-in configured: the local user. A ValueError when [team]
    cannot be read (the caller shows it as it shows other bad settings)."""
    if not configured():
        return teams.local()
    allowlist = team()
    user = st.user
    if not user.is_logged_in:
        _alone(_sign_in_page)
    actor = admitted(user.to_dict(), allowlist)
    if actor is None:
        _alone(lambda: _refusal(user.get("email"), _unverified(user)))
    return actor


def _alone(draw: Callable[[], None]) -> NoReturn:
    """Draw one page and end the script run. It is a hidden navigation whose every page (one for each
    URL of the app: /, /compare, /history, ...) draws that page: so Streamlit neither lists the pages/
    files in a sidebar (as it does until a script calls st.navigation) nor runs one of them for a URL
    such as /history, nor says "Page not found" for one. What this session held of the app (its
    workbench, its actor) is dropped first: a person taken off the allowlist, or whose sign-in has
    expired, keeps nothing a page could draw from."""
    for key in ("workbench", "actor"):
        st.session_state.pop(key, None)
    pages = [st.Page(draw, title="Flux Lab", url_path="signin", default=True)]
    pages += [st.Page(draw, title="Flux Lab", url_path=p.stem) for p in sorted(PAGES.glob("*.py"))]
    st.navigation(pages, position="hidden").run()
    st.stop()
    raise AssertionError("st.stop() ends the script run")  # for the type checker: never reached


def _sign_in_page() -> None:
    st.title("Flux Lab")
    st.write(
        "A workbench for Black Forest Labs' FLUX.2 \\[max\\] on Segmind, with a ledger of every run. "
        "Sign in to use it."
    )
    for provider in providers():
        label = "Sign in" if provider is None else f"Sign in with {provider}"
        st.button(
            label,
            key=f"signin_{provider or 'default'}",
            type="primary",
            on_click=st.login,
            args=() if provider is None else (provider,),
        )


def _refusal(email: object, unverified: bool) -> None:
    st.title("Flux Lab")
    st.text(
        f"You are signed in as {email or 'someone without an e-mail address'}, and this Flux Lab does not "
        "let that address in; ask an admin to add it."
    )
    if unverified:
        st.text("(Your sign-in provider says it has not verified that address.)")
    st.button("Sign out", key=SIGN_OUT_KEY, on_click=_sign_out)


def _sign_out() -> None:
    """Forget everything of this session (the workbench, the actor, the page's state: a pages/ file
    that Streamlit runs directly then finds no workbench and goes through the gate), then st.logout."""
    st.session_state.clear()
    st.logout()


def sidebar(actor: Actor) -> None:
    """The sidebar's "Signed in as" line and Sign out button (signed-in people only)."""
    if not actor.signed_in:
        return
    st.text(f"Signed in as {actor.label} · {actor.role.label}")
    # a callback: called inline after `if st.button(...)`, a click on Compose never came back True in
    # the journey (cause not pinned down; Compose's live fragments rerun often)
    st.button("Sign out", key=SIGN_OUT_KEY, on_click=_sign_out)


# --- the identity cookie, for requests without a session (flux_ui/serving.py) ----------------------
#
# Streamlit sets `_streamlit_user` at sign-in: a JSON object of the identity token's claims plus
# "origin" (of [auth] redirect_uri), "is_logged_in" and "provider", signed with itsdangerous
# (URLSafeTimedSerializer, the cookie's name as salt, the [auth] cookie_secret), split into
# `_streamlit_user_1`, `_streamlit_user_2`, ... when too long for one cookie. Its WebSocket handler
# (web/server/starlette/starlette_websocket.py, `_get_signed_cookie_with_chunks`) reads it with three
# functions we call too, none of them underscored but all in Streamlit's internal modules:
# `server_util.get_cookie_secret` (which secret signs: [auth] cookie_secret, else server.cookieSecret),
# `starlette_app_utils.decode_signed_value` (the signature and the cookie's maximum age) and
# `auth_util.get_cookie_with_chunks` (the chunks put back together). Calling them rather than
# re-implementing the format means a change of it in Streamlit changes here too; a rename fails at
# import, loudly, in the tests. The cookie's name comes from the same place (USER_COOKIE_NAME).


def cookie_claims(cookies: Mapping[str, str]) -> dict | None:
    """The claims of a valid signed identity cookie among `cookies`, else None (none, a bad
    signature, an expired one, a missing chunk, or a cookie signed for another origin)."""
    from streamlit.auth_util import get_cookie_with_chunks, get_origin_from_redirect_uri
    from streamlit.web.server.server_util import get_cookie_secret
    from streamlit.web.server.starlette.starlette_app_utils import decode_signed_value
    from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

    secret = get_cookie_secret()

    def single(name: str) -> bytes | None:
        raw = cookies.get(name)
        if raw is None:
            return None
        return decode_signed_value(secret, name, raw.encode("latin-1"))  # cookies are latin-1 (HTTP)

    try:
        raw = get_cookie_with_chunks(single, USER_COOKIE_NAME)
        claims = json.loads(raw) if raw else None
    except (UnicodeError, ValueError):
        return None
    if not isinstance(claims, dict):
        return None
    origin = urlparse(get_origin_from_redirect_uri() or "")
    if claims.get("origin") != f"{origin.scheme}://{origin.netloc}":
        return None
    return claims


def cookie_actor(cookies: Mapping[str, str]) -> Actor | None:
    """The person a request's identity cookie names, when the allowlist lets them in; else None.
    A [team] that cannot be read lets nobody in."""
    claims = cookie_claims(cookies)
    if claims is None:
        return None
    try:
        allowlist = team()
    except ValueError:
        return None
    return admitted(claims, allowlist)
