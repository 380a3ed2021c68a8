"""`flux-lab` end to end: in-process for speed, and as a real process where a kill is involved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from flux_core.cli import main
from flux_core.ledger.store import Ledger
from tests.conftest import TEST_KEY


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def point_at(monkeypatch, server, key: str = TEST_KEY) -> None:
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_API_KEY", key)
    monkeypatch.setenv("SEGMIND_RPM", "0")


def test_generate_with_the_embedded_emulator_prints_a_completed_run(capsys):
    code, out, err = cli(capsys, "generate", "--emulator", "--prompt", "a red cube", "--seed", "1", "--json")
    assert code == 0, err
    run = json.loads(out)
    assert run["status"] == "COMPLETED" and run["seed"] == 1 and run["prompt"] == "a red cube"
    for key in (
        "run_id",
        "request_id",
        "width",
        "height",
        "safety_tolerance",
        "output_format",
        "inference_time",
        "error",
    ):
        assert key in run
    path = Path(run["image_path"])
    assert path.is_absolute() and path.exists()
    with Image.open(path) as im:
        assert im.size == (1024, 1024)


def test_a_bad_width_exits_2_before_anything_is_sent(capsys, monkeypatch, emulator):
    server = emulator()
    point_at(monkeypatch, server)
    code, out, err = cli(capsys, "generate", "--prompt", "a red cube", "--width", "1000")
    assert code == 2 and "width must be a multiple of 16: try 992 or 1008" in err and out == ""
    assert server.stats.submit_requests == 0
    code, out, _ = cli(capsys, "history", "--json")
    assert out == ""  # nothing written either


def test_argument_errors_are_one_line_and_exit_2(capsys):
    code, _, err = cli(capsys, "sweep", "--prompt", "x", "--seeds", "1,two")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "two" in err


def test_a_rejected_key_exits_3_without_echoing_it(capsys, monkeypatch, emulator):
    server = emulator(keys=("SG_valid0000000000",))
    bad_key = "SG_secretsecret1234"
    point_at(monkeypatch, server, key=bad_key)
    code, out, err = cli(capsys, "generate", "--prompt", "a red cube", "--json")
    assert code == 3 and "rejected the API key" in out + err
    assert bad_key not in out + err and "secretsecret" not in out + err


def test_a_missing_key_names_the_variable(capsys):
    code, _, err = cli(capsys, "generate", "--prompt", "a red cube")
    assert code == 3 and "SEGMIND_API_KEY" in err and "Traceback" not in err


def test_a_failed_job_exits_1_with_the_servers_words(capsys, monkeypatch, emulator):
    point_at(monkeypatch, emulator())
    code, out, err = cli(capsys, "generate", "--prompt", "a cube #fail", "--json")
    run = json.loads(out)
    assert code == 1 and run["status"] == "FAILED" and "Internal model error" in run["error"]


def test_a_moderation_block_is_reported_as_a_block(capsys, monkeypatch, emulator):
    point_at(monkeypatch, emulator())
    code, out, err = cli(capsys, "generate", "--prompt", "a bloody sword", "--safety-tolerance", "0")
    assert code == 1 and "BLOCKED" in out and "Blocked by the safety filter at safety tolerance 0" in err


def test_flaky_polls_still_complete_with_one_submit(capsys, monkeypatch, emulator):
    server = emulator(poll_fault_rate=0.34, latency_s=0.4)
    point_at(monkeypatch, server)
    code, out, err = cli(capsys, "generate", "--prompt", "a red cube", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "COMPLETED" and server.stats.submit_requests == 1


def test_sweep_runs_the_cross_product_one_json_line_each(capsys, monkeypatch, emulator):
    server = emulator()
    point_at(monkeypatch, server)
    code, out, err = cli(
        capsys,
        "sweep",
        "--prompt",
        "a zombie at dusk",
        "--seeds",
        "1,2,3",
        "--safety-tolerances",
        "1,3",
        "--width",
        "256",
        "--height",
        "256",
        "--json",
    )
    runs = [json.loads(line) for line in out.splitlines()]
    assert code == 1  # the tolerance-1 cells are blocked
    assert sorted((r["seed"], r["safety_tolerance"]) for r in runs) == [
        (s, t) for s in (1, 2, 3) for t in (1, 3)
    ]
    assert {r["status"] for r in runs if r["safety_tolerance"] == 1} == {"BLOCKED"}
    assert {r["status"] for r in runs if r["safety_tolerance"] == 3} == {"COMPLETED"}
    assert len({r["sweep_id"] for r in runs}) == 1 and server.stats.submits == 6


def test_history_search_and_show(capsys, monkeypatch, emulator):
    point_at(monkeypatch, emulator())
    cli(capsys, "generate", "--prompt", "a red cube", "--seed", "4")
    cli(capsys, "generate", "--prompt", "a green tree", "--seed", "5")
    code, out, _ = cli(capsys, "history", "--search", "tree", "--json")
    [run] = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and run["prompt"] == "a green tree"
    code, out, _ = cli(capsys, "show", run["run_id"], "--json")
    shown = json.loads(out)
    assert [e["status"] for e in shown["events"]][-1] == "COMPLETED"
    code, _, err = cli(capsys, "show", "NOPE")
    assert code == 2 and "no run with id" in err


def test_local_reference_images_are_uploaded_and_recorded(capsys, monkeypatch, emulator, tmp_path):
    server = emulator()
    point_at(monkeypatch, server)
    ref = tmp_path / "ref.png"
    Image.new("RGB", (32, 32), "orange").save(ref)
    code, out, err = cli(
        capsys,
        "generate",
        "--prompt",
        "a cat",
        "--image",
        str(ref),
        "--image-url",
        "https://example.com/a.png",
        "--json",
    )
    run = json.loads(out)
    assert code == 0, err
    assert run["image_urls"][0] == "https://example.com/a.png" and run["image_urls"][1].startswith(server.url)
    assert server.stats.uploads == 1
    (tmp_path / "fake.png").write_text("not an image")
    code, _, err = cli(capsys, "generate", "--prompt", "a cat", "--image", str(tmp_path / "fake.png"))
    assert code == 2 and "not a readable image" in err and server.stats.uploads == 1


def test_a_sweep_killed_after_its_submits_is_finished_by_resume(capsys, monkeypatch, emulator):
    server = emulator(latency_s=2.0)
    point_at(monkeypatch, server)
    sweep = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flux_core",
            "sweep",
            "--prompt",
            "a red cube",
            "--seeds",
            "1,2,3,4",
            "--width",
            "256",
            "--height",
            "256",
            "--progress",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
    )
    queued = 0
    for line in sweep.stderr:  # progress lines, as they happen
        queued += "QUEUED" in line
        if queued == 4:
            break
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    sweep.stderr.close()
    assert queued == 4 and server.stats.submits == 4

    code, out, err = cli(capsys, "resume", "--json")
    assert code == 0, err
    assert sorted(json.loads(line)["seed"] for line in out.splitlines()) == [1, 2, 3, 4]
    code, out, _ = cli(capsys, "history", "--json")
    runs = [json.loads(line) for line in out.splitlines()]
    assert len(runs) == 4 and {r["status"] for r in runs} == {"COMPLETED"}
    assert server.stats.submits == 4  # none submitted twice


def test_the_console_script_is_installed_and_answers(tmp_path):
    exe = Path(sys.executable).parent / "flux-lab"
    if not exe.exists():
        pytest.skip("flux-lab is not installed in this environment (make test installs it)")
    reply = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert reply.returncode == 0 and "generate" in reply.stdout


def test_ctrl_c_exits_at_once_and_leaves_the_run_to_resume(monkeypatch, emulator, data_dir):
    server = emulator(latency_s=60.0)
    point_at(monkeypatch, server)
    gen = subprocess.Popen(
        [sys.executable, "-m", "flux_core", "generate", "--prompt", "a slow cube", "--progress"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
        # as a terminal's Ctrl-C finds it, even when the suite itself was started with SIGINT ignored
        # (a shell's background job): a child inherits that, and Python then never raises
        # KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    for line in gen.stderr:
        if "QUEUED" in line:
            break
    gen.send_signal(signal.SIGINT)
    rest = gen.stderr.read()
    gen.stderr.close()
    assert gen.wait() == 130 and "flux-lab resume" in rest and "Traceback" not in rest
    [run] = Ledger(data_dir / "ledger.db").search(None)
    assert run.status in ("QUEUED", "PROCESSING") and run.request_id and server.stats.submits == 1


def test_an_unreadable_setting_is_one_line_not_a_traceback(capsys, monkeypatch):
    monkeypatch.setenv("SEGMIND_RPM", "lots")
    monkeypatch.setenv("SEGMIND_API_KEY", "SG_0123456789abcdef")
    code, _, err = cli(capsys, "generate", "--prompt", "a red cube")
    assert (
        code == 2
        and err.strip()
        == "flux-lab: SEGMIND_RPM must be a whole number of requests per minute, 0 for no limit (got 'lots')"
    )


def test_two_resumes_started_at_once_drive_each_run_once(capsys, monkeypatch, emulator):
    server = emulator(latency_s=1.0)
    point_at(monkeypatch, server)
    sweep = subprocess.Popen(
        [sys.executable, "-m", "flux_core", "sweep", "--prompt", "a red cube", "--seeds", "1,2,3,4,5,6"]
        + ["--width", "256", "--height", "256", "--progress"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
    )
    queued = 0
    for line in sweep.stderr:
        queued += "QUEUED" in line
        if queued == 6:
            break
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    sweep.stderr.close()
    resumes = [
        subprocess.Popen(
            [sys.executable, "-m", "flux_core", "resume", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in resumes]
    assert [p.returncode for p in resumes] == [0, 0], [e for _, e in outputs]
    seeds = sorted(json.loads(line)["seed"] for out, _ in outputs for line in out.splitlines())
    assert seeds == [1, 2, 3, 4, 5, 6]  # each run driven by one of the two, none by both
    code, out, _ = cli(capsys, "history", "--json")
    assert {json.loads(line)["status"] for line in out.splitlines()} == {"COMPLETED"}
    assert server.stats.submits == 6 and server.stats.downloads == 6


def test_every_bad_seed_is_named_at_once(capsys):
    code, out, err = cli(capsys, "sweep", "--prompt", "x", "--seeds", "-5, 99999999999")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "seed -5 must be from 0 to" in err and "seed 99999999999 must be from 0 to" in err


def test_a_missing_key_is_said_once(capsys):
    code, _, err = cli(capsys, "generate", "--prompt", "a red cube")
    assert code == 3 and err.count("SEGMIND_API_KEY") == 1, err
    assert err.strip() == (
        "flux-lab: No Segmind API key. Set SEGMIND_API_KEY (or run with --emulator for offline previews)."
    )


def test_a_bad_image_is_named_by_its_file(capsys, tmp_path):
    bad = tmp_path / "notanimage.png"
    bad.write_text("just text")
    code, _, err = cli(capsys, "generate", "--emulator", "--prompt", "a cat", "--image", str(bad))
    assert code == 2 and f"--image {bad} is not a readable image" in err
    assert "BytesIO" not in err and "0x" not in err


def test_history_escapes_control_characters_of_prompts(capsys):
    hostile = "a \x1b[31mred\x1b[0m cube\x07 and \x9b2J"
    code, _, err = cli(capsys, "generate", "--emulator", "--prompt", hostile, "--seed", "1")
    assert code == 0, err
    code, out, _ = cli(capsys, "history")
    assert code == 0 and "\\x1b[31mred\\x1b[0m cube\\x07 and \\x9b2J" in out
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in out.replace("\n", ""))
    run_id = out.split()[1]
    code, out, _ = cli(capsys, "show", run_id)
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[31m" in out


def test_a_megabyte_prompt_is_refused_before_anything_is_sent(capsys):
    code, out, err = cli(capsys, "generate", "--emulator", "--prompt", "x" * 1_000_000)
    assert code == 2 and "prompt must be at most 10,000 characters (got 1,000,000)" in err
    code, out, _ = cli(capsys, "history", "--json")
    assert out == ""


# --- Compose (issue 14): --count, presets, code ----------------------------------------------
def test_generate_count_runs_n_seeds_at_once(capsys, monkeypatch, emulator):
    server = emulator()
    point_at(monkeypatch, server)
    code, out, err = cli(
        capsys, "generate", "--prompt", "a red cube", "--seed", "5", "--count", "3", "--json"
    )
    assert code == 0, err
    runs = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["seed"] for r in runs) == [5, 6, 7] and {r["status"] for r in runs} == {"COMPLETED"}
    assert server.stats.submit_requests == 3


def test_a_bad_count_exits_2_and_sends_nothing(capsys, monkeypatch, emulator):
    server = emulator()
    point_at(monkeypatch, server)
    code, out, err = cli(capsys, "generate", "--prompt", "a red cube", "--count", "9")
    assert code == 2 and "images must be a whole number from 1 to 4 (got 9)" in err and out == ""
    assert server.stats.submit_requests == 0


def test_presets_save_list_delete_and_generate_from_one_flags_winning(capsys, monkeypatch, emulator):
    point_at(monkeypatch, emulator())
    code, _, err = cli(
        capsys, "preset", "save", "wide draft", "--width", "1344", "--height", "768", "--seed", "9",
        "--safety-tolerance", "5", "--output-format", "jpeg", "--prompt", "a wide valley",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = cli(capsys, "preset", "list", "--json")
    [saved] = [json.loads(line) for line in out.splitlines()]
    assert saved == {
        "name": "wide draft", "width": 1344, "height": 768, "seed_mode": "fixed", "seed": 9,
        "safety_tolerance": 5, "output_format": "jpeg", "prompt": "a wide valley",
    }  # fmt: skip
    code, out, err = cli(capsys, "generate", "--preset", "wide draft", "--safety-tolerance", "2", "--json")
    assert code == 0, err
    run = json.loads(out)
    assert (run["prompt"], run["width"], run["height"], run["seed"], run["output_format"]) == (
        "a wide valley",
        1344,
        768,
        9,
        "jpeg",
    )
    assert run["safety_tolerance"] == 2  # the flag given wins over the preset
    code, _, err = cli(capsys, "preset", "delete", "wide draft")
    assert code == 0 and "Deleted preset wide draft." in err
    code, _, err = cli(capsys, "preset", "delete", "wide draft")
    assert code == 2 and "no preset named 'wide draft'" in err


def test_a_bad_preset_value_exits_2_naming_the_field_and_saves_nothing(capsys):
    code, out, err = cli(capsys, "preset", "save", "x", "--width", "1000")
    assert code == 2 and "width must be a multiple of 16: try 992 or 1008" in err and out == ""
    code, out, err = cli(capsys, "preset", "list")
    assert out == "" and "No presets yet" in err


def test_generate_from_an_unknown_preset_exits_2(capsys):
    code, _, err = cli(capsys, "generate", "--emulator", "--preset", "nope")
    assert code == 2 and "no preset named 'nope'" in err
    code, _, err = cli(capsys, "generate", "--emulator")
    assert code == 2 and "--prompt is required" in err


def test_code_prints_the_runs_request_without_the_key(capsys, monkeypatch, emulator):
    point_at(monkeypatch, emulator())
    code, out, err = cli(capsys, "generate", "--prompt", "a red cube", "--seed", "4", "--json")
    run_id = json.loads(out)["run_id"]
    for language in ("curl", "httpx", "sdk"):
        code, out, err = cli(capsys, "code", run_id, "--as", language)
        assert code == 0, err
        assert '"a red cube"' in out or "'a red cube'" in out
        assert TEST_KEY not in out and "SEGMIND_API_KEY" in out
    code, _, err = cli(capsys, "code", "nope")
    assert code == 2 and "no run with id 'nope'" in err
    code, _, err = cli(capsys, "code", run_id, "--as", "ruby")
    assert code == 2 and "invalid choice: 'ruby'" in err
