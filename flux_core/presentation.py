"""How a run is put into words for people: status lines, error titles with what to do, recipes.

Pages draw what these return; they never interpret ledger rows themselves.
"""

from __future__ import annotations

import re
import statistics
import string
from dataclasses import dataclass
from datetime import datetime, timezone
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
from flux_core.ledger.records import TIME_FIELDS, Run
from flux_core.ledger.store import parse_iso
from flux_core.params import FLEX_DEFAULTS, FluxParams, model_name

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

    def words(self) -> str:
        """The headline on one line: its title, then its detail."""
        return f"{self.title} · {self.detail}" if self.detail else self.title


def is_active(row: Run) -> bool:
    return row.status in store.ACTIVE


def elapsed_s(row: Run, now: datetime | None = None) -> float:
    """Seconds since Generate (the run written down), until it finished if it has."""
    start = parse_iso(row.created_at)
    end = parse_iso(row.finished_at) or now or datetime.now(timezone.utc)
    return max(0.0, (end - start).total_seconds()) if start else 0.0


def seconds(value: float) -> str:
    """A duration for people: "4.4 s", "2 min 05 s", "1 h 02 min"."""
    if value < 60:
        return f"{value:.1f} s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def wait_words(row: Run, now: datetime | None = None) -> str:
    """The wait the person had, named as such: from Generate (Run sweep, for a sweep's cell) to the
    image stored (`Run.wait_s`); so far, while the run is on its way; to its end, for a run that made
    no image."""
    if row.origin == D.IMPORTED:
        return "Your wait is unknown (made outside Flux Lab)" if row.status == store.COMPLETED else "No image"
    click = "Run sweep" if row.sweep_id else "Generate"
    if is_active(row):
        return f"Waiting {seconds(elapsed_s(row, now))} so far (since {click})"
    if row.wait_s is not None:
        return f"You waited {seconds(row.wait_s)} ({click} to image stored)"
    if row.status == store.COMPLETED:  # a ledger row without its finishing moment
        return "Your wait is unknown (no time the image was stored)"
    if row.finished_at:
        return f"No image: it ended {seconds(elapsed_s(row))} after {click}"
    return "No image"


def segmind_words(row: Run) -> str:
    """Segmind's own figures for the job, named as Segmind's, apart from the person's wait: inference
    and time in its queue, each said to be unknown when its reply did not give it."""
    if is_active(row):
        return "Segmind's inference and queue time come with the result"
    inference, queue = row.inference_time, row.queue_time
    if inference is None and queue is None:
        return "Segmind gave no inference or queue time"
    said = f"{seconds(inference)} inference" if inference is not None else "inference time unknown"
    said += f", {seconds(queue)} in queue" if queue is not None else ", queue time unknown"
    return f"Segmind: {said}"


# What each of a run's times measures, for a table's column or an export's reader (records.TIME_FIELDS).
TIME_HELP = {
    "wait_s": "The wait you had: seconds from Generate (or Run sweep) to the image stored",
    "inference_s": "Segmind's inference time for the job, as its reply gave it",
    "queue_s": "Segmind's time in its queue for the job, as its reply gave it",
}


def times(row: Run, now: datetime | None = None) -> str:
    """A run's times in words, the same on every page and in the CLI: the wait the person had (from
    Generate to the image stored) and, apart and named as such, Segmind's inference and queue time.
    "You waited 4.4 s (Generate to image stored) · Segmind: 2.5 s inference, 0.3 s in queue"."""
    return f"{wait_words(row, now)} · {segmind_words(row)}"


def sweep_times(runs: list[Run]) -> str:
    """A sweep's times in the same words: the wait for its last image (each run's from the click that
    wrote it, so a cell retried later counts from its retry) and the median, and Segmind's median
    inference and queue time over its images. `runs`: the sweep's own runs (not reused ones)."""
    if not runs:
        return "Every cell was reused from the ledger: nothing was waited for"
    waits = [r.wait_s for r in runs if r.wait_s is not None]
    on_way = [r for r in runs if is_active(r)]
    if on_way:
        wait = f"Waiting {seconds(max(elapsed_s(r) for r in on_way))} so far (since Run sweep)"
    elif waits:
        wait = (
            f"You waited {seconds(max(waits))} for the last of {len(waits)} image(s) "
            f"(Run sweep to image stored; median {seconds(statistics.median(waits))})"
        )
    else:
        wait = "No image of its own"
    inference = [r.inference_time for r in runs if r.inference_time is not None]
    queue = [r.queue_time for r in runs if r.queue_time is not None]
    if not inference and not queue:
        return f"{wait} · Segmind gave no inference or queue time" if not on_way else wait
    said = (
        f"median {seconds(statistics.median(inference))} inference" if inference else "inference time unknown"
    )
    said += f", {seconds(statistics.median(queue))} in queue" if queue else ", queue time unknown"
    return f"{wait} · Segmind: {said}"


