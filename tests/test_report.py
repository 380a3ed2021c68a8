"""The report that travels (issue 17, item 2): one self-contained HTML file (or a ZIP with the
full-size images) that opens offline, with every user text inert, the votes behind a <details>, the
costs and their total; and the same report from the service and from `flux-lab report`."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from flux_core import defaults as D
from flux_core import report
from flux_core.cli import main
from flux_core.ledger import store, sweeps
from flux_core.ledger.records import Run
from flux_core.ledger.reviews import Comment, Verdict
from flux_core.params import FluxParams, ParamsError
from flux_core.service import Workbench
from tests.conftest import run_row

HOSTILE = "<script>window.hacked=1</script> </details> \"quoted\" 'single' **bold** [a](http://evil.test/x)"


def row(n: int, **changes) -> Run:
    return run_row(
        **{
            "id": f"01RUN{n}",
            "seed": n,
            "prompt": f"a red cube number {n}",
            "created_by": "ann@example.com",
            **changes,
        }
    )


def picture(path: Path, size: tuple[int, int] = (1600, 900)) -> Path:
    Image.new("RGBA", size, (200, 30, 30, 255)).save(path)
    return path


class Attributes(HTMLParser):
    """Every tag and every src/href/action attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value or "" for name, value in attrs if name in ("src", "href", "action", "srcset")]


def parsed(page: str) -> Attributes:
    found = Attributes()
    found.feed(page)
    return found


def a_sweep_report(tmp_path: Path, **entry_changes) -> report.Report:
    """Four cells of a 2 × 2 sweep by hand: two pictures, a block, a reused cell; votes and a thread."""
    image = picture(tmp_path / "a.png")
    layout = sweeps.Layout(
        sweeps.Axis("seed", (1, 2), ("seed 1", "seed 2")),
        sweeps.Axis("safety_tolerance", (2, 4), ("tolerance 2", "tolerance 4")),
        None,
        (("", ((0, 1), (2, 3))),),
    )
    thread = (
        (0, Comment(1, "01RUN1", None, 'kim "k" <kim@example.com>', HOSTILE, "2026-12-01T11:00:00Z", None)),
        (9, Comment(2, "01RUN1", 1, "ann@example.com", "deep reply", "2026-12-01T11:05:00Z", None)),
    )
    entries = (
        report.Entry(
            1,
            row(1, prompt=f"a cube {HOSTILE}", tags=("<b>tag</b>",)),
            "seed 1 · tolerance 2",
            image,
            report.Cost(0.07, report.REAL),
            ("text 1/2 right: '<i>' missing",),
            (Verdict("01RUN1", "ann@example.com", "approve", "2026-12-01T11:00:00Z"),),
            thread,
        ),
        report.Entry(
            2, row(2, safety_tolerance=4), "seed 1 · tolerance 4", image, report.Cost(0.0655, report.ESTIMATE)
        ),
        report.Entry(
            3, row(3, status=store.BLOCKED), "seed 2 · tolerance 2", None, report.Cost(0.0, report.NOT_BILLED)
        ),
        report.Entry(
            4,
            row(4, safety_tolerance=4),
            "seed 2 · tolerance 4",
            image,
            report.Cost(0.07, report.REUSED),
            **entry_changes,
        ),
    )
    part = report.SweepPart(
        "01SWEEP",
        layout,
        {0: 1, 1: 2, 2: 3, 3: 4},
        standings={"Seed": [{"value": "seed 1", "wins": 3, "comparisons": 4}]},
        votes=4,
        voters=2,
        review="Reviewed: ann@example.com approved 1 of 4",
    )
    return report.Report(f"Sweep: {HOSTILE}", "2026-12-01T12:00:00.000Z", "ann@example.com", entries, part)


def test_every_user_text_is_escaped_and_a_comment_cannot_close_the_reveal(tmp_path):
    page = report.build(a_sweep_report(tmp_path)).decode()
    assert "<script" not in page.lower() and "<b>tag" not in page and "<i>" not in page
    assert "&lt;script&gt;window.hacked=1&lt;/script&gt;" in page
    assert "&quot;quoted&quot; &#x27;single&#x27;" in page
    assert "kim &quot;k&quot; &lt;kim@example.com&gt;" in page
    # the only <details> is the reveal: the comment's "</details>" is text, so the votes stay folded
    assert page.count("<details") == 1 and page.count("</details>") == 1
    assert "&lt;/details&gt;" in page
    assert "**bold**" in page  # no Markdown either: the characters as typed


