"""AppTest of the checks where people see them: Compose's check lines, swatches and the determinism
probe, Compare's best seed and diversity, History's check sorts, filter and cards. The results are
inserted in the ledger (flux_core.ledger.checks.save), never computed here."""

from __future__ import annotations


import pytest
from streamlit.testing.v1 import AppTest

from flux_core import defaults as D
from flux_core.checks.worker import Checker
from flux_core.ledger import checks
from flux_core.params import FluxParams
from tests.test_app import finish_current, generate, start, texts
from tests.test_app_history import cards

pytestmark = pytest.mark.usefixtures("fast_app")


@pytest.fixture(autouse=True)
def checks_that_never_land(monkeypatch):
    """The background checker is on but never checks: the results a test inserts are the only ones."""
    monkeypatch.setenv(D.CHECKS_ENV, "1")
    monkeypatch.setattr(Checker, "once", lambda self: 0)


def text_result(score, expected, misspelt=(), missing=(), read_as=None):
    found = [e for e in expected if e not in misspelt and e not in missing]
    return {
        "score": score,
        "expected": list(expected),
        "found": found,
        "misspelt": list(misspelt),
        "missing": list(missing),
        "read_as": dict(read_as or {}),
    }


def palette_result(score, names=("red", "teal"), hexes=("#ff0000", "#008080")):
    return {
        "score": score,
        "expected": list(names),
        "expected_hex": list(hexes),
        "found": ["#fe0101", "#118080"],
        "found_shares": [0.6, 0.4],
        "matched": list(names),
        "missing": [],
        "distance": {n: 1.0 for n in names},
    }


def save_text(bench, run_id, result):
    checks.save(bench.ledger, run_id, checks.TEXT, 1, result["score"], result)


def save_palette(bench, run_id, result):
    checks.save(bench.ledger, run_id, checks.PALETTE, 1, result["score"], result)


def save_print(bench, run_id, phash):
    checks.save(bench.ledger, run_id, checks.PRINT, 1, None, {"score": None, "phash": phash})


def query(at, name: str) -> str:
    value = at.query_params[name]
    return value[0] if isinstance(value, list) else value


def shown_run(at) -> str:
    return query(at, "run")


# --- Compose ----------------------------------------------------------------------------------


def test_compose_says_checking_until_the_checks_are_in_then_shows_their_lines_as_text():
    at = generate(start(), "a magazine cover")
    finish_current(at)
    assert "Checking the image…" in texts(at)
    bench = at.session_state["workbench"]
    run_id = shown_run(at)
    save_text(
        bench,
        run_id,
        text_result(
            0.83,
            ["Women's Health", "The Workout", "**SAME**"],
            misspelt=["The Workout"],
            read_as={"The Workout": "The Wrkout"},
        ),
    )
    save_palette(bench, run_id, palette_result(0.91, names=("red <b>x</b>", "teal")))
    at.run()
    shown = texts(at)
    assert "Checking the image…" not in shown
    assert "text 2/3 right: 'The Workout' misspelt (read 'The Wrkout')" in [t.value for t in at.text]
    assert "palette 2/2 (0.91)" in [t.value for t in at.text]
    assert not [m for m in at.markdown if "SAME" in m.value]  # the prompt's words are never Markdown
    [swatch] = [h for h in at.get("html") if "fl-swatches" in h.proto.body]
    assert "red &lt;b&gt;x&lt;/b&gt;" in swatch.proto.body and "<b>x" not in swatch.proto.body
    assert "background:#ff0000" in swatch.proto.body and "60%" in swatch.proto.body


def test_with_the_checker_off_compose_says_so_and_checks_the_image_on_request(monkeypatch):
    monkeypatch.setenv(D.CHECKS_ENV, "0")
    at = generate(start(), "a poster with the words 'OPEN LATE' in red")
    finish_current(at)
    assert "The automatic image checks are off on this server (FLUX_LAB_CHECKS=0)." in texts(at)
    assert "Checking the image…" not in texts(at)
    at.button(key="compose_check_now").click().run()
    lines = [t.value for t in at.text]
    assert any(line.startswith(("text 1/1 right", "text 0/1 right")) for line in lines), lines
    assert any(line.startswith("palette") for line in lines), lines
    assert "The automatic image checks are off on this server (FLUX_LAB_CHECKS=0)." not in texts(at)


def test_compose_picks_up_the_checks_without_a_click():
    at = generate(start(), "a magazine cover")
    finish_current(at)
    [fragment_caption] = [c for c in at.caption if c.value == "Checking the image…"]
    assert fragment_caption  # drawn by the result part, which follows the ledger until the lines land
    bench = at.session_state["workbench"]
    save_text(bench, shown_run(at), text_result(1.0, ["SAME"]))
    at.run()  # what the part's own rerun does when the change feed tells it: drawn with the lines
    assert "text 1/1 right" in [t.value for t in at.text]