def headline(row: Run) -> Headline:
    status = row.status
    error = row.error or ""
    if status in store.ACTIVE:
        request = f" · request {row.request_id}" if row.request_id else ""
        detail = f"{wait_words(row)}{request}"
        if status == store.SETTLING:  # the submit's reply was lost: what Segmind's record shows so far
            return Headline("warning", STATUS_WORDS[status], f"{row.settlement or ''} {detail}".strip())
        if row.error_kind == "waiting_key":
            return Headline("warning", f"{STATUS_WORDS[status]} — {_KIND_TITLES['waiting_key']}", error)
        if error:  # an open run that hit a problem it will be resumed from
            return Headline("warning", f"{STATUS_WORDS[status]} — waiting to resume", f"{error} {detail}")
        return Headline("info", STATUS_WORDS[status], detail)
    if status == store.COMPLETED:
        spent = f" · ${row.cost_usd:.4g}" if row.cost_usd is not None else ""
        return Headline("success", "Done", f"{times(row)} · seed {row.seed} · {model_name(row.model)}{spent}")
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
    measured = {name: getattr(row, name) for name in TIME_FIELDS}
    timings = {k: v for k, v in measured.items() if v is not None}
    if timings:  # under the names the exports use: the person's wait, then Segmind's figures
        out["timings"] = timings
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
        **flex_values(row.params),
    }


def flex_values(params: FluxParams) -> dict[str, Any]:
    """A request's model and [flex]'s own fields as a form holds them: the request's own for a
    [flex] request, else the defaults (shown when the person picks [flex])."""
    flex = params.model == D.FLEX_SLUG
    return {"model": params.model, **{k: getattr(params, k) if flex else v for k, v in FLEX_DEFAULTS.items()}}


def flex_fields(values: dict[str, Any]) -> dict[str, Any]:
    """What a form's values (as `form_values` and `flex_values` give them) add to a request for
    their model: [flex]'s own fields for [flex], nothing for the others."""
    if values.get("model") != D.FLEX_SLUG:
        return {}
    return {name: values.get(name) for name in D.FLEX_FIELDS}


# What a person chose (the differences between runs) and what came of it (shown apart, never "a difference").
SETTING_FIELDS = (
    "model",
    "prompt",
    "seed",
    "width",
    "height",
    "safety_tolerance",
    "output_format",
    "image_urls",
    "backend",
)
OUTCOME_FIELDS = ("status", *TIME_FIELDS, "cost", "cost_usd")


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
    """The runs side by side as two tables for `st.table` (its index hidden): "Settings", the
    differing ones marked ≠ with their values highlighted (only those when `differences_only`), and
    "Outcomes", shown apart and never marked. Every cell is Markdown-inert text (see
    `markdown_text`); a highlight is Markdown too (`highlighted`), not a pandas Styler, which cost
    ten times the plain table to send (15 ms against 1.6 ms a pair, the largest part of a Compare
    page's run under py-spy)."""
    import pandas as pd

    def table(lines: list[dict[str, Any]], marked: bool) -> Any:
        def value(line: dict[str, Any], name: str) -> str:
            inert = markdown_text(line[name])
            return highlighted(inert) if marked and line["differs"] else inert

        return pd.DataFrame(
            [
                {
                    "field": line["field"],
                    **{n: value(line, n) for n in names},
                    **({"differs": "≠" if line["differs"] else ""} if marked else {}),
                }
                for line in lines
            ],
            columns=["field", *names, *(["differs"] if marked else [])],
        )

    settings = [line for line in compare_fields(rows, names) if line["differs"] or not differences_only]
    return {
        "Settings": table(settings, marked=True),
        "Outcomes": table(compare_fields(rows, names, OUTCOME_FIELDS), marked=False),
    }


HIGHLIGHT = ":orange-background[{}]"  # Streamlit Markdown: a differing value in the side-by-side table


def highlighted(inert: str) -> str:
    """Markdown-inert text (`markdown_text`) drawn on a highlight where Streamlit draws Markdown (a
    `st.table` cell). Its escaped brackets cannot close the highlight early; a line break, which a
    table cell draws as a space, is a space, so the highlight stays one piece."""
    return HIGHLIGHT.format(inert.replace("\n", " ")) if inert else inert


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


def field_changes(a: str, b: str) -> list[str]:
    """The fields of two structured prompts that differ, one line each, `path: old → new` ("—" where a
    field is not there); [] when either prompt is plain text. Shown before the word diff."""
    from flux_core import structured

    def shown(value: str | None) -> str:
        return "—" if value is None else " ".join(value.split()) or '""'

    return [f"{path}: {shown(old)} → {shown(new)}" for path, old, new in structured.changed_fields(a, b)]


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
