"""The report that travels (issue 17, item 2): a sweep or a selection of runs as one self-contained
HTML file that opens anywhere, from disk, with no server, no key and no network.

The service (`Workbench.report`) gathers what the ledger holds into a `Report`; this module only
writes it out: the pictures (a sweep's grid as Compare lays it out, or a selection's gallery), the
safety matrix, the settings the runs share and those that differ (prompts word-diffed), the costs,
the blind vote's standings behind a <details> (so a demo can show the pictures first; it opens with
no JavaScript), the checks, and each run's verdicts and comment threads.

Nothing in the page is fetched: the images are data: URIs (downscaled to REPORT_IMAGE_PX as JPEG),
or with bundle "zip" full-size files beside the HTML, linked relatively; there is no script, font or
stylesheet from anywhere, and a strict Content-Security-Policy says so to the browser. Every user
text (prompts, comments, names, tags, notes, sweep names, labels) is escaped with
`html.escape(quote=True)`: a comment reading "<script>" is shown as those characters.
"""

from __future__ import annotations

import base64
import html
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from flux_core import defaults as D
from flux_core import presentation as P
from flux_core.ledger.records import Run
from flux_core.params import model_name
from flux_core.ledger.reviews import Comment, Verdict, tally
from flux_core.ledger.sweeps import Layout, SafetyTable

BUNDLES = ("html", "zip")
CSP = {  # what the page may load: images inlined (and, in the ZIP, beside it), its own inline style
    "html": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
    "zip": "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
}
ZIP_PAGE = "report.html"  # the page inside the ZIP; the full-size images are in images/ beside it

REAL, ESTIMATE, NOT_BILLED, REUSED = "real", "estimate", "not billed", "reused"


@dataclass(frozen=True)
class Cost:
    """What a run cost: its real cost from Segmind's record, else an estimate; nothing for a run
    that provably made no job; a reused sweep cell was paid for by the run it reuses."""

    usd: float
    kind: str  # REAL, ESTIMATE, NOT_BILLED or REUSED

    @property
    def counted(self) -> bool:
        return self.kind != REUSED

    def words(self) -> str:
        return {
            REAL: f"{usd(self.usd)} (Segmind's record)",
            ESTIMATE: f"about {usd(self.usd)} (estimate)",
            NOT_BILLED: "$0 (not billed)",
            REUSED: "reused from the ledger: not paid again",
        }[self.kind]


