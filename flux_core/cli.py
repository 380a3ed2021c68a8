"""`flux-lab`: generate, sweep, hunt, history, show, resume, import, board, curate, preset, code,
rename-sweep, retry-sweep, diff, spend, comment, verdict, report, emulator.

Exit codes: 0 success; 1 a job ended FAILED, BLOCKED or EXPIRED; 2 invalid arguments or
parameters, or a spend cap reached (nothing sent); 3 the call failed (auth, credits, network after retries). Errors are
one readable line on stderr; the API key never appears in output.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, NoReturn

from flux_core.checks import report as check_report
from flux_core import caps
from flux_core import defaults as D
from flux_core import lifecycle
from flux_core import presentation as P
from flux_core.ledger import store
from flux_core.ledger.records import Run
from flux_core.ledger import reviews, sweeps
from flux_core.ledger import lineage as lineages
from flux_core.emulator.server import EmulatorConfig, serve_forever
from flux_core import logs
from flux_core import snippets
from flux_core.errors import (
    CallFailed,
    CapReached,
    ConfirmationNeeded,
    FluxError,
    LedgerError,
    redact,
    remember_secret,
)
from flux_core.errors import UnknownRun
from flux_core.ledger.boards import Board
from flux_core.media.images import ImageProblem, check_reference
from flux_core.params import FluxParams, ParamsError, model_name, parse_seeds, random_seed
from flux_core.service import Workbench
from flux_core.settings import data_dir as resolve_data_dir
from flux_core.ledger.store import storage_error

EXIT_OK, EXIT_JOB_FAILED, EXIT_INVALID, EXIT_CALL_FAILED = 0, 1, 2, 3
log = logs.logger(__name__)


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def _csv_ints(text: str) -> list[int | None]:
    values: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part.lower() == "random":
            values.append(None)
            continue
        try:
            values.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected whole numbers separated by commas, got {part!r}"
            ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one value")
    return values


def _seeds(text: str) -> list[int | None]:
    """--seeds: whole numbers (every bad one named at once) or `random`."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    typed = [p for p in parts if p.lower() != "random"]
    try:
        numbers = iter(parse_seeds(",".join(typed)) if typed or not parts else [])
    except ParamsError as exc:
        raise argparse.ArgumentTypeError("; ".join(exc.problems)) from None
    return [None if p.lower() == "random" else next(numbers) for p in parts]


def terminal_text(value: Any) -> str:
    """User text as a terminal may print it: control characters (ESC, BEL, ...) escaped, so a prompt
    cannot recolour, retitle or beep the terminal."""
    text = str(value)
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def _add_model(p: argparse.ArgumentParser, *, single: bool) -> None:
    """--model (one, or with `single` off several as an axis) and FLUX.2 [flex]'s own fields."""
    models = ", ".join(D.MODELS)
    if single:
        p.add_argument("--model", default=D.MODEL_SLUG, help=f"one of {models} (default {D.MODEL_SLUG})")
    else:
        p.add_argument(
            "--model",
            action="append",
            default=[],
            help=f"{models}: one, or several (comma-separated or repeated) as an axis (default {D.MODEL_SLUG})",
        )
    flex = D.MODELS[D.FLEX_SLUG]
    p.add_argument("--steps", type=int, default=None, help=f"{flex} only: 1..50, default {D.FLEX_STEPS}")
    p.add_argument(
        "--guidance", type=float, default=None, help=f"{flex} only: 1.5..10, default {D.FLEX_GUIDANCE}"
    )
    p.add_argument(
        "--prompt-upsampling",
        action="store_const",
        const=True,
        default=None,
        help=f"{flex} only: let the server rewrite the prompt (off by default, so a seed stays meaningful)",
    )


def _add_params(p: argparse.ArgumentParser, *, single: bool) -> None:
    # generate: a flag left out is None, so a --preset can fill it (a flag given wins over the preset)
    p.add_argument("--prompt", required=not single, default=None)
    if single:
        p.add_argument("--seed", default=None, help="a whole number, or 'random' (default: random, recorded)")
        p.add_argument("--safety-tolerance", type=int, default=None, help=f"default {D.SAFETY_TOLERANCE}")
    _add_model(p, single=single)
    p.add_argument("--width", type=int, default=None if single else D.WIDTH)
    p.add_argument("--height", type=int, default=None if single else D.HEIGHT)
    p.add_argument("--output-format", default=None if single else D.OUTPUT_FORMAT, help="png or jpeg")
    p.add_argument("--image-url", action="append", default=[], help="a reference image URL (up to 8)")
    p.add_argument("--image", action="append", default=[], type=Path, help="a local reference image file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--emulator", action="store_true", help="use an in-process emulator (no key, no network)")
    p.add_argument(
        "--progress",
        action="store_true",
        help="print every status change to stderr (the default on a terminal)",
    )


