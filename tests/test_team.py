"""Who may do what (flux_core/team.py), checked in the service whatever the front end: the [team]
allowlist and its roles, every role x operation pair against a real emulator (a refusal writes
nothing and sends nothing), and every action recorded under the person who did it."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import pytest

from flux_core import defaults as D
from flux_core import team
from flux_core.emulator.server import EmulatorConfig, EmulatorServer
from flux_core.errors import NotAllowed
from flux_core.ledger import sweeps
from flux_core.params import FluxParams
from flux_core.service import Workbench
from flux_core.team import Actor, Role, Team

from tests.conftest import TEST_KEY

ANN = Actor("ann@example.com", Role.MEMBER, "Ann", signed_in=True)  # a teammate: "someone else"


# --- the allowlist and its roles ------------------------------------------------------------------
def test_the_team_section_names_people_and_domains_and_the_most_specific_entry_wins():
    crew = Team.parse(
        {
            "admins": ["Ana@Example.com"],
            "members": ["@example.com", "vic@partner.example"],
            "viewers": ["@partner.example", "bob@example.com"],
        }
    )
    assert crew.role_of("ana@example.com") == Role.ADMIN  # case does not matter
    assert crew.role_of("bob@example.com") == Role.VIEWER  # his own address before his domain
    assert crew.role_of("zoe@example.com") == Role.MEMBER  # the domain
    assert crew.role_of("vic@partner.example") == Role.MEMBER
    assert crew.role_of("kim@partner.example") == Role.VIEWER
    assert crew.role_of("eve@elsewhere.example") is None  # not let in
    assert crew.role_of("") is None and crew.role_of("@example.com") is None and crew.role_of(None) is None
    assert crew.role_of("eve@example.com.evil.example") is None  # a look-alike domain is another domain
    person = crew.actor(" Zoe@Example.com ", "Zoe")
    assert person == Actor("zoe@example.com", Role.MEMBER, "Zoe", signed_in=True)
    assert crew.actor("eve@elsewhere.example") is None
    both = Team.parse({"members": ["@example.com"], "admins": ["@example.com"]})
    assert both.role_of("x@example.com") == Role.ADMIN  # listed twice: the higher role


@pytest.mark.parametrize(
    "section, words",
    [
        ({}, "nobody may sign in"),
        (None, "nobody may sign in"),
        ({"admins": ["ana"]}, "'ana' is neither an e-mail address"),
        ({"members": ["@localhost"]}, "'@localhost' is neither"),
        ({"viewers": ["two words@example.com"]}, "is neither"),
        ({"admins": 5}, "admins must be a list"),
        ({"owners": ["a@example.com"]}, "not owners"),
    ],
)
def test_a_bad_team_section_is_refused_naming_the_entry(section, words):
    with pytest.raises(ValueError, match=words):
        Team.parse(section)


def test_a_refusal_says_who_may():
    viewer = Actor("kim@example.com", Role.VIEWER, signed_in=True)
    with pytest.raises(NotAllowed, match="kim@example.com is a viewer and may not generate") as caught:
        team.require(viewer, team.Op.SPEND)
    assert "needs the member role" in caught.value.user_text()
    with pytest.raises(NotAllowed, match="it is ann@example.com's") as caught:
        team.require(Actor("zoe@example.com", Role.MEMBER), team.Op.CURATE, owner=ANN.id)
    assert "Only an admin" in caught.value.user_text()
    assert team.allowed(Actor("ana@example.com", Role.ADMIN), team.Op.CURATE, owner=ANN.id)
    assert team.local().role == Role.ADMIN and team.local().id.startswith("local:")


# --- every role x operation, in the service ------------------------------------------------------
@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Made once for the file, on one emulator: a teammate's (Ann's) finished run, her sweep of three
    tolerances (two blocked cells) and her board, in a data directory each test gets a copy of."""
    config = EmulatorConfig(latency_s=0.02, latency_spread_s=0.0, queue_s=0.0, random_seed=7)
    server = EmulatorServer(config).start()
    folder = tmp_path_factory.mktemp("team") / "data"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SEGMIND_BASE_URL", server.url)
        env.setenv("SEGMIND_RPM", "0")
        wb = Workbench(folder, api_key=TEST_KEY, emulator="never", background=False)
        ann = wb.acting(ANN)
        (run,) = ann.wait([ann.submit(FluxParams(prompt="a teapot", width=512, height=512, seed=1))])
        plan = sweeps.make_plan(
            FluxParams(prompt="a sword on a table", width=512, height=512, seed=1),
            [sweeps.axis("safety_tolerance", [0, 1, 2])],  # 0 and 1 block the sword, 2 lets it through
        )
        sweep_id = ann.start_sweep(plan)
        view = wb.sweep(sweep_id)
        assert view is not None
        ann.wait([c.run.id for c in view.cells])
        board = ann.create_board("Ann's picks", [run.id])
        wb.shutdown(wait=True)
    ids = {"run": run.id, "sweep": sweep_id, "board": board.id, "cells": [c.run.id for c in view.cells]}
    yield server, folder, ids
    server.stop()


