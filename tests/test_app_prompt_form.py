"""AppTest of Compose's prompt form: a structured prompt's fields beside its text, edits that
rewrite one field, list rows added and removed, and what is sent is exactly the text."""

from __future__ import annotations

import json

import pytest

from flux_core import structured
from flux_ui import prompt_form
from flux_ui.templates import MAGAZINE_SHOOT
from tests.test_app import start, texts

pytestmark = pytest.mark.usefixtures("fast_app")


def with_form(prompt: str):
    at = start()
    at.text_area(key="prompt").set_value(prompt).run()
    at.toggle(key="compose_fields_on").set_value(True).run()
    assert not at.exception
    return at


def send(at):
    at.button(key="compose_generate").click().run()
    assert not at.exception
    return at.session_state["workbench"].recent(1)[0]


def field(at, path: str):
    return at.text_input(key=prompt_form._key(path))


def test_a_field_edit_rewrites_only_that_line_and_is_what_is_sent():
    at = with_form(MAGAZINE_SHOOT)
    assert at.toggle(key="compose_fields_on").label.startswith("Edit as fields (30 fields, YAML-style)")
    top = field(at, "subject.attire.top")
    assert top.value.startswith("Dark forest green") and top.label == "top"
    top.set_value("Red raincoat with a hood").run()
    text = at.text_area(key="prompt").value
    assert text == structured.set_value(MAGAZINE_SHOOT, "subject.attire.top", "Red raincoat with a hood")
    assert field(at, "subject.attire.top").value == "Red raincoat with a hood"
    # the quoted words the text check will look for are named as text that must appear
    captions = "\n".join(c.value for c in at.caption).replace("\\", "")
    assert "Must appear as text in the image: “Women's Health”" in captions
    assert "“no-makeup”" not in captions  # quoted as a style, not words to draw
    assert send(at).prompt == text  # sent exactly as the text shows


def test_list_rows_are_added_and_removed_from_the_form():
    at = with_form(MAGAZINE_SHOOT)
    at.button(key=f"{prompt_form._key('setting.magazine_layout.headlines')}_add").click().run()
    assert (
        "setting.magazine_layout.headlines[4]" in structured.parse(at.text_area(key="prompt").value).values()
    )
    field(at, "setting.magazine_layout.headlines[4]").set_value("'Summer issue'").run()
    at.button(key=f"{prompt_form._key('setting.magazine_layout.headlines[0]')}_remove").click().run()
    values = structured.parse(at.text_area(key="prompt").value).values()
    assert values["setting.magazine_layout.headlines[0]"] == "'15 skincare habits beauty founders swear by'"
    assert values["setting.magazine_layout.headlines[3]"] == "'Summer issue'"


def test_json_hex_codes_show_swatches_and_a_hint_for_a_colour_tied_to_nothing():
    prompt = json.dumps(
        {"scene": "a kitchen", "color_palette": ["terracotta walls in hex #C4725A", "#1F3A5F"]}
    )
    at = with_form(prompt)
    assert [c.value for c in at.color_picker] == ["#c4725a", "#1f3a5f"]
    captions = "\n".join(c.value for c in at.caption).replace("\\", "").replace("\u2060", "")
    assert "#1F3A5F colours no object" in captions and "#C4725A colours no object" not in captions


def test_a_line_break_in_a_yaml_value_is_refused_and_the_text_is_kept():
    at = with_form(MAGAZINE_SHOOT)
    field(at, "subject.attire.top").set_value("two\nlines").run()
    assert at.text_area(key="prompt").value == MAGAZINE_SHOOT
    assert "one line of text" in texts(at).replace("\\", "")


def test_a_structured_text_that_does_not_parse_says_where_and_is_sent_as_typed():
    at = start()
    broken = '{\n  "scene": "a pier",\n  "style" "noir"\n}'
    at.text_area(key="prompt").set_value(broken).run()
    words = "\n".join(c.value for c in at.caption).replace("\\", "").replace("\u2060", "")
    assert "Not read as fields: JSON prompt, line 3, column 11: ':' was expected after the key" in words
    assert send(at).prompt == broken


def test_a_prose_prompt_has_no_fields_and_says_so():
    at = with_form("a red fox in the snow")
    assert at.toggle(key="compose_fields_on").label == "Edit as fields"
    assert "This prompt is plain text" in texts(at)
    assert at.text_area(key="prompt").value == "a red fox in the snow"
