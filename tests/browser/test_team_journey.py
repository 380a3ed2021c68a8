"""A team on one server, in a real browser against a local OpenID provider: a viewer looks and votes
but cannot generate; a member's run and vote carry their address, and their daily cap stops the next
run with its message while no request reaches the emulator."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from flux_core import defaults as D
from flux_core.emulator.server import EmulatorConfig, EmulatorServer
from flux_core.ledger import store, sweeps
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams
from flux_core.runner import Runner
from tests.browser.conftest import IDLE, shoot
from tests.browser.signin import sign_in, sign_out
from tests.browser.test_compose_journeys import generate
from tests.conftest import client_for

ANN = "ann@example.com"


def shown(text: str) -> re.Pattern:
    """`text` as a page shows user text in Markdown (presentation.markdown_text): it may hold word
    joiners, which keep an address from becoming a link and are not seen."""
    return re.compile("\u2060?".join(re.escape(c) for c in text))


def seed_sweep(data_dir) -> tuple[str, list[str]]:
    """Ann's finished sweep of two seeds in the ledger the app will open: (sweep id, its run ids)."""
    with EmulatorServer(EmulatorConfig(latency_s=0.1, latency_spread_s=0, queue_s=0)) as server:
        ledger = Ledger(data_dir / "ledger.db")
        runner = Runner(ledger, data_dir, client_for(server), backend="emulator")
        plan = sweeps.make_plan(
            FluxParams(prompt="ann's blue teapot", width=512, height=512), [sweeps.axis("seed", [1, 2])]
        )
        sweep_id = sweeps.start(plan, ledger, runner, created_by=ANN)
        view = sweeps.load(ledger, sweep_id)
        assert view is not None
        run_ids = [c.run.id for c in view.cells]
        runner.wait(run_ids)
        runner.shutdown()
    return sweep_id, run_ids


def votes(data_dir) -> list[tuple[str, str]]:
    with Ledger(data_dir / "ledger.db").db() as db:
        return [(r["voter"], r["winner_run_id"]) for r in db.query("SELECT * FROM votes ORDER BY id")]


def test_a_viewer_looks_and_votes_a_members_run_and_vote_carry_their_address_and_a_cap_stops_them(
    signin_server, page, data_dir, artifacts, monkeypatch
):
    monkeypatch.setenv(D.CAP_PERSON_DAY_ENV, "0.10")  # the emulator's image costs $0.07: one fits
    sweep_id, run_ids = seed_sweep(data_dir)  # Ann's runs count for the team, not for Zoe
    server = signin_server(members=["@example.com"], viewers=["@partner.example"])
    stats = f"http://127.0.0.1:{server.env['FLUX_LAB_EMULATOR_PORT']}/_emulator/stats"

    # a viewer: looks, votes under their own address, and has no way to spend or change anything
    page.goto(server.url)
    sign_in(page, "kim@partner.example", "Kim")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Signed in as Kim (kim@partner.example) · viewer")).to_be_visible()
    expect(page.get_by_text("You are signed in as a viewer")).to_be_visible()
    # must not happen: a way to spend for a viewer, or the team key's status
    expect(page.get_by_role("button", name="Generate")).to_have_count(0)
    expect(page.get_by_label("Prompt", exact=True)).to_have_count(0)
    expect(sidebar.get_by_label("Segmind API key (this session only)")).to_have_count(0)
    expect(sidebar.get_by_text("Offline emulator")).to_have_count(0)
    shoot(page, artifacts, "viewer-compose")
    page.goto(f"{server.url}/history?h_run={run_ids[0]}")
    expect(page.get_by_text(shown(f"Made by {ANN}"))).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.get_by_role("button", name="Vary seed")).to_have_count(0)
    page.goto(f"{server.url}/compare?sweep={sweep_id}")
    expect(page.get_by_text(shown(f"Started by {ANN}"))).to_be_visible()
    page.get_by_text("Blind vote (for demos)").click()
    expect(page.get_by_text(shown("Voting as kim@partner.example"))).to_be_visible()
    # the run that opened the panel done: a click while it still draws the page below can be lost
    expect(page.locator(IDLE)).to_have_count(1)
    page.get_by_role("button", name="Left is better").click()
    expect(page.get_by_text("1 of 1 pairs judged")).to_be_visible()
    assert [v[0] for v in votes(data_dir)] == ["kim@partner.example"]
    shoot(page, artifacts, "viewer-voted")
    sign_out(page, sidebar)

    # a member: their run and their vote carry their address; their daily cap stops the next run
    sign_in(page, "zoe@example.com", "Zoe")
    expect(page.get_by_text("Spend today: you: $0.00 of $0.10")).to_be_visible()
    generate(page, "zoe's red cube")
    expect(page.get_by_text("Done · You waited")).to_be_visible()
    expect(page.get_by_text(shown("made by zoe@example.com"))).to_be_visible()
    (mine,) = [r for r in Ledger(data_dir / "ledger.db").search("zoe", limit=5)]
    assert (mine.created_by, mine.status) == ("zoe@example.com", store.COMPLETED)
    generate(page, "zoe's blue cube")
    expect(page.get_by_text("This run (about $0.07) would go past your daily cap of $0.10")).to_be_visible()
    expect(page.get_by_text("$0.07 spent today, $0.03 left")).to_be_visible()
    shoot(page, artifacts, "member-refused")
    # must not happen: the refused run reaching the emulator, or written to the ledger
    assert httpx.get(stats, timeout=5).json()["submit_requests"] == 1
    assert [r.prompt for r in Ledger(data_dir / "ledger.db").search("zoe", limit=5)] == ["zoe's red cube"]
    page.goto(f"{server.url}/compare?sweep={sweep_id}")
    page.get_by_text("Blind vote (for demos)").click()
    expect(page.get_by_text(shown("Voting as zoe@example.com"))).to_be_visible()
    expect(page.locator(IDLE)).to_have_count(1)
    page.get_by_role("button", name="Right is better").click()
    expect(page.get_by_text("1 of 1 pairs judged")).to_be_visible()
    assert [v[0] for v in votes(data_dir)] == ["kim@partner.example", "zoe@example.com"]
