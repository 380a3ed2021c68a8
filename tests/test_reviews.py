"""Review (issue 17, item 3): threaded comments and a verdict per reviewer on any run, the same
from the service and the CLI, attributed to the signed-in person, kept in the ledger."""

from __future__ import annotations

import json

import pytest

from flux_core.cli import main
from flux_core.errors import NotAllowed, UnknownRun
from flux_core.ledger import actions, reviews, sweeps
from flux_core.ledger.history import Query, find
from flux_core.params import FluxParams, ParamsError
from flux_core.service import Workbench
from flux_core.team import Actor, Role

ANN = Actor("ann@example.com", Role.MEMBER, "Ann", signed_in=True)
KIM = Actor("kim@example.com", Role.VIEWER, "Kim", signed_in=True)
ADA = Actor("ada@example.com", Role.ADMIN, "Ada", signed_in=True)


@pytest.fixture
def wb(data_dir):
    bench = Workbench(data_dir, emulator="ephemeral", background=False)
    yield bench
    bench.shutdown(wait=True)


def _runs(wb: Workbench, n: int) -> list[str]:
    ids = [wb.submit(FluxParams.parse(prompt=f"a teapot number {i}", seed=i)) for i in range(n)]
    wb.wait(ids)
    return ids


def test_a_thread_reads_in_order_with_replies_under_what_they_answer(wb):
    (run_id,) = _runs(wb, 1)
    first = wb.acting(ANN).comment(run_id, "  the headline is cut off  ")
    second = wb.acting(KIM).comment(run_id, "colours are right")
    reply = wb.acting(KIM).comment(run_id, "agreed, try 1024x1280", reply_to=first.id)
    deeper = wb.acting(ANN).comment(run_id, "will do", reply_to=reply.id)
    thread = wb.comments(run_id)
    assert [(depth, c.id) for depth, c in thread] == [
        (0, first.id),
        (1, reply.id),
        (2, deeper.id),
        (0, second.id),
    ]
    assert thread[0][1].body == "the headline is cut off" and thread[0][1].author == ANN.id

    wb.acting(ANN).delete_comment(first.id)  # its replies stay, under a comment whose words are gone
    thread = wb.comments(run_id)
    assert thread[0][1].deleted and thread[0][1].body == "" and thread[1][1].id == reply.id
    wb.acting(KIM).delete_comment(second.id)  # a deleted comment nobody answered leaves the thread
    assert second.id not in [c.id for _, c in wb.comments(run_id)]
    assert wb.comment_counts([run_id]) == {run_id: 2}
    said = [a.words() for a in wb.activity(run_id) if a.action in (actions.COMMENT, actions.UNCOMMENT)]
    assert said[0] == "ann@example.com wrote a comment" and "kim@example.com wrote a reply" in said
    assert "ann@example.com deleted a comment by ann@example.com" in said


def test_bad_comments_name_the_field_and_write_nothing(wb):
    run_a, run_b = _runs(wb, 2)
    on_b = wb.comment(run_b, "fine")
    for body, words in (("   ", "comment: must not be empty"), ("x" * 4001, "at most 4000 characters")):
        with pytest.raises(ParamsError, match=words):
            wb.comment(run_a, body)
    with pytest.raises(ParamsError, match="reply to: there is no comment"):
        wb.comment(run_a, "answering a comment of another run", reply_to=on_b.id)
    with pytest.raises(UnknownRun):
        wb.comment("01NOTARUN", "hello")
    assert wb.comments(run_a) == []


def test_people_delete_their_own_comments_and_an_admin_anyones(wb):
    (run_id,) = _runs(wb, 1)
    made = wb.acting(ANN).comment(run_id, "mine")
    with pytest.raises(NotAllowed, match="ann@example.com's"):
        wb.acting(KIM).delete_comment(made.id)
    assert not wb.comments(run_id)[0][1].deleted
    wb.acting(ADA).delete_comment(made.id)
    assert wb.comments(run_id) == []


