"""Store-level history: search, filters, facets, paging, delete with undo, export, recall."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date, datetime, timedelta, timezone

import pytest

from flux_core.ledger import history
from flux_core.ledger import store
from flux_core.ledger.history import Query
from flux_core.params import FluxParams, ParamsError
from flux_core.emulator.render import render_preview
from flux_core.media.images import embed_recipe, store as store_image
from flux_core.ledger.store import Ledger


@pytest.fixture
def ledger(data_dir) -> Ledger:
    return Ledger(data_dir / "ledger.db")


def add(ledger: Ledger, prompt: str, status: str = store.COMPLETED, **kw) -> str:
    fields = {
        k: kw.pop(k) for k in list(kw) if k in ("inference_time", "rating", "favourite", "backend_name")
    }
    return ledger.record_run(
        FluxParams.parse(prompt=prompt, seed=kw.pop("seed", 1), **kw),
        status,
        backend=fields.pop("backend_name", "emulator"),
        base_url="http://x",
        **fields,
    )


def ids(page) -> list[str]:
    return [r.id for r in page.rows]


def test_newest_first_and_paged(ledger):
    made = [add(ledger, f"run number {i}") for i in range(7)]
    first = history.find(ledger, Query(page_size=3))
    assert ids(first) == made[::-1][:3] and (first.total, first.pages) == (7, 3)
    last = history.find(ledger, Query(page_size=3, page=3))
    assert ids(last) == [made[0]]


def test_the_count_reaches_a_window_past_the_page_so_every_later_page_stays_reachable(ledger, monkeypatch):
    from flux_core import defaults as D

    monkeypatch.setattr(D, "HISTORY_COUNT_AHEAD", 4)
    made = [add(ledger, f"a red fox number {i}") for i in range(11)][::-1]  # newest first
    first = history.find(ledger, Query(page_size=2))
    assert (first.total, first.capped, first.pages) == (4, True, 2)  # "4+": two pages, and more
    third = history.find(ledger, Query(page_size=2, page=3))  # beyond what page 1 counted
    assert ids(third) == made[4:6] and (third.total, third.capped, third.pages) == (8, True, 4)
    last = history.find(ledger, Query(page_size=2, page=6))
    assert ids(last) == made[10:] and (last.total, last.capped, last.pages) == (11, False, 6)
    # a search walks the full-text index in the runs' order, either way, with the same window
    searched = history.find(ledger, Query(text="fox", page_size=2, page=2))
    assert ids(searched) == made[2:4] and (searched.total, searched.capped) == (6, True)
    oldest = history.find(ledger, Query(text="fox", sort="oldest", page_size=3))
    assert ids(oldest) == made[::-1][:3]
    rated = history.find(ledger, Query(text="fox", sort="rating", page_size=20))
    assert sorted(ids(rated)) == sorted(made)


def test_a_word_typed_in_part_finds_the_longer_words_and_a_phrase_is_matched_as_typed(ledger):
    teapot = add(ledger, "a teapot on a wooden table")
    team = add(ledger, "a team of red foxes")
    assert ids(history.find(ledger, Query(text="teapo"))) == [teapot]
    assert sorted(ids(history.find(ledger, Query(text="tea")))) == sorted([teapot, team])
    assert ids(history.find(ledger, Query(text="wood tea"))) == [teapot]  # every word, each in part
    assert ids(history.find(ledger, Query(text='"a team"'))) == [team]  # a phrase: as typed
    assert history.find(ledger, Query(text="te")).rows == []  # two letters are a whole word only
    assert [r.id for r in ledger.search("teapo")] == [teapot]  # the CLI's search, the same rule


def test_text_search_is_quoted_and_stemmed(ledger):
    cube = add(ledger, "a red cube on a table")
    add(ledger, "a blue ball")
    assert ids(history.find(ledger, Query(text="cubes"))) == [cube]
    for hostile in ['"', "OR (", "NEAR(", "a*", "tags:x", "'; DROP TABLE runs; --"]:
        history.find(ledger, Query(text=hostile))  # never an error


def test_filters_combine(ledger):
    a = add(ledger, "a cat", seed=5, safety_tolerance=2, width=512, height=256, output_format="jpeg")
    b = add(ledger, "a cat", status=store.BLOCKED, seed=5, safety_tolerance=0)
    c = add(ledger, "a cat", status=store.FAILED, seed=6, rating=4, favourite=1)
    d = add(ledger, "a cat", status=store.ERROR, backend_name="segmind")
    assert set(ids(history.find(ledger, Query(statuses=("failed",))))) == {c, d}
    assert ids(history.find(ledger, Query(statuses=("blocked",)))) == [b]
    assert set(ids(history.find(ledger, Query(seed=5)))) == {a, b}
    assert ids(history.find(ledger, Query(tolerances=(2,)))) == [a]
    assert ids(history.find(ledger, Query(size="512x256", formats=("jpeg",)))) == [a]
    assert ids(history.find(ledger, Query(favourite=True))) == [c]
    assert ids(history.find(ledger, Query(min_rating=3))) == [c]
    assert ids(history.find(ledger, Query(backends=("segmind",)))) == [d]
    today = datetime.now(timezone.utc).date()
    assert len(history.find(ledger, Query(date_from=today, date_to=today)).rows) == 4
    assert history.find(ledger, Query(date_to=today - timedelta(days=1))).rows == []


def test_tags_and_sweeps_filter(ledger):
    a = add(ledger, "a cat")
    add(ledger, "a dog")
    history.curate(ledger, a, actor="test", tags=["keeper", "client-x"])
    assert ids(history.find(ledger, Query(tag="keeper"))) == [a]
    assert ids(history.find(ledger, Query(text="cat", tag="client-x"))) == [a]
    assert history.find(ledger, Query(text="dog", tag="keeper")).rows == []
    assert history.all_tags(ledger) == ["client-x", "keeper"]
    sweep, _ = ledger.create_sweep({}, [])
    s = ledger.create_run(
        FluxParams.parse(prompt="swept", seed=1), backend="emulator", base_url="x", sweep_id=sweep
    )
    assert ids(history.find(ledger, Query(sweep_id=sweep))) == [s]


def test_sorting(ledger):
    slow = add(ledger, "x", inference_time=30.0, rating=2)
    fast = add(ledger, "x", inference_time=3.0, rating=5)
    none = add(ledger, "x")
    assert ids(history.find(ledger, Query(sort="fastest"))) == [fast, slow]  # runs with an inference time
    assert ids(history.find(ledger, Query(sort="slowest"))) == [slow, fast]
    assert ids(history.find(ledger, Query(sort="rating"))) == [fast, slow, none]
    assert ids(history.find(ledger, Query(sort="oldest"))) == [slow, fast, none]


def test_facets_count_within_the_rest_of_the_query(ledger):
    add(ledger, "a cat", safety_tolerance=1)
    add(ledger, "a cat", status=store.BLOCKED, safety_tolerance=0)
    add(ledger, "a dog", status=store.BLOCKED, safety_tolerance=0)
    found = history.facets(ledger, Query(text="cat", statuses=("blocked",)))
    assert found["status"]["completed"] == 1 and found["status"]["blocked"] == 1
    assert found["safety_tolerance"] == {"0": 1}


def test_delete_hides_undo_restores_purge_is_final(ledger, data_dir):
    keep = add(ledger, "keep me")
    gone = add(ledger, "delete me")
    history.delete(ledger, [gone], actor="test")
    assert ids(history.find(ledger, Query())) == [keep] and ledger.search("delete") == []
    assert ids(history.find(ledger, Query(trash=True))) == [gone]
    history.restore(ledger, [gone], actor="test")
    assert set(ids(history.find(ledger, Query()))) == {keep, gone}
    history.delete(ledger, [gone], actor="test")
    assert history.purge(ledger, data_dir, actor="test") == 1
    assert ledger.get(gone) is None and ledger.get(keep) is not None


def test_purge_removes_image_files_only_when_no_run_uses_them(ledger, data_dir):
    image = store_image(data_dir, render_preview("x", 1, 64, 64, "png"), {})
    a, b = add(ledger, "a"), add(ledger, "b")
    for run_id in (a, b):
        ledger.transition(
            run_id, image_sha256=image.sha256, image_path=image.path, thumb_path=image.thumb_path
        )
    history.delete(ledger, [a], actor="test")
    history.purge(ledger, data_dir, actor="test")
    assert (data_dir / image.path).exists()
    history.delete(ledger, [b], actor="test")
    history.purge(ledger, data_dir, actor="test")
    assert not (data_dir / image.path).exists() and not (data_dir / image.thumb_path).exists()


def test_export_zip_matches_the_ledger(ledger, data_dir):
    image = store_image(data_dir, render_preview("x", 1, 64, 64, "png"), {"params": {"prompt": "x"}})
    a = add(ledger, "a red cube", seed=3)
    ledger.transition(a, image_path=image.path, thumb_path=image.thumb_path, inference_time=2.5)
    history.curate(ledger, a, actor="test", notes="<b>nice</b>", tags=["t1"], rating=5)
    b = add(ledger, "a blocked thing", status=store.BLOCKED)
    rows = ledger.get_many([a, b])
    with zipfile.ZipFile(io.BytesIO(history.export_zip(rows, data_dir))) as zf:
        manifest = json.loads(zf.read("manifest.json"))["runs"]
        table = list(csv.DictReader(io.StringIO(zf.read("runs.csv").decode())))
        files = [n for n in zf.namelist() if n.startswith("images/")]
    assert [m["run_id"] for m in manifest] == [a, b] and files == [manifest[0]["file"]]
    assert (
        manifest[0]["notes"] == "<b>nice</b>" and manifest[0]["tags"] == ["t1"] and manifest[0]["rating"] == 5
    )
    for entry, row in zip(manifest, rows):
        assert (entry["status"], entry["seed"], entry["prompt"]) == (
            row.status,
            row.seed,
            row.prompt,
        )
    assert [r["run_id"] for r in table] == [a, b] and table[0]["inference_s"] == "2.5"
    assert [r["tags"] for r in table] == ["t1", ""]


FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1:A2)", "\tx", "\rx"]


def test_runs_csv_never_holds_a_formula(ledger, data_dir):
    """Every text cell a spreadsheet would run (= + - @, tab, carriage return) starts with a quote."""
    run_ids = [add(ledger, prompt, seed=i) for i, prompt in enumerate(FORMULAS)]
    for run_id, text in zip(run_ids, FORMULAS):
        history.curate(ledger, run_id, actor="test", notes=text, tags=[text.strip(), "plain"])
    with zipfile.ZipFile(io.BytesIO(history.export_zip(ledger.get_many(run_ids), data_dir))) as zf:
        table = list(csv.DictReader(io.StringIO(zf.read("runs.csv").decode(), newline="")))
        manifest = json.loads(zf.read("manifest.json"))["runs"]
    assert [r["prompt"] for r in table] == ["'" + text for text in FORMULAS]
    assert [r["notes"] for r in table] == ["'" + text for text in FORMULAS]
    assert table[0]["tags"] == "'" + FORMULAS[0] + ", plain"
    assert [r["seed"] for r in table] == [str(i) for i in range(len(FORMULAS))]  # numbers stay numbers
    assert [m["prompt"] for m in manifest] == FORMULAS  # the manifest keeps the prompts exactly
    assert history.csv_cell("a red cube") == "a red cube" and history.csv_cell(-1.5) == -1.5


def test_recall_from_an_image_file():
    params = FluxParams.parse(prompt="a red cube", seed=9, width=512, height=512)
    data = embed_recipe(
        render_preview("a red cube", 9, 512, 512, "png"), {"params": params.payload(), "run_id": "R1"}
    )
    recalled = history.recall_image(data)
    assert recalled.params == params and recalled.run_id == "R1"
    with pytest.raises(ParamsError, match="no Flux Lab recipe"):
        history.recall_image(render_preview("x", 1, 64, 64, "png"))


def test_insights_figures(ledger):
    add(ledger, "x", inference_time=3.0, width=512, height=512)
    add(ledger, "y", status=store.BLOCKED, safety_tolerance=0)
    data = history.insights(ledger)
    assert data["speed"] == [{"megapixels": 0.262, "inference_s": 3.0, "format": "png"}]
    assert {"safety_tolerance": 0, "outcome": "blocked", "runs": 1} in data["outcomes"]
    assert data["daily"][0]["runs"] == 2


def test_the_word_diff_counts_punctuation_apart_from_words():
    from flux_core.presentation import word_diff, word_diff_html

    assert word_diff("soft light, warm", "soft light warm") == [
        ("same", "soft light"),
        ("del", ","),
        ("same", " warm"),
    ]
    assert word_diff("a red cube", "a blue cube") == [
        ("same", "a"),
        ("del", " red"),
        ("ins", " blue"),
        ("same", " cube"),
    ]
    assert word_diff_html("soft light, warm", "soft light warm") == (
        '<div style="line-height:1.8;white-space:pre-wrap">soft light'
        '<span style="background:#ffd6d6;text-decoration:line-through">,</span> warm</div>'
    )


def _checked(ledger, prompt, text_score=None, palette_score=None, misspelt=(), missing=(), error=None):
    from flux_core.ledger import checks

    run_id = add(ledger, prompt)
    if error is not None:
        checks.save(ledger, run_id, checks.TEXT, 1, None, {"score": None, "error": error})
    elif text_score is not None:
        result = {"score": text_score, "expected": ["A", "B"], "found": ["A"], "misspelt": list(misspelt)}
        checks.save(
            ledger, run_id, checks.TEXT, 1, text_score, {**result, "missing": list(missing), "read_as": {}}
        )
    if palette_score is not None:
        checks.save(
            ledger, run_id, checks.PALETTE, 1, palette_score, {"score": palette_score, "expected": ["red"]}
        )
    return run_id


def test_sorting_by_a_checks_score_lists_the_checked_runs_highest_first(ledger):
    low = _checked(ledger, "x", text_score=0.4, palette_score=0.9)
    high = _checked(ledger, "x", text_score=1.0, palette_score=0.2)
    mid = _checked(ledger, "x", text_score=0.7)
    add(ledger, "x")  # not checked yet: not in a sort by a check
    _checked(ledger, "x", error="the OCR failed")
    assert ids(history.find(ledger, Query(sort="text score"))) == [high, mid, low]
    assert ids(history.find(ledger, Query(sort="palette score"))) == [low, high]


def test_the_text_check_filter_splits_all_right_from_misspelt_or_missing(ledger):
    right = _checked(ledger, "x", text_score=1.0)
    typo = _checked(ledger, "x", text_score=0.5, misspelt=["B"])
    gap = _checked(ledger, "x", text_score=0.5, missing=["A"])
    _checked(ledger, "x", error="the OCR failed")
    add(ledger, "x")
    assert ids(history.find(ledger, Query(text_check="all right"))) == [right]
    assert ids(history.find(ledger, Query(text_check="misspelt or missing"))) == [gap, typo]
    assert ids(history.find(ledger, Query(text_check="misspelt or missing", sort="oldest"))) == [typo, gap]


def test_a_text_result_without_a_missing_list_reads_as_none_missing(ledger):
    from flux_core.ledger import checks

    terse = add(ledger, "x")
    checks.save(ledger, terse, checks.TEXT, 1, 1.0, {"score": 1.0, "expected": ["A"], "misspelt": []})
    assert ids(history.find(ledger, Query(text_check="all right"))) == [terse]
    assert ids(history.find(ledger, Query(text_check="misspelt or missing"))) == []


def test_an_unknown_text_check_filter_is_named(ledger):
    with pytest.raises(ParamsError, match="text check: must be one of all right, misspelt or missing"):
        history.find(ledger, Query(text_check="maybe"))


# --- a History view's filters, read by one parser (pages/history.py's widgets, and links) ------
def test_a_view_read_from_a_link_and_from_the_widgets_is_the_same_query():
    widgets = {
        "h_q": "teapot",
        "h_status": ["completed", "blocked"],
        "h_seed": "7",
        "h_tol": [0, 3],
        "h_size": "1024x768",
        "h_fmt": ["png"],
        "h_fav": True,
        "h_rating": 4,
        "h_tag": "demo",
        "h_sweep": " s1 ",
        "h_board": "Cubes",
        "h_from": date(2026, 12, 1),
        "h_to": date(2026, 12, 2),
        "h_backend": ["emulator"],
        "h_by": "ann@example.com",
        "h_textcheck": "all right",
        "h_sort": "oldest",
        "h_trash": False,
    }
    boards = {"Cubes": "b1"}
    query = history.query_from(widgets, boards)
    assert query == Query(
        text="teapot",
        statuses=("completed", "blocked"),
        seed=7,
        tolerances=(0, 3),
        size="1024x768",
        formats=("png",),
        favourite=True,
        min_rating=4,
        tag="demo",
        sweep_id="s1",
        board="b1",
        date_from=date(2026, 12, 1),
        date_to=date(2026, 12, 2),
        backends=("emulator",),
        by="ann@example.com",
        text_check="all right",
        sort="oldest",
    )
    link = history.to_url(widgets)
    assert link["h_tol"] == ["0", "3"] and link["h_fav"] == ["true"] and link["h_from"] == ["2026-12-01"]
    assert "h_trash" not in link  # left at "any"
    assert history.query_from(link, boards) == query
    assert history.query_from({}) == Query()
    assert history.to_url({"h_sort": "newest", "h_rating": 0, "h_q": ""}) == {}


def test_every_filter_a_link_holds_that_cannot_be_used_is_named_at_once():
    with pytest.raises(history.FilterError) as info:
        history.query_from(
            {
                "h_seed": "![s](x)",
                "h_tol": ["3", "9"],
                "h_status": ["done-ish"],
                "h_rating": "6",
                "h_from": "yesterday",
                "h_verdict": "maybe",
                "h_board": "Gone",
                "h_sort": "loudest",
                "h_fav": "yes",
            },
            {"Cubes": "b1"},
        )
    assert ("Seed", "a whole number", "![s](x)") in info.value.bad
    assert sorted(label for label, _, _ in info.value.bad) == sorted(
        [
            "Safety tolerance",
            "Sort by",
            "Verdict",
            "Board",
            "Status",
            "Seed",
            "Favourites only",
            "Rating at least",
            "From",
        ]
    )
    assert "Safety tolerance: must be a whole number from 0 to 6, not '9'" in info.value.problems
    assert "Verdict: must be one of approve, reject, needs work, none, not 'maybe'" in info.value.problems
