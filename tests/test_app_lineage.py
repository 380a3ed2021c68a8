"""AppTest of prompt lineage (issue 17, part 4): History's open run shows its lineage tree with the
word diff along each edge, names its version and pins it; Compose's Generate after a recall names
the recalled run as its parent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core import defaults as D
from flux_core.params import FluxParams

APP = str(Path(__file__).resolve().parents[1] / "app.py")
pytestmark = pytest.mark.usefixtures("fast_app")

PROMPTS = (
    "a red cube on a table",
    "a red cube on a wooden table",
    "a blue cube on a wooden <b>table</b>",
)


@pytest.fixture(autouse=True)
def _no_background_checks(monkeypatch):
    monkeypatch.setenv(D.CHECKS_ENV, "0")  # check results landing between reruns change nothing here


def chain_in_history() -> tuple[AppTest, list[str]]:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    bench = at.session_state["workbench"]
    first = bench.submit(FluxParams.parse(prompt=PROMPTS[0], seed=3))
    second = bench.submit(FluxParams.parse(prompt=PROMPTS[1], seed=3), parent=first)
    third = bench.submit(FluxParams.parse(prompt=PROMPTS[2], seed=3, safety_tolerance=5), parent=second)
    bench.default.runner.wait([first, second, third])
    at.switch_page("pages/history.py")
    at.query_params["h_run"] = second
    at.run()
    assert not at.exception
    return at, [first, second, third]


def edges(at: AppTest) -> list[str]:
    """The lineage's edges, as the HTML the page sent (each one's word diff in it)."""
    return [e.proto.body for e in at.get("html") if 'data-testid="fl-lineage-edge"' in e.proto.body]


def lines(at: AppTest) -> list[str]:
    return [str(t.value) for t in at.text]


def test_the_open_run_shows_its_lineage_with_both_diffs_names_and_pins_it():
    at, (first, second, third) = chain_in_history()
    assert "Lineage" in [s.value for s in at.subheader]
    into_second, into_third = edges(at)
    assert "↓ edited" in into_second and '<span style="background:#d3f9d8">wooden</span>' in into_second
    assert "safety_tolerance 3 → 5" in into_third
    assert 'line-through">red</span>' in into_third and '"background:#d3f9d8">blue</span>' in into_third
    assert "&lt;b&gt;" in into_third and "<b>" not in into_third  # the prompt is text, never markup
    nodes = [line for line in lines(at) if " · a " in line]
    assert [n.split(" · ")[0].lstrip("·└ ") for n in nodes] == [
        f"…{r[-D.LINEAGE_SHORT_ID :]}" for r in (first, second, third)
    ]
    assert nodes[1].endswith("← this run") and nodes[2].startswith("· └ ")  # indented by depth

    at.text_input(key=f"h_version_{second}").input("  v2 – wooden table  ")
    at.button(key="h_version_save").click()
    at.run()
    at.button(key="h_pin").click()
    at.run()
    assert not at.exception
    node = next(line for line in lines(at) if "← this run" in line)
    assert node.startswith("└ v2 – wooden table · a red cube") and "📌 pinned" in node
    assert "h_unpin" in [b.key for b in at.button]
    cards = json.loads(
        next(e for e in at.get("bidi_component") if e.proto.component_name == "flux_lab.gallery").proto.json
    )["cards"]
    assert [c["caption"].endswith("📌 pinned") for c in cards] == [False, True, False]  # newest first

    at.button(key=f"h_lin_open_{third}").click()  # a node's link opens that run
    at.run()
    assert at.query_params["h_run"] in (third, [third])
    at.button(key="h_pin").click()
    at.run()
    assert [line.endswith("📌 pinned  ← this run") for line in lines(at) if " · a " in line] == [
        False,
        False,
        True,
    ]
    at.text_input(key=f"h_version_{third}").input(" ")
    at.button(key="h_version_save").click()
    at.run()
    assert "The name was not saved." in [e.value for e in at.error]
    assert "version name: must not be empty" in lines(at)
    bench = at.session_state["workbench"]
    assert bench.run(third).version_name is None and bench.run(second).version_name == "v2 – wooden table"


def test_generate_after_open_in_compose_names_the_recalled_run():
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    bench = at.session_state["workbench"]
    first = bench.submit(FluxParams.parse(prompt="a red cube", seed=8))
    bench.default.runner.wait([first])
    at.switch_page("pages/history.py")
    at.query_params["h_run"] = first
    at.run()
    at.button(key="h_compose").click()
    at.run()
    at.switch_page("pages/compose.py")  # AppTest does not follow a script's own st.switch_page on reruns
    at.run()
    assert not at.exception and at.text_area(key="prompt").value == "a red cube"
    at.button(key="compose_generate").click()
    at.run()
    recalled = bench.recent()[0].id
    at.text_area(key="prompt").input("a red cube, glossy")
    at.button(key="compose_generate").click()
    at.run()
    edited = bench.recent()[0].id
    bench.default.runner.wait([recalled, edited])
    assert (bench.run(recalled).parent_run_id, bench.run(recalled).lineage) == (first, "recall")
    assert (bench.run(edited).parent_run_id, bench.run(edited).lineage) == (recalled, "edit")


def test_a_sweep_from_a_past_run_on_the_compare_page_makes_its_new_cells_its_children():
    from flux_core.ledger import store
    from tests.test_app_compare import compare_page, run_and_finish

    at = compare_page()
    bench = at.session_state["workbench"]
    run_id = bench.ledger.record_run(
        FluxParams.parse(prompt="a dog", seed=3),
        store.COMPLETED,
        backend="emulator",
        base_url=bench.default.connection.base_url,
    )
    at.run()
    at.selectbox(key="compare_base_run").set_value(run_id)
    at.run()
    at.multiselect(key="compare_axes").set_value(["Seed"])
    at.run()
    view = run_and_finish(at)
    made = [c.run for c in view.cells if not c.reused]
    assert made and {(r.parent_run_id, r.lineage) for r in made} == {(run_id, "sweep")}