def test_one_verdict_per_reviewer_the_sweep_counts_and_history_filters_by_it(wb):
    sweep_id = wb.start_sweep(
        sweeps.make_plan(FluxParams(prompt="a lamp", width=512, height=512), [sweeps.axis("seed", [1, 2, 3])])
    )
    a, b, c = [cell.run.id for cell in wb._sweep(sweep_id).cells]
    wb.wait([a, b, c])
    wb.acting(ANN).set_verdict([a, b], "approve")
    wb.acting(ANN).set_verdict([b], "needs work")  # replaces Ann's approval of b
    wb.acting(KIM).set_verdict([a], "reject")
    wb.acting(KIM).set_verdict([c], "approve")
    wb.acting(KIM).set_verdict([c], None)  # taken back
    got = wb.verdicts([a, b, c])
    assert {(v.reviewer, v.verdict) for v in got[a]} == {(ANN.id, "approve"), (KIM.id, "reject")}
    assert [(v.reviewer, v.verdict) for v in got[b]] == [(ANN.id, "needs work")] and got[c] == []
    assert reviews.tally(got[a]) == {"approve": 1, "reject": 1, "needs work": 0}
    assert wb.sweep_verdicts(sweep_id) == {
        ANN.id: {"approve": 1, "reject": 0, "needs work": 1},
        KIM.id: {"approve": 0, "reject": 1, "needs work": 0},
    }
    assert {r.id for r in find(wb.ledger, Query(verdict="approve")).rows} == {a}
    assert {r.id for r in find(wb.ledger, Query(verdict="none")).rows} == {c}
    assert [r.id for r in wb.search(verdict="needs work")] == [b]
    with pytest.raises(ParamsError, match="verdict: must be one of approve, reject, needs work, none"):
        wb.search(verdict="maybe")
    with pytest.raises(ParamsError, match="verdict: must be one of approve, reject, needs work, not 'yes'"):
        wb.set_verdict([a], "yes")
    with pytest.raises(UnknownRun):  # one unknown run: nobody's verdict changes
        wb.acting(ANN).set_verdict([c, "01NOTARUN"], "approve")
    assert wb.verdicts([c])[c] == []


def test_a_demo_without_sign_in_takes_the_typed_name_and_a_signed_in_person_never_another(wb):
    (run_id,) = _runs(wb, 1)
    wb.set_verdict([run_id], "approve", reviewer="  Bea  ")
    wb.comment(run_id, "nice", author="Bea")
    wb.acting(KIM).set_verdict([run_id], "reject", reviewer="Bea")  # signed in: always Kim's own
    assert {(v.reviewer, v.verdict) for v in wb.verdicts([run_id])[run_id]} == {
        ("Bea", "approve"),
        (KIM.id, "reject"),
    }
    assert wb.comments(run_id)[0][1].author == "Bea"
    assert any(a.detail == "approve as Bea" for a in wb.activity(run_id))


def test_a_purge_takes_a_runs_review_with_it(wb):
    (run_id,) = _runs(wb, 1)
    wb.comment(run_id, "gone soon")
    wb.set_verdict([run_id], "reject")
    wb.delete([run_id])
    wb.purge([run_id])
    with wb.ledger.db() as db:
        assert db.execute("SELECT COUNT(*) FROM comments").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0] == 0


def test_the_cli_comments_replies_gives_verdicts_and_shows_them_like_the_service(capsys, data_dir):
    assert main(["generate", "--emulator", "--prompt", "a teapot", "--seed", "3", "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert main(["comment", run_id, "<script>alert(1)</script> too dark", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["id"]
    assert main(["comment", run_id, "brighter then", "--reply-to", str(first), "--as", "Bea"]) == 0
    assert main(["verdict", "needs-work", run_id]) == 0
    assert main(["comments", run_id, "--json"]) == 0
    review = json.loads(capsys.readouterr().out)
    assert [(c["depth"], c["body"]) for c in review["comments"]] == [
        (0, "<script>alert(1)</script> too dark"),
        (1, "brighter then"),
    ]
    assert review["comments"][1]["author"] == "Bea"
    assert [v["verdict"] for v in review["verdicts"]] == ["needs work"]
    assert main(["show", run_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["comments"] == review["comments"] and shown["verdicts"] == review["verdicts"]

    assert main(["history", "--verdict", "needs work", "--json"]) == 0
    assert [json.loads(line)["run_id"] for line in capsys.readouterr().out.splitlines()] == [run_id]
    assert main(["history", "--verdict", "approve", "--json"]) == 0
    assert capsys.readouterr().out == ""

    assert main(["comment", run_id, "   "]) == 2
    assert "flux-lab comment: comment: must not be empty" in capsys.readouterr().err
    assert main(["verdict", "approve", run_id, "01NOTARUN"]) == 2
    assert "Nothing was changed." in capsys.readouterr().err
    assert main(["delete-comment", str(first)]) == 0
    assert main(["comments", run_id]) == 0
    printed = capsys.readouterr().out
    assert f"#{first}" in printed and "(deleted)" in printed and "needs work" in printed
