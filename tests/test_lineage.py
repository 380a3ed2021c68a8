"""Prompt lineage (issue 17, part 4): the ledger's links between runs, the service's paths that
make a run from another, version names and the pinned best."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlite_utils import Database

from flux_core import defaults as D
from flux_core.ledger import actions, lineage, store, sweeps
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams, ParamsError
from flux_core.service import Workbench
from flux_core.team import Actor, Role
from flux_core.errors import NotAllowed, UnknownRun
from tests.conftest import TEST_KEY

NEW_COLUMNS = {"parent_run_id", "lineage", "version_name", "pinned"}


def params(prompt: str = "a red cube on a table", **kw) -> FluxParams:
    return FluxParams.parse(prompt=prompt, seed=kw.pop("seed", 5), **kw)


def made(ledger: Ledger, prompt: str, came_from: tuple[str, str] | None = None, **kw) -> str:
    return ledger.create_run(
        params(prompt, **kw), backend="emulator", base_url="http://e", came_from=came_from
    )


# --- the ledger --------------------------------------------------------------------------------
def test_the_migration_adds_the_columns_to_a_ledger_with_runs_and_reads_the_old_notes(data_dir):
    path = data_dir / D.DB_NAME
    db = Database(sqlite3.connect(path))
    store.migrations.apply(db, stop_before="0016_lineage")
    rows = []
    for prompt in ("a red cube", "a blue cube", "a green cube"):
        row = store._run_row(params(prompt), "emulator", "http://e", False, None, None, None, "m")
        for column in ("parent_run_id", "lineage"):
            row.pop(column)
        db.table("runs").insert(row)
        db.table("run_events").insert(
            {"run_id": row["id"], "at": row["created_at"], "status": "CREATED", "detail": None}
        )
        rows.append(row["id"])
    parent, child, other = rows
    db.table("run_events").insert(
        {
            "run_id": child,
            "at": store.now_iso(),
            "status": "CREATED",
            "detail": f"Run again from run {parent} with safety_tolerance 5.",
        }
    )
    db.conn.close()

    ledger = Ledger(path)  # migrates to the newest schema

    with ledger.db() as db:
        assert NEW_COLUMNS <= {c.name for c in db["runs"].columns}
        assert "runs_parent" in {i.name for i in db["runs"].indexes}
    kid, unrelated = ledger.get(child), ledger.get(other)
    assert kid is not None and unrelated is not None
    assert (kid.parent_run_id, kid.lineage) == (parent, "edit")
    assert (unrelated.parent_run_id, unrelated.lineage, unrelated.pinned) == (None, None, False)
    assert [r.id for r in lineage.ancestors(ledger, child)] == [parent]


def test_ancestors_descendants_and_the_tree(data_dir):
    ledger = Ledger(data_dir / D.DB_NAME)
    root = made(ledger, "a red cube")
    a = made(ledger, "a red cube, small", (root, "edit"))
    b = made(ledger, "a red cube", (root, "seed"), seed=9)
    a1 = made(ledger, "a tiny red cube, small", (a, "edit"))
    a1x = made(ledger, "a tiny red cube, small", (a1, "rerun"))

    assert [r.id for r in lineage.ancestors(ledger, a1x)] == [root, a, a1]
    assert [r.id for r in lineage.descendants(ledger, root)] == [a, b, a1, a1x]
    assert lineage.ancestors(ledger, root) == [] and lineage.descendants(ledger, a1x) == []

    tree = lineage.tree(ledger, a)
    assert tree.root == root and tree.focus == a
    assert tree.children == {root: (a,), a: (a1,), a1: (a1x,)}  # b, a sibling, is left out
    assert [(node, depth) for node, depth in tree.walk()] == [(root, 0), (a, 1), (a1, 2), (a1x, 3)]
    assert tree.edges[a].kind == "edit"
    assert tree.edges[a].diff == (("same", "a red cube"), ("ins", ", small"))
    assert ("ins", " tiny") in tree.edges[a1].diff and tree.edges[a1].changed == ()
    assert lineage.tree(ledger, b).edges[b].changed == (("seed", 5, 9),)
    assert lineage.tree(ledger, b).edges[b].words() == "seed 5 → 9"


def test_a_purged_parent_ends_the_chain(data_dir):
    ledger = Ledger(data_dir / D.DB_NAME)
    root = made(ledger, "a red cube")
    child = made(ledger, "a blue cube", (root, "edit"))
    with ledger.write() as db:
        db.execute("DELETE FROM run_events WHERE run_id = ?", [root])
        db.execute("DELETE FROM runs WHERE id = ?", [root])
    tree = lineage.tree(ledger, child)
    assert tree.root == child and tree.edges == {} and ledger.get(child).parent_run_id == root


def test_pinning_another_run_of_the_tree_unpins_the_first(data_dir):
    ledger = Ledger(data_dir / D.DB_NAME)
    root = made(ledger, "a red cube")
    a = made(ledger, "a red cube, small", (root, "edit"))
    b = made(ledger, "a red cube, large", (root, "edit"))
    elsewhere = made(ledger, "a teapot")
    lineage.pin(ledger, elsewhere, actor="ana")
    assert lineage.pin(ledger, a, actor="ana") is None
    assert lineage.pin(ledger, b, actor="bob") == a
    pinned = {r.id: r.pinned for r in ledger.get_many([root, a, b, elsewhere])}
    assert pinned == {root: False, a: False, b: True, elsewhere: True}  # another tree keeps its own
    assert lineage.tree(ledger, a).pinned == b
    assert [(x.actor, x.action) for x in actions.of_run(ledger, a)] == [("ana", "pin"), ("bob", "unpin")]
    assert lineage.pin(ledger, b, actor="bob", pinned=False) == b
    assert not ledger.get(b).pinned and lineage.tree(ledger, root).pinned is None


@pytest.mark.parametrize(
    "name, problem",
    [
        ("   ", "version name: must not be empty"),
        (
            "x" * (D.VERSION_NAME_MAX_CHARS + 1),
            f"version name: at most {D.VERSION_NAME_MAX_CHARS} characters",
        ),
        ("two\nlines", "version name: one line of text"),
    ],
)
def test_a_bad_version_name_names_the_field_and_changes_nothing(data_dir, name, problem):
    ledger = Ledger(data_dir / D.DB_NAME)
    run = made(ledger, "a red cube")
    lineage.name(ledger, run, "  v1 – first  ", actor="ana")
    with pytest.raises(ParamsError, match=problem):
        lineage.name(ledger, run, name, actor="ana")
    assert ledger.get(run).version_name == "v1 – first"
    assert [x.words() for x in actions.of_run(ledger, run)] == ["ana named this version v1 – first"]


# --- the service: every path that makes a run from another records it -------------------------
@pytest.fixture
def bench(emulator, monkeypatch, data_dir):
    server = emulator(latency_s=0.05, queue_s=0.02)
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_RPM", "0")
    wb = Workbench(data_dir, api_key=TEST_KEY, emulator="never", background=False)
    yield wb
    wb.shutdown(wait=True)


def came_from(wb: Workbench, run_id: str) -> tuple[str | None, str | None]:
    row = wb.run(run_id)
    assert row is not None
    return row.parent_run_id, row.lineage


def test_each_path_records_its_parent_and_kind(bench):
    first = bench.submit(params())
    assert came_from(bench, first) == (None, None)
    bench.wait([first])
    same = bench.rerun(first)
    seed = bench.rerun(first, vary_seed=True)
    changed = bench.rerun(first, overrides={"safety_tolerance": 5})
    recalled = bench.submit_many(params(), 2, parent=first)
    edited = bench.submit_many(params("a red cube on a chair"), 1, parent=first)
    probe = bench.probe(first, confirmed=True)
    assert came_from(bench, same) == (first, "rerun")
    assert came_from(bench, seed) == (first, "seed")
    assert came_from(bench, changed) == (first, "edit")
    assert [came_from(bench, r) for r in recalled] == [(first, "recall")] * 2
    assert came_from(bench, edited[0]) == (first, "edit")
    assert came_from(bench, probe) == (first, "probe")
    bench.wait([same, seed, changed, *recalled, *edited, probe])


def test_a_sweep_from_a_base_run_makes_its_new_cells_the_runs_children(bench):
    base = bench.submit(params())
    bench.wait([base])
    plan = sweeps.make_plan(params(), [sweeps.axis("seed", [5, 6, 7])])
    sweep_id = bench.start_sweep(plan, parent=base)
    view = bench.sweep(sweep_id)
    assert view is not None
    by_reuse = {c.run.id: c.reused for c in view.cells}
    kinds = {r: came_from(bench, r) for r in by_reuse}
    assert by_reuse[base] and kinds[base] == (None, None)  # seed 5 is the base itself, reused
    assert [k for r, k in kinds.items() if not by_reuse[r]] == [(base, "sweep")] * 2
    bench.wait(list(by_reuse))


def test_an_unknown_parent_is_refused_before_anything_is_written(bench):
    with pytest.raises(UnknownRun):
        bench.submit_many(params(), 1, parent="01NOSUCHRUN")
    with pytest.raises(UnknownRun):
        bench.start_sweep(sweeps.make_plan(params(), [sweeps.axis("seed", [1])]), parent="01NOSUCHRUN")
    assert bench.recent() == []


def test_a_run_rerun_twice_with_edits_is_a_chain_of_three_with_both_diffs(bench):
    first = bench.submit(params("a red cube on a table"))
    second = bench.submit(params("a red cube on a wooden table"), parent=first)
    third = bench.submit(params("a blue cube on a wooden table", safety_tolerance=4), parent=second)
    bench.wait([first, second, third])
    tree = bench.lineage(second)
    assert tree.root == first and [n for n, _ in tree.walk()] == [first, second, third]
    assert tree.edges[second].kind == tree.edges[third].kind == "edit"
    assert ("ins", " wooden") in tree.edges[second].diff
    assert ("del", " red") in tree.edges[third].diff and ("ins", " blue") in tree.edges[third].diff
    assert tree.edges[third].changed == (("safety_tolerance", 3, 4),)


def test_naming_and_pinning_go_through_the_role_rule_and_are_recorded(bench):
    run = bench.submit(params())
    bench.wait([run])
    viewer = bench.acting(Actor("vic@example.com", Role.VIEWER))
    with pytest.raises(NotAllowed):
        viewer.name_version(run, "v1")
    with pytest.raises(NotAllowed):
        viewer.pin(run)
    member = bench.acting(Actor("mia@example.com", Role.MEMBER))
    assert member.name_version(run, " v3 – tighter headline ") == "v3 – tighter headline"
    member.pin(run)
    row = bench.run(run)
    assert row is not None and row.version_name == "v3 – tighter headline" and row.pinned
    assert [(a.actor, a.action) for a in bench.activity(run)] == [
        ("mia@example.com", "version"),
        ("mia@example.com", "pin"),
    ]
    with pytest.raises(ParamsError, match="version name"):
        member.name_version(run, "")
    with pytest.raises(UnknownRun):
        member.pin("01NOSUCHRUN")


# --- the CLI -----------------------------------------------------------------------------------
def cli(capsys, *argv: str) -> tuple[int, str, str]:
    from flux_core.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def chain(data_dir) -> list[str]:
    ledger = Ledger(data_dir / D.DB_NAME)
    first = made(ledger, "a red cube on a table")
    second = made(ledger, "a red cube on a wooden table", (first, "edit"))
    third = made(ledger, "a blue cube on a wooden table", (second, "edit"), safety_tolerance=4)
    return [first, second, third]


def test_cli_lineage_json_agrees_with_the_service(capsys, data_dir):
    first, second, third = chain(data_dir)
    code, out, err = cli(capsys, "lineage", second, "--json")
    assert code == 0, err
    shown = json.loads(out)
    wb = Workbench(data_dir, emulator="never", background=False)
    assert shown == json.loads(json.dumps(wb.lineage(second).public()))
    wb.shutdown()
    assert [n["run_id"] for n in shown["nodes"]] == [first, second, third]
    assert shown["nodes"][2]["changed"] == {"safety_tolerance": [3, 4]}
    assert ["ins", " wooden"] in shown["nodes"][1]["diff"]

    code, out, _ = cli(capsys, "lineage", third)
    assert code == 0
    assert "via edit: a red cube on a {+wooden+} table" in out
    assert "via edit: a [-red-] {+blue+} cube on a wooden table" in out
    assert "safety_tolerance 3 → 4" in out and f"{third}  a blue cube" in out and "← this run" in out


def test_cli_version_names_and_pins_and_show_json_carries_it(capsys, data_dir):
    first, second, third = chain(data_dir)
    code, out, err = cli(capsys, "version", second, "--name", "v2 – wood", "--pin")
    assert code == 0 and "is named 'v2 – wood' is pinned" in out, err
    code, out, _ = cli(capsys, "version", third, "--pin")
    assert code == 0 and f"(run {second} is unpinned)" in out
    code, out, _ = cli(capsys, "show", second, "--json")
    shown = json.loads(out)
    assert (shown["parent_run_id"], shown["lineage"], shown["version_name"], shown["pinned"]) == (
        first,
        "edit",
        "v2 – wood",
        False,
    )
    code, out, err = cli(capsys, "version", third, "--name", " ")
    assert code == 2 and "version name: must not be empty" in err and "Nothing was changed" in err
    code, _, err = cli(capsys, "version", third)
    assert code == 2 and "give --name NAME, --pin or --unpin" in err
    code, _, err = cli(capsys, "lineage", "NOPE")
    assert code == 2 and "There is no run 'NOPE'" in err
