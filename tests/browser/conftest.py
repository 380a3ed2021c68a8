"""Real-browser journeys: `streamlit run app.py` on a free port, driven by Playwright in Debian's
Chromium. Screenshots of each step land in test-artifacts/ (and in docs/ for the README when
FLUX_LAB_SCREENSHOTS=docs, as `make screenshots` sets)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.browser.appserver import ROOT, AppServer
from tests.browser.signin import write_secrets

ARTIFACTS = ROOT / "test-artifacts"
DOCS = ROOT / "docs"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# the page's script has finished its run: what a person clicks now is not drawn over by that run
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


@pytest.fixture
def artifacts(request) -> Path:
    path = ARTIFACTS / request.node.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture
def app_server(data_dir: Path, artifacts: Path) -> Iterator[Callable[..., AppServer]]:
    servers: list[AppServer] = []

    def start(latency: float = 0.5) -> AppServer:
        server = AppServer(data_dir, artifacts, latency).start()
        servers.append(server)
        return server

    yield start
    for server in servers:  # the data dir goes with the test: no clean stop needed (see AppServer.stop)
        server.kill()


@pytest.fixture
def oidc_provider() -> Iterator[str]:
    """A local OpenID provider (oidc-provider-mock) in a thread on a free port: its base URL. Its login
    form takes any subject; tests/browser/signin.py's sign_in gives it the e-mail and name."""
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def signin_server(data_dir: Path, artifacts: Path, oidc_provider: str) -> Iterator[Callable[..., AppServer]]:
    """Start the app with sign-in: `signin_server(admins=[...], members=[...], viewers=[...],
    latency=0.5, team=None, providers=())` writes a secrets.toml in the test's folder ([auth] for
    `oidc_provider`, the [team] lists; `team` as given, to write a bad one; `providers`: one
    [auth.<name>] each) and serves the app with it. The server's `.secrets` is that file."""
    servers: list[AppServer] = []

    def start(latency: float = 0.5, **secrets) -> AppServer:
        server = AppServer(data_dir, artifacts, latency)
        server.secrets = write_secrets(
            artifacts / f"secrets-{len(servers) + 1}.toml",
            app_url=server.url,
            provider_url=oidc_provider,
            **secrets,
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:  # the data dir goes with the test: no clean stop needed (see AppServer.stop)
        server.kill()


class SharedChromium:
    """One Playwright driver and one Chromium for a worker's run of journeys; each journey gets a
    browser context of its own (its own cookies, storage and cache: a fresh profile, as a Chromium
    of its own had). Launching both for every journey was 2-3 CPU-seconds each (measured). It is
    stopped before any other test runs on the worker (tests/conftest.py): while it is open,
    Playwright's sync API keeps an event loop running in the worker's main thread, and a test that
    calls asyncio.run there would fail."""

    playwright = None
    browser = None

    @classmethod
    def get(cls):
        if cls.browser is None or not cls.browser.is_connected():
            cls.stop()
            from playwright.sync_api import sync_playwright

            cls.playwright = sync_playwright().start()
            cls.browser = cls.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        return cls.browser

    @classmethod
    def stop(cls) -> None:
        browser, playwright, cls.browser, cls.playwright = cls.browser, cls.playwright, None, None
        if browser is not None:
            try:
                browser.close()
            except Exception:  # a Chromium that died with a journey: nothing left to close
                pass
        if playwright is not None:
            playwright.stop()


@pytest.fixture
def page(artifacts: Path, request):
    """A page in a browser context of the test's own (in the worker's one Chromium)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    browser = SharedChromium.get()
    context = browser.new_context(viewport={"width": 1400, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        page.screenshot(path=str(artifacts / "failure.png"), full_page=True)
    for other in browser.contexts:  # this one and any the test opened
        other.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report


def shoot(page, artifacts: Path, name: str, docs_name: str | None = None) -> None:
    """Save a screenshot of this step (once every image on the page has loaded); also into docs/
    for the README when asked to."""
    page.wait_for_function(
        "() => [...document.images, ...[...document.querySelectorAll('*')].flatMap("
        "e => e.shadowRoot ? [...e.shadowRoot.querySelectorAll('img')] : [])]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(artifacts / f"{name}.png"))
    if docs_name and os.environ.get("FLUX_LAB_SCREENSHOTS") == "docs":
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / docs_name))


def cli_sweep(
    data_dir: Path,
    name: str,
    seeds: str,
    tolerances: str,
    *more: str,
    prompt: str = "a lighthouse at dusk",
) -> str:
    """A finished 512 px sweep (of "a lighthouse at dusk" unless told) made by the CLI on its
    emulator, with `more` of flux-lab sweep's options; its id."""
    made = subprocess.run(
        [sys.executable, "-m", "flux_core", "--data-dir", str(data_dir), "sweep", "--emulator"]
        + ["--prompt", prompt, "--seeds", seeds, "--safety-tolerances", tolerances]
        + ["--width", "512", "--height", "512", "--name", name, *more],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert made.returncode == 0, made.stderr
    found = re.search(r"/compare\?sweep=(\w+)", made.stderr)
    assert found, made.stderr
    return found.group(1)
