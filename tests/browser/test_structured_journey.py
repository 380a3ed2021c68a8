"""A structured prompt in the browser: the magazine template as fields, one field changed in the
form and nothing else in the text; a sweep over that field, compared with the field named."""

from __future__ import annotations

from playwright.sync_api import expect

from flux_core import structured
from flux_ui.templates import MAGAZINE_SHOOT
from tests.browser.conftest import cli_sweep, shoot

NEW_TOP = "Bright yellow rain jacket with the hood down"


def test_the_form_changes_one_line_and_a_sweep_over_that_field_names_it(
    app_server, page, data_dir, artifacts
):
    server = app_server()
    page.goto(server.url)
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill(MAGAZINE_SHOOT)
    page.get_by_text("Edit as fields").click()
    fields = page.locator(".st-key-compose_fields")
    expect(page.get_by_text("Edit as fields (30 fields, YAML-style)")).to_be_visible()
    top = fields.get_by_label("top", exact=True)
    expect(top).to_have_value(structured.value_at(MAGAZINE_SHOOT, "subject.attire.top") or "")
    top.fill(NEW_TOP)
    top.press("Enter")
    expected = structured.set_value(MAGAZINE_SHOOT, "subject.attire.top", NEW_TOP)
    expect(prompt).to_have_value(expected)
    shoot(page, artifacts, "1-form", docs_name="prompt-form.png")

    page.get_by_text("Edit as fields (30 fields, YAML-style)").click()  # back to the text alone
    expect(fields).to_have_count(0)
    shown = prompt.input_value()
    changed = [(a, b) for a, b in zip(MAGAZINE_SHOOT.split("\n"), shown.split("\n")) if a != b]
    assert len(shown.split("\n")) == len(MAGAZINE_SHOOT.split("\n"))
    assert changed == [
        (
            "top: Dark forest green lightweight zip-up windbreaker jacket, sleeves slightly bunched at elbows",
            f"top: {NEW_TOP}",
        )
    ]

    tops = [NEW_TOP, "Navy wool peacoat", "White cropped hoodie"]
    values = [a for top_value in tops for a in ("--value", top_value)]
    sweep_id = cli_sweep(data_dir, "tops", "5", "3", "--field", "attire.top", *values, prompt=shown)
    page.goto(f"{server.url}/compare?sweep={sweep_id}")
    expect(page.get_by_test_id("fl-cell")).to_have_count(3)
    expect(page.get_by_text(f"subject.attire.top: {tops[0]} → {tops[1]}")).to_be_visible()
    shoot(page, artifacts, "2-field-sweep")
