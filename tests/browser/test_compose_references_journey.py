"""A new user at Compose → Reference images, in a real browser with no key: a path on the server, then
plain text, as an image URL, and a text file uploaded as an image. Each gets a message naming the
problem, the form stays usable, and no file of the server is opened. And a typed draft survives a trip
to History and a reload."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image
from playwright.sync_api import expect

from flux_core.ledger import store
from flux_core.ledger.store import Ledger
from tests.browser.conftest import shoot


def test_bad_references_get_messages_and_no_server_file_is_opened(
    app_server, page, data_dir, artifacts, tmp_path
):
    # a short path (the message quotes up to 80 characters; pytest's tmp_path can be longer)
    secret_dir = Path(tempfile.mkdtemp(prefix="srv-")) / "photos"
    secret_dir.mkdir(parents=True)
    secret = secret_dir / "ref.png"
    Image.new("RGB", (64, 64), "magenta").save(secret)
    not_an_image = tmp_path / "notanimage.png"
    not_an_image.write_text("this is text, not a picture")
    media: list[str] = []  # what the page asks the server for besides the app itself
    page.on("request", lambda r: media.append(r.url) if urlsplit(r.url).path.startswith("/media/") else None)

    server = app_server()
    page.goto(server.url)
    expect(page.get_by_text("Offline emulator: preview images, not FLUX")).to_be_visible()
    page.get_by_text("Reference images (up to 8)").click()
    urls = page.get_by_role("textbox", name="Image URLs, one per line")

    urls.fill(str(secret))
    urls.press("Tab")
    expect(
        page.get_by_text(f"image URL 1 must be an http:// or https:// URL (got '{secret}')")
    ).to_be_visible()
    shoot(page, artifacts, "1-server-path")
    expect(page.get_by_test_id("stImage")).to_have_count(0)

    urls.fill("a red cube on the table")
    urls.press("Tab")
    expect(
        page.get_by_text("image URL 1 must be an http:// or https:// URL (got 'a red cube on the table')")
    ).to_be_visible()
    expect(page.get_by_text(str(secret), exact=False)).to_have_count(0)  # that message went with the line
    shoot(page, artifacts, "2-plain-text")

    page.locator("input[type=file]").set_input_files(str(not_an_image))
    expect(
        page.get_by_text("notanimage.png is not a readable image: expected PNG, JPEG, WEBP or GIF")
    ).to_be_visible()
    expect(page.get_by_text("Traceback")).to_have_count(0)
    expect(page.get_by_text("UnidentifiedImageError")).to_have_count(0)
    shoot(page, artifacts, "3-text-file")

    # must not happen: the server opening the file at that path (or the text file) to show a preview
    expect(page.get_by_test_id("stImage")).to_have_count(0)
    assert media == []

    # the form stays usable: Generate refuses and says why, then works once the references are fixed
    page.get_by_label("Prompt", exact=True).fill("a red cube")
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_text("Nothing was sent. Fix these first:")).to_be_visible()
    assert Ledger(data_dir / "ledger.db").search(None, limit=10) == []
    urls.fill("")
    urls.press("Tab")
    page.get_by_role("button", name="Remove notanimage.png").click()
    expect(page.get_by_text("is not a readable image")).to_have_count(0)
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_text("Done · You waited")).to_be_visible()
    shoot(page, artifacts, "4-generated")
    [run] = Ledger(data_dir / "ledger.db").search(None, limit=10)
    assert run.status == store.COMPLETED and "image_urls" not in run.request
    # the result, its thumbnail in this session's feed and in the recent runs: no reference preview
    expect(page.get_by_test_id("stImage")).to_have_count(1)
    expect(page.get_by_test_id("fl-card").locator("img")).to_have_count(2)  # each card, once it follows


def test_a_typed_draft_survives_history_and_a_reload(app_server, page, data_dir, artifacts):
    server = app_server()
    page.goto(server.url)
    page.get_by_label("Prompt", exact=True).fill("a draft that was never generated")
    page.get_by_label("Width").fill("768")
    page.get_by_label("Width").press("Tab")
    expect(page.get_by_role("combobox", name="Aspect ratio")).to_have_value("Custom")
    page.get_by_text("Random seed").click()
    page.get_by_label("Seed", exact=True).fill("4242")
    page.get_by_label("Seed", exact=True).press("Tab")
    page.get_by_text("jpeg", exact=True).click()
    expect(page).to_have_url(re.compile(r"compose_format=jpeg"))  # the URL holds the draft
    shoot(page, artifacts, "1-draft")

    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    page.get_by_role("link", name="Compose").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a draft that was never generated")
    expect(page.get_by_label("Width")).to_have_value("768")
    expect(page.get_by_label("Seed", exact=True)).to_have_value("4242")
    shoot(page, artifacts, "2-back-from-history")

    page.reload()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a draft that was never generated")
    expect(page.get_by_label("Width")).to_have_value("768")
    expect(page.get_by_label("Seed", exact=True)).to_have_value("4242")
    expect(
        page.get_by_test_id("stRadio").filter(has_text="Output format").locator("input:checked")
    ).to_have_value("1")
    expect(page.get_by_role("combobox", name="Aspect ratio")).to_have_value("Custom")
    shoot(page, artifacts, "3-after-reload")
    assert Ledger(data_dir / "ledger.db").search(None, limit=10) == []  # must not happen: a draft sent


def test_an_oversized_reference_is_refused_by_name_and_nothing_is_billed(
    app_server, page, data_dir, tmp_path
):
    """30 MB: above flux_core's 20 MB limit (and above the 25 MB Streamlit limit that used to drop the
    file without a word, so the run went out and was billed without its reference)."""
    big = tmp_path / "holiday.png"
    Image.new("RGB", (16, 16), "navy").save(big)
    with big.open("ab") as f:
        f.truncate(30 * 2**20)
    server = app_server()
    page.goto(server.url)
    page.get_by_text("Reference images (up to 8)").click()
    page.locator("input[type=file]").set_input_files(str(big))
    expect(page.get_by_text("holiday.png is 31.5 MB; the limit is 20 MB")).to_be_visible()
    page.get_by_label("Prompt", exact=True).fill("a red cube")
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_text("Nothing was sent. Fix these first:")).to_be_visible()
    assert Ledger(data_dir / "ledger.db").search(None, limit=10) == []  # must not happen: a billed run