def test_check_reproducibility_asks_first_then_sends_the_same_request_and_waits_for_the_verdict():
    at = generate(start(), "a teapot")
    finish_current(at)
    bench = at.session_state["workbench"]
    run_id = shown_run(at)
    save_text(bench, run_id, text_result(1.0, ["SAME"]))
    at.run()
    button = at.button(key="compose_probe")
    assert button.disabled  # nothing is sent before the cost is accepted
    assert any("credit" in c.value or "$" in c.value or "USD" in c.value for c in at.caption)
    at.checkbox(key=f"compose_probe_ok_{run_id}").check()
    at.run()
    at.button(key="compose_probe").click()
    at.run()
    assert not at.exception
    found = bench.checks([run_id])[run_id][checks.REPRO]
    probe = found["probe_run_id"]
    assert probe and probe != run_id and found["verdict"] is None
    assert bench.run(probe).seed == bench.run(run_id).seed
    assert f"reproducibility: waiting for run {probe}" in [t.value for t in at.text]


# --- History ----------------------------------------------------------------------------------


def history_with_checks() -> tuple[AppTest, list[str]]:
    at = start()
    bench = at.session_state["workbench"]
    ids = [bench.submit(FluxParams.parse(prompt=f"cover {i}", seed=i + 1)) for i in range(3)]
    bench.default.runner.wait(ids)
    save_text(bench, ids[0], text_result(0.5, ["A", "B"], misspelt=["B"], read_as={"B": "8"}))
    save_text(bench, ids[1], text_result(1.0, ["A", "B"]))
    save_text(bench, ids[2], text_result(0.75, ["A", "B", "C", "D"], missing=["D"]))
    at.switch_page("pages/history.py")
    at.run()
    assert not at.exception
    return at, ids


def test_history_sorts_by_text_score_highest_first_and_cards_carry_the_check_lines():
    at, ids = history_with_checks()
    at.selectbox(key="h_sort").set_value("text score")
    at.run()
    shown = cards(at)
    assert [c["id"] for c in shown] == [ids[1], ids[2], ids[0]]
    assert shown[0]["checks"] == ["text 2/2 right"]
    assert shown[2]["checks"] == ["text 1/2 right: 'B' misspelt (read '8')"]


def test_history_filters_runs_whose_text_is_misspelt_or_missing():
    at, ids = history_with_checks()
    at.toggle(key="h_filters").set_value(True)
    at.run()
    at.selectbox(key="h_textcheck").set_value("misspelt or missing")
    at.run()
    assert {c["id"] for c in cards(at)} == {ids[0], ids[2]}
    at.selectbox(key="h_textcheck").set_value("all right")
    at.run()
    assert [c["id"] for c in cards(at)] == [ids[1]]


def test_history_run_panel_shows_its_check_lines():
    at, ids = history_with_checks()
    at.query_params["h_run"] = ids[2]
    at.run()
    assert "text 3/4 right: 'D' missing" in [t.value for t in at.text]


def test_a_viewer_sees_the_checks_but_no_reproducibility_button(data_dir):
    from flux_core.service import Workbench
    from tests.test_app_roles import ANN, KIM, page

    wb = Workbench.shared(data_dir)
    ann = wb.acting(ANN)
    (run,) = ann.wait([ann.submit(FluxParams(prompt="ann's teapot", width=512, height=512, seed=1))])
    save_text(wb, run.id, text_result(1.0, ["SAME"]))
    at = page(wb, KIM, "compose", run=run.id)
    assert "text 1/1 right" in [t.value for t in at.text]
    assert "compose_probe" not in {b.key for b in at.button if b.key}
    assert not [e for e in at.expander if e.label == "Check reproducibility"]
    member = page(wb, ANN, "compose", run=run.id)
    assert "compose_probe" in {b.key for b in member.button if b.key}


# --- Compare ----------------------------------------------------------------------------------


def compare_with_checks() -> tuple[AppTest, dict[tuple[int, int], str]]:
    """A 3-seed x 2-prompt sweep whose cells have checks: (variant, seed) -> run id."""
    from flux_core.ledger import sweeps

    at = start()
    bench = at.session_state["workbench"]
    sweep_id = bench.start_sweep(
        sweeps.make_plan(
            FluxParams(prompt="a cover", width=512, height=512),
            [sweeps.axis("seed", [3, 17, 40]), sweeps.axis("prompt", ["a red cover", "a blue cover"])],
        )
    )
    view = sweeps.load(bench.ledger, sweep_id)
    bench.default.runner.wait([c.run.id for c in view.cells])
    run_of = {(c.coords[1] + 1, c.run.seed): c.run.id for c in view.cells}
    expected = ["Women's Health", "The Workout", "SAME"]
    # variant 1: seed 3 has the highest text score but a misspelling; 17 is clean and best
    save_text(bench, run_of[1, 3], text_result(0.95, expected, misspelt=["SAME"], read_as={"SAME": "SANE"}))
    save_text(bench, run_of[1, 17], text_result(0.9, expected))
    save_palette(bench, run_of[1, 17], palette_result(0.91))
    save_text(bench, run_of[1, 40], text_result(0.9, expected))
    save_palette(bench, run_of[1, 40], palette_result(0.5))
    # prints: seeds 3 and 17 of variant 1 look alike (2 bits), 40 is far
    save_print(bench, run_of[1, 3], "0000000000000000")
    save_print(bench, run_of[1, 17], "0000000000000003")
    save_print(bench, run_of[1, 40], "ffffffffffffffff")
    # variant 2: all clean, seed 40 best by text
    for seed, score in ((3, 0.5), (17, 0.6), (40, 1.0)):
        save_text(bench, run_of[2, seed], text_result(score, expected))
    at.switch_page("pages/compare.py")
    at.query_params["sweep"] = sweep_id
    at.run()
    assert not at.exception
    return at, run_of


