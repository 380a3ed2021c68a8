"""Sign-in for the browser journeys: a local OpenID provider (oidc-provider-mock, in a thread), a
secrets.toml that points the app at it, and `sign_in(page, email, name)` through its login form.

A journey asks for the `signin_server` fixture (tests/browser/conftest.py) and gets a factory:

    server = signin_server(members=["ana@example.com"], viewers=["@partner.example"])
    page.goto(server.url)
    sign_in(page, "ana@example.com", "Ana")

The secrets file is written in the test's own folder and passed with Streamlit's --secrets.files, so
the repository's .streamlit/ is never touched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, urlparse

import httpx
from playwright.sync_api import Page, expect

CLIENT_ID = "flux-lab-tests"
CLIENT_SECRET = "flux-lab-tests-secret"
COOKIE_SECRET = "flux-lab-tests-cookie-secret-0123456789"


def _toml(value: object) -> str:
    """A TOML value for the strings, booleans and lists of strings a secrets file holds here (JSON's
    strings and arrays are TOML's too)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def write_secrets(
    path: Path,
    *,
    app_url: str,
    provider_url: str,
    admins: Sequence[str] = (),
    members: Sequence[str] = (),
    viewers: Sequence[str] = (),
    team: dict[str, object] | None = None,
    providers: Sequence[str] = (),
) -> Path:
    """A secrets.toml for an app at `app_url` signing in with the provider at `provider_url`: [auth]
    (redirect_uri <app_url>/oauth2callback, cookie_secret, client_id/secret, server_metadata_url) and
    [team] (admins, members, viewers; or `team` as given, to write a bad one). With `providers`, one
    [auth.<name>] section each instead of the client in [auth] itself."""
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "server_metadata_url": f"{provider_url}/.well-known/openid-configuration",
    }
    lines = [
        "[auth]",
        f"redirect_uri = {_toml(app_url + '/oauth2callback')}",
        f"cookie_secret = {_toml(COOKIE_SECRET)}",
    ]
    if not providers:
        lines += [f"{k} = {_toml(v)}" for k, v in client.items()]
    for name in providers:
        lines += ["", f"[auth.{name}]", *(f"{k} = {_toml(v)}" for k, v in client.items())]
    section = team if team is not None else {"admins": admins, "members": members, "viewers": viewers}
    lines += [
        "",
        "[team]",
        *(f"{k} = {_toml(list(v) if isinstance(v, tuple) else v)}" for k, v in section.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def sign_in(
    page: Page, email: str, name: str, *, email_verified: bool = True, button: str = "Sign in"
) -> None:
    """Sign in on the app's sign-in page that `page` shows: press `button`, give the provider this
    person (its users API sets the claims: e-mail, name, email_verified), authorize, and wait until the
    browser is back on the app."""
    app = urlparse(page.url)
    page.get_by_role("button", name=button, exact=True).click()
    subject = page.locator("input[name=sub]")
    expect(subject).to_be_visible()  # the provider's login form
    provider = urlparse(page.url)
    claims = {"email": email, "name": name, "email_verified": email_verified}
    httpx.put(
        f"{provider.scheme}://{provider.netloc}/users/{quote(email)}", json=claims, timeout=10
    ).raise_for_status()
    subject.fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{app.scheme}://{app.netloc}/**")


def sign_out(page: Page, within=None) -> None:
    """Press Sign out (in `within`, e.g. the sidebar; else anywhere on the page), confirm at the
    provider's end-session page (the mock has one, as Keycloak and Okta do), and wait until the browser
    is back on the app."""
    app = urlparse(page.url)
    (within or page).get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{app.scheme}://{app.netloc}/**")
