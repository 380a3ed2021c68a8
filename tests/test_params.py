from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from flux_core import defaults as D
from flux_core.params import FluxParams, ParamsError


def problems(**kwargs) -> list[str]:
    with pytest.raises(ParamsError) as info:
        FluxParams.parse(**kwargs)
    return info.value.problems


def test_defaults_follow_the_decisions_table():
    p = FluxParams.parse(prompt="a red cube", seed=1)
    assert (p.width, p.height, p.safety_tolerance, p.output_format) == (1024, 1024, 3, "png")
    assert p.payload() == {
        "prompt": "a red cube",
        "seed": 1,
        "width": 1024,
        "height": 1024,
        "safety_tolerance": 3,
        "output_format": "png",
    }


def test_image_urls_are_omitted_when_empty_and_sent_when_given():
    assert "image_urls" not in FluxParams.parse(prompt="x", seed=1, image_urls=[]).payload()
    body = FluxParams.parse(prompt="x", seed=1, image_urls=["https://a.example/1.png"]).payload()
    assert body["image_urls"] == ["https://a.example/1.png"]


def test_random_seed_is_drawn_and_sent_explicitly():
    seeds = {FluxParams.parse(prompt="x", seed="random").seed for _ in range(5)}
    assert all(0 <= s <= D.SEED_MAX for s in seeds) and len(seeds) > 1
    assert isinstance(FluxParams.parse(prompt="x").payload()["seed"], int)


def test_width_off_the_grid_suggests_the_neighbours():
    assert problems(prompt="x", seed=1, width=1000) == ["width must be a multiple of 16: try 992 or 1008"]


def test_every_bad_field_is_named_at_once():
    found = problems(
        prompt="  ",
        seed=1,
        width=4000,
        height=50,
        safety_tolerance=7,
        output_format="webp",
        image_urls=["ftp://a/b"] + ["https://a/b"] * 8,
    )
    text = " | ".join(found)
    for needle in (
        "prompt is required",
        "image_urls allows at most 8",
        "image URL 1 must be an http",
        "width must be from 64 to 2048 (got 4000)",
        "height must be from 64 to 2048 (got 50)",
        "safety_tolerance must be from 0",
        "output_format must be png or jpeg",
    ):
        assert needle in text


def test_types_and_unknown_fields_get_words_not_tracebacks():
    assert problems(prompt="x", seed=1, width="wide") == [
        "width must be a whole number from 64 to 2048, a multiple of 16 (got 'wide')"
    ]
    assert problems(prompt="x", seed=1, width=True)[0].startswith("width must be a whole number")
    assert "unknown parameter 'cfg_scale'" in problems(prompt="x", seed=1, cfg_scale=7)[0]
    # [flex]'s own fields are known, and refused for the other models by name
    assert problems(prompt="x", seed=1, steps=50) == [
        "steps: only FLUX.2 [flex] takes it (this request is for FLUX.2 [max])"
    ]


def test_jpg_is_read_as_jpeg():
    assert FluxParams.parse(prompt="x", seed=1, output_format="JPG").output_format == "jpeg"


sizes = st.integers(min_value=D.SIZE_MIN // 16, max_value=D.SIZE_MAX // 16).map(lambda n: n * 16)


@given(width=sizes, height=sizes, tol=st.integers(0, 6), seed=st.integers(0, D.SEED_MAX))
def test_every_allowed_combination_is_accepted(width, height, tol, seed):
    p = FluxParams.parse(prompt="p", width=width, height=height, safety_tolerance=tol, seed=seed)
    assert p.payload()["width"] == width and p.payload()["seed"] == seed


@given(
    st.integers(min_value=-5000, max_value=5000).filter(
        lambda v: not (D.SIZE_MIN <= v <= D.SIZE_MAX and v % 16 == 0)
    )
)
def test_every_disallowed_width_is_rejected_with_a_reason(width):
    found = problems(prompt="p", seed=1, width=width)
    assert len(found) == 1 and found[0].startswith("width must")
    if D.SIZE_MIN <= width <= D.SIZE_MAX:
        lower, upper = [int(v) for v in found[0].split("try ")[1].split(" or ")]
        assert lower % 16 == 0 and upper % 16 == 0 and lower < width < upper


@given(st.text())
def test_any_prompt_text_either_validates_or_says_why(text):
    try:
        p = FluxParams.parse(prompt=text, seed=1)
    except ParamsError as exc:
        assert exc.problems == ["prompt is required and must not be blank"]
    else:
        assert p.payload()["prompt"] == text