def build_parser() -> _Parser:
    parser = _Parser(prog="flux-lab", description="Flux Lab: FLUX.2 [max] on Segmind, with a run ledger.")
    parser.add_argument("--data-dir", default=None, help=f"default ${D.DATA_DIR_ENV} or {D.DATA_DIR}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = sub.add_parser("generate", help="submit one run (or --count runs), wait, store the images")
    _add_params(gen, single=True)
    # --- Compose (issue 14): images per Generate, presets, the request as code ---
    gen.add_argument(
        "--count",
        type=int,
        default=1,
        help=f"runs at once, 1..{D.COMPOSE_MAX_IMAGES}: random seeds are drawn for each; "
        "a fixed --seed N runs N, N+1, ...",
    )
    gen.add_argument("--preset", default=None, help="start from a saved preset (flags given win over it)")

    preset = sub.add_parser("preset", help="saved parameter sets: save, list, delete")
    preset_sub = preset.add_subparsers(dest="preset_command", required=True, parser_class=_Parser)
    save = preset_sub.add_parser("save", help="save (or replace) a preset")
    save.add_argument("name")
    save.add_argument("--prompt", default=None, help="keep a prompt in the preset, too")
    save.add_argument("--width", type=int, default=D.WIDTH)
    save.add_argument("--height", type=int, default=D.HEIGHT)
    save.add_argument("--seed", default=None, help="a whole number, or 'random' (default: random)")
    save.add_argument("--safety-tolerance", type=int, default=D.SAFETY_TOLERANCE)
    save.add_argument("--output-format", default=D.OUTPUT_FORMAT, help="png or jpeg")
    save.add_argument("--json", action="store_true")
    listing = preset_sub.add_parser("list", help="every preset, by name")
    listing.add_argument("--json", action="store_true")
    delete = preset_sub.add_parser("delete", help="delete a preset")
    delete.add_argument("name")

    code = sub.add_parser("code", help="a run's exact request as code (the key stays in $SEGMIND_API_KEY)")
    code.add_argument("run_id")
    code.add_argument("--as", dest="language", choices=snippets.LANGUAGES, default="curl")

    sweep = sub.add_parser("sweep", help="run the cross product of seeds, safety tolerances and models")
    _add_params(sweep, single=False)
    sweep.add_argument("--seeds", type=_seeds, required=True, help="e.g. 1,2,3 (or random)")
    sweep.add_argument("--safety-tolerances", type=_csv_ints, default=[D.SAFETY_TOLERANCE], help="e.g. 0,3,6")
    sweep.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="at most this many runs in flight (default: every cell, as the key's budget allows)",
    )
    sweep.add_argument(
        "--run-again",
        action="store_true",
        help="run cells whose exact request already COMPLETED (default: reuse those results)",
    )
    sweep.add_argument("--name", default="", help="a name for the sweep (shown in Compare)")
    sweep.add_argument(
        "--variant",
        action="append",
        default=[],
        help="another whole prompt to sweep beside --prompt (repeatable); each is labelled by its own words",
    )
    sweep.add_argument(
        "--field",
        default=None,
        metavar="PATH",
        help="sweep one field of a structured --prompt (e.g. subject.attire.top), to each --value",
    )
    sweep.add_argument(
        "--value", action="append", default=[], help="a value for --field (repeatable; one a cell)"
    )
    sweep.add_argument(
        "--prompt-forms",
        type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
        default=None,
        metavar="FORMS",
        help="send the structured --prompt as json, yaml and/or prose (e.g. json,prose): one a cell",
    )
    sweep.add_argument(
        "--yes",
        action="store_true",
        help=f"confirm a sweep of more new images than the cap ({D.SWEEP_CAP_ENV})",
    )

    hunt = sub.add_parser(
        "hunt",
        help="resample only the seed until enough images pass the checks (a seed hunt)",
        description="Exit 0 once enough hits were found, 1 when the hunt ended short of them.",
    )
    hunt.add_argument("--prompt", required=True)
    hunt.add_argument("--seeds", required=True, help="random, or seeds in order: 1-100, 1,5,9, 1-10,50")
    hunt.add_argument("--hits", type=int, required=True, help="how many images that pass are wanted")
    hunt.add_argument(
        "--check",
        action="append",
        default=[],
        help=f"text (all right), palette[:score] (default {D.HUNT_PALETTE_MIN}), distinct; repeatable",
    )
    hunt.add_argument(
        "--max-images",
        type=int,
        default=None,
        help=f"submit at most this many images (default {D.HUNT_IMAGES_DEFAULT}, or every listed seed if fewer)",
    )
    hunt.add_argument("--max-usd", type=float, default=None, help="spend at most this much (estimated)")
    _add_model(hunt, single=True)
    hunt.add_argument("--width", type=int, default=D.WIDTH)
    hunt.add_argument("--height", type=int, default=D.HEIGHT)
    hunt.add_argument("--safety-tolerance", type=int, default=D.SAFETY_TOLERANCE)
    hunt.add_argument("--output-format", default=D.OUTPUT_FORMAT, help="png or jpeg")
    hunt.add_argument("--image-url", action="append", default=[], help="a reference image URL (up to 8)")
    hunt.add_argument("--name", default="", help="a name for the hunt (shown in Compare)")
    hunt.add_argument("--json", action="store_true", help="one JSON object per run, then a summary object")
    hunt.add_argument(
        "--emulator", action="store_true", help="use an in-process emulator (no key, no network)"
    )
    hunt.add_argument("--progress", action="store_true", help="print every status change to stderr")

    hist = sub.add_parser("history", help="list runs, newest first")
    hist.add_argument("--search", default=None, help="words in the prompt, notes or tags")
    hist.add_argument("--status", default=None)
    hist.add_argument("--board", default=None, help="only the runs on this board (its name or id)")
    hist.add_argument(
        "--verdict",
        default=None,
        help="only runs someone gave this verdict: approve, reject, 'needs work' or none",
    )
    hist.add_argument(
        "--text-check",
        default=None,
        help="only runs whose text check says: 'all right' or 'misspelt or missing'",
    )
    hist.add_argument(
        "--field",
        default=None,
        metavar="'PATH = WORDS'",
        help="only runs whose structured prompt's field holds these words, e.g. 'subject.attire.top = green'",
    )
    hist.add_argument(
        "--sort",
        default="newest",
        help="newest, oldest, fastest, slowest, rating, 'text score' or 'palette score'",
    )
    hist.add_argument("--limit", type=int, default=20)
    hist.add_argument("--json", action="store_true")

    show = sub.add_parser("show", help="one run and its status history")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")

    lin = sub.add_parser(
        "lineage", help="a run's ancestors and descendants, with the word diff along each edge"
    )
    lin.add_argument("run_id")
    lin.add_argument("--json", action="store_true")
    dif = sub.add_parser(
        "diff",
        help="two runs compared: the settings that differ, the prompt's fields that changed, the words",
    )
    dif.add_argument("run_a")
    dif.add_argument("run_b")
    dif.add_argument("--json", action="store_true")
    ver = sub.add_parser("version", help="name a run's version, or pin it as the best of its lineage")
    ver.add_argument("run_id")
    ver.add_argument(
        "--name", default=None, help=f"the version's name (at most {D.VERSION_NAME_MAX_CHARS} characters)"
    )
    pinning = ver.add_mutually_exclusive_group()
    pinning.add_argument(
        "--pin", action="store_true", help="pin it (the run pinned before in its tree is unpinned)"
    )
    pinning.add_argument("--unpin", action="store_true", help="unpin it")
    ver.add_argument("--json", action="store_true")

    check = sub.add_parser(
        "check",
        help="check runs' images against their prompts (text, palette, fingerprint) and store the results",
    )
    check.add_argument("run_ids", nargs="+", metavar="RUN")
    check.add_argument(
        "--again", action="store_true", help="compute every check again, not only missing ones"
    )
    check.add_argument(
        "--reproducible",
        action="store_true",
        help="send each run's exact request once more and compare the two images (costs one image a run)",
    )
    check.add_argument("--yes", action="store_true", help="confirm --reproducible's cost")
    check.add_argument(
        "--emulator", action="store_true", help="use an in-process emulator (no key, no network)"
    )
    check.add_argument("--json", action="store_true")

    spend = sub.add_parser(
        "spend", help="the spend caps, what was spent today and this month, and what is left"
    )
    spend.add_argument("--json", action="store_true")
    spend.add_argument("--emulator", action="store_true", help="an in-process emulator's server (no key)")
    for field, _, env, flag in caps.CAPS:
        spend.add_argument(
            flag,
            metavar="USD",
            help=f"set {caps.TITLES[field]} in Flux Lab: an amount, 'none' (no cap) or "
            f"'server' (back to {env}); an admin's, as every front end's",
        )

    resume = sub.add_parser("resume", help="finish runs and seed hunts left unfinished by a stopped process")
    resume.add_argument("--json", action="store_true")

    imp = sub.add_parser(
        "import-history",
        help="bring this key's FLUX.2 [max] requests made elsewhere into the ledger (Segmind's request history)",
    )
    imp.add_argument(
        "--days", type=int, default=D.IMPORT_DAYS, help=f"how far back to look (1..{D.IMPORT_MAX_DAYS})"
    )
    imp.add_argument("--user-email", default=None, help="a teammate's requests (inside a Segmind team)")
    imp.add_argument("--json", action="store_true")

    # Compare's sweep viewer (issue 14, COMPARE): a sweep named after the fact, its failed cells again
    ren = sub.add_parser("rename-sweep", help="name (or rename) a saved sweep; an empty name clears it")
    ren.add_argument("sweep_id")
    ren.add_argument("name")
    ren.add_argument("--json", action="store_true")
    retry = sub.add_parser("retry-sweep", help="run a sweep's failed cells again (or one cell with --cell)")
    retry.add_argument("sweep_id")
    retry.add_argument("--cell", type=int, default=None, help="only this cell (a failed or blocked one)")
    retry.add_argument("--json", action="store_true", help="print JSON")
    retry.add_argument(
        "--emulator", action="store_true", help="use an in-process emulator (no key, no network)"
    )
    retry.add_argument("--progress", action="store_true", help="print every status change to stderr")

    # --- organise: boards and curation of many runs (issue 14, ORGANISE) ---
    board = sub.add_parser(
        "board", help="named collections of runs: create, rename, delete, list, add, remove"
    )
    board_sub = board.add_subparsers(dest="board_command", required=True, parser_class=_Parser)
    b_create = board_sub.add_parser("create", help="a new board")
    b_create.add_argument("name")
    b_rename = board_sub.add_parser("rename", help="give a board another name")
    b_rename.add_argument("board", help="its name or id")
    b_rename.add_argument("name", help="the new name")
    b_delete = board_sub.add_parser("delete", help="delete a board (its runs stay)")
    b_delete.add_argument("board", help="its name or id")
    board_sub.add_parser("list", help="every board, with how many runs it holds")
    b_add = board_sub.add_parser("add", help="put runs on a board")
    b_add.add_argument("board", help="its name or id")
    b_add.add_argument("run_ids", nargs="+", metavar="RUN")
    b_add.add_argument("--create", action="store_true", help="make the board when there is none of that name")
    b_remove = board_sub.add_parser("remove", help="take runs off a board (the runs stay)")
    b_remove.add_argument("board", help="its name or id")
    b_remove.add_argument("run_ids", nargs="+", metavar="RUN")
    for p in (b_create, b_rename, b_delete, b_add, b_remove, board_sub.choices["list"]):
        p.add_argument("--json", action="store_true")

    curate = sub.add_parser("curate", help="tags, a rating or a favourite mark for many runs at once")
    curate.add_argument("run_ids", nargs="+", metavar="RUN")
    curate.add_argument("--add-tag", action="append", default=[], help="a tag to add (repeatable)")
    curate.add_argument("--remove-tag", action="append", default=[], help="a tag to take away (repeatable)")
    curate.add_argument("--rating", type=int, default=None, help="1 to 5")
    fav = curate.add_mutually_exclusive_group()
    fav.add_argument("--favourite", dest="favourite", action="store_const", const=True, default=None)
    fav.add_argument("--no-favourite", dest="favourite", action="store_const", const=False)
    curate.add_argument("--json", action="store_true")

    com = sub.add_parser("comment", help="comment on a run (or reply to one of its comments)")
    com.add_argument("run_id", metavar="RUN")
    com.add_argument("text")
    com.add_argument("--reply-to", type=int, default=None, metavar="ID", help="the comment this answers")
    com.add_argument("--as", dest="author", default=None, help="whose words (a demo without sign-in)")
    com.add_argument("--json", action="store_true")

    coms = sub.add_parser("comments", help="a run's comments as a thread, and its verdicts")
    coms.add_argument("run_id", metavar="RUN")
    coms.add_argument("--json", action="store_true")

    uncom = sub.add_parser("delete-comment", help="take a comment's words back (its replies stay)")
    uncom.add_argument("comment_id", type=int, metavar="ID")

    verdict = sub.add_parser("verdict", help="your verdict on runs: approve, reject, 'needs work', or none")
    verdict.add_argument(
        "verdict", type=lambda word: word.replace("-", " "), choices=[*reviews.VERDICTS, "none"]
    )
    verdict.add_argument("run_ids", nargs="+", metavar="RUN")
    verdict.add_argument("--as", dest="reviewer", default=None, help="whose verdict (a demo without sign-in)")

    rep = sub.add_parser(
        "report", help="a sweep or some runs as one self-contained HTML file (opens offline, no key)"
    )
    rep.add_argument("run_ids", nargs="*", metavar="RUN")
    rep.add_argument("--sweep", default=None, metavar="ID", help="a sweep's report (instead of RUN...)")
    rep.add_argument("--zip", action="store_true", help="a ZIP: the page and the full-size images beside it")
    rep.add_argument("-o", "--output", type=Path, default=None, metavar="PATH", help="a file or a folder")

    emu = sub.add_parser("emulator", help="serve the Segmind protocol locally")
    emu.add_argument("--host", default=D.EMULATOR_HOST)
    emu.add_argument("--port", type=int, default=D.EMULATOR_PORT)
    emu.add_argument("--latency", type=float, default=D.EMULATOR_LATENCY_S, help="seconds of inference")
    emu.add_argument("--latency-spread", type=float, default=D.EMULATOR_LATENCY_SPREAD_S)
    emu.add_argument("--queue-time", type=float, default=D.EMULATOR_QUEUE_S)
    emu.add_argument("--retention", type=float, default=D.RETENTION_S, help="seconds a request is kept")
    emu.add_argument("--credits", type=float, default=D.EMULATOR_CREDITS)
    emu.add_argument("--cost", type=float, default=D.EMULATOR_COST)
    emu.add_argument("--keys", default="", help="comma-separated accepted keys (default: any key)")
    emu.add_argument("--rpm", type=int, default=None, help="requests per minute per key (default: unlimited)")
    emu.add_argument("--rate-window", type=float, default=60.0, help="seconds in one rate-limit window")
    emu.add_argument(
        "--polls-uncounted", action="store_true", help="status/result GETs do not count toward --rpm"
    )
    emu.add_argument("--no-moderation", action="store_true")
    emu.add_argument("--fail-rate", type=float, default=0.0)
    emu.add_argument("--poll-fault-rate", type=float, default=0.0)
    emu.add_argument("--poll-faults", default="429,500,502,503,drop,garbage")
    emu.add_argument("--submit-fault-rate", type=float, default=0.0)
    emu.add_argument(
        "--submit-faults",
        default="500",
        help="from 429, <5xx>, <5xx>-before, <5xx>-after, drop-before, drop-after (lost-reply), garbage-after",
    )
    emu.add_argument(
        "--submit-script",
        default="",
        help="faults met by successive submits, in order (e.g. ok,lost-reply,504-before,500-after)",
    )
    emu.add_argument(
        "--history-lag",
        type=float,
        default=D.EMULATOR_HISTORY_LAG_S,
        help="seconds before a request shows in the history",
    )
    emu.add_argument("--validation", choices=("submit", "failed"), default="submit")
    emu.add_argument("--strict-image-urls", action="store_true")
    emu.add_argument("--max-tolerance", type=int, default=D.SAFETY_MAX)
    emu.add_argument("--upload-key", choices=("file_urls", "urls"), default="file_urls")
    emu.add_argument("--retired-slugs", default="")
    emu.add_argument("--random-seed", type=int, default=None)
    return parser


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def emulator_config(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        latency_s=args.latency,
        latency_spread_s=args.latency_spread,
        queue_s=args.queue_time,
        retention_s=args.retention,
        credits=args.credits,
        cost=args.cost,
        keys=_split(args.keys),
        rpm=args.rpm,
        rate_window_s=args.rate_window,
        count_polls=not args.polls_uncounted,
        moderation=not args.no_moderation,
        fail_rate=args.fail_rate,
        poll_fault_rate=args.poll_fault_rate,
        poll_faults=_split(args.poll_faults),
        submit_fault_rate=args.submit_fault_rate,
        submit_faults=_split(args.submit_faults),
        submit_script=_split(args.submit_script),
        history_lag_s=args.history_lag,
        validation=args.validation,
        strict_image_urls=args.strict_image_urls,
        max_tolerance=args.max_tolerance,
        upload_key=args.upload_key,
        retired_slugs=_split(args.retired_slugs),
        random_seed=args.random_seed,
    )


