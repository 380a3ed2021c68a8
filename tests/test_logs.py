"""Logging: what is logged, where, and that no key ever is."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from flux_core import logs
from flux_core.segmind.budget import RequestBudget
from flux_core.errors import remember_secret
from flux_core.params import FluxParams
from flux_core.runner import Runner
from flux_core.ledger.store import Ledger
from tests.conftest import TEST_KEY, client_for


@pytest.fixture
def log_file(data_dir):
    path = logs.configure(data_dir)
    yield path
    for handler in logging.getLogger(logs.ROOT).handlers:
        handler.flush()


def read(path) -> str:
    for handler in logging.getLogger(logs.ROOT).handlers:
        handler.flush()
    return path.read_text()


def test_no_key_reaches_the_log_not_even_in_a_traceback(log_file):
    odd_key = "not-shaped-like-segmind-0042"
    remember_secret(odd_key)
    try:
        raise RuntimeError(f"upstream said: bad key {TEST_KEY} / {odd_key}")
    except RuntimeError:
        logs.logger("tests").exception("call with %s failed", TEST_KEY)
    text = read(log_file)
    assert "Traceback" in text and "upstream said: bad key" in text
    assert TEST_KEY not in text and odd_key not in text and "bad key *** / ***" in text


def test_an_internal_error_while_driving_a_run_is_logged_with_its_traceback(emulator, data_dir, log_file):
    server = emulator()
    runner = Runner(Ledger(data_dir / "ledger.db"), data_dir, client_for(server), backend="emulator")

    def broken(row):
        raise ZeroDivisionError("a bug in the runner")

    runner._advance = broken
    run_id = runner.enqueue(FluxParams.parse(prompt="a red cube", seed=1))
    [row] = runner.wait([run_id])
    runner.shutdown()
    assert row.error_kind == "internal"
    text = read(log_file)
    assert f"internal error while driving run {run_id}" in text
    assert "Traceback" in text and "ZeroDivisionError: a bug in the runner" in text


def test_a_rate_limit_pause_is_logged(log_file):
    RequestBudget(rpm=10).pause_until(datetime.now(timezone.utc) + timedelta(seconds=30))
    assert "rate limited: every request with this key waits" in read(log_file)


def test_the_level_comes_from_the_environment(monkeypatch, data_dir):
    monkeypatch.setenv("FLUX_LAB_LOG_LEVEL", "warning")
    logs.configure(data_dir)
    assert logging.getLogger(logs.ROOT).level == logging.WARNING
    monkeypatch.setenv("FLUX_LAB_LOG_LEVEL", "nonsense")
    logs.configure(data_dir)
    assert logging.getLogger(logs.ROOT).level == logging.INFO


def test_the_cli_prints_one_line_for_an_internal_error_and_logs_the_traceback(data_dir, capsys, monkeypatch):
    from flux_core import cli

    def broken(args):
        raise KeyError("something unexpected")

    monkeypatch.setitem(cli.COMMANDS, "history", broken)
    assert cli.main(["--data-dir", str(data_dir), "history"]) == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "internal error" in err and "flux-lab.log" in err
    text = read(data_dir / "logs" / "flux-lab.log")
    assert "Traceback" in text and "KeyError: 'something unexpected'" in text