@dataclass(frozen=True)
class Entry:
    """One run in the report: its number (#1, #2, ...), a sweep cell's label, its stored image."""

    number: int
    run: Run
    label: str = ""
    image: Path | None = None  # the stored image file, when it is there
    cost: Cost = Cost(0.0, NOT_BILLED)
    checks: tuple[str, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    comments: tuple[tuple[int, Comment], ...] = ()  # the thread: (depth, comment) in reading order

    @property
    def name(self) -> str:
        return f"#{self.number}" + (f" {self.label}" if self.label else "")


@dataclass(frozen=True)
class SweepPart:
    """What a sweep adds: its grid, safety matrix, blind vote and review."""

    id: str
    layout: Layout
    cell_entries: dict[int, int]  # a cell's index -> its entry's number
    safety: tuple[SafetyTable, ...] = ()
    standings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # sweeps.tally, "votes" left out
    votes: int = 0
    voters: int = 0
    review: str | None = None  # presentation.sweep_review


@dataclass(frozen=True)
class Report:
    title: str
    made_at: str  # ISO-8601 UTC
    made_by: str
    entries: tuple[Entry, ...]
    sweep: SweepPart | None = None
    about: str = ""  # a line under the title: what was swept, or how the runs were chosen


def usd(amount: float) -> str:
    return f"${amount:.4g}"


def file_name(*, sweep_id: str | None = None, runs: int = 0, bundle: str = "html") -> str:
    """The report's file name: flux-lab-report-sweep-<id>.html, flux-lab-report-3-runs.zip, ..."""
    stem = f"flux-lab-report-sweep-{sweep_id}" if sweep_id else f"flux-lab-report-{runs}-runs"
    return f"{stem}.{bundle}"


def build(report: Report, bundle: str = "html") -> bytes:
    """The report as one HTML file (images inlined), or as a ZIP of report.html and the full-size
    images beside it in images/."""
    if bundle == "zip":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            sources: dict[int, str] = {}
            for entry in report.entries:
                if entry.image is not None:
                    name = f"images/{entry.number:03d}-{entry.run.id}{entry.image.suffix}"
                    zf.write(entry.image, name, compress_type=zipfile.ZIP_STORED)
                    sources[entry.number] = name
            zf.writestr(ZIP_PAGE, page(report, sources, CSP["zip"]))
        return out.getvalue()
    inlined: dict[Path, str] = {}  # a picture two cells share is encoded once
    sources = {}
    for entry in report.entries:
        if entry.image is not None:
            if entry.image not in inlined:
                inlined[entry.image] = data_uri(entry.image)
            sources[entry.number] = inlined[entry.image]
    return page(report, sources, CSP["html"]).encode()


def data_uri(path: Path, px: int = D.REPORT_IMAGE_PX) -> str:
    """A stored image, its longer side at most `px`, as a JPEG data: URI."""
    with Image.open(path) as opened:
        im = opened.convert("RGBA") if opened.mode in ("RGBA", "LA", "P") else opened.convert("RGB")
        if im.mode == "RGBA":  # transparency over white, as the page's background
            flat = Image.new("RGB", im.size, (255, 255, 255))
            flat.paste(im, mask=im.getchannel("A"))
            im = flat
        im.thumbnail((px, px), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        im.save(out, "JPEG", quality=D.REPORT_IMAGE_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def esc(text: Any) -> str:
    """User text as HTML text: every <, >, &, " and ' escaped."""
    return html.escape(str(text), quote=True)


_STYLE = """
:root { color-scheme: light; --ink: #1d1d1f; --soft: #5f6368; --line: #dadce0; --tint: #f4f5f7;
  --mark: #ffe8a3; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); }
body { margin: 0 auto; max-width: 1200px; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
h3 { font-size: 1rem; margin: 1rem 0 .35rem; overflow-wrap: anywhere; }
.meta, .soft { color: var(--soft); }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
nav a { margin-right: .9rem; color: inherit; }
table { border-collapse: collapse; margin: .25rem 0 .75rem; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: var(--tint); font-weight: 600; }
td.differs { background: var(--mark); }
table.grid td, table.grid th { text-align: center; }
table.grid th[scope="row"] { text-align: right; vertical-align: middle; }
figure { margin: 0; }
figure img, .nopic { display: block; width: 100%; max-width: 260px; aspect-ratio: 1; object-fit: contain;
  background: var(--tint); border-radius: 4px; }
table.grid figure img, table.grid .nopic { width: 200px; }
.nopic { display: flex; align-items: center; justify-content: center; padding: .5rem; box-sizing: border-box;
  color: #7a4b00; background: #fff1dc; font-size: .9rem; }
figcaption { font-size: .85rem; margin-top: .2rem; overflow-wrap: anywhere; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 1rem; }
details { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .75rem; margin: .5rem 0; }
summary { cursor: pointer; font-weight: 600; }
.run { border-top: 1px solid var(--line); padding-top: .25rem; }
.comment { margin: .35rem 0; padding-left: .6rem; border-left: 3px solid var(--line); }
.comment .who { font-size: .85rem; color: var(--soft); }
ul { margin: .25rem 0; padding-left: 1.25rem; }
@media print { details { border: none; } nav { display: none; } }
"""


def page(report: Report, sources: dict[int, str], csp: str) -> str:
    """The whole HTML page; `sources` gives each entry's picture (a data: URI or a relative path)."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{esc(report.title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head><body>",
        _header(report),
        _pictures(report, sources),
    ]
    if report.sweep is not None and report.sweep.safety:
        parts.append(_safety(report.sweep.safety))
    parts += [_settings(report.entries), _costs(report.entries)]
    if report.sweep is not None:
        parts.append(_votes(report.sweep))
    parts += [_reviews(report), "</body></html>"]
    return "\n".join(parts) + "\n"


def _header(report: Report) -> str:
    made = report.made_at[:16].replace("T", " ")
    count = len(report.entries)
    sections = [("pictures", "Pictures")]
    if report.sweep is not None and report.sweep.safety:
        sections.append(("safety", "Safety matrix"))
    sections += [("settings", "Settings"), ("costs", "Costs")]
    if report.sweep is not None:
        sections.append(("votes", "Votes"))
    sections.append(("review", "Checks and review"))
    links = " ".join(f'<a href="#{anchor}">{words}</a>' for anchor, words in sections)
    about = f'<p class="text">{esc(report.about)}</p>' if report.about else ""
    return (
        f"<header><h1>{esc(report.title)}</h1>{about}"
        f'<p class="meta">{count} run{"s" if count != 1 else ""} · made {esc(made)} UTC by '
        f"{esc(report.made_by)} with Flux Lab</p><nav>{links}</nav></header>"
    )


def _figure(entry: Entry, sources: dict[int, str], *, caption: bool = True) -> str:
    src = sources.get(entry.number)
    if src is not None:
        picture = f'<img src="{esc(src)}" alt="{esc(entry.name)}">'
    else:
        said = P.no_picture_words(entry.run) or "Image file missing"
        picture = f'<div class="nopic text" role="img" aria-label="{esc(said)}">{esc(said)}</div>'
    lines = [f'<a href="#run-{entry.number}">{esc(entry.name)}</a>'] if caption else []
    said = P.review_words(tally(list(entry.verdicts)), sum(not c.deleted for _, c in entry.comments))
    if said:
        lines.append(f'<span class="soft">{esc(said)}</span>')
    cap = f"<figcaption>{'<br>'.join(lines)}</figcaption>" if lines else ""
    return f'<figure data-run="{esc(entry.run.id)}">{picture}{cap}</figure>'


def _pictures(report: Report, sources: dict[int, str]) -> str:
    out = ['<section id="pictures"><h2>Pictures</h2>']
    by_number = {e.number: e for e in report.entries}
    sweep = report.sweep
    if sweep is None:
        out.append('<div class="gallery">')
        out += [_figure(entry, sources) for entry in report.entries]
        out.append("</div>")
    else:
        placed = sweep.layout
        for title, grid in placed.slices:
            if title:
                out.append(f"<h3>{esc(title)}</h3>")
            out.append('<table class="grid"><thead><tr>')
            out.append(f'<th scope="col">{esc(placed.corner)}</th>')
            out += [f'<th scope="col">{esc(label)}</th>' for label in placed.cols.labels]
            out.append("</tr></thead><tbody>")
            for r, line in enumerate(grid):
                head = placed.rows.labels[r] if placed.rows else ""
                out.append(f'<tr><th scope="row">{esc(head)}</th>')
                for idx in line:
                    entry = by_number.get(sweep.cell_entries.get(idx, -1)) if idx is not None else None
                    if entry is None:
                        out.append("<td>—</td>")
                    else:
                        out.append(f"<td>{_figure(entry, sources)}</td>")
                out.append("</tr>")
            out.append("</tbody></table>")
    out.append("</section>")
    return "".join(out)


def _safety(tables: tuple[SafetyTable, ...]) -> str:
    out = [
        '<section id="safety"><h2>Safety matrix</h2>',
        '<p class="soft">Which cells the safety filter let through, by tolerance and seed.</p>',
    ]
    for table in tables:
        lowest = table.lowest_passing if table.lowest_passing is not None else "none"
        out.append(f"<h3>{esc(table.prompt_label)}: lowest tolerance that passed: {esc(lowest)}</h3>")
        out.append('<table><thead><tr><th scope="col">tolerance</th>')
        out += [f'<th scope="col">{esc(seed)}</th>' for seed in table.seeds]
        out.append("</tr></thead><tbody>")
        for tolerance in table.tolerances:
            out.append(f'<tr><th scope="row">{esc(tolerance)}</th>')
            for seed in table.seeds:
                word = table.cells.get((tolerance, seed), "—")
                out.append(f"<td>{esc(P.SAFETY_WORDS.get(word, word))}</td>")
            out.append("</tr>")
        out.append("</tbody></table>")
    out.append("</section>")
    return "".join(out)


def _settings(entries: tuple[Entry, ...]) -> str:
    rows = [e.run for e in entries]
    names = [e.name for e in entries]
    lines = P.compare_fields(rows, names)
    shared = [line for line in lines if not line["differs"]]
    differing = [line for line in lines if line["differs"]]
    out = ['<section id="settings"><h2>Settings</h2>']
    if shared:
        out.append("<h3>Shared by every run</h3><table><tbody>")
        for line in shared:
            out.append(
                f'<tr><th scope="row">{esc(line["field"])}</th><td class="text">{esc(line[names[0]])}</td></tr>'
            )
        out.append("</tbody></table>")
    if differing:
        out.append(
            "<h3>Different between the runs</h3>"
            '<p class="soft">Highlighted: not as in #1. Prompts word by word against #1 '
            "(struck: only in #1; green: only in this run).</p>"
        )
        out.append('<table><thead><tr><th scope="col">run</th>')
        out += [f'<th scope="col">{esc(line["field"])}</th>' for line in differing]
        out.append("</tr></thead><tbody>")
        first = entries[0]
        for entry, name in zip(entries, names):
            out.append(f'<tr><th scope="row">{esc(name)}</th>')
            for line in differing:
                value, reference = line[name], line[names[0]]
                mark = ' class="differs"' if value != reference else ""
                if line["field"] == "prompt" and entry is not first and value != reference:
                    shown = P.word_diff_html(first.run.prompt, entry.run.prompt)  # escaped inside
                else:
                    shown = f'<span class="text">{esc(value)}</span>'
                out.append(f"<td{mark}>{shown}</td>")
            out.append("</tr>")
        out.append("</tbody></table>")
    out.append("</section>")
    return "".join(out)


def total(entries: tuple[Entry, ...]) -> tuple[float, float]:
    """The report's cost: everything counted, and the part of it that is an estimate."""
    counted = [e.cost for e in entries if e.cost.counted]
    return (
        round(sum(c.usd for c in counted), 6),
        round(sum(c.usd for c in counted if c.kind == ESTIMATE), 6),
    )


def _costs(entries: tuple[Entry, ...]) -> str:
    out = [
        '<section id="costs"><h2>Costs</h2>',
        '<table><thead><tr><th scope="col">run</th><th scope="col">outcome</th>'
        '<th scope="col">cost</th></tr></thead><tbody>',
    ]
    for entry in entries:
        out.append(
            f'<tr><th scope="row">{esc(entry.name)}</th><td>{esc(P.STATUS_WORDS[entry.run.status])}</td>'
            f"<td>{esc(entry.cost.words())}</td></tr>"
        )
    spent, estimated = total(entries)
    part = f", of which {usd(estimated)} estimated" if estimated else ""
    out.append(
        f'</tbody><tfoot><tr><th scope="row">Total</th><td></td><td>'
        f"{esc(usd(spent))}{esc(part)}</td></tr></tfoot></table>"
    )
    if any(not e.cost.counted for e in entries):
        out.append('<p class="soft">Reused cells were paid for by the run they reuse: not counted.</p>')
    out.append("</section>")
    return "".join(out)


def _votes(sweep: SweepPart) -> str:
    out = ['<section id="votes"><h2>Blind vote</h2>']
    if not sweep.votes:
        out.append("<p>No votes were cast.</p></section>")
        return "".join(out)
    out.append(
        f"<p>{sweep.votes} vote{'s' if sweep.votes != 1 else ''} on pairs of pictures, by "
        f"{sweep.voters} voter{'s' if sweep.voters != 1 else ''}. The results stay folded until revealed.</p>"
    )
    out.append('<details id="reveal"><summary>Reveal the votes</summary>')
    for title, rows in sweep.standings.items():
        out.append(
            f'<h3>{esc(title)}</h3><table><thead><tr><th scope="col">value</th><th scope="col">wins</th>'
            '<th scope="col">comparisons</th></tr></thead><tbody>'
        )
        for row in sorted(rows, key=lambda r: (-r["wins"], str(r["value"]))):
            out.append(
                f'<tr><th scope="row">{esc(row["value"])}</th><td>{esc(row["wins"])}</td>'
                f"<td>{esc(row['comparisons'])}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append("</details></section>")
    return "".join(out)


def _comment(depth: int, comment: Comment) -> str:
    indent = min(depth, D.COMMENT_INDENT_MAX) * 1.5
    at = comment.at[:16].replace("T", " ")
    words = (
        '<div class="soft">(deleted)</div>'
        if comment.deleted
        else f'<div class="text">{esc(comment.body)}</div>'
    )
    return (
        f'<div class="comment" style="margin-left:{indent}rem" data-depth="{depth}">'
        f'<div class="who">{esc(comment.author)} · {esc(at)} UTC</div>{words}</div>'
    )


def _reviews(report: Report) -> str:
    out = ['<section id="review"><h2>Checks and review</h2>']
    if report.sweep is not None and report.sweep.review:
        out.append(f"<p>{esc(report.sweep.review)}</p>")
    for entry in report.entries:
        run = entry.run
        out.append(f'<article class="run" id="run-{entry.number}"><h3>{esc(entry.name)}</h3>')
        out.append(
            f'<p class="soft">run {esc(run.id)} · {esc(model_name(run.model))} · seed {esc(run.seed)} · tolerance {esc(run.safety_tolerance)}'
            f" · {esc(run.width)}×{esc(run.height)} · made by {esc(run.created_by or 'nobody recorded')}</p>"
        )
        if run.tags or run.notes:
            tags = f"Tags: {', '.join(run.tags)}" if run.tags else ""
            out.append(
                f'<p class="text">{esc(tags)}{" · " if tags and run.notes else ""}{esc(run.notes)}</p>'
            )
        if entry.checks:
            out.append("<ul>" + "".join(f"<li>{esc(line)}</li>" for line in entry.checks) + "</ul>")
        if entry.verdicts:
            out.append(
                '<ul class="verdicts">'
                + "".join(f"<li>{esc(v.reviewer)}: {esc(v.verdict)}</li>" for v in entry.verdicts)
                + "</ul>"
            )
        if entry.comments:
            out.append("".join(_comment(depth, c) for depth, c in entry.comments))
        if not (entry.checks or entry.verdicts or entry.comments):
            out.append('<p class="soft">No checks, verdicts or comments.</p>')
        out.append("</article>")
    out.append("</section>")
    return "".join(out)
