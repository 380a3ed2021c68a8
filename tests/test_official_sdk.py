"""The official `segmind` SDK, unchanged, against the emulator (base_url must end in /v1)."""

from __future__ import annotations

import io

from PIL import Image
from segmind import SegmindClient as OfficialClient
from segmind.v2 import InferenceFailed

from tests.conftest import TEST_KEY


def test_run_submit_async_wait_and_run_sync(emulator):
    server = emulator(latency_s=0.1, queue_s=0.05)
    sdk = OfficialClient(api_key=TEST_KEY, base_url=f"{server.url}/v1")
    result = sdk.run(
        "flux-2-max",
        prompt="a red cube",
        seed=123,
        width=512,
        height=512,
        safety_tolerance=3,
        output_format="png",
    )
    assert result["status"] == "COMPLETED" and result["metrics"]["inference_time"] > 0
    assert result["output"].startswith(server.url)

    job = sdk.submit_async("flux-2-max", prompt="a dog", seed=2)
    assert job.request_id
    assert job.wait(timeout=30, interval=0.05)["status"] == "COMPLETED"

    reply = sdk.run_sync("flux-2-max", prompt="a bird", seed=3, width=256, height=256, output_format="jpeg")
    with Image.open(io.BytesIO(reply.content)) as im:
        assert im.format == "JPEG" and im.size == (256, 256)
    sdk._client.close()


def test_the_sdk_sees_a_failure_as_inference_failed(emulator):
    server = emulator(latency_s=0, queue_s=0)
    sdk = OfficialClient(api_key=TEST_KEY, base_url=f"{server.url}/v1")
    job = sdk.submit_async("flux-2-max", prompt="a bloody sword", seed=1, safety_tolerance=0)
    try:
        job.wait(timeout=30, interval=0.05)
    except InferenceFailed as exc:
        assert "moderated" in exc.detail
    else:
        raise AssertionError("a moderated job must fail")
    finally:
        sdk._client.close()
