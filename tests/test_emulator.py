"""The emulator on a real loopback server, spoken to over HTTP as Segmind would be."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from tests.conftest import TEST_KEY

HEADERS = {"x-api-key": TEST_KEY}
BODY = {
    "prompt": "a red cube",
    "seed": 1,
    "width": 512,
    "height": 256,
    "safety_tolerance": 3,
    "output_format": "png",
}


def submit(server, body=None, headers=None) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v2/flux-2-max",
        json=BODY if body is None else body,
        headers=HEADERS if headers is None else headers,
    )


def test_submit_status_result_and_file_with_absolute_urls(emulator):
    server = emulator(latency_s=0, queue_s=0)
    reply = submit(server)
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "QUEUED" and body["status_url"].startswith(server.url + "/v2/requests/")
    assert body["poll_url"] == f"{server.url}/v1/requests/{body['request_id']}"
    status = httpx.get(body["status_url"], headers=HEADERS).json()
    assert (
        status["status"] == "COMPLETED"
        and "output" not in status
        and status["metrics"]["inference_time"] >= 0
    )
    result = httpx.get(body["response_url"], headers=HEADERS).json()
    assert result["output"] == result["images"][0]["url"] and result["metrics"]["cost"] > 0
    image = httpx.get(result["output"])
    with Image.open(io.BytesIO(image.content)) as im:
        assert im.size == (512, 256) and im.format == "PNG"
    legacy = httpx.get(body["poll_url"], headers=HEADERS).json()
    assert legacy["output"] == result["output"]


def test_urls_follow_the_host_the_client_used(emulator):
    server = emulator()
    reply = httpx.post(f"http://localhost:{server.port}/v2/flux-2-max", json=BODY, headers=HEADERS)
    assert reply.json()["status_url"].startswith(f"http://localhost:{server.port}/")


@pytest.mark.parametrize(
    "headers, needle",
    [
        ({}, "Missing Authorization or x-api-key"),
        ({"Authorization": f"Bearer {TEST_KEY}"}, "invalid"),
    ],
)
def test_401_without_an_x_api_key(emulator, headers, needle):
    reply = submit(emulator(), headers=headers)
    assert reply.status_code == 401 and needle in reply.json()["error"]


def test_401_for_a_key_it_does_not_know(emulator):
    server = emulator(keys=("SG_good000000000000",))
    assert submit(server).status_code == 401
    assert submit(server, headers={"x-api-key": "SG_good000000000000"}).status_code == 200


def test_406_for_a_non_json_content_type(emulator):
    reply = httpx.post(
        f"{emulator().url}/v2/flux-2-max",
        content=b"prompt=x",
        headers={**HEADERS, "content-type": "text/plain"},
    )
    assert reply.status_code == 406 and reply.json()["error"] == "Invalid content type"


def test_406_when_the_credits_run_out(emulator):
    server = emulator(credits=0.1, cost=0.07, latency_s=0, queue_s=0)
    first = submit(server).json()
    httpx.get(first["status_url"], headers=HEADERS)  # completes and is charged
    reply = submit(server)
    assert reply.status_code == 406 and "Insufficient credits" in reply.json()["error"]
    credits = httpx.get(f"{server.url}/v1/get-user-credits", headers=HEADERS).json()
    assert credits["credits"] == pytest.approx(0.03)


def test_failed_comes_under_422_on_status_and_result(emulator):
    server = emulator(latency_s=0, queue_s=0)
    body = submit(server, {**BODY, "prompt": "a cube #fail"}).json()
    for url in (body["status_url"], body["response_url"]):
        reply = httpx.get(url, headers=HEADERS)
        assert reply.status_code == 422 and reply.json()["status"] == "FAILED" and reply.json()["error"]


def test_moderation_depends_on_safety_tolerance(emulator):
    server = emulator(latency_s=0, queue_s=0)
    outcomes = {}
    for tol in range(7):
        body = submit(server, {**BODY, "prompt": "a bloody sword", "safety_tolerance": tol}).json()
        outcomes[tol] = httpx.get(body["status_url"], headers=HEADERS).json()["status"]
    assert outcomes == {
        0: "FAILED",
        1: "FAILED",
        2: "FAILED",
        3: "COMPLETED",
        4: "COMPLETED",
        5: "COMPLETED",
        6: "COMPLETED",
    }


def test_404_after_retention(emulator):
    server = emulator(retention_s=0)
    body = submit(server).json()
    reply = httpx.get(body["status_url"], headers=HEADERS)
    assert reply.status_code == 404 and reply.json()["error"] == f"Request {body['request_id']} not found"


def test_rate_limit_answers_429_with_the_reset_header(emulator):
    server = emulator(rpm=2)
    assert [submit(server).status_code for _ in range(3)] == [200, 200, 429]
    limited = submit(server)
    assert "x-rate-limit-reset-at-utc" in limited.headers and "retry-after" not in limited.headers
    assert "rate_limit_exceeded" in limited.json()["error"]


def test_validation_at_submit_or_as_failed(emulator):
    strict = emulator()
    reply = submit(strict, {**BODY, "width": 1000})
    assert reply.status_code == 400 and "width" in reply.json()["error"]
    lax = emulator(validation="failed", latency_s=0, queue_s=0)
    body = submit(lax, {**BODY, "width": 1000}).json()
    status = httpx.get(body["status_url"], headers=HEADERS)
    assert status.status_code == 422 and "width" in status.json()["error"]


def test_strict_image_urls_mode_rejects_a_missing_list(emulator):
    assert submit(emulator(strict_image_urls=True)).status_code == 400


def test_405_is_an_html_page_and_retired_or_unknown_slugs_fail_fast(emulator):
    server = emulator(retired_slugs=("flux-1-old",))
    wrong = httpx.get(f"{server.url}/v2/flux-2-max", headers=HEADERS)
    assert wrong.status_code == 405 and wrong.text.startswith("<html>")
    assert httpx.post(f"{server.url}/v2/flux-1-old", json=BODY, headers=HEADERS).status_code == 410
    assert httpx.post(f"{server.url}/v2/nope", json=BODY, headers=HEADERS).status_code == 404


def test_v1_sync_returns_image_bytes_with_accounting_headers(emulator):
    server = emulator(latency_s=0, queue_s=0)
    reply = httpx.post(f"{server.url}/v1/flux-2-max", json={**BODY, "output_format": "jpeg"}, headers=HEADERS)
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/jpeg"
    assert {"x-cost", "x-remaining-credits", "x-generation-time", "x-seed-value", "x-request-id"} <= set(
        reply.headers
    )
    with Image.open(io.BytesIO(reply.content)) as im:
        assert im.size == (512, 256) and im.format == "JPEG"


@pytest.mark.parametrize("key", ["file_urls", "urls"])
def test_upload_asset_serves_what_was_uploaded(emulator, key):
    server = emulator(upload_key=key)
    reply = httpx.post(
        f"{server.url}/upload-asset",
        json={"data_urls": ["data:image/png;base64,iVBORw0KGgo="]},
        headers=HEADERS,
    )
    url = reply.json()[key][0]
    assert httpx.get(url).content == b"\x89PNG\r\n\x1a\n"


def test_poll_faults_are_injected_at_the_configured_rate(emulator):
    server = emulator(poll_fault_rate=1.0, poll_faults=("garbage",), latency_s=0, queue_s=0)
    body = submit(server).json()
    reply = httpx.get(body["status_url"], headers=HEADERS)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")


def test_a_dropped_connection_after_the_job_was_taken(emulator):
    server = emulator(submit_fault_rate=1.0, submit_faults=("drop-after",))
    with pytest.raises(httpx.RemoteProtocolError):
        submit(server)
    assert server.stats.submits == 1  # the job exists, the client cannot know its id


def test_uploaded_assets_outlive_a_restart_of_an_emulator_that_keeps_state(tmp_path):
    import httpx

    from flux_core.emulator.server import EmulatorConfig, EmulatorServer
    from tests.conftest import client_for

    state = str(tmp_path / "emulator-state.json")
    picture = b"\x89PNG\r\n\x1a\n" + b"pretend pixels"
    with EmulatorServer(EmulatorConfig(state_path=state)) as first:
        [url] = client_for(first).upload([(picture, "image/png")])
        port = first.port
        assert httpx.get(url).content == picture
    with EmulatorServer(EmulatorConfig(state_path=state), port=port) as again:  # the app restarted
        reply = httpx.get(url)
        assert reply.status_code == 200 and reply.content == picture
        assert reply.headers["content-type"] == "image/png"
        assert httpx.get(f"{again.url}/files/assets/..%2F..%2Femulator-state.json").status_code == 404
        assert httpx.get(f"{again.url}/files/assets/{'0' * 32}.png").status_code == 404
