"""What a page transfers, from Chromium's own network events (CDP): each request, whether the
browser's cache answered it, and the bytes that came over HTTP and over Streamlit's WebSocket. For the
browser journeys and bench/warm_visits.py."""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass
class Request:
    url: str
    from_cache: bool = False  # answered by the browser's memory or disk cache, not the server
    bytes: int = 0  # what came over the network for it (headers and body, as Chromium counts them)


class Transfers:
    """Counts what one page transfers from the moment it is made, or from the last `reset`."""

    def __init__(self, context, page) -> None:
        self.requests: dict[str, Request] = {}
        self.ws_bytes = 0
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.requestServedFromCache", self._cached)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.webSocketFrameReceived", self._frame)

    def reset(self) -> None:
        self.requests.clear()
        self.ws_bytes = 0

    def _request(self, event: dict) -> Request:
        return self.requests.setdefault(event["requestId"], Request(url=""))

    def _sent(self, event: dict) -> None:
        self._request(event).url = event["request"]["url"]

    def _cached(self, event: dict) -> None:
        self._request(event).from_cache = True

    def _response(self, event: dict) -> None:
        response = event["response"]
        if response.get("fromDiskCache") or response.get("fromPrefetchCache"):
            self._request(event).from_cache = True

    def _finished(self, event: dict) -> None:
        self._request(event).bytes += int(event.get("encodedDataLength") or 0)

    def _frame(self, event: dict) -> None:  # binary frames arrive base64-encoded: count their bytes
        data = event["response"]["payloadData"]
        self.ws_bytes += (
            len(base64.b64decode(data)) if event["response"]["opcode"] == 2 else len(data.encode())
        )

    def to(self, part: str) -> list[Request]:
        """The requests whose URL contains `part` (a path such as "/_flux/thumbs/")."""
        return [r for r in self.requests.values() if part in r.url]

    @property
    def http_bytes(self) -> int:
        return sum(r.bytes for r in self.requests.values())

    @property
    def total_bytes(self) -> int:
        return self.http_bytes + self.ws_bytes
