"""Structured prompts as data: fields with paths, edits that change only their own characters."""

from __future__ import annotations

import json

import pytest

from flux_core import structured as S
from flux_core.params import ParamsError
from flux_ui.templates import MAGAZINE_SHOOT, TEMPLATES

BFL = json.dumps(
    {
        "scene": "a sunlit kitchen",
        "subjects": [
            {"description": "a ceramic teapot", "position": "centre", "color_palette": ["#C4725A"]},
            {"description": "a cat", "position": "left", "action": "sleeping"},
        ],
        "style": "product photography",
        "color_palette": ["terracotta walls in hex #C4725A", "#1F3A5F", "#EEE"],
        "camera": {"angle": "eye level", "lens": "50mm", "depth_of_field": "shallow"},
        "steps_hint": 12,
        "moody": False,
        "extra": None,
    },
    indent=2,
)


def lines_changed(a: str, b: str) -> list[tuple[str, str]]:
    la, lb = a.split("\n"), b.split("\n")
    assert len(la) == len(lb)
    return [(x, y) for x, y in zip(la, lb) if x != y]


def test_segmind_template_reads_as_sections_groups_and_lists():
    doc = S.parse(MAGAZINE_SHOOT)
    assert doc is not None and doc.form == S.YAML
    values = doc.values()
    assert values["subject.attire.top"].startswith("Dark forest green")
    assert values["lighting_and_atmosphere.key_light"] == "Large overhead softbox providing even illumination"
    assert values["setting.magazine_layout.headlines[3]"] == "'The Workout'"
    assert values["setting.location.background_elements[0]"] == "Solid peach-orange seamless backdrop"
    assert values["subject.emotion.gaze"].startswith("Direct")
    assert doc.find("attire.top").path == "subject.attire.top"  # a unique ending is enough
    # every value's characters are exactly where the text has them
    for node in doc.fields():
        assert MAGAZINE_SHOOT[node.start : node.end] == node.text


def test_a_form_edit_rewrites_only_its_own_line():
    edited = S.set_value(MAGAZINE_SHOOT, "subject.attire.top", "Red raincoat with a hood")
    assert lines_changed(MAGAZINE_SHOOT, edited) == [
        (
            "top: Dark forest green lightweight zip-up windbreaker jacket, sleeves slightly bunched at elbows",
            "top: Red raincoat with a hood",
        )
    ]
    assert (
        S.set_value(edited, "attire.top", S.value_at(MAGAZINE_SHOOT, "subject.attire.top") or "")
        == MAGAZINE_SHOOT
    )


def test_json_fields_keep_every_other_byte_and_write_valid_json():
    doc = S.parse(BFL)
    assert doc is not None and doc.form == S.JSON
    values = doc.values()
    assert values["subjects[1].action"] == "sleeping"
    assert values["camera.lens"] == "50mm"
    assert values["steps_hint"] == "12" and values["moody"] == "false" and values["extra"] == "null"
    edited = S.set_value(BFL, "camera.lens", 'an 85mm "portrait" lens')
    assert json.loads(edited)["camera"]["lens"] == 'an 85mm "portrait" lens'
    assert lines_changed(BFL, edited) == [
        ('    "lens": "50mm",', '    "lens": "an 85mm \\"portrait\\" lens",')
    ]
    number = S.set_value(BFL, "steps_hint", "20")
    assert json.loads(number)["steps_hint"] == 20
    assert json.loads(S.set_value(BFL, "moody", "true"))["moody"] is True
    assert json.loads(S.set_value(BFL, "extra", "now text"))["extra"] == "now text"


def test_escapes_and_unicode_in_json_strings_are_read_and_kept():
    text = '{"title": "caf\\u00e9 \\"Blue\\"", "note": "tab\\there — ok"}'
    doc = S.parse(text)
    assert doc is not None
    assert doc.values() == {"title": 'café "Blue"', "note": "tab\there — ok"}
    edited = S.set_value(text, "note", "new")
    assert edited == '{"title": "caf\\u00e9 \\"Blue\\"", "note": "new"}'


def test_list_rows_are_added_and_removed_in_yaml_and_json():
    added = S.add_item(MAGAZINE_SHOOT, "headlines", "'Summer issue'")
    assert S.parse(added).values()["setting.magazine_layout.headlines[4]"] == "'Summer issue'"
    assert added.replace("\n- 'Summer issue'", "", 1) == MAGAZINE_SHOOT
    blank = S.add_item(MAGAZINE_SHOOT, "headlines")  # an empty row, then filled in
    assert S.set_value(blank, "headlines[4]", "'Later'") == added.replace("'Summer issue'", "'Later'")
    removed = S.remove_item(MAGAZINE_SHOOT, "headlines[1]")
    assert removed == MAGAZINE_SHOOT.replace("- '15 skincare habits beauty founders swear by'\n", "")

    grown = S.add_item(BFL, "color_palette", "#00FF00")
    assert json.loads(grown)["color_palette"][-1] == "#00FF00"
    assert json.loads(S.remove_item(BFL, "color_palette[0]"))["color_palette"] == ["#1F3A5F", "#EEE"]
    assert json.loads(S.remove_item(BFL, "color_palette[2]"))["color_palette"][-1] == "#1F3A5F"
    subjects = json.loads(S.add_item(BFL, "subjects"))["subjects"]  # a group item is copied, keys and all
    assert len(subjects) == 3 and subjects[2] == subjects[1]
    inline = '{"tags": ["a", "b"]}'
    assert S.add_item(inline, "tags", "c") == '{"tags": ["a", "b", "c"]}'
    assert S.remove_item('{"tags": ["a"]}', "tags[0]") == '{"tags": []}'
    assert S.add_item('{"tags": []}', "tags", "x") == '{"tags": ["x"]}'


