"""Compose's rules below the page (issue 14): N images per Generate, presets, the request as code,
the one-click fix an error names."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys

import pytest
from PIL import Image

from flux_core import defaults as D
from flux_core import presentation as P
from flux_core import snippets
from flux_core.ledger import store
from flux_core.params import FluxParams, ParamsError
from flux_core.service import Workbench
from tests.conftest import TEST_KEY


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), "orange").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def bench(emulator, monkeypatch, data_dir):
    server = emulator(latency_s=0.1, queue_s=0.05)
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_RPM", "0")
    wb = Workbench(data_dir, api_key=TEST_KEY, emulator="never", background=False)
    yield wb
    wb.shutdown(wait=True)


# --- N images per Generate ---------------------------------------------------------------------
def test_a_fixed_seed_runs_seed_seed_plus_one_and_so_on():
    params = FluxParams.parse(prompt="a red cube", seed=41)
    assert [p.seed for p in Workbench.batch_params(params, 3)] == [41, 42, 43]


def test_a_random_seed_draws_one_seed_per_image():
    params = FluxParams.parse(prompt="a red cube", seed=None)
    batch = Workbench.batch_params(params, 4, seed_random=True)
    assert batch[0] == params and len({p.seed for p in batch}) == 4


@pytest.mark.parametrize("count", [0, 5, True, "2"])
def test_a_bad_image_count_names_the_field(count):
    with pytest.raises(ParamsError, match=f"images must be a whole number from 1 to {D.COMPOSE_MAX_IMAGES}"):
        Workbench.batch_params(FluxParams.parse(prompt="x", seed=1), count)


def test_a_fixed_seed_that_would_run_past_the_largest_is_refused():
    with pytest.raises(ParamsError, match=f"choose a seed of at most {D.SEED_MAX - 2}"):
        Workbench.batch_params(FluxParams.parse(prompt="x", seed=D.SEED_MAX), 3)


def test_submit_many_writes_every_run_and_a_double_click_submits_the_batch_once(bench):
    params = FluxParams.parse(prompt="a red cube", seed=7)
    first = bench.submit_many(params, 3, references=[(png_bytes(), "image/png")], guard="session-a")
    again = bench.submit_many(params, 3, references=[(png_bytes(), "image/png")], guard="session-a")
    assert again == first and len(set(first)) == 3
    rows = bench.wait(first)
    assert [r.seed for r in rows] == [7, 8, 9] and {r.status for r in rows} == {store.COMPLETED}
    assert len({r.params.image_urls for r in rows}) == 1 and len(rows[0].params.image_urls) == 1
    assert len(bench.recent()) == 3


# --- presets ---------------------------------------------------------------------------------
def test_a_preset_is_saved_listed_replaced_and_deleted(bench):
    saved = bench.save_preset("Portrait draft", width=832, height=1216, seed=5, safety_tolerance=4)
    assert (saved.width, saved.height, saved.seed, saved.seed_mode, saved.prompt) == (
        832,
        1216,
        5,
        "fixed",
        None,
    )
    assert saved.owner == "" and saved.created_at
    bench.save_preset("Portrait draft", width=768, height=1344, seed="random", prompt="a face")
    [again] = bench.presets()
    assert (again.width, again.seed_mode, again.prompt) == (768, "random", "a face")
    assert bench.delete_preset("Portrait draft") and bench.presets() == []
    assert not bench.delete_preset("Portrait draft")


def test_a_bad_preset_value_names_the_field_and_saves_nothing(bench):
    with pytest.raises(ParamsError) as caught:
        bench.save_preset("  ", width=1000, safety_tolerance=9, output_format="gif")
    problems = " | ".join(caught.value.problems)
    assert "name is required" in problems
    assert "width must be a multiple of 16: try 992 or 1008" in problems
    assert f"safety_tolerance must be from {D.SAFETY_MIN} (strictest) to {D.SAFETY_MAX} (got 9)" in problems
    assert "output_format must be png or jpeg (got 'gif')" in problems
    assert bench.presets() == []


def test_a_preset_name_over_the_limit_is_refused(bench):
    with pytest.raises(ParamsError, match=f"name must be at most {D.PRESET_NAME_MAX_CHARS} characters"):
        bench.save_preset("x" * (D.PRESET_NAME_MAX_CHARS + 1))


# --- the request as code -----------------------------------------------------------------------
HOSTILE = """it's a "quoted" $HOME `uname` \\ cube; rm -rf / #"""


