"""AppTest of the spend caps on the pages that can spend: Compose's and Compare's spend line, and a
refusal shown as the cap's message with nothing sent."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from flux_core import defaults as D
from flux_ui import spend
from tests.test_app import generate, start
from tests.test_app_compare import compare_page, plan

pytestmark = pytest.mark.usefixtures("fast_app")


def plain(text: str) -> str:
    """Inert Markdown (presentation.markdown_text) as a person reads it."""
    return text.replace("\u2060", "").replace("\\", "")


def shown(at, kind: str) -> str:
    return "\n".join(plain(str(e.value)) for e in getattr(at, kind))


def test_compose_shows_the_spend_line_and_refuses_a_run_past_the_cap(monkeypatch):
    monkeypatch.setenv(D.CAP_TEAM_DAY_ENV, "0.10")  # the embedded emulator: $0.07 an image
    monkeypatch.setenv(D.CAP_TEAM_MONTH_ENV, "20")
    at = start()
    assert "Spend today: $0.00 of $0.10 (team) · this month: $0.00 of $20.00" in shown(at, "caption")
    at = generate(at, "a red cube")
    bench = at.session_state["workbench"]
    bench.wait([r.id for r in bench.recent()])
    at.run()
    assert "Spend today: $0.07 of $0.10 (team) · this month: $0.07 of $20.00" in shown(at, "caption")
    submits = bench.emulator.stats.submit_requests
    at = generate(at, "a blue cube")
    assert not at.exception
    errors = shown(at, "error")
    assert "This run (about $0.07) would go past the team's daily cap of $0.10" in errors
    assert "$0.07 spent today, $0.03 left" in errors and "set FLUX_LAB_CAP_TEAM_DAY_USD" in errors
    assert bench.emulator.stats.submit_requests == submits and len(bench.recent()) == 1


def test_compose_without_caps_keeps_the_estimate_line_alone():
    at = start()
    captions = shown(at, "caption")
    assert "Estimated cost: 0.07 credits" in captions and "Spend today" not in captions


def test_a_bad_cap_setting_is_an_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv(D.CAP_PERSON_DAY_ENV, "a lot")
    at = start()
    assert not at.exception
    assert "FLUX_LAB_CAP_PERSON_DAY_USD must be an amount of US dollars" in shown(at, "error")


def test_compare_shows_the_spend_line_and_refuses_a_sweep_past_the_cap(monkeypatch):
    monkeypatch.setenv(D.CAP_PERSON_DAY_ENV, "0.10")
    at = plan(compare_page(), "a red cube")  # the default plan: 6 cells, $0.42
    assert "Spend today: you: $0.00 of $0.10" in shown(at, "caption")
    at.button(key="compare_run").click()
    at.run()
    assert not at.exception
    errors = shown(at, "error")
    assert "These 6 runs (about $0.42) would go past your daily cap of $0.10" in errors
    assert "Nothing was sent" in errors and "set FLUX_LAB_CAP_PERSON_DAY_USD" in errors
    bench = at.session_state["workbench"]
    assert bench.recent() == [] and bench.recent_sweeps() == []


def _caps_panel() -> None:
    import streamlit as st

    from flux_ui import spend

    spend.panel(st.session_state["workbench"])


def test_an_admin_sets_the_caps_in_the_sidebar_and_the_next_run_meets_them(monkeypatch):
    monkeypatch.setenv(D.CAP_TEAM_DAY_ENV, "50")
    at = start()  # no sign-in: the local user, an admin, has the panel in the sidebar, closed
    assert [e.label for e in at.sidebar.expander].count("Spend caps") == 1
    assert "caps_team_day" not in [n.key for n in at.sidebar.number_input]  # drawn only once opened
    bench = at.session_state["workbench"]
    # (AppTest in Streamlit 1.67 drops the sidebar of reruns under st.navigation: the panel is
    # driven on its own, with the router's workbench, opened as a click on it does)
    panel = AppTest.from_function(_caps_panel, default_timeout=30)
    panel.session_state["workbench"] = bench
    panel.session_state[spend.OPEN_KEY] = True
    panel.run()
    assert panel.number_input(key="caps_team_day").value == 50.0
    assert "from FLUX_LAB_CAP_TEAM_DAY_USD" in shown(panel, "caption")
    panel.number_input(key="caps_team_day").set_value(0.05)
    panel.button(key="caps_save").click().run()
    assert "Caps saved." in shown(panel, "success")
    assert f"set in Flux Lab by {bench.actor.id}" in shown(panel, "caption")
    at = start()
    assert "Spend today: $0.00 of $0.05 (team)" in shown(at, "caption")
    at = generate(at, "a red cube")  # $0.07 against the $0.05 just set
    assert "An admin can raise it in Flux Lab: the sidebar's Spend caps" in shown(at, "error")
    assert bench.emulator.stats.submit_requests == 0 and bench.recent() == []
    panel.button(key="caps_reset").click().run()
    assert panel.number_input(key="caps_team_day").value == 50.0  # the server's setting again