def test_indented_yaml_with_a_list_of_groups():
    text = "scene: a beach\nsubjects:\n  - description: a dog\n    position: left\n  - description: a kite\ncamera:\n  lens: 35mm\n"
    doc = S.parse(text)
    assert doc is not None
    assert doc.values() == {
        "scene": "a beach",
        "subjects[0].description": "a dog",
        "subjects[0].position": "left",
        "subjects[1].description": "a kite",
        "camera.lens": "35mm",
    }
    assert S.set_value(text, "subjects[0].position", "right") == text.replace("left", "right")
    # without indentation `key:` opens a section, so an empty value is one a blank line follows
    assert S.parse("scene:\nstyle: noir").values() == {"scene.style": "noir"}
    empty = S.set_value("scene:\n\nstyle: noir", "scene", "a pier")
    assert empty == "scene: a pier\n\nstyle: noir"


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ('{\n  "a": "x",\n  "b" "y"\n}', 3, 7, "':' was expected"),
        ('{"a": "x",}', 1, 11, "key in double quotes"),
        ('[\n  "a",\n  "b\n]', 3, 5, "line break inside text"),
        ("scene: a\nthis line is prose\nstyle: b", 2, 1, "expected `key: value`"),
        ("scene: a\n  style: b", 2, 3, "unexpected indentation"),
        ("- orphan\nscene: a", 1, 1, None),
        ("scene: a\nscene: b", 2, 1, "appears twice"),
    ],
)
def test_a_structured_text_that_does_not_parse_names_line_and_column(text, line, column, words):
    if words is None:  # does not start as `key:`: plain prose, sent as typed
        assert S.parse(text) is None
        return
    with pytest.raises(S.StructureError) as err:
        S.parse(text)
    assert (err.value.line, err.value.column) == (line, column)
    assert words in err.value.message
    assert f"line {line}, column {column}" in str(err.value)


def test_prose_prompts_have_no_fields():
    for name, text in TEMPLATES.items():
        if name != "Magazine shoot (structured)":
            assert S.parse(text) is None
    assert S.parse("Style: watercolour") is None  # one `key:` line is prose, not a form
    with pytest.raises(ParamsError, match="plain text"):
        S.set_value("a red fox", "fox", "wolf")


def test_paths_that_are_missing_ambiguous_or_not_a_value_are_refused_by_name():
    with pytest.raises(ParamsError, match="'attire.hat': no such field"):
        S.set_value(MAGAZINE_SHOOT, "attire.hat", "x")
    with pytest.raises(ParamsError, match="ambiguous"):
        S.set_value("a:\n  name: x\nb:\n  name: y", "name", "z")
    with pytest.raises(ParamsError, match="is a group"):
        S.set_value(MAGAZINE_SHOOT, "subject.attire", "x")
    with pytest.raises(ParamsError, match="one line"):
        S.set_value(MAGAZINE_SHOOT, "attire.top", "two\nlines")


def test_hex_codes_with_no_object_are_pointed_out_and_quoted_words_found():
    assert S.untied_hex("#C4725A") == ["#C4725A"]
    assert S.untied_hex("hex #1F3A5F") == ["#1F3A5F"]
    assert S.untied_hex("terracotta walls in hex #C4725A") == []
    assert S.untied_hex("no colour here") == []
    assert S.quoted("'Women's Health' in large light green serif typography") == ["Women's Health"]
    assert S.quoted('the word "SAME" on socks') == ["SAME"]


def test_the_same_content_as_json_yaml_and_prose():
    as_json, as_yaml = S.render(MAGAZINE_SHOOT, "json"), S.render(MAGAZINE_SHOOT, "yaml")
    original = S.parse(MAGAZINE_SHOOT).values()
    assert S.parse(as_json).values() == original
    assert S.parse(as_yaml).values() == original
    assert "  top: Dark forest green" in as_yaml
    prose = S.render(MAGAZINE_SHOOT, "prose")
    assert S.parse(prose) is None
    assert "Lighting and atmosphere: key light: Large overhead softbox" in prose
    assert S.parse(S.render(BFL, "yaml")).values() == S.parse(BFL).values()
    with pytest.raises(ParamsError, match="allowed json, yaml, prose"):
        S.render(MAGAZINE_SHOOT, "xml")


def test_changed_fields_name_the_path_and_both_values():
    edited = S.set_value(S.add_item(MAGAZINE_SHOOT, "headlines", "'New'"), "attire.top", "Red raincoat")
    assert S.changed_fields(MAGAZINE_SHOOT, edited) == [
        ("setting.magazine_layout.headlines[4]", None, "'New'"),
        ("subject.attire.top", S.value_at(MAGAZINE_SHOOT, "subject.attire.top"), "Red raincoat"),
    ]
    assert S.changed_fields("a cat", "a dog") == []
