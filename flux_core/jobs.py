"""A job handle: the small immutable record needed to poll a v2 request, rebuildable from the ledger."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from flux_core import defaults as D


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


def image_url_from(body: dict[str, Any]) -> str | None:
    """Accept `output` as a URL string or list of URLs, or `images[].url`; tolerate `data:` URIs."""
    output = body.get("output")
    if isinstance(output, str) and output.startswith(("http://", "https://", "data:")):
        return output
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


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    header, _, data = uri.partition(",")
    mime = header[5:].split(";")[0] or "application/octet-stream"
    if ";base64" in header:
        return base64.b64decode(data), mime
    from urllib.parse import unquote_to_bytes

    return unquote_to_bytes(data), mime


def metrics_from(body: dict[str, Any]) -> dict[str, Any]:
    metrics = body.get("metrics")
    return dict(metrics) if isinstance(metrics, dict) else {}
