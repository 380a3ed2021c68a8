"""How a run is put into words for people: status lines, error titles with what to do, recipes.

Pages draw what these return; they never interpret ledger rows themselves.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from flux_core import defaults as D
from flux_core import lifecycle
from flux_core.ledger import store
from flux_core.errors import (
    for_app,
    JobTimedOut,
    NetworkError,
    ProtocolError,
    RateLimited,
    ServerError,
    SubmitUnknown,
)
from flux_core.ledger.records import Run
from flux_core.ledger.store import parse_iso

STATUS_WORDS = lifecycle.WORDS  # each status in words, from the lifecycle table

_KIND_TITLES = {
    "auth": "Bad or missing API key",
    "forbidden": "This key may not use flux-2-max",
    "credits": "Not enough credits",
    "rate_limited": "Rate limited",
    "server": "Server trouble",
    "network": "Could not reach the server",
    "protocol": "Unreadable reply from the server",
    "bad_request": "The server refused the request",
    "gone": "Model retired",
    "not_found": "Not found",
    "image": "The image could not be stored",
    "internal": "Flux Lab hit an internal error",
    "storage": "Flux Lab could not write to its data directory",
    "waiting_key": "Waiting for the API key that submitted it",
}


@dataclass(frozen=True)
class Headline:
    level: str  # "info", "success", "warning" or "error"
    title: str
    detail: str


def is_active(row: Run) -> bool:
    return row.status in store.ACTIVE


def elapsed_s(row: Run, now: Any = None) -> float:
    """Seconds since the run was written down (until it finished, if it has)."""
    from datetime import datetime, timezone

    start = parse_iso(row.created_at)
    end = parse_iso(row.finished_at) or now or datetime.now(timezone.utc)
    return max(0.0, (end - start).total_seconds()) if start else 0.0


def headline(row: Run) -> Headline:
    status = row.status
    error = row.error or ""
    if status in store.ACTIVE:
        request = f" · request {row.request_id}" if row.request_id else ""
        detail = f"{elapsed_s(row):.1f} s elapsed{request}"
        if status == store.SETTLING:  # the submit's reply was lost: what Segmind's record shows so far
            return Headline("warning", STATUS_WORDS[status], f"{row.settlement or ''} {detail}".strip())
        if row.error_kind == "waiting_key":
            return Headline("warning", f"{STATUS_WORDS[status]} — {_KIND_TITLES['waiting_key']}", error)
        if error:  # an open run that hit a problem it will be resumed from
            return Headline("warning", f"{STATUS_WORDS[status]} — waiting to resume", f"{error} {detail}")
        return Headline("info", STATUS_WORDS[status], detail)
    if status == store.COMPLETED:
        took = f"{row.observed_total_s:.1f} s" if row.observed_total_s else f"{elapsed_s(row):.1f} s"
        spent = f" · ${row.cost_usd:.4g}" if row.cost_usd is not None else ""
        return Headline("success", "Done", f"in {took} · seed {row.seed}{spent}")
    if status == store.BLOCKED:
        return Headline("warning", f"Blocked by the safety filter at tolerance {row.safety_tolerance}", error)
    if status == store.EXPIRED:
        return Headline("error", "Expired", error)
    if status == store.FAILED:
        return Headline("error", "The job failed", error)
    if status == store.UNUSABLE:
        return Headline("error", STATUS_WORDS[store.UNUSABLE], error)
    if status == store.SUBMIT_UNKNOWN:  # whatever the error says, say what to do
        hint = SubmitUnknown.hint
        return Headline(
            "error", "Submit outcome unknown", error if hint in error else f"{error} {hint}".strip()
        )
    return Headline("error", _KIND_TITLES.get(row.error_kind or "", "Not sent"), error)


def no_picture_words(row: Run) -> str:
    """What a run without its picture says in a grid cell: why it failed, that it was blocked, or
    its state; "" for a completed run."""
    state = lifecycle.STATES[row.status]
    if not state.terminal:
        return STATUS_WORDS[row.status]
    if state.group == "completed":
        return ""
    if state.group == "blocked":
        return f"Blocked at tolerance {row.safety_tolerance}"
    line = headline(row)
    detail = for_app(line.detail) if line.detail else ""
    title = "Failed" if line.title == "The job failed" else line.title
    return f"{title}: {detail}" if detail else title


@dataclass(frozen=True)
class Fix:
    """The one-click fix for what stopped a run, as the error names it."""

    action: str  # "tolerance": the same request at a higher safety tolerance; "retry": the same again
    label: str
    tolerance: int | None = None  # for "tolerance": the one offered first (the next allowed up)
    choices: tuple[int, ...] = ()  # for "tolerance": every allowed higher one, for the person's choice


# failures that may pass by themselves: server trouble, the network, a rate limit after its retries,
# a reply that could not be read, a job that timed out
TRANSIENT_KINDS = frozenset(
    cls.kind for cls in (ServerError, NetworkError, RateLimited, ProtocolError, JobTimedOut)
)


def fix(row: Run) -> Fix | None:
    """What one click can do about a finished run that has no image, or None: a block gets the
    next safety tolerance up that is allowed (any higher one may be chosen); a transient failure,
    and a job that failed, expired or came back unusable, gets a retry. A bad key or no credits is
    for the person to fix first (the headline says how): no retry; a submit whose outcome is unknown
    keeps its own confirm-first path."""
    if row.status == store.BLOCKED:
        higher = tuple(range(row.safety_tolerance + 1, D.SAFETY_MAX + 1))
        if not higher:
            return None
        return Fix("tolerance", f"Retry at tolerance {higher[0]}", higher[0], higher)
    if row.status == store.ERROR:
        return Fix("retry", "Retry") if row.error_kind in TRANSIENT_KINDS else None
    if row.status in (store.FAILED, store.EXPIRED, store.UNUSABLE) and row.state.retryable:
        return Fix("retry", "Retry")
    return None


def recipe(row: Run) -> dict[str, Any]:
    """The run's full recipe, as shown next to its image."""
    request = row.request
    out: dict[str, Any] = {"model": row.model, **request}
    out["seed_was_random"] = row.seed_random
    out["run_id"] = row.id
    if row.request_id:
        out["request_id"] = row.request_id
    measured = {
        "queue_time": row.queue_time,
        "inference_time": row.inference_time,
        "total_time": row.total_time,
        "observed_total_s": row.observed_total_s,
    }
    timings = {k: v for k, v in measured.items() if v is not None}
    if timings:
        out["timings_s"] = timings
    if row.cost is not None:
        out["cost"] = row.cost
    if row.cost_usd is not None:
        out["cost_usd"] = row.cost_usd  # what Segmind's record says it cost
    if row.settlement:
        out["settled"] = row.settlement
    if row.origin != "flux-lab":
        out["origin"] = row.origin
    out["backend"] = row.backend
    return out


