"""What a page transfers, from Chromium's own network events (CDP): each request, whether the
browser's cache answered it, and the bytes that came over HTTP and over Streamlit's WebSocket. For the
browser journeys and bench/warm_visits.py."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
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
        self.ws_messages = 0  # the script's messages that reached the page (Streamlit's ForwardMsgs)
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
        self.ws_messages = 0

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
        self.ws_messages += 1
        self.ws_bytes += (
            len(base64.b64decode(data)) if event["response"]["opcode"] == 2 else len(data.encode())
        )

    def to(self, part: str) -> list[Request]:
        """The requests whose URL contains `part` (a path such as "/_flux/thumbs/")."""
        return [r for r in self.requests.values() if part in r.url]

    def fetched(self) -> list[tuple[str, int]]:
        """What came from the server over the network (not the browser's cache): URL and bytes."""
        return [(r.url, r.bytes) for r in self.requests.values() if r.bytes and not r.from_cache]

    @property
    def http_bytes(self) -> int:
        return sum(r.bytes for r in self.requests.values())

    @property
    def total_bytes(self) -> int:
        return self.http_bytes + self.ws_bytes


class Wire:
    """A loopback relay in front of the app that counts the bytes the server sends, as they cross the
    wire: Chromium's own events give a WebSocket message's payload after it is inflated, so only
    here does a compressed WebSocket (permessage-deflate) show what it saves. Point the browser at
    `url`; each connection is counted as WebSocket (its first request asks for Streamlit's
    `/_stcore/stream`) or HTTP. For bench/browser_loop.py and the browser journeys."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.ws_bytes = 0
        self.http_bytes = 0
        self._writers: set = set()  # every open stream, both sides, closed with the relay
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait()
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self, ready) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    async def _relay(self, client_reader, client_writer) -> None:
        self._writers.add(client_writer)
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.close()
            return
        self._writers.add(server_writer)
        for writer in (client_writer, server_writer):
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        first = await client_reader.read(65536)
        ws = b"/_stcore/stream" in first.split(b"\r\n", 1)[0]
        server_writer.write(first)

        async def up() -> None:
            while chunk := await client_reader.read(65536):
                server_writer.write(chunk)
                await server_writer.drain()
            server_writer.close()

        async def down() -> None:
            while chunk := await server_reader.read(65536):
                if ws:
                    self.ws_bytes += len(chunk)
                else:
                    self.http_bytes += len(chunk)
                client_writer.write(chunk)
                await client_writer.drain()
            client_writer.close()

        try:
            await asyncio.gather(up(), down())
        except (ConnectionError, OSError):
            pass
        finally:
            for writer in (client_writer, server_writer):
                writer.close()
                self._writers.discard(writer)

    def reset(self) -> None:
        self.ws_bytes = 0
        self.http_bytes = 0

    @property
    def total_bytes(self) -> int:
        return self.ws_bytes + self.http_bytes

    def close(self) -> None:
        """Stop relaying: the listener and every connection through it closed, the thread ended."""

        async def shut() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in list(self._writers):
                writer.close()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