@contextlib.contextmanager
def workbench(
    args: argparse.Namespace, *, concurrency: int | None = None, progress: bool = False
) -> Iterator[Workbench]:
    """The service for one command: the configured key (or `--emulator`), no background scans.
    Ctrl+C or an error leaves runs in flight for `flux-lab resume` and exits at once."""
    wanted = getattr(args, "progress", False) or (progress and sys.stderr.isatty())
    wb = Workbench(
        args.data_dir,
        emulator="ephemeral" if getattr(args, "emulator", False) else "never",
        concurrency=concurrency,
        on_update=_Progress() if wanted else None,
        background=False,
    )
    try:
        yield wb
    except BaseException:
        wb.shutdown(wait=False)
        raise
    wb.shutdown(wait=True)


class _Progress:
    """One status line per change (stderr). Runner threads call it at once: a lock keeps lines whole."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, row: Run) -> None:
        elapsed = time.monotonic() - self.started
        rid = f" request {row.request_id[:8]}" if row.request_id else ""
        line = f"  {elapsed:6.1f}s  seed {row.seed:<10} tol {row.safety_tolerance}  {row.status}{rid}\n"
        with self._lock:
            sys.stderr.write(line)
            sys.stderr.flush()


def _params(
    args: argparse.Namespace,
    *,
    seed: Any,
    tolerance: int,
    urls: list[str],
    prompt: str | None = None,
    model: str | None = None,
) -> FluxParams:
    return FluxParams.parse(
        model=model or args.model,
        steps=args.steps,
        guidance=args.guidance,
        prompt_upsampling=args.prompt_upsampling,
        prompt=args.prompt if prompt is None else prompt,
        seed=seed,
        width=args.width,
        height=args.height,
        safety_tolerance=tolerance,
        output_format=args.output_format,
        image_urls=urls,
    )


def _references(args: argparse.Namespace) -> list[tuple[bytes, str]]:
    files = []
    for path in args.image:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ParamsError([f"--image {path}: cannot read it ({exc.strerror})"]) from None
        try:
            files.append((data, check_reference(data, f"--image {path}")))
        except ImageProblem as exc:
            raise ParamsError([str(exc)]) from None
    return files


def _models(args: argparse.Namespace) -> list[str]:
    """A sweep's --model values (comma-separated or repeated), in order; [max] when none is given.
    Each is checked as a request's model is (FluxParams), so a bad one is named with what is allowed."""
    found = [m.strip() for given in args.model for m in str(given).split(",") if m.strip()]
    return list(dict.fromkeys(found)) or [D.MODEL_SLUG]