def form_values(row: Run) -> dict[str, Any]:
    """A run's recipe as the Compose form's values (to edit and re-run it); `from_run` is the run
    they came from, which the next Generate names as its parent."""
    request = row.request
    return {
        "from_run": row.id,
        "prompt": request["prompt"],
        "width": request["width"],
        "height": request["height"],
        "seed": request["seed"],
        "seed_random": False,
        "safety_tolerance": request["safety_tolerance"],
        "output_format": request["output_format"],
        "image_urls": list(request.get("image_urls", [])),
    }


# What a person chose (the differences between runs) and what came of it (shown apart, never "a difference").
SETTING_FIELDS = (
    "prompt",
    "seed",
    "width",
    "height",
    "safety_tolerance",
    "output_format",
    "image_urls",
    "backend",
)
OUTCOME_FIELDS = ("status", "inference_time", "cost", "cost_usd")


def compare_fields(
    rows: list[Run], names: list[str], fields: tuple[str, ...] = SETTING_FIELDS
) -> list[dict[str, Any]]:
    """One line per field with each run's value under its name and `differs` where they are not all equal."""
    shown = [r.public() for r in rows]
    out = []
    for name in fields:
        values = [s.get(name) for s in shown]
        line: dict[str, Any] = {"field": name}
        line.update({n: _show(v) for n, v in zip(names, values)})
        line["differs"] = any(v != values[0] for v in values[1:])
        out.append(line)
    return out


def compare_tables(rows: list[Run], names: list[str], *, differences_only: bool = False) -> dict[str, Any]:
    """The runs side by side as two tables for `st.table`: "Settings", the differing ones marked ≠ and
    highlighted (only those when `differences_only`), and "Outcomes", shown apart and never marked.
    Every cell is Markdown-inert text (see `markdown_text`)."""
    import pandas as pd

    def table(lines: list[dict[str, Any]], marked: bool) -> Any:
        frame = pd.DataFrame(
            [
                {
                    "field": line["field"],
                    **{n: markdown_text(line[n]) for n in names},
                    **({"differs": "≠" if line["differs"] else ""} if marked else {}),
                }
                for line in lines
            ],
            columns=["field", *names, *(["differs"] if marked else [])],
        )
        style = frame.style.hide(axis="index")
        if marked:
            style = style.apply(lambda r: ["background-color: #ffe8a3" if r.differs else ""] * len(r), axis=1)
        return style

    settings = [line for line in compare_fields(rows, names) if line["differs"] or not differences_only]
    return {
        "Settings": table(settings, marked=True),
        "Outcomes": table(compare_fields(rows, names, OUTCOME_FIELDS), marked=False),
    }


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "—"
    return "—" if value is None else str(value)


