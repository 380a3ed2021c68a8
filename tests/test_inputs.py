"""What a person types, checked once in flux_core for the CLI and the pages alike: reference URLs,
seed lists, prompt length; and how error texts read."""

from __future__ import annotations

import pytest

from flux_core import defaults as D
from flux_core import errors
from flux_core.media.images import MAX_REFERENCE_BYTES, ImageProblem, check_reference
from flux_core.params import FluxParams, ParamsError, parse_seeds, reference_url_problems


def test_a_reference_is_an_http_url_and_nothing_else():
    assert reference_url_problems(["https://a.example/1.png", "http://b.example/x.jpg?s=1"]) == []
    problems = reference_url_problems(
        ["/srv/photos/ref.png", "a red cube", "file:///etc/passwd", "ftp://x/y"]
    )
    assert len(problems) == 4
    assert problems[0] == ("image URL 1 must be an http:// or https:// URL (got '/srv/photos/ref.png')")
    assert all("must be an http:// or https:// URL" in p for p in problems)


def test_flux_params_names_every_bad_reference_url():
    with pytest.raises(ParamsError) as info:
        FluxParams.parse(prompt="x", seed=1, image_urls=["https://ok.example/a.png", "/etc/passwd", "hello"])
    assert [p for p in info.value.problems if "image URL" in p] == [
        "image URL 2 must be an http:// or https:// URL (got '/etc/passwd')",
        "image URL 3 must be an http:// or https:// URL (got 'hello')",
    ]


def test_every_bad_seed_is_reported_at_once():
    assert parse_seeds("1, 2,3") == [1, 2, 3]
    with pytest.raises(ParamsError) as info:
        parse_seeds("-5, 99999999999, x, 7")
    assert info.value.problems == [
        f"seed -5 must be from 0 to {D.SEED_MAX}",
        f"seed 99999999999 must be from 0 to {D.SEED_MAX}",
        "seed 'x' must be a whole number",
    ]
    with pytest.raises(ParamsError) as info:
        parse_seeds(" , ")
    assert info.value.problems == ["seeds: give at least one whole number, separated by commas"]


def test_a_prompt_has_a_length_limit_naming_the_field():
    FluxParams.parse(prompt="x" * D.PROMPT_MAX_CHARS, seed=1)
    with pytest.raises(ParamsError) as info:
        FluxParams.parse(prompt="x" * 1_000_000, seed=1)
    assert info.value.problems == [
        f"prompt must be at most {D.PROMPT_MAX_CHARS:,} characters (got 1,000,000)"
    ]


def test_a_file_that_is_not_an_image_is_named_without_python_internals():
    with pytest.raises(ImageProblem) as info:
        check_reference(b"this is text", "notanimage.png")
    text = str(info.value)
    assert text.startswith("notanimage.png is not a readable image") and "BytesIO" not in text
    assert "PNG, JPEG, WEBP or GIF" in text


def test_an_oversized_reference_is_refused_naming_the_limit():
    with pytest.raises(ImageProblem) as info:
        check_reference(b"\0" * (MAX_REFERENCE_BYTES + 1), "huge.png")
    assert str(info.value) == f"huge.png is 21.0 MB; the limit is {MAX_REFERENCE_BYTES // 2**20} MB"


def test_the_upload_limit_lets_an_oversized_file_reach_flux_core():
    """Streamlit drops a file above server.maxUploadSize before the server sees it (the run would go
    out without it); the limit sits well above flux_core's own, so flux_core refuses it by name."""
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 >= 10 * MAX_REFERENCE_BYTES


def test_error_texts_join_as_sentences():
    failed = errors.failure_from_body({"error": "upstream hiccup, please retry"})
    assert failed.user_text() == (
        "The job failed: upstream hiccup, please retry. Nothing was charged for a failed job."
    )
    assert f"{failed.message} {failed.hint}".count(". ") == 1  # how the runner joins them
    assert errors.MissingKey("No Segmind API key.").user_text().count(D.API_KEY_ENV) == 1


def test_a_browser_user_gets_advice_for_the_app_not_environment_variables():
    for cls in (errors.NetworkError, errors.NotFoundError, errors.AuthError):
        stored = cls("Could not reach the server.").user_text()
        assert "SEGMIND_" in stored  # the CLI's advice
        shown = errors.for_app(stored)
        assert "SEGMIND_" not in shown and shown.startswith("Could not reach the server.")


def test_app_advice_replaces_the_cli_advice_inside_a_longer_text():
    stored = errors.NetworkError("Could not reach the server.").user_text() + " 3.0 s elapsed"
    shown = errors.for_app(stored)
    assert "SEGMIND_BASE_URL" not in shown and shown.endswith("3.0 s elapsed")


def test_a_server_sentence_is_not_given_a_second_full_stop():
    import httpx

    reply = httpx.Response(401, json={"error": "Invalid API key."})
    assert (
        errors.error_from_response(reply).message
        == "Segmind rejected the API key (HTTP 401): Invalid API key."
    )


def test_a_run_left_open_is_explained_for_the_app():
    stored = errors.join("The image could not be stored: not a readable image", errors.STAYS_OPEN)
    assert stored == (
        "The image could not be stored: not a readable image. The run stays open: `flux-lab resume` picks it up."
    )
    assert errors.for_app(stored).endswith("The run stays open: Flux Lab picks it up again by itself.")
    timed_out = errors.JobTimedOut("Still running after 10 minutes.")
    assert "flux-lab" not in errors.for_app(timed_out.user_text())
