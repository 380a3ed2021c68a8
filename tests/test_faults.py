"""What the fault and abuse audit found (issue 9), each as a test: hostile outputs, foreign leases,
echoed keys, other accounts' keys, double clicks, racing migrations, half-made sweeps, a full disk
and a damaged ledger. Unit tests use an injected transport; the rest the real emulator on loopback."""

from __future__ import annotations

import base64
import errno
import io
import json
import socket
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image

from flux_core import defaults as D
from flux_core.ledger import store
from flux_core.segmind.client import SegmindClient
from flux_core.params import FluxParams
from flux_core.runner import Runner
from flux_core.settings import Connection
from flux_core.ledger.store import Ledger
from tests.conftest import TEST_KEY, client_for, left_in_flight
from tests.test_store import MIGRATIONS

BASE = "https://api.segmind.test"
DEAD = f"{socket.gethostname()}:999999999:dead"  # a process of this host that is gone
CDN = "https://cdn.segmind.test"
RID = "req-1"


def png(size=(64, 48), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def png_bomb(width=30000, height=30000) -> bytes:
    """A small file whose header claims width × height pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class Segmind:
    """A scripted Segmind: every job completes at once; `result` and `output` say what comes back."""

    def __init__(self, result: dict | bytes | None = None, output=None, *, failed_error: str | None = None):
        self.result = result if result is not None else {"status": "COMPLETED", "output": f"{CDN}/1.png"}
        self.output = output if output is not None else (lambda request: httpx.Response(200, content=png()))
        self.failed_error = failed_error
        self.calls: list[httpx.Request] = []
        self.streamed = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        path = request.url.path
        if request.method == "POST" and path == "/v2/flux-2-max":
            return httpx.Response(
                200,
                json={
                    "request_id": RID,
                    "status_url": f"{BASE}/v2/requests/{RID}/status",
                    "response_url": f"{BASE}/v2/requests/{RID}",
                },
            )
        if path.endswith("/status"):
            if self.failed_error:
                return httpx.Response(200, json={"status": "FAILED", "error": self.failed_error})
            return httpx.Response(200, json={"status": "COMPLETED"})
        if path == f"/v2/requests/{RID}":
            if isinstance(self.result, bytes):
                return httpx.Response(200, content=self.result, headers={"content-type": "text/html"})
            return httpx.Response(200, json=self.result)
        if request.url.host == "cdn.segmind.test":
            return self.output(request)
        raise AssertionError(f"unexpected {request.method} {request.url}")

    def count(self, host: str) -> int:
        return sum(1 for r in self.calls if r.url.host == host)

    def runner(self, data_dir: Path, key: str = TEST_KEY) -> Runner:
        connection = Connection.resolve(api_key=key, base_url=BASE, rpm=0)
        client = SegmindClient(
            connection=connection, transport=httpx.MockTransport(self.handler), sleep=lambda s: None
        )
        return Runner(Ledger(data_dir / "ledger.db"), data_dir, client)


def run_once(segmind: Segmind, data_dir: Path, **kw) -> dict:
    runner = segmind.runner(data_dir, **kw)
    run_id = runner.enqueue(FluxParams.parse(prompt="a red cube", seed=1))
    [row] = runner.wait([run_id])
    runner.shutdown()
    return row


def serve(content: bytes, ctype: str = "image/png"):
    return lambda request: httpx.Response(200, content=content, headers={"content-type": ctype})


BAD_OUTPUTS = {
    "html": (serve(b"<html><body>Access denied</body></html>", "text/html"), "it is an HTML page"),
    "empty": (serve(b""), "empty"),
    "gif": (serve(base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")), "GIF"),
    "truncated png": (serve(png((256, 256), (1, 2, 3))[:300]), "not a readable image"),
    "png bomb": (serve(png_bomb()), "too many pixels (the limit is 16 MP)"),
    "claims 5000 × 5000": (serve(png_bomb(5000, 5000)), "5000 × 5000 pixels"),
    "redirect loop": (
        lambda request: httpx.Response(302, headers={"location": f"{CDN}/again.png"}),
        "redirected more than",
    ),
    "gone": (lambda request: httpx.Response(404, json={"error": "no such object"}), "404"),
}


@pytest.mark.parametrize("name", list(BAD_OUTPUTS))
def test_an_unusable_output_ends_the_run_unusable_and_says_it_was_billed(name, data_dir):
    output, words = BAD_OUTPUTS[name]
    segmind = Segmind(output=output)
    row = run_once(segmind, data_dir)
    assert row.status == store.UNUSABLE and row.finished_at
    assert words in row.error and "billed" in row.error
    assert row.image_path is None
    fetched = segmind.count("cdn.segmind.test")
    assert 1 <= fetched <= D.DOWNLOAD_MAX_REDIRECTS + 1
    runner = segmind.runner(data_dir)  # a later scan does not fetch it again
    assert runner.resume() == []
    runner.shutdown()
    assert segmind.count("cdn.segmind.test") == fetched
    assert list((data_dir / "tmp").glob("*")) == []  # no partial file left behind


def test_a_huge_output_is_read_only_up_to_the_cap(data_dir):
    chunk = b"\0" * (1 << 20)
    sent = []

    def endless(request):
        async def body():  # the runner's requests go through the scheduler's async client
            for _ in range(300):  # 300 MB if it were all read
                sent.append(len(chunk))
                yield chunk

        return httpx.Response(200, content=body(), headers={"content-type": "image/png"})

    row = run_once(Segmind(output=endless), data_dir)
    assert row.status == store.UNUSABLE and "larger than 64 MB" in row.error
    assert sum(sent) <= D.OUTPUT_MAX_BYTES + 2 * len(chunk)


@pytest.mark.parametrize(
    "uri,words",
    [
        ("data:image/png;base64,@@@not-base64@@@", "does not decode"),
        ("data:image/png;base64,", "empty"),
        (
            "data:image/png;base64," + base64.b64encode(b"hello world, not a picture").decode(),
            "not a readable",
        ),
    ],
)
def test_an_invalid_data_uri_ends_unusable(uri, words, data_dir):
    row = run_once(Segmind(result={"status": "COMPLETED", "output": uri}), data_dir)
    assert row.status == store.UNUSABLE and words in row.error


def test_a_redirect_is_followed_and_the_key_goes_only_to_the_api_host(data_dir):
    def output(request):
        if request.url.path == "/1.png":
            return httpx.Response(302, headers={"location": "/signed/1.png?sig=abc"})
        return httpx.Response(200, content=png(), headers={"content-type": "image/png"})

    segmind = Segmind(output=output)
    row = run_once(segmind, data_dir)
    assert row.status == store.COMPLETED
    assert [r.url.path for r in segmind.calls if r.url.host == "cdn.segmind.test"] == [
        "/1.png",
        "/signed/1.png",
    ]
    assert all("x-api-key" not in r.headers for r in segmind.calls if r.url.host != "api.segmind.test")


@pytest.mark.parametrize(
    "result,words",
    [
        ({"status": "COMPLETED"}, "names no usable image"),
        ({"status": "COMPLETED", "output": None, "metrics": {}}, "names no usable image"),
        (b"<html>Bad gateway page</html>", "could not be read"),
    ],
)
def test_a_result_with_no_usable_output_ends_unusable_not_open(result, words, data_dir):
    row = run_once(Segmind(result=result), data_dir)
    assert row.status == store.UNUSABLE and words in row.error and "billed" in row.error


def test_a_bare_base64_output_is_taken_as_the_image(data_dir):
    encoded = base64.b64encode(png()).decode()
    row = run_once(Segmind(result={"status": "COMPLETED", "output": encoded}), data_dir)
    assert row.status == store.COMPLETED and row.image_width == 64


def test_a_flaky_download_stays_open_then_gives_up_after_bounded_attempts(data_dir):
    segmind = Segmind(output=lambda request: httpx.Response(503, json={"error": "busy"}))
    row = run_once(segmind, data_dir)
    assert row.status == store.DOWNLOADING and row.download_attempts == 1
    for attempt in range(2, D.DOWNLOAD_MAX_ATTEMPTS + 1):
        runner = segmind.runner(data_dir)
        [row] = runner.wait(runner.resume())
        runner.shutdown()
        assert row.download_attempts == attempt
    assert row.status == store.UNUSABLE and f"{D.DOWNLOAD_MAX_ATTEMPTS} attempt(s)" in row.error
    runner = segmind.runner(data_dir)
    assert runner.resume() == []
    runner.shutdown()


def test_the_disk_filling_up_leaves_the_run_open_and_says_what_to_do(data_dir, monkeypatch):
    from flux_core.media import images

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(images, "store", full)
    row = run_once(Segmind(), data_dir)
    assert row.status == store.DOWNLOADING
    assert "is full" in row.error and "Free some space" in row.error


# --- leases ------------------------------------------------------------------------------------
def test_a_live_lease_of_another_host_is_respected_until_it_lapses(emulator, data_dir):
    server = emulator()
    ledger = Ledger(data_dir / "ledger.db")
    p = FluxParams.parse(prompt="a red cube", seed=1)
    run_id = ledger.create_run(
        p, backend="emulator", base_url=server.url, lease="other-host:42:abcd", key=TEST_KEY
    )
    runner = Runner(ledger, data_dir, client_for(server), backend="emulator")
    try:
        assert ledger.get(run_id).lease_until > store.now_iso()
        assert runner.resume() == []  # the other container is alive: its run is not touched
        ledger.transition(run_id, lease_until=store.now_iso(-1))  # it stopped renewing
        taken = runner.resume()
        assert taken == [run_id]
        [row] = runner.wait(taken)
        assert row.status == store.COMPLETED and server.stats.submits == 1
    finally:
        runner.shutdown()


def test_a_runner_renews_its_leases_and_stops_writing_once_its_lease_is_taken(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    p = FluxParams.parse(prompt="a red cube", seed=1)
    run_id = ledger.create_run(p, backend="segmind", base_url=BASE, lease="me:1:a")
    ledger.transition(run_id, lease_until=store.now_iso(5))
    assert ledger.renew("me:1:a") == 1 and ledger.get(run_id).lease_until > store.now_iso(60)
    assert ledger.claim(run_id, "them:2:b", expected_lease="me:1:a")
    assert not ledger.transition(run_id, store.COMPLETED, owner="me:1:a")
    assert ledger.get(run_id).status == store.CREATED


# --- secrets and keys --------------------------------------------------------------------------
def test_a_key_echoed_by_the_server_is_redacted_everywhere(data_dir, capsys):
    other = "SG_feedfacefeedface"
    segmind = Segmind(failed_error=f"Internal error for api key {TEST_KEY} (owner key {other})")
    row = run_once(segmind, data_dir)
    assert row.status == store.FAILED
    assert TEST_KEY not in row.error and other not in row.error and "SG_***" in row.error
    assert TEST_KEY.encode() not in (data_dir / "ledger.db").read_bytes()
    wal = data_dir / "ledger.db-wal"
    assert not wal.exists() or (
        TEST_KEY.encode() not in wal.read_bytes() and other.encode() not in wal.read_bytes()
    )


def test_a_run_is_only_ever_driven_with_the_key_that_submitted_it(emulator, data_dir):
    mine, theirs = "SG_aaaaaaaaaaaaaaaa", "SG_bbbbbbbbbbbbbbbb"
    server = emulator(keys=(mine, theirs), latency_s=0.1)
    ledger = Ledger(data_dir / "ledger.db")
    p = FluxParams.parse(prompt="a red cube", seed=1)
    client = client_for(server, key=mine)
    run_id = left_in_flight(ledger, server, client, p, key=mine)
    client.close()
    other = Runner(ledger, data_dir, client_for(server, key=theirs))
    assert other.resume() == []
    other.shutdown()
    row = ledger.get(run_id)
    assert row.status == store.QUEUED and "Enter the same key in the sidebar" in row.error
    assert server.stats.polls == 0 and server.stats.downloads == 0  # not a request with their key
    own = Runner(ledger, data_dir, client_for(server, key=mine))
    [row] = own.wait(own.resume())
    own.shutdown()
    assert row.status == store.COMPLETED


def test_the_app_drives_a_session_key_run_once_that_key_is_typed_again(emulator, data_dir, monkeypatch):
    from flux_core.service import Workbench

    configured, typed = "SG_cccccccccccccccc", "SG_dddddddddddddddd"
    server = emulator(keys=(configured, typed), latency_s=0.1)
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_RPM", "0")
    ledger = Ledger(data_dir / "ledger.db")
    p = FluxParams.parse(prompt="a red cube", seed=1)
    run_id = ledger.create_run(p, backend="segmind", base_url=server.url, lease=DEAD, key=typed)
    bench = Workbench(data_dir, api_key=configured, emulator_port=0)  # a restart: only the configured key
    try:
        assert bench.resumed == [] and ledger.get(run_id).status == store.CREATED
        assert server.stats.submits == 0
        backend = bench.backend(typed)  # the user types the key in again
        [row] = backend.runner.wait([run_id])
        assert row.status == store.COMPLETED and server.stats.submits == 1
    finally:
        bench.shutdown(wait=True)


# --- double clicks -----------------------------------------------------------------------------
def test_simultaneous_clicks_of_one_request_make_one_run(emulator, data_dir, monkeypatch):
    from flux_core.service import Workbench

    server = emulator(latency_s=0.1)
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_RPM", "0")
    bench = Workbench(data_dir, api_key=TEST_KEY, emulator_port=0)
    p = FluxParams.parse(prompt="a red cube", seed=1)
    start = threading.Barrier(6)
    ids: list[str] = []

    def click() -> None:
        start.wait()
        ids.append(bench.submit(p, guard="session-1"))

    try:
        threads = [threading.Thread(target=click) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(ids)) == 1
        bench.default.runner.wait(ids)
        with bench.ledger.db() as db:
            assert db["runs"].count == 1
        assert server.stats.submits == 1
    finally:
        bench.shutdown(wait=True)


# --- the ledger --------------------------------------------------------------------------------
# a process that has imported the ledger, then opens one ledger at each line it is given
OPEN_LEDGERS = (
    "import sys\n"
    "from flux_core.ledger.store import Ledger\n"
    "print('ready', flush=True)\n"
    "for line in sys.stdin:\n"
    "    Ledger(line.strip())\n"
    "    print('opened', flush=True)\n"
)


def test_three_processes_opening_a_fresh_directory_migrate_it_cleanly(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_LEDGERS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        assert [p.stdout.readline() for p in procs] == ["ready\n"] * 3
        for attempt in range(8):  # the race showed in about one try of six when each process started cold
            path = tmp_path / f"fresh-{attempt}" / "ledger.db"
            for p in procs:  # all three are told at once, their imports long done
                p.stdin.write(f"{path}\n")
                p.stdin.flush()
            assert [p.stdout.readline() for p in procs] == ["opened\n"] * 3, [p.poll() for p in procs]
            with Ledger(path).db() as db:
                assert db["_sqlite_migrations"].count == len(MIGRATIONS)
    finally:
        for p in procs:
            p.stdin.close()  # the end of their input: each one exits
        errors = [p.stderr.read() for p in procs]
        for p in procs:
            p.wait(timeout=120)
            p.stdout.close()
            p.stderr.close()
    assert [p.returncode for p in procs] == [0, 0, 0], errors


def test_an_interrupted_sweep_start_leaves_no_half_sweep(data_dir, monkeypatch):
    ledger = Ledger(data_dir / "ledger.db")
    inserted = []
    real = store._insert_run

    def dies_on_the_third(db, row):
        if len(inserted) == 2:
            raise KeyboardInterrupt  # Ctrl+C, or the process killed, while the cells are written
        inserted.append(row["id"])
        real(db, row)

    monkeypatch.setattr(store, "_insert_run", dies_on_the_third)
    cells = [([i], FluxParams.parse(prompt="a red cube", seed=i), False) for i in range(4)]
    with pytest.raises(KeyboardInterrupt):
        ledger.create_sweep({}, [], cells=cells, backend="segmind", base_url=BASE)
    with ledger.db() as db:
        assert (db["sweeps"].count, db["runs"].count, db["sweep_cells"].count) == (0, 0, 0)
    monkeypatch.setattr(store, "_insert_run", real)
    sweep_id, run_ids = ledger.create_sweep({}, [], cells=cells, backend="segmind", base_url=BASE)
    with ledger.db() as db:
        assert (db["sweeps"].count, db["runs"].count, db["sweep_cells"].count) == (1, 4, 4)


def cli(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flux_core", *argv], capture_output=True, text=True, timeout=120, env=env
    )


def test_a_damaged_ledger_is_one_line_that_says_what_to_do(data_dir, capsys):
    from flux_core.cli import main

    (data_dir / "ledger.db").write_bytes(b"this is not a database, it is a text file" * 100)
    store.Ledger._migrated.clear()
    assert main(["--data-dir", str(data_dir), "history"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "is damaged" in err and "Move the file aside" in err and "Traceback" not in err


def test_a_read_only_data_directory_is_one_line(data_dir, capsys, monkeypatch):
    """Root ignores file modes, so the refusal is what the OS would say to anybody else."""
    import sqlite3

    from flux_core.cli import main

    real = sqlite3.connect

    def refuse(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    store.Ledger._migrated.clear()
    monkeypatch.setattr(sqlite3, "connect", refuse)
    assert main(["--data-dir", str(data_dir), "history"]) == 3
    monkeypatch.setattr(sqlite3, "connect", real)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cannot write to its data directory" in err
    assert "--data-dir" in err and "internal error" not in err


def test_the_cli_says_why_a_run_did_not_finish_when_the_disk_is_full(emulator, data_dir, capsys, monkeypatch):
    from flux_core.media import images
    from flux_core.cli import main

    server = emulator()
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_API_KEY", TEST_KEY)
    monkeypatch.setenv("SEGMIND_RPM", "0")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(images, "store", full)
    code = main(["--data-dir", str(data_dir), "generate", "--prompt", "a red cube", "--seed", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 3 and json.loads(out)["status"] == "DOWNLOADING"
    assert "is full" in err and "flux-lab resume" in err


def test_a_lease_whose_pid_was_reused_lapses_instead_of_stranding_the_run(emulator, data_dir):
    server = emulator()
    ledger = Ledger(data_dir / "ledger.db")
    p = FluxParams.parse(prompt="a red cube", seed=1)
    reused = f"{socket.gethostname()}:1:gone"  # pid 1 is alive, but it is not a Flux Lab runner
    run_id = ledger.create_run(p, backend="emulator", base_url=server.url, lease=reused, key=TEST_KEY)
    runner = Runner(ledger, data_dir, client_for(server), backend="emulator")
    try:
        assert runner.resume() == []  # while the lease is fresh, its pid is taken at its word
        ledger.transition(run_id, lease_until=store.now_iso(-1))
        [row] = runner.wait(runner.resume())
        assert row.status == store.COMPLETED
    finally:
        runner.shutdown()
