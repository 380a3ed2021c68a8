"""A job handle: the small immutable record needed to poll a v2 request, rebuildable from the ledger."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from flux_core import defaults as D
from flux_core.errors import OutputUnusable


@dataclass(frozen=True)
class Job:
    request_id: str
    status_url: str
    response_url: str
    poll_url: str | None = None

    @classmethod
    def from_submit_body(cls, body: Any) -> "Job | None":
        """The handle in a submit reply; None when a required field is missing."""
        if not isinstance(body, dict):
            return None
        request_id, status_url, response_url = (
            body.get("request_id"),
            body.get("status_url"),
            body.get("response_url"),
        )
        if not (
            isinstance(request_id, str)
            and request_id
            and isinstance(status_url, str)
            and status_url
            and isinstance(response_url, str)
            and response_url
        ):
            return None
        poll_url = body.get("poll_url")
        return cls(request_id, status_url, response_url, poll_url if isinstance(poll_url, str) else None)

    @classmethod
    def from_request_id(cls, request_id: str, base_url: str = D.BASE_URL) -> "Job":
        """Rebuild a handle from a request id alone (the documented URL shapes)."""
        base = base_url.rstrip("/")
        return cls(
            request_id=request_id,
            status_url=f"{base}/v2/requests/{request_id}/status",
            response_url=f"{base}/v2/requests/{request_id}",
            poll_url=f"{base}/v1/requests/{request_id}",
        )


@dataclass(frozen=True)
class Outcome:
    """A COMPLETED job: the result body, the image URL in it, and the metrics reported."""

    job: Job
    body: dict[str, Any]
    image_url: str
    metrics: dict[str, Any]


_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]{64,}")


def image_url_from(body: dict[str, Any]) -> str | None:
    """Accept `output` as a URL string or list of URLs, or `images[].url`; tolerate `data:` URIs and
    a bare base64 string (as a `data:` URI: the bytes are checked like any download)."""
    output = body.get("output")
    if isinstance(output, str) and output.startswith(("http://", "https://", "data:")):
        return output
    if isinstance(output, str) and _BASE64.fullmatch(output.strip()):
        return "data:application/octet-stream;base64," + "".join(output.split())
    if isinstance(output, list):
        for item in output:
            if isinstance(item, str) and item.startswith(("http://", "https://", "data:")):
                return item
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                return item["url"]
    if isinstance(output, dict) and isinstance(output.get("url"), str):
        return output["url"]
    images = body.get("images")
    if isinstance(images, list):
        for item in images:
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                return item["url"]
            if isinstance(item, str):
                return item
    return None


def decode_data_uri(uri: str, max_bytes: int) -> tuple[bytes, str]:
    """The bytes and MIME type of a `data:` URI of at most `max_bytes`; OutputUnusable otherwise."""
    header, comma, data = uri.partition(",")
    mime = header[5:].split(";")[0] or "application/octet-stream"
    if not comma:
        raise OutputUnusable("The output is a data: URI without data.")
    if len(data) > max_bytes * 4 // 3 + 4:
        raise OutputUnusable(f"The output data: URI is larger than {max_bytes // 2**20} MB.")
    if ";base64" in header:
        try:
            decoded = base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise OutputUnusable("The output is a data: URI whose base64 does not decode.") from None
    else:
        decoded = unquote_to_bytes(data)
    if not decoded:
        raise OutputUnusable("The output is an empty data: URI.")
    if len(decoded) > max_bytes:
        raise OutputUnusable(f"The output data: URI is larger than {max_bytes // 2**20} MB.")
    return decoded, mime


def metrics_from(body: dict[str, Any]) -> dict[str, Any]:
    metrics = body.get("metrics")
    return dict(metrics) if isinstance(metrics, dict) else {}
