"""Who can reach the app: this computer only by default; beyond it only with sign-in or an explicit
opt-in, and then the sidebar says so. The server itself refuses to start otherwise."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from flux_core import defaults as D
from flux_core import settings

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_a_loopback_address_is_this_computer_only(address):
    assert settings.exposure(address, sign_in=False, opt_in="") == settings.LOCAL


@pytest.mark.parametrize("address", ["0.0.0.0", "", None, "192.168.1.20", "::"])
def test_beyond_this_computer_needs_sign_in_or_the_opt_in(address):
    with pytest.raises(ValueError) as refused:
        settings.exposure(address, sign_in=False, opt_in="")
    words = str(refused.value)
    assert "without sign-in" in words and f"{D.OPEN_NETWORK_ENV}=1" in words and "[auth]" in words
    assert settings.exposure(address, sign_in=True, opt_in="") == settings.SIGNED_IN
    assert settings.exposure(address, sign_in=False, opt_in="1") == settings.OPEN
    with pytest.raises(ValueError):
        settings.exposure(address, sign_in=False, opt_in="yes")  # the opt-in is exactly 1


def test_the_opt_in_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv(D.OPEN_NETWORK_ENV, "1")
    assert settings.exposure("0.0.0.0", sign_in=False) == settings.OPEN


def test_make_run_and_the_config_serve_this_computer_only():
    assert 'address = "127.0.0.1"' in (ROOT / ".streamlit/config.toml").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "ADDRESS ?= 127.0.0.1" in makefile and "--server.address $(ADDRESS)" in makefile


@pytest.fixture
def served_on():
    """Run the app as if served on an address (Streamlit's server.address), restored afterwards."""
    before = config.get_option("server.address")
    yield lambda address: config.set_option("server.address", address)
    config.set_option("server.address", before)


@pytest.mark.usefixtures("fast_app")
def test_the_sidebar_says_only_this_computer_can_open_it(served_on):
    served_on("127.0.0.1")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert any("only this computer can open it" in c.value for c in at.sidebar.caption)


@pytest.mark.usefixtures("fast_app")
def test_opened_to_the_network_the_sidebar_warns(served_on, monkeypatch):
    served_on("0.0.0.0")
    monkeypatch.setenv(D.OPEN_NETWORK_ENV, "1")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert any("Open to the network without sign-in" in w.value for w in at.sidebar.warning)
    assert at.button(key="compose_generate")  # the app works, with the warning on every page


@pytest.mark.usefixtures("fast_app")
def test_served_beyond_this_computer_without_the_opt_in_the_page_shows_nothing_else(served_on):
    served_on("0.0.0.0")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert any("will not serve on address 0.0.0.0 without sign-in" in t.value for t in at.text)
    assert not at.text_area and not at.button  # no prompt, no Generate, no run


def test_the_server_will_not_start_on_every_interface_without_sign_in_or_the_opt_in(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != D.OPEN_NETWORK_ENV}
    env |= {"FLUX_LAB_DATA": str(tmp_path / "data"), "FLUX_LAB_EMULATOR_PORT": "0"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.address=0.0.0.0",
            f"--server.port={port}",
            "--server.headless=true",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Flux Lab will not serve on address 0.0.0.0 without sign-in" in done.stderr + done.stdout
