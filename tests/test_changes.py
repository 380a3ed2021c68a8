"""The ledger's change feed (flux_core/ledger/changes.py) and its socket (serving.py's
/_flux/changes): a write from another process is noticed, a waiter wakes when told, nothing polls in
a loop while waiting, and the route is held to sign-in like the pictures."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

import pytest
from starlette.applications import Starlette

from flux_core import defaults as D
from flux_core.ledger import changes
from flux_core.ledger import store
from flux_core.params import FluxParams
from flux_core.service import Workbench
from flux_ui import serving
from tests.test_serving_signin import AUTH, TEAM, Client, identity_cookie, secrets  # noqa: F401

WAIT_S = 30.0  # a bound for a wait that ends as soon as the change is told (never reached when all is well)
NEVER_S = 3600.0  # a look interval no test waits out: a change found is one the feed was told of


def ledger(tmp_path) -> store.Ledger:
    return store.Ledger(tmp_path / D.DB_NAME)


def a_run(book: store.Ledger) -> str:
    return book.create_run(FluxParams.parse({"prompt": "a lamp"}), backend="emulator", base_url="http://x")


def test_a_write_by_another_process_is_noticed(tmp_path):
    book = ledger(tmp_path)
    feed = changes.Feed(book.path, look_s=0.05)
    try:
        before = feed.version
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]);"
                "db.execute('UPDATE runs SET notes = notes'); db.execute('CREATE TABLE elsewhere (x)'); db.commit()",
                str(book.path),
            ],
            check=True,
        )
        assert feed.wait(before, WAIT_S) > before
    finally:
        feed.stop()


def test_a_waiter_wakes_when_a_runner_of_this_process_pokes(tmp_path):
    book = ledger(tmp_path)
    feed = changes.Feed(book.path, look_s=NEVER_S)  # only a poke can make it look again
    try:
        before = feed.version
        woke: list[int] = []
        waiter = threading.Thread(target=lambda: woke.append(feed.wait(before, WAIT_S)))
        waiter.start()
        a_run(book)
        feed.poke()
        waiter.join()
        assert woke and woke[0] > before
    finally:
        feed.stop()


def test_a_coroutine_waiter_wakes_too_and_one_change_is_announced_once(tmp_path):
    book = ledger(tmp_path)
    feed = changes.Feed(book.path, look_s=NEVER_S)
    try:
        before = feed.version

        async def go() -> int:
            told = asyncio.ensure_future(feed.next(before, WAIT_S))
            await asyncio.sleep(0)  # the waiter is registered
            await asyncio.to_thread(a_run, book)
            feed.poke()
            return await told

        after = asyncio.run(go())
        assert after > before
        feed.poke()  # nothing new committed: a second look is no change
        assert feed.wait(after, 0.2) == after
    finally:
        feed.stop()


def test_nothing_is_read_in_a_loop_while_nobody_changes_anything(tmp_path):
    book = ledger(tmp_path)
    feed = changes.Feed(book.path, look_s=NEVER_S)
    try:
        before = feed.version
        assert feed.wait(before, 0.3) == before  # no change: the wait ends empty
        assert feed.looks <= 1  # the watcher's first look only: waiting reads nothing
    finally:
        feed.stop()


def test_an_idle_watcher_stops_and_its_restart_counts_as_a_change(tmp_path):
    book = ledger(tmp_path)
    feed = changes.Feed(book.path, look_s=NEVER_S, idle_s=0.0)
    try:
        thread = feed._thread
        assert thread is not None
        thread.join(WAIT_S)  # nobody asks: it stops after its first look
        assert not thread.is_alive()
        before = feed._version
        assert feed.version > before  # asked again: watching again, and the pause is a change
    finally:
        feed.stop()


def test_the_workbench_runner_tells_the_feed_when_a_run_lands(tmp_path):
    bench = Workbench(tmp_path, emulator="ephemeral", background=False)
    try:
        feed = bench.changes
        feed.look_s = NEVER_S
        feed.poke()  # the watcher starts its long wait: from now on only a poke makes it look
        before = feed.wait(0, 0)
        [run_id] = bench.submit_many(FluxParams.parse({"prompt": "a lamp", "width": 256, "height": 256}), 1)
        bench.wait([run_id])
        assert feed.wait(before, WAIT_S) > before
    finally:
        bench.shutdown(wait=True)
        bench.changes.stop()


class Closed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Socket:
    """A WebSocket to an ASGI app in-process, as a tab opens one (starlette's TestClient needs
    httpx2): what the tab sends, what it is sent, and the close code when the app closes it."""

    def __init__(self, app: Starlette, path: str, cookies: dict[str, str] | None = None) -> None:
        headers = [(b"host", b"localhost")]
        if cookies:
            headers.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
        self.scope = {
            "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "path": path,
            "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": headers,
            "server": ("localhost", 80), "client": ("127.0.0.1", 1), "subprotocols": [],
        }  # fmt: skip
        self.app = app

    async def __aenter__(self) -> Socket:
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.outbox: asyncio.Queue = asyncio.Queue()
        await self.inbox.put({"type": "websocket.connect"})
        self.task = asyncio.create_task(self.app(self.scope, self.inbox.get, self.outbox.put))
        opened = await asyncio.wait_for(self.outbox.get(), WAIT_S)
        if opened["type"] == "websocket.close":
            raise Closed(opened.get("code", 1000))
        assert opened["type"] == "websocket.accept"
        return self

    async def send(self, question: dict) -> None:
        await self.inbox.put({"type": "websocket.receive", "text": json.dumps(question)})

    async def receive(self) -> dict:
        message = await asyncio.wait_for(self.outbox.get(), WAIT_S)
        if message["type"] == "websocket.close":
            raise Closed(message.get("code", 1000))
        return json.loads(message["text"])

    async def __aexit__(self, *exc: object) -> None:
        await self.inbox.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, WAIT_S)


def test_the_feed_socket_answers_with_the_version_past_since(tmp_path, secrets):  # noqa: F811
    secrets({})
    ledger(tmp_path)
    app = Starlette(routes=serving.routes(tmp_path))
    now = changes.feed(tmp_path / D.DB_NAME).version

    async def tab() -> None:
        async with Socket(app, "/_flux/changes") as socket:
            await socket.send({"n": 1, "since": now - 1, "topics": [], "any": True})
            assert await socket.receive() == {"n": 1, "version": now, "digests": {}}
            await socket.send({"n": 2, "since": "soon"})  # a question that does not parse: said, then closed
            assert "since must be a whole number" in (await socket.receive())["problem"]
            with pytest.raises(Closed) as closed:
                await socket.receive()
            assert closed.value.code == 1003

    asyncio.run(tab())


def test_with_sign_in_the_feed_socket_opens_only_for_someone_let_in(tmp_path, secrets):  # noqa: F811
    secrets({"auth": AUTH, "team": TEAM})
    ledger(tmp_path)
    app = Starlette(routes=serving.routes(tmp_path))
    now = changes.feed(tmp_path / D.DB_NAME).version

    async def tabs() -> None:
        with pytest.raises(Closed) as refused:
            async with Socket(app, "/_flux/changes"):
                pass
        assert refused.value.code == 1008  # the handshake refused: the browser sees a 403
        async with Socket(app, "/_flux/changes", identity_cookie({"email": "ana@example.com"})) as socket:
            await socket.send({"n": 1, "since": now - 1, "topics": []})
            assert (await socket.receive())["version"] == now

    asyncio.run(tabs())


# --- topics: a part is told only of changes to what it shows --------------------------------------


def test_a_topic_digest_moves_with_what_its_part_shows_and_not_with_a_lease_renewal(tmp_path):
    book = ledger(tmp_path)
    mine, other = a_run(book), a_run(book)
    feed = changes.Feed(book.path, look_s=NEVER_S)
    try:
        topics = [changes.topic(changes.RUNS, mine), changes.topic(changes.RECENT, 1)]

        def now() -> dict:
            feed.poke()
            feed.wait(feed.version, 0.5)  # the poke looked (a commit, if any, is noticed by now)
            return feed.digests(topics)[1]

        first = now()
        assert all(first.values())
        book.claim(mine, "host:1:t", expected_lease=None)
        claimed = now()
        assert claimed[topics[0]] != first[topics[0]]  # claiming moves updated_at
        book.renew("host:1:t")
        assert now() == claimed  # a lease renewed: nothing shown changed
        book.transition(other, "SUBMITTING", owner=None)
        moved = now()
        assert moved[topics[0]] == claimed[topics[0]]  # another run: not this part's business
        assert moved[topics[1]] != claimed[topics[1]]  # but the newest run changed
        with book.write() as db:
            db.execute(
                "INSERT INTO checks (run_id, name, version, score, result, computed_at) VALUES (?, 'text', 1, 1, '{}', 'x')",
                [mine],
            )
        assert now()[topics[0]] != moved[topics[0]]  # its check landed
        assert changes.digest(feed._reader, "runs:a b") is None  # not a topic: told of every change
        assert changes.digest(feed._reader, "nonsense:1") is None
    finally:
        feed.stop()


def test_a_question_with_a_topic_waits_past_changes_to_other_runs(tmp_path, secrets):  # noqa: F811
    secrets({})
    book = ledger(tmp_path)
    mine, other = a_run(book), a_run(book)
    app = Starlette(routes=serving.routes(tmp_path))
    feed = changes.feed(tmp_path / D.DB_NAME)
    started = feed.version
    a_run(book)  # the watcher has looked (and so notices the next commit): it noticed this one
    feed.poke()
    feed.wait(started, WAIT_S)
    topic = changes.topic(changes.RUNS, mine)
    version, drawn = feed.digests([topic])
    book.transition(other, "SUBMITTING", owner=None)  # someone else's run moves on first

    async def tab() -> None:
        async with Socket(app, "/_flux/changes") as socket:
            await socket.send({"n": 1, "since": version, "topics": [[topic, drawn[topic]]]})
            feed.poke()
            other_seen = await asyncio.to_thread(feed.wait, version, WAIT_S)
            assert other_seen > version  # the other run's change is noticed, and not this part's news
            await socket.send({"n": 2, "since": version, "topics": [[topic, drawn[topic]]]})  # replaces 1
            await asyncio.to_thread(book.transition, mine, "SUBMITTING", owner=None)
            feed.poke()
            body = await socket.receive()
            if body["n"] == 1:  # the server woke on this run's change before it had read question 2
                assert body["version"] > other_seen and body["digests"][topic] != drawn[topic]
                body = await socket.receive()  # then question 2 is news at once
            # never an answer for the other run's change: each carries this run's news
            assert body["n"] == 2
            assert body["version"] > other_seen and body["digests"][topic] != drawn[topic]
            await socket.send({"n": 3, "since": version, "topics": [[topic]]})
            assert "give each topic its digest" in (await socket.receive())["problem"]

    asyncio.run(tab())