def test_the_curl_snippet_is_valid_shell_whose_body_is_the_request_sent():
    payload = FluxParams.parse(prompt=HOSTILE, seed=3, image_urls=["https://example.com/a.png"]).payload()
    text = snippets.curl(payload)
    # as a shell reads it: comments skipped, a backslash at a line's end joins the next line
    words = shlex.split(text.replace("\\\n", " "), comments=True)
    assert words[:4] == ["curl", "-sS", "-X", "POST"]
    assert words[4] == f"{D.BASE_URL}/v2/{D.MODEL_SLUG}"
    assert json.loads(words[words.index("-d") + 1]) == payload
    assert "x-api-key: $SEGMIND_API_KEY" in words
    assert "-d" not in words[words.index("-d") + 2 :]  # one command, nothing after its body


def test_no_snippet_holds_the_key(bench):
    [run_id] = bench.submit_many(FluxParams.parse(prompt="a red cube", seed=1), 1)
    bench.wait([run_id])
    for language in snippets.LANGUAGES:
        text = bench.snippet(run_id, language)
        assert TEST_KEY not in text and "SG_" not in text
        assert "SEGMIND_API_KEY" in text


def test_an_unknown_language_names_the_allowed_ones():
    with pytest.raises(ValueError, match="language must be one of curl, httpx, sdk"):
        snippets.build("ruby", {"prompt": "x"})


def run_snippet(code: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEGMIND_API_KEY": TEST_KEY}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_httpx_snippet_runs_against_the_emulator_and_saves_the_image(bench, tmp_path):
    [run_id] = bench.submit_many(
        FluxParams.parse(prompt="a red cube", seed=11, width=256, height=256),
        1,
        references=[(png_bytes(), "image/png")],
    )
    [row] = bench.wait([run_id])
    assert row.request["image_urls"]  # the uploaded reference's URL is part of the request copied
    code = bench.snippet(run_id, "httpx")
    assert f"BASE_URL = {row.base_url!r}" in code and "127.0.0.1" in row.base_url
    done = run_snippet(code, tmp_path)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / f"{D.MODEL_SLUG}-11.png") as im:
        assert im.format == "PNG" and im.size == (256, 256)


def test_the_sdk_snippet_runs_against_the_emulator(bench, tmp_path):
    [run_id] = bench.submit_many(FluxParams.parse(prompt="a red cube", seed=12, width=256, height=256), 1)
    [row] = bench.wait([run_id])
    done = run_snippet(bench.snippet(run_id, "sdk"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(row.base_url)


# --- the one-click fix an error names ----------------------------------------------------------
def record(bench, status, **fields):
    return bench.ledger.record_run(
        FluxParams.parse(prompt="a bloody sword", seed=3, safety_tolerance=fields.pop("tolerance", 1)),
        status,
        backend="emulator",
        base_url=bench.default.connection.base_url,
        **fields,
    )


@pytest.mark.parametrize(
    ("status", "fields", "expected"),
    [
        (store.BLOCKED, {"tolerance": 1}, P.Fix("tolerance", "Retry at tolerance 2", 2, (2, 3, 4, 5, 6))),
        (store.BLOCKED, {"tolerance": D.SAFETY_MAX}, None),
        (store.ERROR, {"error_kind": "server"}, P.Fix("retry", "Retry")),
        (store.ERROR, {"error_kind": "rate_limited"}, P.Fix("retry", "Retry")),
        (store.ERROR, {"error_kind": "network"}, P.Fix("retry", "Retry")),
        (store.ERROR, {"error_kind": "auth"}, None),
        (store.ERROR, {"error_kind": "credits"}, None),
        (store.FAILED, {"error_kind": "failed"}, P.Fix("retry", "Retry")),
        (store.SUBMIT_UNKNOWN, {}, None),  # its own confirm-first path
        (store.COMPLETED, {}, None),
    ],
)
def test_which_fix_an_error_gets(bench, status, fields, expected):
    assert P.fix(bench.run(record(bench, status, **fields))) == expected


def test_a_blocked_run_again_at_a_higher_tolerance_is_a_new_run_naming_the_old(bench):
    old = record(bench, store.BLOCKED, tolerance=1)
    new = bench.rerun(old, overrides={"safety_tolerance": 2}, guard="session-a")
    assert bench.rerun(old, overrides={"safety_tolerance": 2}, guard="session-a") == new  # a double click
    [row] = bench.wait([new])
    assert new != old and row.safety_tolerance == 2 and row.seed == 3 and row.prompt == "a bloody sword"
    assert f"Run again from run {old} with safety_tolerance 2." in [e.detail for e in bench.events(new)]
    assert bench.run(old).status == store.BLOCKED


def test_an_override_is_checked_by_the_params_rules(bench):
    old = record(bench, store.BLOCKED, tolerance=1)
    with pytest.raises(ParamsError, match="safety_tolerance must be from"):
        bench.rerun(old, overrides={"safety_tolerance": D.SAFETY_MAX + 1})
