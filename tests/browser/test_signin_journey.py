"""Sign-in in a real browser against a local OpenID provider: a visitor who is not signed in sees the
sign-in page and nothing of the ledger (no run, prompt or image, and the image routes answer 401); a
signed-in person the allowlist does not let in sees why and nothing else; a member signs in, works,
and signs out."""

from __future__ import annotations

import httpx
from PIL import Image
from playwright.sync_api import expect

from flux_core.ledger.store import Ledger
from tests.browser.conftest import shoot
from tests.browser.signin import sign_in, sign_out
from tests.browser.test_history_journey import seed_ledger

PROMPT = "a red cube"  # seed_ledger's first run


def no_data(page, prompt: str, hashes: list[str]) -> None:
    """Nothing of the ledger on the page: not the prompt, no picture of the run, no sidebar."""
    expect(page.get_by_text(prompt)).to_have_count(0)
    for digest in hashes:
        expect(page.locator(f"img[src*='{digest}']")).to_have_count(0)
    expect(page.locator("img[src*='_flux/'], img[src*='/media/']")).to_have_count(0)
    expect(page.get_by_test_id("stSidebar")).to_have_count(0)
    expect(page.get_by_label("Prompt", exact=True)).to_have_count(0)
    expect(page.get_by_text("Page not found")).to_have_count(0)


def test_a_visitor_who_is_not_signed_in_sees_the_sign_in_page_and_no_run(
    signin_server, page, data_dir, artifacts, tmp_path
):
    run_id = seed_ledger(data_dir)[0]
    run = Ledger(data_dir / "ledger.db").get(run_id)
    urls = [
        f"/_flux/thumbs/{run.thumb_path.rsplit('/', 1)[-1]}",
        f"/_flux/images/{run.image_path.rsplit('/', 1)[-1]}",
    ]
    hashes = [u.rsplit("/", 1)[-1].split(".")[0] for u in urls]
    server = signin_server(members=["ana@example.com"])

    for path in ["/", "/compare", f"/history?run={run_id}"]:
        page.goto(server.url + path)
        expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
        expect(page.get_by_text("A workbench for Black Forest Labs' FLUX.2 [max]")).to_be_visible()
        no_data(page, PROMPT, hashes)
    shoot(page, artifacts, "sign-in-page")

    for url in urls:  # must not happen: a picture for a request without a session
        for method in ("GET", "HEAD"):
            answer = httpx.request(method, server.url + url, timeout=10)
            assert (answer.status_code, answer.content) == (401, b"")
            assert answer.headers["cache-control"] == "no-store"
            assert "image" not in answer.headers.get("content-type", "")

    sign_in(page, "ana@example.com", "Ana")
    expect(page.get_by_text("Signed in as Ana (ana@example.com) · member")).to_be_visible()
    cookies = {
        c["name"]: c["value"] for c in page.context.cookies() if c["name"].startswith("_streamlit_user")
    }
    assert "_streamlit_user" in cookies
    for url in urls:  # the same URLs with the signed-in person's cookie: the picture
        answer = httpx.get(server.url + url, cookies=cookies, timeout=10)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/")
        assert answer.content and answer.headers["cache-control"].startswith("private")
    tampered = {**cookies, "_streamlit_user": cookies["_streamlit_user"][:-2] + "xx"}
    assert httpx.get(server.url + urls[0], cookies=tampered, timeout=10).status_code == 401

    # Compose draws the run's picture from the image route, which answers the signed-in person
    page.goto(f"{server.url}/?run={run_id}")
    expect(page.locator(f"img[src*='/_flux/images/{hashes[1]}']")).to_be_visible()
    # Streamlit's own media endpoint (st.image of an uploaded reference's preview) holds to the same rule
    reference = tmp_path / "reference.png"
    Image.new("RGB", (32, 32), "teal").save(reference)
    page.get_by_text("Reference images (up to 8)").click()
    page.locator("input[type=file]").set_input_files(str(reference))
    picture = page.locator("img[src*='/media/']").first
    expect(picture).to_be_visible()
    media = picture.get_attribute("src")
    media = media if media.startswith("http") else server.url + media
    answer = httpx.get(media, timeout=10)
    assert (answer.status_code, answer.content, answer.headers["cache-control"]) == (401, b"", "no-store")
    answer = httpx.get(media, cookies=cookies, timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/")


def test_a_person_the_allowlist_does_not_let_in_sees_why_and_no_data(
    signin_server, page, data_dir, artifacts
):
    run_id = seed_ledger(data_dir)[0]
    run = Ledger(data_dir / "ledger.db").get(run_id)
    hashes = [run.thumb_path.rsplit("/", 1)[-1].split(".")[0]]
    server = signin_server(members=["ana@example.com"])
    page.goto(f"{server.url}/history?run={run_id}")
    sign_in(page, "**mallory**@elsewhere.example", "<b>Mallory</b>")
    refusal = (
        "You are signed in as **mallory**@elsewhere.example, and this Flux Lab does not let that address in; "
        "ask an admin to add it."
    )
    expect(page.get_by_text(refusal)).to_be_visible()  # the address as text, never Markdown
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    for path in ["/", "/compare", f"/history?run={run_id}"]:
        page.goto(server.url + path)
        expect(page.get_by_text(refusal)).to_be_visible()
        no_data(page, PROMPT, hashes)
    shoot(page, artifacts, "refused")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    thumb = f"/_flux/thumbs/{run.thumb_path.rsplit('/', 1)[-1]}"
    assert httpx.get(server.url + thumb, cookies=cookies, timeout=10).status_code == 401


def test_an_unverified_address_is_refused_then_a_member_signs_in_and_out(signin_server, page, artifacts):
    server = signin_server(admins=["lead@example.com"], members=["@example.com"])
    page.goto(server.url)
    sign_in(page, "ana@example.com", "Ana", email_verified=False)  # listed, but not verified
    expect(page.get_by_text("does not let that address in")).to_be_visible()
    expect(page.get_by_text("has not verified that address")).to_be_visible()
    expect(page.get_by_label("Prompt", exact=True)).to_have_count(0)
    sign_out(page)

    sign_in(page, "Ana@Example.com", "Ana")
    expect(page.get_by_label("Prompt", exact=True)).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Signed in as Ana (ana@example.com) · member")).to_be_visible()
    shoot(page, artifacts, "signed-in")
    sign_out(page, sidebar)
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    expect(page.get_by_label("Prompt", exact=True)).to_have_count(0)
    assert not [c for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]
