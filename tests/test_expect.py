from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flux_core.checks.expect import Colour, colours, texts
from flux_ui.templates import MAGAZINE_SHOOT, TEMPLATES


def test_the_magazine_template_asks_for_its_masthead_headlines_and_branding():
    assert texts(MAGAZINE_SHOOT) == [
        "Women's Health",
        "Spring forward: How to eat, travel and sweat",
        "15 skincare habits beauty founders swear by",
        "Fake Views: Inside the scroll holes",
        "The Workout",
        "SAME",
    ]


def test_the_magazine_template_palette_line_alone_counts():
    assert [c.name for c in colours(MAGAZINE_SHOOT)] == [
        "Forest Green",
        "Vibrant Orange",
        "Pastel Green",
        "White",
    ]
    assert colours(MAGAZINE_SHOOT)[0] == Colour("Forest Green", (34, 139, 34))


def test_the_typography_poster_asks_for_flux_lab():
    assert texts(TEMPLATES["Typography poster"]) == ["FLUX LAB"]
    assert [c.name for c in colours(TEMPLATES["Typography poster"])] == ["red", "off-white", "black"]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a shop sign reading \u201cOPEN\u201d at night", ["OPEN"]),
        ('a mug with "Good Morning" lettering', ["Good Morning"]),
        ("a note written as 'Hello' in chalk", ["Hello"]),
        ("title: 'Dune'\nsubtitle: \"Part Two\"", ["Dune", "Part Two"]),
        ("headlines:\n- Big news today\n- 'Second story'", ["Big news today", "Second story"]),
        ("banner_text: 'SALE'", ["SALE"]),
        ("makeup: Dewy 'no-makeup' look", []),
        ("a 'vintage' car in the rain", []),
        ("Women's Health on a cover", []),
        ("the word 'SALE' and again the word 'SALE'", ["SALE"]),
        ("'ACME' logo on a truck, the word 'GO' on the door", ["ACME", "GO"]),
        ("background_elements:\n- Solid peach backdrop\n- 'cubes'", []),
        ("", []),
    ],
)
def test_texts(prompt, expected):
    assert texts(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a red cube on a blue table", [("red", (255, 0, 0)), ("blue", (0, 0, 255))]),
        ("colours: #f00 and #00ff00", [("#f00", (255, 0, 0)), ("#00ff00", (0, 255, 0))]),
        ("light green grass", [("light green", (144, 238, 144))]),
        ("a forest green jacket", [("forest green", (34, 139, 34))]),
        ("a peach wall and a burgundy chair", [("peach", (255, 203, 164)), ("burgundy", (128, 0, 32))]),
        ("red, red and Red again", [("red", (255, 0, 0))]),
        ("a photo of a dog", []),
    ],
)
def test_colours(prompt, expected):
    assert [(c.name, c.rgb) for c in colours(prompt)] == expected


def test_modifiers_move_the_base_colour():
    dark, light = colours("dark orange")[0], colours("pale orange")[0]
    assert dark.name == "dark orange" and sum(dark.rgb) < sum(
        (255, 165, 0)
    )  # CSS darkorange is (255, 140, 0)
    assert light.name == "pale orange" and sum(light.rgb) > sum((255, 165, 0))
    assert colours("a deep mustard scarf")[0].rgb != colours("a mustard scarf")[0].rgb


def test_a_palette_key_limits_the_colours_to_its_line():
    prompt = "a red car\npalette: teal, mint / cream\nblue sky"
    assert [c.name for c in colours(prompt)] == ["teal", "mint", "cream"]


def test_hex_of_a_colour():
    assert Colour("x", (1, 171, 255)).hex == "#01abff"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_is_parsed_without_raising(prompt):
    assert isinstance(texts(prompt), list)
    assert all(isinstance(c, Colour) for c in colours(prompt))
