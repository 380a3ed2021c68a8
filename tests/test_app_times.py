"""AppTest of issue 19's honest times and cached pictures: each page says the person's wait and
Segmind's figures apart, in presentation.times' words, and draws every stored picture from the app's
browser-cached routes (/_flux/thumbs/, /_flux/images/), never as a fresh /media/ file."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flux_core import presentation as P
from flux_core.ledger import store, sweeps
from flux_core.params import FluxParams
from flux_ui.pictures import app_root
from tests.test_app_history import cards

APP = str(Path(__file__).resolve().parents[1] / "app.py")
pytestmark = pytest.mark.usefixtures("fast_app")


def browser_at(url: str) -> AppTest:
    """The app as a browser at `url` opens it (the address a browser reports: st.context.url)."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.context = {"url": url}
    at.run()
    assert not at.exception
    return at


def pictures(at: AppTest) -> list[str]:
    return [i.proto.imgs[0].url for i in at.image]


def made(at: AppTest, *requests: dict) -> list:
    bench = at.session_state["workbench"]
    ids = [bench.submit(FluxParams.parse(**r)) for r in requests]
    return bench.default.runner.wait(ids)


def test_the_apps_address_is_the_page_address_less_the_pages_path():
    assert app_root("http://localhost:8501", "") == "http://localhost:8501/"
    assert app_root("http://localhost:8501/history", "history") == "http://localhost:8501/"
    assert app_root("https://lab.example/flux/compare", "compare") == "https://lab.example/flux/"
    assert app_root("https://lab.example/flux/", "") == "https://lab.example/flux/"
    assert app_root(None, "compose") is None


def test_compose_says_the_wait_and_segminds_times_and_draws_every_picture_from_the_cached_routes():
    at = browser_at("http://localhost:8501/")
    first, second = made(at, {"prompt": "a red cube", "seed": 1}, {"prompt": "a blue ball", "seed": 2})
    at.query_params["run"] = first.id
    at.run()
    assert not at.exception
    row = at.session_state["workbench"].run(first.id)
    assert row.wait_s is not None and row.inference_time is not None
    [done] = [s.value for s in at.success]
    assert done == f"Done · {P.times(row)} · seed 1 · FLUX.2 [max]"
    assert "(Generate to image stored)" in done and "Segmind: " in done and " s inference, " in done
    name = lambda rel: rel.rsplit("/", 1)[-1]  # noqa: E731
    assert pictures(at) == [f"http://localhost:8501/_flux/images/{name(first.image_path)}"]  # the main image
    assert [c["thumb"] for c in cards(at, "compose_recent_cards")] == [  # the recent runs (newest first)
        f"./_flux/thumbs/{name(second.thumb_path)}",
        f"./_flux/thumbs/{name(first.thumb_path)}",
    ]


def test_compose_says_when_a_blocked_run_ended_and_that_segmind_gave_no_times():
    at = browser_at("http://localhost:8501/")
    [blocked] = made(at, {"prompt": "a bloody sword", "seed": 1, "safety_tolerance": 0})
    assert blocked.status == store.BLOCKED
    at.query_params["run"] = blocked.id
    at.run()
    captions = [c.value for c in at.caption]
    assert P.times(blocked) in captions and P.times(blocked).startswith("No image: it ended ")
    assert pictures(at) == []  # no picture, and no thumbnail of a blocked run


def test_historys_run_panel_and_table_name_each_time_and_its_picture_comes_from_the_route():
    at = browser_at("https://lab.example/flux/")
    [row] = made(at, {"prompt": "a green teapot", "seed": 3})
    at.switch_page("pages/history.py")
    at.query_params["h_run"] = row.id
    at.run()
    assert not at.exception
    assert P.times(row) in [c.value for c in at.caption]
    assert pictures(at) == [f"https://lab.example/flux/_flux/images/{row.image_path.rsplit('/', 1)[-1]}"]
    at.segmented_control(key="h_view").set_value("Table")
    at.run()
    [table] = [d.value for d in at.dataframe]  # the wait and Segmind's two figures, each its own column
    assert table[["wait s", "inference s", "queue s"]].values.tolist() == [
        [row.wait_s, row.inference_time, row.queue_time]
    ]


def test_compares_sweep_says_its_waits_and_its_saved_card_comes_from_the_thumbnail_route():
    at = browser_at("http://localhost:8501/")
    bench = at.session_state["workbench"]
    plan = sweeps.make_plan(
        FluxParams.parse(prompt="a lamp", seed=1, width=256, height=256), [sweeps.axis("seed", [1, 2])]
    )
    sweep_id = bench.start_sweep(plan)
    view = bench.sweep(sweep_id)
    bench.default.runner.wait([c.run.id for c in view.cells])
    view = bench.sweep(sweep_id)
    at.switch_page("pages/compare.py")
    at.query_params["sweep"] = sweep_id
    at.run()
    assert not at.exception
    said = P.sweep_times([c.run for c in view.cells])
    assert said in [c.value for c in at.caption] and said.startswith("You waited ")
    at.query_params.pop("sweep")
    at.run()
    thumb = next(c.run.thumb_path for c in view.cells if c.run.thumb_path)
    assert pictures(at) == [f"http://localhost:8501/_flux/thumbs/{thumb.rsplit('/', 1)[-1]}"]
