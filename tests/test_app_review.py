"""AppTest of review on the pages (issue 17, item 3): History's run panel (the verdict row, everyone's
verdicts, threaded comments shown as text, Reply and Delete), its verdict filter, its cards' tally, a
verdict for the whole selection, and Compare's review line, lightbox tally and report download."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from flux_core import defaults as D
from flux_core.params import FluxParams
from flux_core.presentation import markdown_text
from flux_core.service import Workbench
from tests.test_app_compare import compare_page, plan, run_and_finish, the_grid
from tests.test_app_history import APP, THREE, cards, click_in_gallery, history_page, texts
from tests.test_app_roles import ANA, ANN, KIM, page
from tests.test_inert_text import assert_never_markup

HOSTILE = "<script>window.hacked=1</script> **bold** [a link](http://evil.test/x) http://auto.link"


@pytest.fixture(autouse=True)
def _quiet(fast_app, monkeypatch):
    """No background checks: their results landing between two reruns would change what is compared."""
    monkeypatch.setenv(D.CHECKS_ENV, "0")


def bench(at: AppTest):
    return at.session_state["workbench"]


def shown(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def open_run(at: AppTest, run_id: str) -> None:
    click_in_gallery(at, "open", run_id)
    assert not at.exception


def test_the_run_panel_gives_verdicts_and_threads_comments_shown_as_text():
    at, ids = history_page(THREE)
    open_run(at, ids[0])
    at.text_input(key="h_reviewer").set_value("Bea")
    at.run()
    at.button(key="h_verdict_approve").click()
    at.run()
    assert "Bea: approve" in shown(at)
    assert at.button(key="h_verdict_approve").proto.type == "primary"  # the viewer's own verdict
    assert at.button(key="h_verdict_reject").proto.type == "secondary"
    bench(at).set_verdict([ids[0]], "reject", reviewer="kim@example.com")  # someone else's, elsewhere
    at.run()
    assert {"Bea: approve", "kim@example.com: reject"} <= set(shown(at))

    at.text_area(key=f"h_comment_text_{ids[0]}").set_value(HOSTILE)
    at.button(key="h_comment_send").click()
    at.run()
    assert HOSTILE in shown(at)  # literally: no script, no bold, no link
    assert at.text_area(key=f"h_comment_text_{ids[0]}").value == ""  # the box starts afresh
    assert_never_markup(at)
    [(_, first)] = bench(at).comments(ids[0])
    assert first.author == "Bea"
    assert any(c.value.startswith(markdown_text("Bea") + " · ") for c in at.caption)

    at.button(key=f"h_reply_{first.id}").click()
    at.run()
    at.text_area(key=f"h_reply_text_{first.id}").set_value("agreed: brighter")
    at.button(key=f"h_reply_send_{first.id}").click()
    at.run()
    assert [(depth, c.body) for depth, c in bench(at).comments(ids[0])] == [
        (0, HOSTILE),
        (1, "agreed: brighter"),
    ]
    assert shown(at).index(HOSTILE) < shown(at).index("agreed: brighter")

    at.button(key="h_comment_send").click()  # an empty comment: said, and nothing is written
    at.run()
    assert "Nothing was saved." in [e.value for e in at.error]
    assert "comment: must not be empty" in shown(at)
    assert len(bench(at).comments(ids[0])) == 2

    at.button(key=f"h_uncomment_{first.id}").click()  # the local user deletes: the service says it may
    at.run()
    assert HOSTILE not in shown(at) and "(deleted)" in [c.value for c in at.caption]
    at.button(key="h_verdict_withdraw").click()
    at.run()
    assert "Bea: approve" not in shown(at) and "kim@example.com: reject" in shown(at)


def test_a_verdict_filter_finds_an_approved_run_and_is_read_from_a_link():
    at, ids = history_page(THREE)
    bench(at).set_verdict([ids[1]], "approve", reviewer="Bea")
    bench(at).set_verdict([ids[2]], "reject")
    at.toggle(key="h_filters").set_value(True)
    at.run()
    at.selectbox(key="h_verdict").set_value("approve")
    at.run()
    assert "1 run(s) · showing 1–1" in texts(at)
    assert [c["id"] for c in cards(at)] == [ids[1]]

    link = AppTest.from_file(APP, default_timeout=30)  # the same view from a link: nobody's verdict
    link.run()
    link.switch_page("pages/history.py")
    link.query_params["h_verdict"] = "no verdict"  # the URL holds what the box shows
    link.run()
    assert not link.exception
    assert [c["id"] for c in cards(link)] == [ids[0]]


def test_cards_show_the_verdict_tally_and_the_comment_count():
    at, ids = history_page(THREE)
    wb = bench(at)
    wb.set_verdict([ids[0]], "approve", reviewer="Bea")
    wb.set_verdict([ids[0]], "approve", reviewer="Kim")
    wb.set_verdict([ids[0]], "needs work", reviewer="Lou")
    wb.comment(ids[0], "one")
    wb.comment(ids[2], "only a comment")
    at.run()
    review = {c["id"]: c["review"] for c in cards(at)}
    assert review == {ids[0]: "2 approve · 1 needs work · 1 comment", ids[1]: "", ids[2]: "1 comment"}


def test_the_selection_gives_every_selected_run_one_verdict_and_downloads_a_report():
    at, ids = history_page(THREE)
    click_in_gallery(at, "selection", [ids[0], ids[2]])
    assert "Download report" in [d.proto.label for d in at.get("download_button")]
    assert at.button(key="h_bulk_verdict_go").disabled
    at.selectbox(key="h_bulk_verdict").set_value("needs work")
    at.run()
    at.button(key="h_bulk_verdict_go").click()
    at.run()
    assert not at.exception
    given = bench(at).verdicts(ids)
    assert [v.verdict for v in given[ids[0]]] == [v.verdict for v in given[ids[2]]] == ["needs work"]
    assert given[ids[1]] == []
    assert given[ids[0]][0].at == given[ids[2]][0].at  # one call: one transaction, one moment
    at.selectbox(key="h_bulk_verdict").set_value("withdraw")
    at.run()
    at.button(key="h_bulk_verdict_go").click()
    at.run()
    assert bench(at).verdicts(ids) == {i: [] for i in ids}


def test_compare_says_who_reviewed_shows_a_cells_tally_and_offers_the_report():
    at = plan(compare_page(), "a lamp")
    view = run_and_finish(at)
    cells = [c.run.id for c in view.cells]
    wb = bench(at)
    wb.set_verdict(cells[:2], "approve", reviewer="ann@example.com")
    wb.set_verdict(cells[2:3], "needs work", reviewer="ann@example.com")
    wb.set_verdict(cells[:1], "reject", reviewer="kim@example.com")
    at.run()
    assert not at.exception
    assert (
        "Reviewed: ann@example.com approved 2 of 6, needs work 1 · kim@example.com approved 0 of 6, rejected 1"
        in [t.value for t in at.text]
    )
    settings = {c["idx"]: dict(c["settings"]) for c in the_grid(at)["cells"]}
    first = next(c.idx for c in view.cells if c.run.id == cells[0])
    assert settings[first]["Verdicts"] == "1 approve · 1 reject"
    assert sum("Verdicts" in s for s in settings.values()) == 3  # the others have none to show
    assert "Download report" in [d.proto.label for d in at.get("download_button")]


def test_signed_in_people_review_as_themselves_and_delete_only_what_the_service_lets_them(data_dir):
    wb = Workbench.shared(data_dir)
    ann = wb.acting(ANN)
    (run,) = ann.wait([ann.submit(FluxParams(prompt="ann's teapot", width=512, height=512, seed=1))])
    theirs = ann.comment(run.id, "ann's note")
    kim = page(wb, KIM, "history", h_run=run.id)  # a viewer: may review, under her own address
    assert not [t for t in kim.text_input if t.key == "h_reviewer"]  # no name to type when signed in
    kim.button(key="h_verdict_needs_work").click()
    kim.run()
    assert "kim@example.com: needs work" in shown(kim)
    kim.text_area(key=f"h_comment_text_{run.id}").set_value("kim's note")
    kim.button(key="h_comment_send").click()
    kim.run()
    mine = next(c for _, c in wb.comments(run.id) if c.author == KIM.id)
    buttons = {b.key for b in kim.button}
    assert f"h_uncomment_{mine.id}" in buttons and f"h_uncomment_{theirs.id}" not in buttons
    ana = page(wb, ANA, "history", h_run=run.id)  # an admin may delete anyone's
    assert {f"h_uncomment_{mine.id}", f"h_uncomment_{theirs.id}"} <= {b.key for b in ana.button}