@pytest.fixture
def lab(made, monkeypatch, data_dir):
    """A workbench on a copy of `made`'s data directory and on its emulator: (workbench, emulator, ids)."""
    server, folder, ids = made
    shutil.copytree(folder, data_dir, dirs_exist_ok=True)
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_RPM", "0")
    wb = Workbench(data_dir, api_key=TEST_KEY, emulator="never", background=False)
    yield wb, server, ids
    wb.shutdown(wait=True)


def _counts(wb: Workbench, server) -> tuple:
    with wb.ledger.db() as db:
        tables = [
            db[t].count for t in ("runs", "actions", "votes", "boards", "board_runs", "presets", "sweeps")
        ]
        curation = db.execute(
            "SELECT group_concat(favourite || rating || notes || tags_json) FROM runs"
        ).fetchone()
        trash = db.execute("SELECT COUNT(*) FROM runs WHERE deleted_at IS NOT NULL").fetchone()[0]
    return (*tables, curation, trash, server.stats.submit_requests, server.stats.uploads)


def _own_run(wb: Workbench, who: Actor) -> str:
    """A finished run of `who`'s own, as the ledger holds one (made while they could spend)."""
    base_url = wb.backend(None).connection.base_url
    return wb.ledger.record_run(
        FluxParams(prompt=f"{who.id}'s lamp"),
        "COMPLETED",
        backend="segmind",
        base_url=base_url,
        created_by=who.id,
    )