def _validate_all(
    args: argparse.Namespace,
    seeds: list[Any],
    tolerances: list[int],
    prompts: list[str] | None = None,
    model: str | None = None,
) -> None:
    """Every cell's parameters checked before anything is uploaded, sent or written."""
    placeholders = [f"https://upload.invalid/{i}" for i in range(len(args.image))]
    for seed, tol, prompt in itertools.product(seeds, tolerances, prompts or [args.prompt]):
        _params(
            args, seed=seed, tolerance=tol, urls=args.image_url + placeholders, prompt=prompt, model=model
        )


def _exit_code(rows: list[Run]) -> int:
    return lifecycle.exit_code(r.status for r in rows)


def _print_run(row: Run, data_dir: Path, as_json: bool, problem: str | None = None) -> None:
    """One run on stdout; what went wrong with it, if anything, as one line on stderr (`problem`
    is what the runner could not write to the ledger, e.g. on a full disk)."""
    info = row.public(data_dir)
    if as_json:
        print(json.dumps(info), flush=True)
    else:
        line = (
            f"{info['status']:<14} run {info['run_id']}  {model_name(row.model)}  seed {info['seed']}  "
            f"{info['width']}x{info['height']}  tolerance {info['safety_tolerance']}  {info['output_format']}"
        )
        print(line, flush=True)
        if info["image_path"]:
            print(f"  image {info['image_path']}", flush=True)
        if row.state.terminal:
            print(f"  {P.times(row)}", flush=True)  # the wait, and Segmind's own figures apart
    error = problem or info["error"]
    if not error and row.status in store.ACTIVE:
        error = f"run {row.id} did not finish here; `flux-lab resume` picks it up."
    if error:
        print(f"flux-lab: {info['status']}: {terminal_text(error)}", file=sys.stderr, flush=True)


