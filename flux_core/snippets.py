"""A run's exact request as code a person can copy: curl, Python with httpx, and the official
`segmind` SDK. Each is built from the payload the run sent (reference image URLs included) and
reads the key from the environment ($SEGMIND_API_KEY, os.environ): the key itself is never in it.

The flow is Segmind's v2 protocol (shared/segmind-protocol.md, section 3): POST /v2/{slug} answers
request_id, status_url and response_url; the status is polled until COMPLETED or FAILED (a FAILED
status answers 422); the result's `output` is the image URL, downloaded without the key.
"""

from __future__ import annotations

import json
import pprint
import shlex
from typing import Any

from flux_core import defaults as D

LANGUAGES = ("curl", "httpx", "sdk")
TITLES = {"curl": "curl", "httpx": "Python (httpx)", "sdk": "Python (segmind SDK)"}
KEY_VARIABLE = D.API_KEY_ENV


def build(
    language: str, payload: dict[str, Any], *, base_url: str = D.BASE_URL, model: str = D.MODEL_SLUG
) -> str:
    """The request as `language` (one of LANGUAGES); a ValueError names the allowed ones."""
    makers = {"curl": curl, "httpx": python_httpx, "sdk": python_sdk}
    if language not in makers:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)} (got {language!r})")
    return makers[language](payload, base_url=base_url, model=model)


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def curl(payload: dict[str, Any], *, base_url: str = D.BASE_URL, model: str = D.MODEL_SLUG) -> str:
    base = _base(base_url)
    body = json.dumps(payload, ensure_ascii=False)
    key = f'"x-api-key: ${KEY_VARIABLE}"'
    return "\n".join(
        [
            f"# Submit (export {KEY_VARIABLE} first). The reply names request_id, status_url and response_url.",
            f"curl -sS -X POST {shlex.quote(f'{base}/v2/{model}')} \\",
            f"  -H {key} \\",
            "  -H 'Content-Type: application/json' \\",
            f"  -d {shlex.quote(body)}",
            "",
            '# Then poll the status until "status" is COMPLETED (or FAILED):',
            f'#   curl -sS -H {key} "$STATUS_URL"',
            '# and read the result: its "output" is the image\'s URL (download it without the key):',
            f'#   curl -sS -H {key} "$RESPONSE_URL"',
        ]
    )


def python_httpx(payload: dict[str, Any], *, base_url: str = D.BASE_URL, model: str = D.MODEL_SLUG) -> str:
    base = _base(base_url)
    ext = "jpg" if payload.get("output_format") == "jpeg" else "png"
    return f'''import os
import time

import httpx

BASE_URL = {base!r}
payload = {pprint.pformat(payload, sort_dicts=False, width=88)}

headers = {{"x-api-key": os.environ[{KEY_VARIABLE!r}]}}
with httpx.Client(headers=headers, timeout=30) as client:
    job = client.post(f"{{BASE_URL}}/v2/{model}", json=payload).raise_for_status().json()
    deadline = time.monotonic() + {D.SNIPPET_TIMEOUT_S!r}
    while True:
        status = client.get(job["status_url"]).json()  # a FAILED job answers 422 with its error
        if status.get("status") in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
            break
        time.sleep({D.SNIPPET_POLL_S!r})
    if status.get("status") != "COMPLETED":
        raise SystemExit(f"not completed: {{status}}")
    result = client.get(job["response_url"]).raise_for_status().json()

output = result["output"]
url = output[0] if isinstance(output, list) else output
image = httpx.get(url, timeout=60, follow_redirects=True).raise_for_status()  # no key to the CDN
with open("{model}-{payload.get("seed", "result")}.{ext}", "wb") as f:
    f.write(image.content)
print("saved", f.name)
'''


def python_sdk(payload: dict[str, Any], *, base_url: str = D.BASE_URL, model: str = D.MODEL_SLUG) -> str:
    base = _base(base_url)
    # the SDK's base URL names /v1 (it finds the v2 routes from it)
    where = "" if base == _base(D.BASE_URL) else f", base_url={base + '/v1'!r}"
    return f"""import os

from segmind import SegmindClient

client = SegmindClient(api_key=os.environ[{KEY_VARIABLE!r}]{where})
payload = {pprint.pformat(payload, sort_dicts=False, width=88)}
result = client.run({model!r}, **payload)  # submits on v2, polls until COMPLETED (raises on FAILED)
print(result["output"])  # the image's URL
"""