def test_nothing_is_fetched_from_anywhere(tmp_path):
    page = report.build(a_sweep_report(tmp_path)).decode()
    found = parsed(page)
    assert found.links and all(link.startswith(("data:image/", "#")) for link in found.links)
    assert not {"script", "link", "iframe", "object", "embed", "base", "form"} & set(found.tags)
    assert "url(" not in page and "@import" not in page
    assert "http://evil.test/x" in page  # a URL a person typed stays, as text
    [csp] = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp.replace("&#x27;", "'") == "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def test_every_picture_is_inlined_downscaled_and_a_shared_one_encoded_once(tmp_path):
    page = report.build(a_sweep_report(tmp_path)).decode()
    sources = [link for link in parsed(page).links if link.startswith("data:")]
    assert len(sources) == 3 and len(set(sources)) == 1  # three cells show one stored picture
    with Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1]))) as im:
        assert im.format == "JPEG" and max(im.size) == D.REPORT_IMAGE_PX and im.size[0] > im.size[1]
    assert "Blocked at tolerance 2" in page  # the blocked cell says so, never a picture


def test_the_votes_are_behind_a_details_that_opens_without_script(tmp_path):
    page = report.build(a_sweep_report(tmp_path)).decode()
    folded = page[page.index("<details") : page.index("</details>")]
    assert "<summary>Reveal the votes</summary>" in folded
    assert "seed 1</th><td>3</td><td>4</td>" in folded  # the standings are inside
    assert "seed 1</th><td>3" not in page.replace(folded, "")  # and nowhere outside
    assert "<details open" not in page
    assert "4 votes on pairs of pictures, by 2 voters" in page


def test_costs_each_run_and_the_total_real_else_estimated_reused_not_counted(tmp_path):
    made = a_sweep_report(tmp_path)
    assert report.total(made.entries) == (0.1355, 0.0655)
    page = report.build(made).decode()
    costs = page[page.index('id="costs"') : page.index('id="votes"')]
    assert "$0.07 (Segmind&#x27;s record)" in costs and "about $0.0655 (estimate)" in costs
    assert "$0 (not billed)" in costs and "reused from the ledger: not paid again" in costs
    assert '<th scope="row">Total</th><td></td><td>$0.1355, of which $0.0655 estimated</td>' in costs


def test_a_thread_indents_by_depth_up_to_the_most_and_the_grid_is_laid_out(tmp_path):
    page = report.build(a_sweep_report(tmp_path)).decode()
    assert 'style="margin-left:0.0rem" data-depth="0"' in page
    assert f'style="margin-left:{D.COMMENT_INDENT_MAX * 1.5}rem" data-depth="9"' in page
    grid = page[page.index('class="grid"') : page.index("</table>")]
    assert grid.index("tolerance 2") < grid.index("tolerance 4") < grid.index("seed 1") < grid.index("seed 2")
    assert "Reviewed: ann@example.com approved 1 of 4" in page


def test_the_zip_holds_the_page_and_the_full_size_images_beside_it(tmp_path):
    data = report.build(a_sweep_report(tmp_path), "zip")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = sorted(zf.namelist())
        assert names == [
            "images/001-01RUN1.png",
            "images/002-01RUN2.png",
            "images/004-01RUN4.png",
            report.ZIP_PAGE,
        ]
        assert zf.read("images/001-01RUN1.png") == (tmp_path / "a.png").read_bytes()  # full size, as stored
        page = zf.read(report.ZIP_PAGE).decode()
    assert [link for link in parsed(page).links if not link.startswith("#")] == [
        "images/001-01RUN1.png",
        "images/002-01RUN2.png",
        "images/004-01RUN4.png",
    ]
    assert "img-src &#x27;self&#x27; data:" in page and "data:image" not in page


# --- from the ledger: the service and the CLI ------------------------------------------------
@pytest.fixture
def wb(data_dir):
    bench = Workbench(data_dir, emulator="ephemeral", background=False)
    yield bench
    bench.shutdown(wait=True)