def _from_preset(args: argparse.Namespace, wb: Workbench) -> None:
    """Fill the flags left out from --preset (if any), then from the defaults."""
    chosen = None
    if args.preset is not None:
        chosen = wb.preset(args.preset)
        if chosen is None:
            raise UsageError(
                f"flux-lab generate: no preset named {terminal_text(args.preset)!r}; `flux-lab preset list` lists them"
            )
    if args.prompt is None:
        if chosen is None or chosen.prompt is None:
            raise UsageError("flux-lab generate: --prompt is required (or a --preset that keeps a prompt)")
        args.prompt = chosen.prompt
    if args.seed is None and chosen is not None and chosen.seed is not None:
        args.seed = chosen.seed
    for flag, default in (
        ("width", D.WIDTH),
        ("height", D.HEIGHT),
        ("safety_tolerance", D.SAFETY_TOLERANCE),
        ("output_format", D.OUTPUT_FORMAT),
    ):
        if getattr(args, flag) is None:
            setattr(args, flag, getattr(chosen, flag) if chosen is not None else default)


def cmd_generate(args: argparse.Namespace) -> int:
    with workbench(args, progress=not args.json) as wb:
        _from_preset(args, wb)
        seed_random = args.seed is None or str(args.seed).strip().lower() == "random"
        _validate_all(args, [args.seed], [args.safety_tolerance])
        params = _params(args, seed=args.seed, tolerance=args.safety_tolerance, urls=args.image_url)
        wb.batch_params(params, args.count, seed_random=seed_random)  # checked before anything is sent
        refs = _references(args)
        wb.require_key()
        run_ids = wb.submit_many(params, args.count, seed_random=seed_random, references=refs)
        rows = wb.wait(run_ids)
        for row in rows:
            _print_run(row, wb.data_dir, args.json, wb.problem(row.id))
        return _exit_code(rows)


