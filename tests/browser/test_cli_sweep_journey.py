"""A sweep made on the command line, then opened in the browser (issue 11): the same service wrote
it, so Compare shows its grid with every image and History lists its runs."""

from __future__ import annotations


from playwright.sync_api import expect

from tests.browser.conftest import cli_sweep, shoot


def test_a_sweep_started_from_the_cli_opens_in_compare_and_history(app_server, page, data_dir, artifacts):
    sweep_id = cli_sweep(data_dir, "lighthouse from the shell", "1,2", "2,5")

    server = app_server()
    page.goto(f"{server.url}/compare?sweep={sweep_id}")
    expect(page.get_by_text("4 done · 0 blocked · 0 failed · 0 pending")).to_be_visible()
    expect(page.get_by_text("lighthouse from the shell").first).to_be_visible()
    expect(page.get_by_test_id("fl-cell").locator("img")).to_have_count(4)  # the four cells' thumbnails
    expect(page.get_by_text("Traceback")).to_have_count(0)
    shoot(page, artifacts, "1-cli-sweep-in-compare")

    page.goto(f"{server.url}/compare")  # the saved sweeps' cards offer it, with no error
    expect(page.get_by_text("Plan a sweep")).to_be_visible()
    expect(page.get_by_text("lighthouse from the shell")).to_be_visible()
    expect(page.get_by_text("Traceback")).to_have_count(0)

    page.goto(f"{server.url}/history?h_q=lighthouse")
    expect(page.get_by_text("4 run(s) · showing 1–4")).to_be_visible()
    expect(page.get_by_text("Traceback")).to_have_count(0)
    shoot(page, artifacts, "2-cli-sweep-in-history")
