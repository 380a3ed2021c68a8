"""AppTest: each page shows a person only what their role may do (flux_core/team.py). Pages run
with the router's place taken by a workbench acting for that person, as app.py hands them one;
whatever a page shows, the service refuses the rest (tests/test_team.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core import defaults as D
from flux_core.ledger import sweeps
from flux_core.params import FluxParams
from flux_core.service import Workbench
from flux_core.team import Actor, Role
from tests.test_inert_text import read_back

ROOT = Path(__file__).resolve().parents[1]
ANN = Actor("ann@example.com", Role.MEMBER, "Ann", signed_in=True)
KIM = Actor("kim@example.com", Role.VIEWER, "Kim", signed_in=True)
ZOE = Actor("zoe@example.com", Role.MEMBER, "Zoe", signed_in=True)
ANA = Actor("ana@example.com", Role.ADMIN, "Ana", signed_in=True)

pytestmark = pytest.mark.usefixtures("fast_app")


@pytest.fixture
def lab(data_dir):
    """A shared workbench on the embedded emulator with Ann's finished run and her finished sweep."""
    wb = Workbench.shared(data_dir)
    ann = wb.acting(ANN)
    (run,) = ann.wait([ann.submit(FluxParams(prompt="ann's teapot", width=512, height=512, seed=1))])
    sweep_id = ann.start_sweep(
        sweeps.make_plan(
            FluxParams(prompt="ann's cube", width=512, height=512), [sweeps.axis("seed", [1, 2])]
        )
    )
    view = wb.sweep(sweep_id)
    assert view is not None
    ann.wait([c.run.id for c in view.cells])
    return wb, run.id, sweep_id


def page(wb: Workbench, who: Actor, name: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=30)
    at.session_state["workbench"] = wb.acting(who)
    for panel in ("compose_preset_open", "compose_code_open", "h_imp_open"):  # drawn only when opened
        at.session_state[panel] = True
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def words(at: AppTest) -> str:
    kinds = ("text", "caption", "info", "error", "warning", "markdown", "subheader")
    return "\n".join(read_back(str(e.value)) for kind in kinds for e in getattr(at, kind))


def keys(at: AppTest) -> set[str]:
    return (
        {b.key for b in at.button if b.key}
        | {t.key for t in at.text_area if t.key}
        | {t.key for t in at.toggle if t.key}
    )


def test_a_viewer_on_compose_sees_the_run_and_nothing_that_spends_or_changes_it(lab):
    wb, run_id, _ = lab
    at = page(wb, KIM, "compose", run=run_id)
    assert "compose_generate" not in keys(at) and "compose_vary" not in keys(at)
    assert "compose_favourite" not in keys(at) and "compose_save_note" not in keys(at)
    assert "compose_preset_save" not in keys(at)
    assert not [t for t in at.text_area if t.key == "prompt"] and not at.number_input  # no form to fill
    assert "signed in as a viewer" in words(at) and "made by ann@example.com" in words(at)
    assert "compose_download" in {b.key for b in at.get("download_button")}  # looking is allowed
    member = page(wb, ZOE, "compose", run=run_id)
    assert {"compose_generate", "compose_vary", "compose_preset_save"} <= keys(member)
    assert "compose_favourite" not in keys(member)  # Ann's run: Zoe may not curate it
    assert {"compose_favourite", "compose_save_note"} <= keys(page(wb, ANN, "compose", run=run_id))
    assert {"compose_favourite", "compose_save_note"} <= keys(page(wb, ANA, "compose", run=run_id))


def test_a_viewer_on_compare_opens_sweeps_and_votes_but_plans_none(lab):
    wb, _, sweep_id = lab
    at = page(wb, KIM, "compare")
    assert "Planning a sweep needs the member role" in words(at)
    assert "compare_run" not in keys(at) and f"compare_open_{sweep_id}" in keys(at)
    assert "by ann@example.com" in words(at)
    grid = page(wb, KIM, "compare", sweep=sweep_id)
    assert "compare_rename_save" not in keys(grid) and "Started by ann@example.com" in words(grid)
    assert "Voting as kim@example.com" in words(grid)
    assert not [t for t in grid.text_input if t.key == "compare_voter"]  # no name to type once signed in
    grid.button(key="compare_vote_left").click().run()
    with wb.ledger.db() as db:
        assert [r["voter"] for r in db.query("SELECT voter FROM votes")] == ["kim@example.com"]
    assert "compare_rename_save" in keys(page(wb, ANN, "compare", sweep=sweep_id))
    assert "compare_rename_save" not in keys(page(wb, ZOE, "compare", sweep=sweep_id))


def test_a_viewer_in_history_reads_a_run_and_its_activity_but_changes_nothing(lab):
    wb, run_id, _ = lab
    wb.acting(ANA).curate(run_id, rating=4)
    at = page(wb, KIM, "history", h_run=run_id)
    assert not {"h_save", "h_delete", "h_rerun", "h_vary"} & keys(at)
    assert "Made by ann@example.com" in words(at) and "ana@example.com rated it 4" in words(at)
    assert "h_imp_go" not in keys(at)  # importing is for admins
    assert {"h_save", "h_delete"} <= keys(page(wb, ANN, "history", h_run=run_id))
    zoe = page(wb, ZOE, "history", h_run=run_id)
    assert not {"h_save", "h_delete"} & keys(zoe) and "h_rerun" in keys(zoe)
    assert {"h_save", "h_delete", "h_imp_go"} <= keys(page(wb, ANA, "history", h_run=run_id))


def test_history_filters_by_who_made_a_run_and_insights_count_by_person(lab):
    wb, run_id, _ = lab
    zoe = wb.acting(ZOE)
    zoe.wait([zoe.submit(FluxParams(prompt="zoe's cup", width=512, height=512))])
    at = page(wb, KIM, "history", h_by="zoe@example.com")
    assert "1 run(s)" in words(at)
    at.toggle(key="h_insights").set_value(True).run()
    [people] = [d for d in at.dataframe if "Person" in d.value.columns]
    counts = dict(zip(people.value["Person"], people.value["Runs"]))
    assert counts == {"ann@example.com": 3, "zoe@example.com": 1}


def test_only_an_admin_empties_the_trash(lab):
    wb, run_id, _ = lab
    wb.acting(ANN).delete([run_id])
    assert "h_purge" not in keys(page(wb, ANN, "history", h_trash="true"))
    assert "h_purge" in keys(page(wb, ANA, "history", h_trash="true"))
    assert D.SWEEP_CARDS  # (the trash lists the run for both; purging stays the admin's)