_WORD_JOINER = "\u2060"


def markdown_text(text: Any) -> str:
    """User text (a prompt, a name, a label, a URL parameter) made inert for the places Streamlit only
    draws as Markdown (`st.table` cells, headings, alerts, radio options): every ASCII punctuation mark
    is backslash-escaped, so no emphasis, image, link, HTML, :directive[] or $math$ is made of it, and an
    invisible word joiner goes before every ":", "@" and "." so no bare URL, www. or e-mail address
    is turned into a link. The reader sees exactly the text."""
    out = []
    for char in str(text):
        if char in ":@.":
            out.append(_WORD_JOINER)
        out.append("\\" + char if char in string.punctuation else char)
    return "".join(out)


_TOKEN = re.compile(r"\w+|[^\w\s]")


def word_diff(a: str, b: str) -> list[tuple[str, str]]:
    """Word-level diff of two prompts: (op, text) with op "same", "del" (only in a) or "ins" (only in b).

    Words and punctuation marks are separate tokens ("light," is "light" then ","), so a comma added
    after a word marks the comma, not the word. Each piece's text keeps the prompt's own spacing, and
    starts with a space where one stood before it."""
    import difflib

    def tokens(text: str) -> list[tuple[str, bool]]:  # (token, a space before it)
        return [(m.group(), m.start() > 0 and text[m.start() - 1].isspace()) for m in _TOKEN.finditer(text)]

    def joined(toks: list[tuple[str, bool]]) -> str:
        return "".join((" " if space else "") + tok for tok, space in toks)

    ta, tb = tokens(a), tokens(b)
    out: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=[t for t, _ in ta], b=[t for t, _ in tb], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(("same", joined(tb[j1:j2])))
        else:
            if i2 > i1:
                out.append(("del", joined(ta[i1:i2])))
            if j2 > j1:
                out.append(("ins", joined(tb[j1:j2])))
    if out:
        out[0] = (out[0][0], out[0][1].lstrip())
    return out


def word_diff_html(a: str, b: str) -> str:
    """The word diff as HTML in which every word of the prompts is escaped: shown as text, never markup."""
    import html

    styles = {
        "same": "",
        "del": "background:#ffd6d6;text-decoration:line-through",
        "ins": "background:#d3f9d8",
    }
    parts = []
    for op, text in word_diff(a, b):
        space = " " if text.startswith(" ") else ""
        escaped = html.escape(text.lstrip(" "))
        parts.append(space + (f'<span style="{styles[op]}">{escaped}</span>' if styles[op] else escaped))
    return '<div style="line-height:1.8;white-space:pre-wrap">' + "".join(parts) + "</div>"


# --- review (issue 17): verdicts and comments in words --------------------------------------
VERDICT_LABELS = {"approve": "Approve", "needs work": "Needs work", "reject": "Reject"}
SAFETY_WORDS = {"passed": "✓ passed", "blocked": "✗ blocked"}  # a safety matrix cell; others as they are


def verdict_tally(counts: dict[str, int]) -> str:
    """A run's verdicts counted (reviews.tally): "2 approve · 1 needs work"; "" when nobody gave one."""
    return " · ".join(f"{n} {verdict}" for verdict, n in counts.items() if n)


def review_words(counts: dict[str, int], comments: int) -> str:
    """A card's review line: the verdict tally and the comment count ("1 approve · 3 comments")."""
    said = [verdict_tally(counts)] if any(counts.values()) else []
    if comments:
        said.append(f"{comments} comment{'s' if comments != 1 else ''}")
    return " · ".join(said)


def sweep_review(by_reviewer: dict[str, dict[str, int]], cells: int) -> str | None:
    """A sweep's review in one line (Workbench.sweep_verdicts): "Reviewed: ann@example.com approved 3
    of 12, needs work 1 · kim@example.com approved 2 of 12"; None before anybody gave a verdict."""
    if not by_reviewer:
        return None
    parts = []
    for who, counts in by_reviewer.items():
        said = f"{who} approved {counts.get('approve', 0)} of {cells}"
        for verdict, word in (("needs work", "needs work"), ("reject", "rejected")):
            if counts.get(verdict):
                said += f", {word} {counts[verdict]}"
        parts.append(said)
    return "Reviewed: " + " · ".join(parts)
