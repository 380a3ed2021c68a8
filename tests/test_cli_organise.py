"""`flux-lab board …`, `flux-lab curate …` and `flux-lab history --board`: boards and curation of
many runs from the command line."""

from __future__ import annotations

import json

from flux_core.cli import main
from flux_core.ledger import store
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def seeded(data_dir, prompts=("a teapot", "a red cube", "a green tree")) -> list[str]:
    ledger = Ledger(data_dir / "ledger.db")
    return [
        ledger.record_run(
            FluxParams.parse(prompt=p, seed=i), store.COMPLETED, backend="emulator", base_url="http://x"
        )
        for i, p in enumerate(prompts)
    ]


def test_boards_from_create_to_delete(capsys, data_dir):
    teapot, cube, tree = seeded(data_dir)
    code, out, err = cli(capsys, "board", "create", " Client picks ")
    assert code == 0 and "Created board 'Client picks'" in out, err
    code, out, _ = cli(capsys, "board", "add", "client picks", teapot, tree)
    assert code == 0 and "2 run(s) added, 2 on it" in out
    code, out, _ = cli(capsys, "history", "--board", "Client picks", "--json")
    assert [json.loads(line)["run_id"] for line in out.splitlines()] == [tree, teapot]
    code, out, _ = cli(capsys, "board", "remove", "Client picks", tree, "--json")
    assert json.loads(out)["runs"] == 1
    code, out, _ = cli(capsys, "board", "rename", "Client picks", "Final")
    assert code == 0 and "'Final'" in out
    code, out, _ = cli(capsys, "board", "add", "Second", cube, "--create")
    assert code == 0 and "1 run(s) added, 1 on it" in out
    code, out, _ = cli(capsys, "board", "list", "--json")
    assert [(b["name"], b["runs"]) for b in json.loads(out)] == [("Final", 1), ("Second", 1)]
    code, out, _ = cli(capsys, "board", "delete", "final")
    assert code == 0 and "its 1 run(s) stay" in out
    code, out, _ = cli(capsys, "history", "--json")
    assert len(out.splitlines()) == 3  # the runs stay


def test_a_bad_board_command_is_one_line_exit_2_and_changes_nothing(capsys, data_dir):
    [teapot] = seeded(data_dir, ["a teapot"])
    cli(capsys, "board", "create", "Picks")
    for argv, words in [
        (("board", "create", "PICKS"), "a board named 'Picks' exists already"),
        (("board", "create", "  "), "board name: must not be empty"),
        (("board", "create", "x" * 61), "board name: at most 60 characters"),
        (("board", "add", "Nope", teapot), "there is no board named 'Nope'"),
        (("board", "add", "Picks", teapot, "NOPE"), "There is no run 'NOPE'"),
        (("history", "--board", "Nope"), "there is no board named 'Nope'"),
    ]:
        code, out, err = cli(capsys, *argv)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, (argv, err)
        assert "Traceback" not in err and out == ""
    code, out, _ = cli(capsys, "board", "list", "--json")
    assert [(b["name"], b["runs"]) for b in json.loads(out)] == [("Picks", 0)]


def test_curate_many_runs_at_once(capsys, data_dir):
    teapot, cube, _ = seeded(data_dir)
    code, out, err = cli(
        capsys,
        "curate",
        teapot,
        cube,
        "--add-tag",
        "warm",
        "--add-tag",
        "final",
        "--rating",
        "4",
        "--favourite",
    )
    assert code == 0 and "Curated 2 run(s)" in err
    code, out, _ = cli(capsys, "curate", cube, "--remove-tag", "warm", "--no-favourite", "--json")
    [shown] = [json.loads(line) for line in out.splitlines()]
    assert (shown["tags"], shown["rating"], shown["favourite"]) == (["final"], 4, False)
    code, out, _ = cli(capsys, "history", "--search", "warm", "--json")
    assert [json.loads(line)["run_id"] for line in out.splitlines()] == [teapot]


def test_a_bad_curate_names_the_field_and_changes_nothing(capsys, data_dir):
    [teapot] = seeded(data_dir, ["a teapot"])
    for argv, words in [
        (("curate", teapot, "--rating", "9"), "rating: a whole number from 1 to 5 (got 9)"),
        (("curate", teapot), "nothing to change"),
        (("curate", teapot, "NOPE", "--rating", "3"), "There is no run 'NOPE'"),
        (("curate", teapot, "--favourite", "--no-favourite"), "not allowed with argument"),
    ]:
        code, _, err = cli(capsys, *argv)
        assert code == 2 and words in err and "Traceback" not in err, (argv, err)
    row = Ledger(data_dir / "ledger.db").get(teapot)
    assert row is not None and (row.rating, row.favourite) == (None, 0)