def finished_sweep(wb: Workbench) -> sweeps.SweepView:
    plan = sweeps.make_plan(
        FluxParams(prompt="a bloody lamp", width=512, height=512),
        [sweeps.axis("seed", [1, 2]), sweeps.axis("safety_tolerance", [2, 4])],
    )
    sweep_id = wb.start_sweep(plan, name="Lamps <b>")
    wb.wait([c.run.id for c in wb._sweep(sweep_id).cells])
    return wb._sweep(sweep_id)


def without_the_moment(page: bytes) -> str:
    return re.sub(r"made \d{4}-\d\d-\d\d \d\d:\d\d UTC", "made …", page.decode())


def test_the_service_and_the_cli_make_the_same_report(wb, data_dir, tmp_path, capsys):
    view = finished_sweep(wb)
    done = [c.run.id for c in view.cells if c.outcome == "done"]
    wb.vote(view.id, done[0], done[1], voter="Bea")
    wb.comment(done[0], HOSTILE)
    wb.set_verdict(done, "approve")
    name, page = wb.report(view.id, layout=["safety_tolerance", "seed"])
    assert name == f"flux-lab-report-sweep-{view.id}.html"
    text = page.decode()
    assert "<h1>Sweep: Lamps &lt;b&gt;</h1>" in text and "Safety matrix" in text
    assert text.count("data:image/jpeg;base64,") == 2 and "Blocked at tolerance 2" in text
    assert '<th scope="col">Safety tolerance ↓ · Seed →</th>' in text  # placed as asked
    assert "Reviewed: local:" in text and "approved 2 of 4" in text

    out = tmp_path / "from-cli.html"
    assert main(["report", "--sweep", view.id, "-o", str(out)]) == 0
    assert "Report written to" in capsys.readouterr().err
    assert without_the_moment(out.read_bytes()) == without_the_moment(wb.report(view.id)[1])

    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["report", *done, "--zip", "-o", str(folder)]) == 0
    zipped = folder / "flux-lab-report-2-runs.zip"
    name, data = wb.report(run_ids=done, bundle="zip")
    assert name == zipped.name
    with zipfile.ZipFile(zipped) as a, zipfile.ZipFile(io.BytesIO(data)) as b:
        assert sorted(a.namelist()) == sorted(b.namelist()) and len(a.namelist()) == 3
        assert without_the_moment(a.read("report.html")) == without_the_moment(b.read("report.html"))


def test_bad_report_requests_name_what_is_wrong(wb, capsys):
    (run_id,) = [wb.submit(FluxParams.parse(prompt="a teapot", seed=1))]
    wb.wait([run_id])
    with pytest.raises(ParamsError, match="bundle: must be one of html, zip, not 'pdf'"):
        wb.report(run_ids=[run_id], bundle="pdf")
    with pytest.raises(ParamsError, match="give a sweep or runs, not both"):
        wb.report("01SWEEP", [run_id])
    with pytest.raises(ParamsError, match="sweep: there is no sweep '01NOSWEEP'"):
        wb.report("01NOSWEEP")
    assert main(["report"]) == 2
    assert "flux-lab report: report: give a sweep or at least one run" in capsys.readouterr().err
    assert main(["report", run_id, "01NOTARUN"]) == 2
    assert "There is no run '01NOTARUN'" in capsys.readouterr().err


def test_a_key_in_the_environment_never_reaches_the_report(wb, data_dir, tmp_path, monkeypatch):
    key = "SG_feedfacecafe0042"
    (run_id,) = [wb.submit(FluxParams.parse(prompt="a teapot", seed=1))]
    wb.wait([run_id])
    monkeypatch.setenv("SEGMIND_API_KEY", key)
    out = tmp_path / "report.html"
    assert main(["report", run_id, "-o", str(out)]) == 0
    assert main(["report", run_id, "--zip", "-o", str(tmp_path / "report.zip")]) == 0
    keyed = Workbench(data_dir, api_key=key, emulator="never", background=False)
    try:
        for data in (out.read_bytes(), keyed.report(run_ids=[run_id])[1]):
            assert key.encode() not in data and b"SG_" not in data  # nor the emulator's key
        with zipfile.ZipFile(tmp_path / "report.zip") as zf:
            assert all(key.encode() not in zf.read(n) for n in zf.namelist())
    finally:
        keyed.shutdown(wait=True)
