"""Sign-in (flux_ui/signin.py): without [auth] the local user; with it, a visitor not signed in sees
the sign-in page and nothing else, a person the [team] allowlist does not let in sees why and nothing
else, and a person it lets in gets the app with "Signed in as" in the sidebar. AppTest fakes st.user
with `at.user` and the secrets with `at.secrets`. Also: the server refusing to start with a [team] it
cannot read. (The image routes' cookie check: tests/test_serving_signin.py.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core import defaults as D
from flux_core.team import Role, Team
from flux_ui import signin

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
ORIGIN = "http://127.0.0.1:8501"
COOKIE_SECRET = "unit-test-cookie-secret"
AUTH = {
    "redirect_uri": f"{ORIGIN}/oauth2callback",
    "cookie_secret": COOKIE_SECRET,
    "client_id": "flux-lab",
    "client_secret": "secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
TEAM = {"admins": ["lead@example.com"], "members": ["@example.com"], "viewers": ["pat@partner.example"]}
HOSTILE = "**ana**@example.com"


def app_with(user: dict, team: dict | None = None, auth: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["auth"] = auth or AUTH
    at.secrets["team"] = TEAM if team is None else team
    at.user = user
    return at.run()


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def nothing_of_the_app(at: AppTest) -> None:
    assert not at.exception
    assert "workbench" not in at.session_state and "actor" not in at.session_state
    assert not at.sidebar.children or not list(at.sidebar)  # no sidebar drawn
    assert not at.text_area and not at.text_input  # no prompt, no key field
    assert not at.get("imgs")  # no picture
    assert all(m.value.startswith("A workbench for") for m in at.markdown)  # no run's words: only the intro


@pytest.mark.usefixtures("fast_app")
def test_a_visitor_not_signed_in_sees_the_sign_in_page_only():
    at = app_with({"is_logged_in": False})
    nothing_of_the_app(at)
    assert [t.value for t in at.title] == ["Flux Lab"]
    assert [b.label for b in at.button] == ["Sign in"]


@pytest.mark.usefixtures("fast_app")
def test_one_sign_in_button_per_provider():
    auth = {k: v for k, v in AUTH.items() if k in ("redirect_uri", "cookie_secret")}
    client = {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    at = app_with({"is_logged_in": False}, auth={**auth, "google": client, "microsoft": client})
    assert [b.label for b in at.button] == ["Sign in with google", "Sign in with microsoft"]


@pytest.mark.usefixtures("fast_app")
def test_a_signed_in_person_the_allowlist_does_not_let_in_sees_why_as_text():
    at = app_with({"is_logged_in": True, "email": "**mallory**@elsewhere.example", "name": "<b>M</b>"})
    nothing_of_the_app(at)
    assert texts(at) == [
        "You are signed in as **mallory**@elsewhere.example, and this Flux Lab does not let that address "
        "in; ask an admin to add it."
    ]
    assert [b.label for b in at.button] == ["Sign out"]
    at.button(key=signin.SIGN_OUT_KEY).click().run()
    assert at.user == {"is_logged_in": False}  # st.logout
    assert [b.label for b in at.button] == ["Sign in"]


@pytest.mark.usefixtures("fast_app")
def test_an_address_the_provider_has_not_verified_is_refused_even_when_listed():
    at = app_with({"is_logged_in": True, "email": "ana@example.com", "email_verified": False})
    nothing_of_the_app(at)
    assert "does not let that address in" in texts(at)[0]
    assert "has not verified that address" in texts(at)[1]


@pytest.mark.usefixtures("fast_app")
def test_a_member_gets_the_app_and_the_sidebar_says_who_they_are():
    at = app_with({"is_logged_in": True, "email": HOSTILE.upper(), "name": "Ana *the* <b>lead</b>"})
    assert not at.exception
    actor = at.session_state["actor"]
    assert (actor.id, actor.role, actor.name, actor.signed_in) == (
        HOSTILE,
        Role.MEMBER,
        "Ana *the* <b>lead</b>",
        True,
    )
    assert f"Signed in as Ana *the* <b>lead</b> ({HOSTILE}) · member" in [t.value for t in at.sidebar.text]
    assert at.sidebar.button(key=signin.SIGN_OUT_KEY).label == "Sign out"
    assert at.button(key="compose_generate")
    at.sidebar.button(key=signin.SIGN_OUT_KEY).click().run()
    assert [b.label for b in at.button] == ["Sign in"]


@pytest.mark.usefixtures("fast_app")
def test_without_sign_in_the_local_user_is_an_admin_and_no_sign_out():
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert at.session_state["actor"].role is Role.ADMIN and not at.session_state["actor"].signed_in
    assert not any(t.value.startswith("Signed in as") for t in at.sidebar.text)
    with pytest.raises(KeyError):
        at.button(key=signin.SIGN_OUT_KEY)


@pytest.mark.usefixtures("fast_app")
def test_a_team_that_cannot_be_read_is_shown_as_a_bad_setting():
    at = app_with({"is_logged_in": False}, team={"members": ["not an address"]})
    assert not at.exception and not at.button
    assert [e.value for e in at.error] == ["Flux Lab cannot start with these settings:"]
    assert "[team] members: 'not an address' is neither an e-mail address" in texts(at)[0]


def test_admitted_follows_the_allowlist():
    team = Team.parse(TEAM)
    assert signin.admitted({"is_logged_in": True, "email": "Lead@Example.com"}, team).role is Role.ADMIN
    assert signin.admitted({"is_logged_in": True, "email": "pat@partner.example"}, team).role is Role.VIEWER
    assert signin.admitted({"is_logged_in": True, "email": "sam@partner.example"}, team) is None
    assert signin.admitted({"is_logged_in": False, "email": "lead@example.com"}, team) is None
    assert signin.admitted({"is_logged_in": True}, team) is None
    unverified = {"is_logged_in": True, "email": "lead@example.com", "email_verified": "false"}
    assert signin.admitted(unverified, team) is None


# --- the server as it starts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "team, words",
    [
        ('members = ["not an address"]', "[team] members: 'not an address' is neither an e-mail address"),
        ("", "sign-in is configured but nobody may sign in"),
    ],
)
def test_the_server_will_not_start_with_a_team_it_cannot_read(tmp_path, team, words):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secrets_file = tmp_path / "secrets.toml"
    auth = "\n".join(f"{k} = {json.dumps(v)}" for k, v in AUTH.items())
    secrets_file.write_text(f"[auth]\n{auth}\n\n[team]\n{team}\n")
    env = {k: v for k, v in os.environ.items() if k != D.OPEN_NETWORK_ENV}
    env |= {"FLUX_LAB_DATA": str(tmp_path / "data"), "FLUX_LAB_EMULATOR_PORT": "0"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--server.headless=true",
            "--secrets.files",
            str(secrets_file),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"Flux Lab: {words}" in done.stderr + done.stdout


def test_the_secrets_example_uncommented_is_a_working_sign_in_configuration():
    import re
    import tomllib

    lines = (ROOT / ".streamlit/secrets.toml.example").read_text().splitlines()
    setting = re.compile(r"# (\[[\w.]+\]|\w+ = .*)$")
    text = "\n".join(m.group(1) if (m := setting.match(line)) else line for line in lines)
    example = tomllib.loads(text)
    auth = example["auth"]
    assert {"redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url"} <= set(auth)
    assert auth["redirect_uri"].endswith("/oauth2callback")
    assert "accounts.google.com" in auth["server_metadata_url"]
    assert {"client_id", "client_secret", "server_metadata_url"} <= set(auth["microsoft"])
    team = Team.parse(example["team"])
    assert team.role_of("ana@example.com") is Role.ADMIN and team.role_of("bo@example.com") is Role.MEMBER


@pytest.mark.usefixtures("fast_app")
def test_a_person_taken_off_the_allowlist_keeps_nothing_of_the_app():
    """A session that held the app (its workbench and actor) and whose person the allowlist no longer
    lets in: the gate drops both, so no page could draw from them."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["auth"], at.secrets["team"] = AUTH, {"admins": ["lead@example.com"]}
    at.user = {"is_logged_in": True, "email": "ana@example.com"}
    at.session_state["workbench"] = "the workbench"
    at.session_state["actor"] = "ana@example.com"
    at.run()
    nothing_of_the_app(at)
    assert "does not let that address in" in texts(at)[0]