def test_compare_names_each_variants_best_seed_never_one_with_a_misspelling():
    at, _ = compare_with_checks()
    shown = [t.value for t in at.text]
    assert "Best seed for variant 1: 17 (text 3/3, palette 0.91)" in shown
    assert "Best seed for variant 2: 40 (text 3/3)" in shown


def test_compare_shows_each_variants_diversity_and_its_near_duplicates():
    at, _ = compare_with_checks()
    shown = [t.value for t in at.text]
    assert "seeds 3 and 17 look alike" in shown
    mean = (2 + 64 + 62) / 3 / 32
    assert f"Diversity for variant 1: {min(1.0, mean):.2f} (0: all alike, 1: all different)" in shown


def test_compare_colours_the_grid_by_a_check():
    from tests.test_app_compare import the_grid

    at, run_of = compare_with_checks()
    assert {c["badge"] for c in the_grid(at)["cells"]} == {""}  # "none": no badges
    at.segmented_control(key="compare_rank").set_value("text")
    at.run()
    cells = {c["idx"]: c for c in the_grid(at)["cells"]}
    bench = at.session_state["workbench"]
    by_run = {c.run.id: c.idx for c in bench.sweep(query(at, "sweep")).cells}
    assert (
        cells[by_run[run_of[2, 40]]]["badge"] == "text 1.00" and cells[by_run[run_of[2, 40]]]["tint"] == 1.0
    )
    assert cells[by_run[run_of[2, 3]]]["badge"] == "text 0.50"
    at.segmented_control(key="compare_rank").set_value("palette")
    at.run()
    cells = {c["idx"]: c for c in the_grid(at)["cells"]}
    assert cells[by_run[run_of[1, 17]]]["badge"] == "palette 0.91"
    assert cells[by_run[run_of[2, 40]]]["badge"] == ""  # no palette check: no badge


def test_the_ab_view_shows_both_images_check_lines_side_by_side():
    at, run_of = compare_with_checks()
    shown = [t.value for t in at.text]
    assert "text 2/3 right: 'SAME' misspelt (read 'SANE')" in shown  # A: the first done cell (seed 3)
    assert "text 3/3 right" in shown
    assert any(c.value == "A's checks" for c in at.caption) and any(
        c.value == "B's checks" for c in at.caption
    )


def test_a_six_seed_sweep_of_the_magazine_template_is_checked_and_compare_names_a_clean_best_seed(
    monkeypatch,
):
    """Issue 16's "done when", for real: the emulator's images, the real checks (not inserted)."""
    from flux_core.emulator.render import truth
    from flux_core.ledger import sweeps
    from flux_ui.templates import MAGAZINE_SHOOT

    wrong = [s for s in range(40) if truth(MAGAZINE_SHOOT, s).misspelt][:3]
    right = [s for s in range(40) if not truth(MAGAZINE_SHOOT, s).misspelt][:3]
    seeds = sorted(wrong + right)
    at = start()
    bench = at.session_state["workbench"]
    sweep_id = bench.start_sweep(
        sweeps.make_plan(
            FluxParams(prompt=MAGAZINE_SHOOT, width=512, height=512), [sweeps.axis("seed", seeds)]
        )
    )
    view = sweeps.load(bench.ledger, sweep_id)
    run_ids = [c.run.id for c in view.cells]
    bench.default.runner.wait(run_ids)
    found = bench.check(run_ids)  # what the background checker does, here in the test's own thread
    seed_of = {c.run.id: c.run.seed for c in view.cells}
    for run_id in run_ids:
        text = found[run_id][checks.TEXT]
        assert len(text["expected"]) == 6 and found[run_id][checks.PALETTE]["score"] is not None
        flagged = set(text["misspelt"]) | set(text["missing"])
        assert flagged == set(truth(MAGAZINE_SHOOT, seed_of[run_id]).misspelt)

    at.switch_page("pages/compare.py")
    at.query_params["sweep"] = sweep_id
    at.run()
    [best] = [t.value for t in at.text if t.value.startswith("Best seed: ")]
    assert int(best.split()[2]) in right and "text 6/6" in best