def cmd_preset(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        if args.preset_command == "save":
            saved = wb.save_preset(
                args.name,
                width=args.width,
                height=args.height,
                seed=args.seed,
                safety_tolerance=args.safety_tolerance,
                output_format=args.output_format,
                prompt=args.prompt,
            )
            if args.json:
                print(json.dumps({"name": saved.name, **saved.params()}))
            else:
                print(f"Saved preset {terminal_text(saved.name)}: {terminal_text(saved.words())}")
        elif args.preset_command == "list":
            found = wb.presets()
            for item in found:
                if args.json:
                    print(json.dumps({"name": item.name, **item.params()}))
                else:
                    print(f"{terminal_text(item.name)}  ({terminal_text(item.words())})")
            if not found and not args.json:
                print("No presets yet: `flux-lab preset save NAME ...` saves one.", file=sys.stderr)
        elif not wb.delete_preset(args.name):
            raise UsageError(
                f"flux-lab preset delete: no preset named {terminal_text(args.name)!r}; `flux-lab preset list` lists them"
            )
        else:
            print(f"Deleted preset {terminal_text(args.name)}.", file=sys.stderr)
    return EXIT_OK


def cmd_code(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        if wb.run(args.run_id) is None:
            raise UsageError(f"flux-lab code: no run with id {args.run_id!r}; `flux-lab history` lists them")
        print(wb.snippet(args.run_id, args.language))
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("flux-lab sweep: --concurrency must be at least 1")
    prompts = [args.prompt, *args.variant]
    models = _models(args)
    base_model = sweeps.base_model(models[0], models if len(models) > 1 else [])
    _validate_all(args, args.seeds, args.safety_tolerances, prompts, base_model)
    refs = _references(args)
    seeds = [random_seed() if seed is None else seed for seed in args.seeds]
    if args.value and not args.field:
        raise UsageError("flux-lab sweep: --value needs --field PATH (the field it sets)")
    if args.field and not args.value:
        raise UsageError("flux-lab sweep: --field needs at least one --value")
    axes = [sweeps.axis("seed", seeds)]
    if len(args.safety_tolerances) > 1 or not (args.field or args.prompt_forms):
        axes.append(sweeps.axis("safety_tolerance", list(args.safety_tolerances)))
    if args.variant:  # labelled by the words that differ, as the Compare page labels them
        axes.append(sweeps.axis("prompt", prompts, sweeps.prompt_labels(prompts)))
    if args.field:
        axes.append(sweeps.field_axis(args.field, args.value))
    if args.prompt_forms:
        axes.append(sweeps.axis("prompt_form", args.prompt_forms))
    if len(models) > 1:  # one prompt fanned out to several models, side by side
        axes.append(sweeps.axis("model", models))
    plan = sweeps.make_plan(
        _params(
            args, seed=seeds[0], tolerance=args.safety_tolerances[0], urls=args.image_url, model=base_model
        ),
        axes,
    )
    with workbench(args, concurrency=args.concurrency, progress=not args.json) as wb:
        wb.require_key()
        sweep_id = wb.start_sweep(
            plan, name=args.name, run_again=args.run_again, confirmed=args.yes, references=refs
        )
        view = wb.sweep(sweep_id)
        run_ids = [cell.run.id for cell in view.cells] if view else []
        for row in wb.as_completed(run_ids):
            _print_run(row, wb.data_dir, args.json, wb.problem(row.id))
        finished = wb.wait(run_ids)  # all done already: their real costs
        if not args.json:
            print(
                f"Sweep {sweep_id}: the Compare page shows it at /compare?sweep={sweep_id}", file=sys.stderr
            )
        return _exit_code(finished)


def cmd_hunt(args: argparse.Namespace) -> int:
    """Start a seed hunt and drive it here: each run printed as it is judged, then the summary."""
    params = _params(args, seed=0, tolerance=args.safety_tolerance, urls=args.image_url)
    with workbench(args, progress=args.progress) as wb:
        wb.require_key()
        hunt_id = wb.start_hunt(
            params,
            checks=args.check,
            hits=args.hits,
            seeds=args.seeds,
            max_images=args.max_images,
            max_usd=args.max_usd,
            name=args.name,
            drive=False,
        )
        return _drive_hunt(wb, args, hunt_id)


def _drive_hunt(wb: Workbench, args: argparse.Namespace, hunt_id: str) -> int:
    """Drive a hunt here to its end: each run printed as it is judged, then the hunt's summary."""
    for row, result in wb.drive_hunt(hunt_id):
        if args.json:
            verdict = {"hit": result.hit, "why": result.why, "seq": result.seq}
            print(json.dumps({**row.public(wb.data_dir), "hunt": verdict}), flush=True)
        else:
            mark = "HIT " if result.hit else "miss"
            print(f"{mark} seed {row.seed:<10} run {row.id}  {terminal_text(result.why)}", flush=True)
    view = wb.hunt(hunt_id)
    if view is None:  # pragma: no cover - the hunt was just written
        raise ParamsError([f"hunt: there is no hunt {hunt_id!r} in the ledger"])
    if args.json:
        print(json.dumps(view.summary()), flush=True)
    else:
        print(view.line(), flush=True)
        print(
            f"{view.status_words()} The Compare page shows it at /compare?sweep={hunt_id}",
            file=sys.stderr,
        )
    return EXIT_OK if view.hits >= view.spec.hits else EXIT_JOB_FAILED


def cmd_rename_sweep(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        name = wb.rename_sweep(args.sweep_id, args.name)
    if args.json:
        print(json.dumps({"sweep_id": args.sweep_id, "name": name}))
    else:
        said = f"is now named {terminal_text(name)!r}" if name else "has no name now"
        print(f"Sweep {args.sweep_id} {said}.", file=sys.stderr)
    return EXIT_OK


def cmd_retry_sweep(args: argparse.Namespace) -> int:
    with workbench(args, progress=not args.json) as wb:
        wb.require_key()
        if wb.sweep(args.sweep_id) is None:
            raise ParamsError([f"sweep: there is no sweep {args.sweep_id!r} in the ledger"])
        if args.cell is None:
            run_ids = wb.retry_failed(args.sweep_id)
        else:
            run_ids = [wb.retry_cell(args.sweep_id, args.cell)]
        rows = wb.wait(run_ids)
        for row in rows:
            _print_run(row, wb.data_dir, args.json, wb.problem(row.id))
        if not args.json:
            print(f"Retried {len(run_ids)} cell(s) of sweep {args.sweep_id}.", file=sys.stderr)
        return _exit_code(rows)


def cmd_history(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        try:
            rows = wb.search(
                args.search,
                limit=max(1, args.limit),
                status=args.status,
                board=args.board,
                verdict=args.verdict,
                text_check=args.text_check,
                field=args.field,
                sort=args.sort,
            )
        except ParamsError as exc:
            raise UsageError("flux-lab history: " + "; ".join(exc.problems)) from None
        for row in rows:
            if args.json:
                print(json.dumps(row.public(wb.data_dir)))
            else:
                prompt = terminal_text(" ".join(row.prompt.split()))
                print(
                    f"{row.created_at[:19]}  {row.id}  {row.status:<14} seed {row.seed:<10} "
                    f"tol {row.safety_tolerance}  {prompt[:60]}"
                )
        if not rows and not args.json:
            print("No runs found.", file=sys.stderr)
        return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        row = wb.run(args.run_id)
        if row is None:
            raise UsageError(f"flux-lab show: no run with id {args.run_id!r}; `flux-lab history` lists them")
        if row.cost_usd is None:
            try:  # its real cost from Segmind's record, if it had not landed when the run finished
                row = wb.real_cost(row.id)
            except CallFailed as exc:
                log.info("the real cost of %s could not be looked up: %s", row.id, exc.message)
        info = row.public(wb.data_dir)
        info["events"] = [event.model_dump() for event in wb.events(args.run_id)]
        found = wb.checks([row.id]).get(row.id, {})
        info["checks"] = check_report.public(found)
        info.update(_review_json(wb, row.id))
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            if key not in ("events", "checks", "comments", "verdicts"):
                print(f"{key:>18}: {terminal_text(value)}")
        print(f"{'times':>18}: {P.times(row)}")
        for line in check_report.lines(found):
            print(f"{'checks':>18}: {terminal_text(line)}")
        for line in _review_lines(info):
            print(f"{'review':>18}: {line}")
        for event in info["events"]:
            print(f"{'':>18}  {event['at']}  {event['status']}  {terminal_text(event['detail'] or '')}")
    return EXIT_OK


def cmd_lineage(args: argparse.Namespace) -> int:
    with workbench(args) as wb, _organising("lineage"):
        tree = wb.lineage(args.run_id)
    if args.json:
        print(json.dumps(tree.public()))
        return EXIT_OK
    for node, depth in tree.walk():
        run = tree.runs[node]
        indent = "    " * depth
        edge = tree.edges.get(node)
        if edge is not None:
            print(f"{indent}{'':2}via {edge.kind}: {terminal_text(edge.diff_text())}")
            if edge.changed:
                print(f"{indent}{'':2}    {terminal_text(edge.words())}")
        marks = ("  ← this run" if node == tree.focus else "") + ("  ★ pinned" if node == tree.pinned else "")
        name = f"{terminal_text(run.version_name)}  " if run.version_name else ""
        print(f"{indent}{run.id}  {name}{terminal_text(lineages.first_words(run.prompt))}{marks}")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    with workbench(args) as wb, _organising("diff"):
        found = wb.diff(args.run_a, args.run_b)
    if args.json:
        print(json.dumps(found))
        return EXIT_OK
    print(f"A {found['a']}  →  B {found['b']}")
    for line in found["settings"]:
        print(f"{line['field']}: {terminal_text(line['a'])} → {terminal_text(line['b'])}")
    for line in found["fields"]:
        print(terminal_text(line))
    if found["words"] and any(op != "same" for op, _ in found["words"]):
        edge = lineages.Edge("", "", tuple(found["words"]), ())
        print(f"prompt: {terminal_text(edge.diff_text())}")
    elif not found["settings"]:
        print("The two runs asked for the same request.")
    return EXIT_OK


def cmd_version(args: argparse.Namespace) -> int:
    if args.name is None and not (args.pin or args.unpin):
        raise UsageError("flux-lab version: give --name NAME, --pin or --unpin")
    with workbench(args) as wb, _organising("version"):
        if args.name is not None:
            wb.name_version(args.run_id, args.name)
        unpinned = wb.pin(args.run_id, pinned=args.pin) if args.pin or args.unpin else None
        row = wb.run(args.run_id)
    assert row is not None
    if args.json:
        print(json.dumps(row.public(wb.data_dir)))
        return EXIT_OK
    said = [f"Run {row.id}"]
    if row.version_name:
        said.append(f"is named {terminal_text(row.version_name)!r}")
    said.append("is pinned as the best of its lineage" if row.pinned else "is not pinned")
    if args.pin and unpinned:
        said.append(f"(run {unpinned} is unpinned)")
    print(" ".join(said) + ".")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        results = wb.check(args.run_ids, again=args.again)
        if args.reproducible:
            probes = [wb.probe(run_id, confirmed=args.yes) for run_id in dict.fromkeys(args.run_ids)]
            wb.wait(probes)
            wb.check([row.id for row in wb.runs(probes) if row.image_path])  # settles the probes
            results = wb.checks(args.run_ids)
    for run_id in dict.fromkeys(args.run_ids):
        found = results.get(run_id, {})
        if args.json:
            print(json.dumps({"run_id": run_id, "checks": check_report.public(found)}), flush=True)
            continue
        said = check_report.lines(found) or ["nothing to check: the prompt asks for no text and no colours"]
        print(f"run {run_id}", flush=True)
        for line in said:
            print(f"  {terminal_text(line)}", flush=True)
    return EXIT_OK


def _review_json(wb: Workbench, run_id: str) -> dict[str, Any]:
    """A run's review for `show --json` and `comments --json`: its verdicts and its thread."""
    return {
        "verdicts": [
            {"reviewer": v.reviewer, "verdict": v.verdict, "at": v.at} for v in wb.verdicts([run_id])[run_id]
        ],
        "comments": [
            {
                "id": c.id,
                "parent_id": c.parent_id,
                "depth": depth,
                "author": c.author,
                "body": c.body,
                "at": c.at,
                "deleted": c.deleted,
            }
            for depth, c in wb.comments(run_id)
        ],
    }


def _review_lines(review: dict[str, Any]) -> list[str]:
    lines = [f"{terminal_text(v['reviewer'])}: {v['verdict']}" for v in review["verdicts"]]
    for c in review["comments"]:
        words = "(deleted)" if c["deleted"] else terminal_text(" ".join(c["body"].split()))
        lines.append(f"{'  ' * c['depth']}#{c['id']} {terminal_text(c['author'])}, {c['at'][:16]}: {words}")
    return lines


def cmd_comment(args: argparse.Namespace) -> int:
    with workbench(args) as wb, _organising("comment"):
        made = wb.comment(args.run_id, args.text, reply_to=args.reply_to, author=args.author)
    if args.json:
        print(
            json.dumps(
                {"id": made.id, "run_id": made.run_id, "parent_id": made.parent_id, "author": made.author}
            )
        )
    else:
        print(f"Comment #{made.id} on run {made.run_id}.", file=sys.stderr)
    return EXIT_OK


def cmd_comments(args: argparse.Namespace) -> int:
    with workbench(args) as wb, _organising("comments"):
        review = _review_json(wb, args.run_id)
    if args.json:
        print(json.dumps({"run_id": args.run_id, **review}))
        return EXIT_OK
    lines = _review_lines(review)
    for line in lines:
        print(line)
    if not lines:
        print("No comments and no verdicts yet.", file=sys.stderr)
    return EXIT_OK


def cmd_delete_comment(args: argparse.Namespace) -> int:
    with workbench(args) as wb, _organising("delete-comment"):
        wb.delete_comment(args.comment_id)
    print(f"Comment #{args.comment_id} deleted.", file=sys.stderr)
    return EXIT_OK


def cmd_verdict(args: argparse.Namespace) -> int:
    verdict = None if args.verdict == "none" else args.verdict
    with workbench(args) as wb, _organising("verdict"):
        wb.set_verdict(args.run_ids, verdict, reviewer=args.reviewer)
    said = f"the verdict {verdict!r}" if verdict else "no verdict"
    print(f"Gave {said} to {len(set(args.run_ids))} run(s).", file=sys.stderr)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    with workbench(args) as wb, _organising("report"):
        name, data = wb.report(args.sweep, args.run_ids, bundle="zip" if args.zip else "html")
    path = args.output if args.output is not None else Path(name)
    if path.is_dir():
        path = path / name
    path.write_bytes(data)
    print(f"Report written to {terminal_text(path)} ({len(data) / 1024:,.0f} KB).", file=sys.stderr)
    return EXIT_OK


def _cap_value(text: str) -> float | str | None:
    word = text.strip().lower()
    if word == "none":
        return None
    if word == "server":
        return caps.RESET
    try:
        return float(word.removeprefix("$"))
    except ValueError:
        raise ParamsError([f"a cap is an amount of US dollars, 'none' or 'server' (got {text!r})"]) from None


def cmd_spend(args: argparse.Namespace) -> int:
    changes = {
        field: _cap_value(value)
        for field, _, _, flag in caps.CAPS
        if (value := getattr(args, flag.removeprefix("--").replace("-", "_"))) is not None
    }
    with workbench(args) as wb:
        standing = wb.set_caps(**changes) if changes else wb.spend()
    if args.json:
        print(json.dumps(standing.as_json(), indent=2))
        return EXIT_OK
    spent = standing.spend
    print(
        f"Spent today: {caps.usd(spent.team_day)} (team), {caps.usd(spent.person_day)} ({standing.person}); "
        f"this month: {caps.usd(spent.team_month)} (team)"
    )
    for cap in standing.caps:
        print(f"{cap.name.capitalize()}: {caps.usd(cap.limit)}, {caps.usd(cap.left)} left ({cap.source})")
    if not standing.caps:
        print(f"No spend cap is set ({D.CAP_PERSON_DAY_ENV}, {D.CAP_TEAM_DAY_ENV}, {D.CAP_TEAM_MONTH_ENV}).")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    with workbench(args, progress=not args.json) as wb:
        elsewhere = wb.elsewhere()
        run_ids = wb.resume()
        if run_ids:
            wb.require_key()
        rows = wb.wait(run_ids)
        for row in rows:
            _print_run(row, wb.data_dir, args.json, wb.problem(row.id))
        hunted = wb.orphaned_hunts()  # a hunt left by a stopped process: its next seeds, here
        if hunted:
            wb.require_key()
        codes = [_drive_hunt(wb, args, hunt_id) for hunt_id in hunted]
        if not args.json:
            print(f"Resumed {len(run_ids)} run(s) and {len(hunted)} hunt(s).", file=sys.stderr)
            if elsewhere:
                servers = sorted({r.base_url for r in elsewhere})
                print(
                    f"{len(elsewhere)} unfinished run(s) belong to another server ({', '.join(servers)}); "
                    f"set {D.BASE_URL_ENV} to it to resume them.",
                    file=sys.stderr,
                )
        return max([_exit_code(rows), *codes])


def cmd_import_history(args: argparse.Namespace) -> int:
    with workbench(args, progress=not args.json) as wb:
        wb.require_key()
        try:
            report = wb.import_history(days=args.days, user_email=args.user_email)
        except ParamsError as exc:
            raise UsageError("flux-lab import-history: " + "; ".join(exc.problems)) from None
        rows = wb.wait(list(report.imported))
    if args.json:
        print(
            json.dumps(
                {
                    "imported": [row.public(wb.data_dir) for row in rows],
                    "skipped": [{"request_id": rid, "why": why} for rid, why in report.skipped],
                    "already": report.already,
                }
            )
        )
    else:
        for row in rows:
            _print_run(row, wb.data_dir, False)
        for rid, why in report.skipped:
            print(f"skipped {rid}: {terminal_text(why)}", file=sys.stderr)
        print(report.words(), file=sys.stderr)
    return EXIT_OK


# --- organise: boards and curation of many runs (issue 14, ORGANISE) ---
@contextlib.contextmanager
def _organising(command: str) -> Iterator[None]:
    """A bad name, value or run id as one line and exit 2: nothing was changed."""
    try:
        yield
    except ParamsError as exc:
        raise UsageError(
            f"flux-lab {command}: " + "; ".join(exc.problems) + ". Nothing was changed."
        ) from None
    except UnknownRun as exc:
        raise UsageError(f"flux-lab {command}: {exc.user_text()} Nothing was changed.") from None


def _board_json(board: Board) -> dict[str, Any]:
    return {"id": board.id, "name": board.name, "runs": board.runs, "created_at": board.created_at}


def cmd_board(args: argparse.Namespace) -> int:
    what = args.board_command
    with workbench(args) as wb, _organising(f"board {what}"):
        if what == "list":
            shown = wb.boards()
            if args.json:
                print(json.dumps([_board_json(b) for b in shown]))
            for b in [] if args.json else shown:
                print(f"{terminal_text(b.name):<30} {b.runs:>6} run(s)  {b.id}")
            if not shown and not args.json:
                print("No boards yet: `flux-lab board create NAME` makes one.", file=sys.stderr)
            return EXIT_OK
        if what == "delete":
            gone = wb.board(args.board)
            wb.delete_board(gone.id)
            done, board = f"Deleted board {terminal_text(gone.name)!r}; its {gone.runs} run(s) stay.", gone
        elif what == "create":
            board = wb.create_board(args.name)
            done = f"Created board {terminal_text(board.name)!r} ({board.id})."
        elif what == "rename":
            board = wb.rename_board(args.board, args.name)
            done = f"Renamed the board to {terminal_text(board.name)!r}."
        elif what == "add":
            wanted = args.board.strip().casefold()
            before = next((b.runs for b in wb.boards() if wanted in (b.id.casefold(), b.name.casefold())), 0)
            board = wb.add_to_board(args.board, args.run_ids, create=args.create)
            added = board.runs - before
            done = f"Board {terminal_text(board.name)!r}: {added} run(s) added, {board.runs} on it."
        else:  # remove
            taken = wb.remove_from_board(args.board, args.run_ids)
            board = wb.board(args.board)
            done = f"Board {terminal_text(board.name)!r}: {taken} run(s) taken off, {board.runs} on it."
    if args.json:
        print(json.dumps(_board_json(board)))
    else:
        print(done)
    return EXIT_OK


def cmd_curate(args: argparse.Namespace) -> int:
    with workbench(args) as wb, _organising("curate"):
        changed = wb.curate_many(
            args.run_ids,
            add_tags=args.add_tag,
            remove_tags=args.remove_tag,
            rating=args.rating,
            favourite=args.favourite,
        )
        rows = wb.runs(list(dict.fromkeys(args.run_ids)))
    for row in rows:
        if args.json:
            print(json.dumps(row.public(wb.data_dir)))
        else:
            stars = "★" * (row.rating or 0)
            fav = "  favourite" if row.favourite else ""
            tags = terminal_text(", ".join(row.tags))
            print(f"{row.id}  {stars:<5}{fav}  tags: {tags or '-'}")
    if not args.json:
        print(f"Curated {changed} run(s).", file=sys.stderr)
    return EXIT_OK


def cmd_emulator(args: argparse.Namespace) -> int:
    print(
        f"Flux Lab emulator on http://{args.host}:{args.port}  (preview images, not FLUX)",
        file=sys.stderr,
        flush=True,
    )
    serve_forever(emulator_config(args), args.host, args.port)
    return EXIT_OK


COMMANDS = {
    "generate": cmd_generate,
    "sweep": cmd_sweep,
    "hunt": cmd_hunt,
    "history": cmd_history,
    "show": cmd_show,
    "check": cmd_check,
    "lineage": cmd_lineage,
    "diff": cmd_diff,
    "version": cmd_version,
    "resume": cmd_resume,
    "spend": cmd_spend,
    "import-history": cmd_import_history,
    "rename-sweep": cmd_rename_sweep,
    "retry-sweep": cmd_retry_sweep,
    "board": cmd_board,
    "curate": cmd_curate,
    "comment": cmd_comment,
    "comments": cmd_comments,
    "delete-comment": cmd_delete_comment,
    "verdict": cmd_verdict,
    "report": cmd_report,
    "emulator": cmd_emulator,
    "preset": cmd_preset,
    "code": cmd_code,
}


def main(argv: list[str] | None = None) -> int:
    secret = os.environ.get(D.API_KEY_ENV)  # only to keep it out of messages
    remember_secret(secret)
    log_path: Path | None = None
    try:
        args = build_parser().parse_args(argv)
        with contextlib.suppress(OSError):
            log_path = logs.configure(resolve_data_dir(args.data_dir))
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(redact(str(exc), secret), file=sys.stderr)
        return EXIT_INVALID
    except ParamsError as exc:
        print(f"flux-lab: invalid parameters: {redact(str(exc), secret)}. Nothing was sent.", file=sys.stderr)
        return EXIT_INVALID
    except CapReached as exc:  # refused before anything was written or sent
        print(f"flux-lab: {redact(exc.user_text(), secret)}", file=sys.stderr)
        return EXIT_INVALID
    except ConfirmationNeeded as exc:
        print(f"flux-lab: {redact(exc.user_text(), secret)} Nothing was sent.", file=sys.stderr)
        return EXIT_INVALID
    except (CallFailed, LedgerError) as exc:
        print(f"flux-lab: {redact(exc.user_text(), secret)}", file=sys.stderr)
        return EXIT_CALL_FAILED
    except OSError as exc:  # the data directory itself (full, read-only) outside the ledger
        problem = storage_error(exc, Path(exc.filename or "."))
        print(f"flux-lab: {redact(problem.user_text(), secret)}", file=sys.stderr)
        return EXIT_CALL_FAILED
    except FluxError as exc:
        print(f"flux-lab: {redact(exc.user_text(), secret)}", file=sys.stderr)
        return EXIT_JOB_FAILED
    except ValueError as exc:
        print(f"flux-lab: {redact(str(exc), secret)}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print(
            "flux-lab: interrupted. Submitted runs go on at Segmind; `flux-lab resume` collects them.",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # never a traceback on the screen: it goes to the log
        log.exception("internal error")
        where = f" (details in {log_path})" if log_path else ""
        print(
            f"flux-lab: internal error: {type(exc).__name__}: {redact(str(exc), secret)}{where}",
            file=sys.stderr,
        )
        return EXIT_CALL_FAILED


if __name__ == "__main__":
    sys.exit(main())
