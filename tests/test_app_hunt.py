"""AppTest of the seed hunt on the Compare page: the form names what is wrong, Start hunt runs one on
the app's emulator, and the sweep page shows its hits, misses, hit rate and cost per hit, hits marked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core.emulator import render

APP = str(Path(__file__).resolve().parents[1] / "app.py")
POSTER = "A poster with the words 'FLUX LAB' and the headline 'Seed Hunt' in red and navy"
pytestmark = pytest.mark.usefixtures("fast_app")


def hunt_form(prompt: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("pages/compare.py")
    at.run()
    at.segmented_control(key="compare_mode").set_value("Seed hunt")
    at.text_area(key="compare_prompt").set_value(prompt)
    at.number_input(key="compare_width").set_value(256)
    at.number_input(key="compare_height").set_value(256)
    at.run()
    assert not at.exception
    return at


def texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("info", "error", "text", "caption") for e in getattr(at, kind))


def test_a_hunt_the_prompt_cannot_pass_is_named_and_offers_no_start():
    at = hunt_form("a plain grey cube **bold**")
    at.text_input(key="compare_hunt_seeds").set_value("1-5,x")
    at.run()
    said = texts(at)
    assert "check text: the prompt asks for no text" in said and "seeds: 'x' is not a whole number" in said
    assert not [b for b in at.button if b.key == "compare_hunt_start"]
    bench = at.session_state["workbench"]
    assert bench.recent_sweeps() == []  # nothing was written


def test_start_hunt_runs_to_its_hits_and_the_page_shows_them_marked():
    at = hunt_form(POSTER)
    at.number_input(key="compare_hunt_hits").set_value(2)
    at.text_input(key="compare_hunt_seeds").set_value("1-20")
    at.run()
    assert "It stops submitting at 2 hit(s): the text all right." in texts(at)
    at.button(key="compare_hunt_start").click()
    at.run()
    hunt_id = at.query_params["sweep"]
    hunt_id = hunt_id[0] if isinstance(hunt_id, list) else hunt_id
    bench = at.session_state["workbench"]
    bench._live.hunts[hunt_id].join(60)  # the hunt's own thread, driving it to its end
    at.run()
    assert not at.exception
    found = bench.hunt(hunt_id)
    assert found.state == "done" and found.hits >= 2
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Hits (2 wanted)"] == str(found.hits) and metrics["Misses"] == str(found.misses)
    assert metrics["Cost per hit"].startswith("$") and metrics["Hit rate"].endswith("%")
    assert "Done: enough hits." in texts(at)
    [grid] = [e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.sweep_grid"]
    badges = {c["label"]: c["badge"] for c in json.loads(grid.proto.json)["cells"]}
    for cell in found.sweep.cells:  # every cell marked as the emulator's answer key says
        want = "miss" if render.truth(POSTER, cell.run.seed).misspelt else "HIT"
        assert badges[f"seed {cell.run.seed}"] == want
    # the saved sweeps' cards name it a hunt
    at.button(key="compare_new").click()
    at.run()
    assert any(t.value.startswith("Seed hunt · ") for t in at.text)


def test_a_name_too_long_is_said_when_start_is_pressed_and_nothing_starts():
    at = hunt_form(POSTER)
    at.text_input(key="compare_name").set_value("*" * 81)
    at.run()
    at.button(key="compare_hunt_start").click()
    at.run()
    assert not at.exception
    assert "The hunt was not started:" in texts(at)
    assert "• name: at most 80 characters (got 81)" in [t.value for t in at.text]
    assert at.session_state["workbench"].recent_sweeps() == []


def hunt_of(data_dir: Path) -> tuple[dict, dict[int, bool]]:
    """A data directory's one hunt: what was asked (its server aside) and each judged seed's verdict."""
    from flux_core.ledger import hunts
    from flux_core.ledger.store import Ledger

    ledger = Ledger(data_dir / "ledger.db")
    with ledger.db() as db:
        [hunt_id] = [r[0] for r in db.execute("SELECT sweep_id FROM hunts")]
    row = hunts.load(ledger, hunt_id)
    spec = {k: v for k, v in row.spec.items() if k not in ("base_url", "key_id")}
    return spec, {ledger.get(r.run_id).seed: r.hit for r in row.results}


def test_a_hunt_asks_the_same_and_judges_alike_from_the_cli_and_from_compare(tmp_path, monkeypatch, capsys):
    from flux_core.cli import main

    web, cli = tmp_path / "web", tmp_path / "cli"
    monkeypatch.setenv("FLUX_LAB_DATA", str(web))
    at = hunt_form(POSTER)
    at.number_input(key="compare_hunt_hits").set_value(2)
    at.text_input(key="compare_hunt_seeds").set_value("1-20")
    at.number_input(key="compare_hunt_max_images").set_value(20)
    at.run()
    at.button(key="compare_hunt_start").click()
    at.run()
    bench = at.session_state["workbench"]
    for thread in list(bench._live.hunts.values()):
        thread.join(60)

    code = main(
        ["--data-dir", str(cli), "hunt", "--emulator", "--prompt", POSTER, "--seeds", "1-20", "--hits", "2"]
        + ["--check", "text", "--max-images", "20", "--width", "256", "--height", "256", "--json"]
    )
    assert code == 0, capsys.readouterr().err
    (asked_web, judged_web), (asked_cli, judged_cli) = hunt_of(web), hunt_of(cli)
    assert asked_web == asked_cli and asked_cli["seeds"][:3] == [1, 2, 3]
    both = set(judged_web) & set(judged_cli)
    assert {1, 2, 3, 4} <= both  # the first batch, the same seeds from both
    assert {s: judged_web[s] for s in both} == {s: judged_cli[s] for s in both}