PNG = (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png")

# (operation, its least role, what it does: (handle, ids, own run) -> anything)
OPERATIONS = [
    ("submit", Role.MEMBER, lambda w, i, own: w.submit(FluxParams(prompt="x", width=512, height=512))),
    ("submit_many", Role.MEMBER, lambda w, i, own: w.submit_many(FluxParams(prompt="x"), 2)),
    (
        "submit with references",
        Role.MEMBER,
        lambda w, i, own: w.submit(FluxParams(prompt="x"), references=[PNG]),
    ),
    ("upload", Role.MEMBER, lambda w, i, own: w.upload([PNG])),
    ("rerun", Role.MEMBER, lambda w, i, own: w.rerun(i["run"], vary_seed=True)),
    ("one-click fix", Role.MEMBER, lambda w, i, own: w.rerun(i["run"], overrides={"safety_tolerance": 3})),
    (
        "start a sweep",
        Role.MEMBER,
        lambda w, i, own: w.start_sweep(
            sweeps.make_plan(FluxParams(prompt="x", width=512, height=512), [sweeps.axis("seed", [5, 6])])
        ),
    ),
    ("retry failed cells", Role.MEMBER, lambda w, i, own: w.retry_failed(i["sweep"])),
    (
        "start a seed hunt",
        Role.MEMBER,
        lambda w, i, own: w.start_hunt(
            FluxParams(prompt="x", width=256, height=256),
            checks=["distinct"],
            hits=1,
            seeds="1-2",
            drive=False,
        ),
    ),
    (
        "retry a cell",
        Role.MEMBER,
        lambda w, i, own: w.retry_cell(
            i["sweep"], next(c.idx for c in w.sweep(i["sweep"]).cells if c.run.status == "BLOCKED")
        ),
    ),
    ("resume", Role.MEMBER, lambda w, i, own: w.resume()),
    ("vote", Role.VIEWER, lambda w, i, own: w.vote(i["sweep"], *i["cells"][:2])),
    ("curate one's own", Role.MEMBER, lambda w, i, own: w.curate(own, rating=5, notes="mine")),
    ("curate someone else's", Role.ADMIN, lambda w, i, own: w.curate(i["run"], favourite=True)),
    (
        "tag many, someone else's",
        Role.ADMIN,
        lambda w, i, own: w.curate_many([own, i["run"]], add_tags=["x"]),
    ),
    ("tag many, one's own", Role.MEMBER, lambda w, i, own: w.curate_many([own], add_tags=["x"])),
    ("boards of one's own run", Role.MEMBER, lambda w, i, own: w.set_boards(own, ["Mine"])),
    ("boards of someone else's run", Role.ADMIN, lambda w, i, own: w.set_boards(i["run"], [])),
    ("delete one's own", Role.MEMBER, lambda w, i, own: w.delete([own])),
    ("delete someone else's", Role.ADMIN, lambda w, i, own: w.delete([i["run"]])),
    ("restore someone else's", Role.ADMIN, lambda w, i, own: w.restore([i["run"]])),
    ("purge the trash", Role.ADMIN, lambda w, i, own: w.purge()),
    ("create a board", Role.MEMBER, lambda w, i, own: w.create_board(f"New of {w.actor.id}")),
    ("rename someone else's board", Role.ADMIN, lambda w, i, own: w.rename_board(i["board"], "Taken")),
    ("add to someone else's board", Role.ADMIN, lambda w, i, own: w.add_to_board(i["board"], [own])),
    (
        "take off someone else's board",
        Role.ADMIN,
        lambda w, i, own: w.remove_from_board(i["board"], [i["run"]]),
    ),
    ("delete someone else's board", Role.ADMIN, lambda w, i, own: w.delete_board(i["board"])),
    ("rename someone else's sweep", Role.ADMIN, lambda w, i, own: w.rename_sweep(i["sweep"], "mine now")),
    ("save a preset", Role.MEMBER, lambda w, i, own: w.save_preset("Square", width=1024, height=1024)),
    ("delete a preset", Role.MEMBER, lambda w, i, own: w.delete_preset("Square")),
    ("import Segmind's history", Role.ADMIN, lambda w, i, own: w.import_history(days=1)),
    ("set the spend caps", Role.ADMIN, lambda w, i, own: w.set_caps(team_day=100)),
    ("look up credits", Role.MEMBER, lambda w, i, own: w.credits()),
    ("check the key", Role.MEMBER, lambda w, i, own: w.key_check()),
    ("settle real costs", Role.MEMBER, lambda w, i, own: w.settle_costs()),
    # reading: everyone let in
    ("find", Role.VIEWER, lambda w, i, own: w.recent() and w.runs([i["run"]]) and w.sweep(i["sweep"])),
    ("export", Role.VIEWER, lambda w, i, own: w.export_zip([i["run"]])),
    ("copy as code", Role.VIEWER, lambda w, i, own: w.snippet(i["run"], "curl")),
    ("spend so far", Role.VIEWER, lambda w, i, own: w.spend()),
    ("activity", Role.VIEWER, lambda w, i, own: w.activity(i["run"])),
]


@pytest.mark.parametrize("name, least, action", OPERATIONS, ids=[o[0] for o in OPERATIONS])
def test_every_role_and_operation(lab, name, least, action):
    """Each role in turn, the lowest first (so what a higher role is allowed to change comes after
    the lower roles' refusals): allowed from `least` up, and below it a NotAllowed that names the
    person, with nothing written and nothing sent."""
    wb, server, ids = lab
    for role in Role:
        who = Actor(f"{role.label}@example.com", role, signed_in=True)
        own = _own_run(wb, who)
        handle = wb.acting(who)
        before = _counts(wb, server)
        if role >= least:
            action(handle, ids, own)
            continue
        with pytest.raises(NotAllowed, match=f"{who.id}"):
            action(handle, ids, own)
        assert _counts(wb, server) == before, role  # nothing written, nothing sent


def test_a_viewers_look_at_a_runs_real_cost_never_uses_the_team_key(lab):
    wb, server, ids = lab
    with wb.ledger.write() as db:
        db.execute("UPDATE runs SET cost_usd = NULL WHERE id = ?", [ids["run"]])
    reads = server.stats.history_requests
    row = wb.acting(Actor("kim@example.com", Role.VIEWER, signed_in=True)).real_cost(ids["run"])
    assert row.cost_usd is None and server.stats.history_requests == reads


# --- attribution ---------------------------------------------------------------------------------
def test_every_action_is_recorded_under_who_did_it(lab):
    wb, server, ids = lab
    ana = wb.acting(Actor("ana@example.com", Role.ADMIN, "Ana", signed_in=True))
    assert wb.run(ids["run"]).created_by == ANN.id and wb.sweep(ids["sweep"]).created_by == ANN.id
    assert wb.board(ids["board"]).created_by == ANN.id
    with zipfile.ZipFile(io.BytesIO(wb.export_zip([ids["run"]]))) as exported:
        (entry,) = json.loads(exported.read("manifest.json"))["runs"]
        assert entry["created_by"] == ANN.id and "ann@example.com" in exported.read("runs.csv").decode()
    ana.curate(ids["run"], favourite=True, rating=4, notes="keep", tags=["final"])
    ana.curate(ids["run"], rating=4)  # unchanged: nothing more is recorded
    ana.set_boards(ids["run"], [])
    ana.delete([ids["run"]])
    ana.restore([ids["run"]])
    words = [a.words() for a in wb.activity(ids["run"])]
    assert words == [
        "ann@example.com put it on the board Ann's picks",
        "ana@example.com marked it a favourite",
        "ana@example.com rated it 4",
        "ana@example.com changed the notes",
        "ana@example.com set the tags to final",
        "ana@example.com took it off the board Ann's picks",
        "ana@example.com deleted it",
        "ana@example.com restored it",
    ]
    ana.delete([ids["run"]])
    assert ana.purge([ids["run"]]) == 1
    assert wb.run(ids["run"]) is None
    assert wb.activity(ids["run"])[-1].words() == "ana@example.com purged it"  # the record outlives the run


def test_votes_are_one_per_signed_in_person_per_pair(lab):
    wb, server, ids = lab
    first, second = ids["cells"][:2]
    bob = wb.acting(Actor("bob@example.com", Role.VIEWER, signed_in=True))
    bob.vote(ids["sweep"], first, second)
    bob.vote(ids["sweep"], second, first)  # he changed his mind: the new vote replaces the old
    bob.vote(ids["sweep"], first, second, voter="Somebody Else")  # a typed name is ignored once signed in
    ann = wb.acting(ANN)
    ann.vote(ids["sweep"], second, first)
    with wb.ledger.db() as db:
        votes = sorted((r["voter"], r["winner_run_id"]) for r in db.query("SELECT * FROM votes"))
    assert votes == sorted([("bob@example.com", first), ("ann@example.com", second)])
    assert bob.voted_pairs(ids["sweep"]) == {frozenset((first, second))}
    with pytest.raises(Exception, match="two different cells"):
        bob.vote(ids["sweep"], first, "not-a-cell")


def test_without_sign_in_a_demo_votes_under_typed_names_recorded_as_the_local_user(lab):
    wb, server, ids = lab
    first, second = ids["cells"][:2]
    wb.vote(ids["sweep"], first, second, voter="  Ana  ")
    wb.vote(ids["sweep"], second, first, voter="Bo")
    with wb.ledger.db() as db:
        assert sorted(r[0] for r in db.execute("SELECT voter FROM votes")) == ["Ana", "Bo"]
        actors = {r[0] for r in db.execute("SELECT actor FROM actions WHERE action = 'vote'")}
    assert actors == {wb.actor.id} and wb.actor.id.startswith("local:")


def test_history_filters_and_insights_break_down_by_person(lab):
    from flux_core.ledger import history

    wb, server, ids = lab
    zoe = wb.acting(Actor("zoe@example.com", Role.MEMBER, signed_in=True))
    zoe.wait([zoe.submit(FluxParams(prompt="zoe's cup", width=512, height=512))])
    assert wb.people() == ["ann@example.com", "zoe@example.com"]
    page = wb.find(history.Query(by="zoe@example.com"))
    assert [r.prompt for r in page.rows] == ["zoe's cup"]
    people = {p["person"]: p for p in wb.insights()["people"]}
    assert people["ann@example.com"]["runs"] == 4 and people["ann@example.com"]["images"] == 2  # two blocked
    assert people["zoe@example.com"]["runs"] == 1 and people["zoe@example.com"]["images"] == 1
    assert people["zoe@example.com"]["spend_usd"] == pytest.approx(D.EMULATOR_COST)  # the real cost
