"""Spend caps (issue 15, item 5): the arithmetic, and every path that spends refused at a cap with
nothing written and no request at the emulator."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone

import pytest

from flux_core import caps
from flux_core import defaults as D
from flux_core import lifecycle
from flux_core.cli import main
from flux_core.errors import CapReached, NotAllowed
from flux_core.ledger import sweeps
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams, ParamsError
from flux_core.pricing import Pricing, learn
from flux_core.service import Workbench
from flux_core.team import Actor, Role
from flux_core.settings import CapSettings, local_user

from tests.conftest import TEST_KEY

BASE = "http://server"
DOLLAR = "0.95367431640625"  # USD a megapixel: a 1024 x 1024 image costs $1
ONE_MP = Pricing(per_megapixel=float(DOLLAR), per_reference=0.5, learned_from=1)  # and $0.50 a reference
AT = datetime(2026, 3, 1, 0, 0, 30, tzinfo=timezone.utc)  # just after midnight on the 1st


def params(width: int = 1024, height: int = 1024, refs: int = 0, prompt: str = "a red cube") -> FluxParams:
    urls = [f"https://example.com/{i}.png" for i in range(refs)]
    return FluxParams.parse(prompt=prompt, seed=1, width=width, height=height, image_urls=urls)


def record(ledger: Ledger, status: str, at: str, *, who: str = "local:ann", cost_usd=None, **kw) -> str:
    p = kw.pop("p", None) or params()
    return ledger.record_run(
        p,
        status,
        backend="segmind",
        base_url=kw.pop("base_url", BASE),
        created_at=at,
        created_by=who,
        cost_usd=cost_usd,
        **kw,
    )


def spend(ledger: Ledger, who: str = "local:ann", pricing: Pricing = ONE_MP) -> caps.Spend:
    with ledger.db() as db:
        return caps.spent(db, base_url=BASE, person=who, pricing=pricing, at=AT)


@pytest.fixture
def ledger(data_dir):
    return Ledger(data_dir / "ledger.db")


# --- the arithmetic ------------------------------------------------------------------------
def test_a_utc_day_and_a_calendar_month_start_at_midnight_utc(ledger):
    record(ledger, "COMPLETED", "2026-02-28T23:59:59.999Z", cost_usd=4.0)  # last month, yesterday
    record(ledger, "COMPLETED", "2026-03-01T00:00:00.000Z", cost_usd=1.0)  # today, this month
    record(ledger, "COMPLETED", "2026-03-01T00:00:10.000Z", cost_usd=2.0, who="local:bob")
    got = spend(ledger)
    assert (got.team_day, got.person_day, got.team_month) == (3.0, 1.0, 3.0)
    later = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)  # the next day: the month still holds them
    with ledger.db() as db:
        assert caps.spent(db, base_url=BASE, person="local:ann", pricing=ONE_MP, at=later) == caps.Spend(
            team_day=0.0, person_day=0.0, team_month=3.0
        )


def test_a_real_cost_counts_where_settled_else_the_estimate(ledger):
    record(ledger, "COMPLETED", "2026-03-01T00:00:01.000Z", cost_usd=0.25)
    record(ledger, "COMPLETED", "2026-03-01T00:00:02.000Z", p=params(refs=2))  # $1 + 2 refs
    assert spend(ledger).team_day == pytest.approx(0.25 + 1.0 + 2 * 0.5)


@pytest.mark.parametrize(
    "status, counts",
    [
        ("COMPLETED", True),
        ("UNUSABLE", True),
        ("SUBMIT_UNKNOWN", True),
        ("QUEUED", True),
        ("PROCESSING", True),
        ("SETTLING", True),
        ("CREATED", True),  # written down and about to be sent
        ("EXPIRED", True),  # may have been billed
        ("ERROR", False),  # never reached Segmind
        ("FAILED", False),
        ("BLOCKED", False),  # Segmind bills only a 200 (the lifecycle table: billed "no")
    ],
)
def test_which_statuses_count(ledger, status, counts):
    record(ledger, status, "2026-03-01T00:00:01.000Z")
    assert (spend(ledger).team_day > 0) is counts
    assert (status in caps.COUNTED) is (lifecycle.STATES[status].billed != "no" or status == "CREATED")


def test_a_run_not_billed_by_its_status_counts_when_its_real_cost_says_so(ledger):
    record(ledger, "FAILED", "2026-03-01T00:00:01.000Z", cost_usd=0.3)
    assert spend(ledger).team_day == pytest.approx(0.3)


def test_another_servers_runs_do_not_count(ledger):
    record(ledger, "COMPLETED", "2026-03-01T00:00:01.000Z", cost_usd=9.0, base_url="http://emulator")
    assert spend(ledger).team_month == 0.0


def test_the_refusal_names_the_cap_what_is_spent_and_left_and_who_can_raise_it():
    standing = caps.Standing(CapSettings(team_day=5.0), caps.Spend(team_day=4.5), "local:ann")
    caps.check(standing, 0.5)  # reaching the cap exactly is allowed
    with pytest.raises(CapReached) as caught:
        caps.check(standing, 0.51)
    text = caught.value.user_text()
    assert "the team's daily cap of $5.00" in text
    assert "$4.50 spent today, $0.50 left" in text
    assert "Nothing was sent" in text
    assert "An admin can raise it: set FLUX_LAB_CAP_TEAM_DAY_USD, or in Flux Lab" in text


def test_the_first_cap_crossed_is_named_and_a_batch_says_how_many():
    standing = caps.Standing(
        CapSettings(person_day=1.0, team_day=10.0, team_month=100.0), caps.Spend(0.0, 0.0, 99.5), "p"
    )
    with pytest.raises(
        CapReached, match=r"These 3 runs \(about \$0.90\) would go past the team's monthly cap"
    ):
        caps.check(standing, 0.9, 3)
    assert [c.left for c in standing.caps] == [1.0, 10.0, 0.5]


def test_the_spend_line_shows_only_the_caps_that_are_set():
    spent = caps.Spend(team_day=1.5, person_day=0.25, team_month=12.0)
    everything = caps.Standing(CapSettings(0.5, 5.0, 100.0), spent, "p")
    assert (
        everything.line()
        == "Spend today: $1.50 of $5.00 (team) · you: $0.25 of $0.50 · this month: $12.00 of $100.00"
    )
    assert caps.Standing(CapSettings(person_day=2.0), spent, "p").line() == "Spend today: you: $0.25 of $2.00"
    assert caps.Standing(CapSettings(), spent, "p").line() is None


@pytest.mark.parametrize("name", [D.CAP_PERSON_DAY_ENV, D.CAP_TEAM_DAY_ENV, D.CAP_TEAM_MONTH_ENV])
@pytest.mark.parametrize("value", ["five", "-1", "inf", "nan"])
def test_a_bad_cap_is_a_settings_error_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name} must be an amount of US dollars, 0 or more"):
        CapSettings.resolve()


def test_caps_come_from_the_environment_unset_is_no_cap(monkeypatch):
    assert CapSettings.resolve() == CapSettings()
    monkeypatch.setenv(D.CAP_TEAM_MONTH_ENV, "$250")
    monkeypatch.setenv(D.CAP_PERSON_DAY_ENV, "2.5")
    assert CapSettings.resolve() == CapSettings(person_day=2.5, team_month=250.0)


def test_prices_in_usd_learned_flat_or_the_documented_default(ledger, monkeypatch):
    assert Pricing().rates() == (D.PRICE_PER_MP_USD, D.PRICE_PER_REFERENCE_USD)
    monkeypatch.setenv(D.PRICE_PER_MP_ENV, "0.05")
    assert Pricing().rates() == (0.05, D.PRICE_PER_REFERENCE_USD)
    flat = Pricing(per_image=0.07)  # the emulator's price an image, spread over a default image's megapixels
    assert flat.usd(D.WIDTH, D.HEIGHT) == pytest.approx(0.07, abs=1e-5)
    record(ledger, "COMPLETED", "2026-03-01T00:00:01.000Z", cost_usd=0.2)  # 1024 x 1024
    learned = learn(ledger, BASE, 0.07)  # real costs win: the ledger's own calibration
    assert learned.rates()[1] == 0.0 and learned.usd(2048, 1024) == pytest.approx(0.4, abs=1e-5)


def test_the_local_user_acts_when_nobody_signed_in(tmp_path):
    bench = Workbench(tmp_path, emulator="never", background=False)
    assert local_user().startswith("local:") and bench.actor.id == local_user()
    assert bench.actor.role == Role.ADMIN and not bench.actor.signed_in
    ann = bench.acting(Actor("ann@example.com", Role.MEMBER, signed_in=True))
    assert ann.actor.id == "ann@example.com" and bench.actor.id == local_user()  # the handle is apart
    assert ann.ledger is bench.ledger
    bench.shutdown()


# --- the check and the insert, together -------------------------------------------------------
def batch_admit(monkeypatch, cap: str = "2.5"):
    monkeypatch.setenv(D.CAP_TEAM_DAY_ENV, cap)
    return caps.admit(base_url=BASE, person="local:ann", pricing=ONE_MP)


def create(ledger: Ledger, batch, admit):
    return ledger.create_runs(batch, backend="segmind", base_url=BASE, created_by="local:ann", admit=admit)


def test_no_cap_no_check(ledger):
    assert not caps.any_set(ledger)
    admit = caps.admit(base_url=BASE, person="p", pricing=ONE_MP)
    assert len(create(ledger, [params(2048, 2048)] * 3, admit)) == 3  # no cap in force: nothing refused


def test_a_batch_is_admitted_whole_or_not_at_all(ledger, monkeypatch):
    admit = batch_admit(monkeypatch)
    with pytest.raises(CapReached, match="These 3 runs"):
        create(ledger, [params(), params(), params()], admit)  # $3 > $2.50: not even the first two
    assert ledger.runs("SELECT * FROM runs") == []
    assert len(create(ledger, [params(), params()], admit)) == 2
    assert [r.created_by for r in ledger.runs("SELECT * FROM runs")] == ["local:ann"] * 2


def test_the_check_runs_under_the_write_lock(ledger, monkeypatch):
    admit = batch_admit(monkeypatch)
    seen: list[str] = []

    def spying(db, rows):
        other = sqlite3.connect(ledger.path, timeout=0)
        try:  # another writer, of any process, cannot get in while the check decides
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            seen.append(str(exc))
        finally:
            other.close()
        admit(db, rows)

    create(ledger, [params()], spying)
    assert seen == ["database is locked"]


def test_two_threads_checking_at_once_cannot_both_pass(ledger, monkeypatch):
    admit = batch_admit(monkeypatch, "1.5")  # room for one $1 run, not two
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def go() -> None:
        start.wait()
        try:
            create(ledger, [params()], admit)
            outcomes.append("ok")
        except CapReached:
            outcomes.append("refused")

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused"]
    assert len(ledger.runs("SELECT * FROM runs")) == 1


# --- every path that spends, through the service -------------------------------------------------
@pytest.fixture
def bench(emulator, monkeypatch, data_dir):
    server = emulator(latency_s=0.05, queue_s=0.0)
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_RPM", "0")
    monkeypatch.setenv(D.PRICE_PER_MP_ENV, DOLLAR)  # a 1024 x 1024 image is $1
    wb = Workbench(data_dir, api_key=TEST_KEY, emulator="never", background=False)
    wb.server = server  # type: ignore[attr-defined]
    yield wb
    wb.shutdown(wait=True)


def refused(wb, action, monkeypatch, cap: str = "0.5"):
    """`action` at a cap already reached: a CapReached, no new run, no request at the emulator."""
    monkeypatch.setenv(D.CAP_PERSON_DAY_ENV, cap)
    runs, stats = len(wb.ledger.runs("SELECT * FROM runs")), wb.server.stats
    submits, uploads = stats.submit_requests, stats.uploads
    with pytest.raises(CapReached, match="your daily cap of") as caught:
        action()
    assert len(wb.ledger.runs("SELECT * FROM runs")) == runs
    assert (wb.server.stats.submit_requests, wb.server.stats.uploads) == (submits, uploads)
    return caught.value


def test_submit_and_submit_many_are_refused_at_the_cap(bench, monkeypatch):
    refused(bench, lambda: bench.submit(params()), monkeypatch)
    refused(bench, lambda: bench.submit(params(), references=[(b"png", "image/png")]), monkeypatch)
    error = refused(bench, lambda: bench.submit_many(params(512, 512), 4), monkeypatch)  # 4 x $0.25
    assert "These 4 runs (about $1.00)" in error.user_text()
    refused(bench, lambda: bench.submit_many(params(), 2, references=[(b"png", "image/png")]), monkeypatch)


def test_a_run_under_the_cap_goes_and_is_attributed(bench, monkeypatch):
    monkeypatch.setenv(D.CAP_TEAM_DAY_ENV, "1.05")
    ann = bench.acting(Actor("ann@example.com", Role.MEMBER, signed_in=True))
    run_id = ann.submit(params())  # estimated at $1: it fits
    with pytest.raises(CapReached, match=r"\$1.00 spent today, \$0.05 left"):  # while in flight
        bench.submit(params(prompt="another"))
    (first,) = bench.wait([run_id])
    assert first.status == "COMPLETED" and first.created_by == "ann@example.com"
    assert first.cost_usd == 0.07 and bench.spend().spend.team_day == pytest.approx(0.07)  # the real cost
    assert bench.server.stats.submit_requests == 1


def test_rerun_and_its_one_click_fixes_are_refused_at_the_cap(bench, monkeypatch):
    (row,) = bench.wait([bench.submit(params())])  # $0.07 real: the next is learned to cost as much
    refused(bench, lambda: bench.rerun(row.id), monkeypatch, cap="0.1")
    refused(bench, lambda: bench.rerun(row.id, vary_seed=True), monkeypatch, cap="0.1")
    refused(bench, lambda: bench.rerun(row.id, overrides={"safety_tolerance": 5}), monkeypatch, cap="0.1")


def test_a_sweep_is_refused_whole_at_the_cap(bench, monkeypatch):
    plan = sweeps.make_plan(params(512, 512), [sweeps.axis("seed", [1, 2, 3])])  # 3 x $0.25
    monkeypatch.setenv(D.CAP_TEAM_MONTH_ENV, "0.5")
    runs = bench.ledger.runs("SELECT * FROM runs")
    with pytest.raises(CapReached, match=r"These 3 runs .* the team's monthly cap of \$0.50"):
        bench.start_sweep(plan)
    assert bench.ledger.runs("SELECT * FROM runs") == runs and bench.recent_sweeps() == []
    assert bench.server.stats.submit_requests == 0
    monkeypatch.delenv(D.CAP_TEAM_MONTH_ENV)
    refused(bench, lambda: bench.start_sweep(plan, references=[(b"png", "image/png")]), monkeypatch)


def test_retrying_cells_is_refused_at_the_cap(bench, monkeypatch):
    plan = sweeps.make_plan(params(), [sweeps.axis("seed", [1, 2])])
    cells = [(list(coords), p, False) for coords, p in plan.cells()]
    sweep_id, run_ids = bench.ledger.create_sweep(
        plan.cells()[0][1].payload(),
        [a.as_json() for a in plan.axes],
        cells=cells,
        backend="segmind",
        base_url=bench.server.url,
    )
    for run_id in run_ids:  # both cells failed before Segmind took them: nothing spent
        bench.ledger.transition(run_id, "ERROR", error="no connection")
    error = refused(bench, lambda: bench.retry_failed(sweep_id), monkeypatch, cap="1.5")
    assert "These 2 runs (about $2.00)" in error.user_text()  # all or nothing: not even the first
    refused(bench, lambda: bench.retry_cell(sweep_id, 0), monkeypatch)


# --- the command line ------------------------------------------------------------------------------
def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def at_server(emulator, monkeypatch):
    server = emulator(latency_s=0.05, queue_s=0.0)
    monkeypatch.setenv("SEGMIND_BASE_URL", server.url)
    monkeypatch.setenv("SEGMIND_API_KEY", TEST_KEY)
    monkeypatch.setenv("SEGMIND_RPM", "0")
    monkeypatch.setenv(D.PRICE_PER_MP_ENV, DOLLAR)
    return server


def test_a_refused_generate_and_sweep_exit_2_with_one_line_and_send_nothing(capsys, monkeypatch, at_server):
    monkeypatch.setenv(D.CAP_TEAM_DAY_ENV, "1.5")
    code, out, err = cli(capsys, "generate", "--prompt", "a red cube", "--count", "2")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "These 2 runs (about $2.00) would go past the team's daily cap of $1.50" in err
    assert "An admin can raise it: set FLUX_LAB_CAP_TEAM_DAY_USD, or in Flux Lab" in err
    code, out, err = cli(capsys, "sweep", "--prompt", "a red cube", "--seeds", "1,2")
    assert code == 2 and "These 2 runs" in err and len(err.strip().splitlines()) == 1
    assert at_server.stats.submit_requests == 0
    assert cli(capsys, "history", "--json")[1] == ""  # nothing written either


def test_spend_prints_the_caps_what_is_spent_and_left(capsys, monkeypatch, at_server):
    monkeypatch.setenv(D.CAP_PERSON_DAY_ENV, "3")
    monkeypatch.setenv(D.CAP_TEAM_MONTH_ENV, "40")
    assert cli(capsys, "generate", "--prompt", "a red cube", "--seed", "1")[0] == 0  # $0.07, its real cost
    code, out, _ = cli(capsys, "spend")
    assert code == 0
    assert f"Spent today: $0.07 (team), $0.07 ({local_user()}); this month: $0.07 (team)" in out
    assert "Your daily cap: $3.00, $2.93 left (set by FLUX_LAB_CAP_PERSON_DAY_USD)" in out
    assert "The team's monthly cap: $40.00, $39.93 left" in out
    code, out, _ = cli(capsys, "spend", "--json")
    got = json.loads(out)
    assert got["person"] == local_user() and got["spent"]["team_month"] == pytest.approx(0.07)
    assert [(c["variable"], c["left"]) for c in got["caps"]] == [
        (D.CAP_PERSON_DAY_ENV, 2.93),
        (D.CAP_TEAM_MONTH_ENV, 39.93),
    ]


def test_spend_with_no_cap_says_so_and_a_bad_cap_names_its_variable(capsys, monkeypatch, at_server):
    code, out, _ = cli(capsys, "spend")
    assert code == 0 and "No spend cap is set" in out
    monkeypatch.setenv(D.CAP_TEAM_DAY_ENV, "lots")
    code, out, err = cli(capsys, "generate", "--prompt", "a red cube")
    assert code == 2 and "FLUX_LAB_CAP_TEAM_DAY_USD must be an amount of US dollars" in err
    assert at_server.stats.submit_requests == 0


# --- caps an admin sets in Flux Lab (the sidebar, `flux-lab spend --set-...`) ----------------------
def test_an_admin_sets_a_cap_in_flux_lab_and_it_wins_over_the_server_setting(bench, monkeypatch):
    monkeypatch.setenv(D.CAP_TEAM_DAY_ENV, "100")
    kim = bench.acting(Actor("kim@example.com", Role.MEMBER, signed_in=True))
    with pytest.raises(NotAllowed, match="kim@example.com is a member and may not set the spend caps"):
        kim.set_caps(team_day=1000)
    with pytest.raises(ParamsError, match="team_day: an amount of US dollars") as bad:
        bench.set_caps(team_day=-1, person_day=2)
    assert "team_day" in str(bad.value) and bench.spend().settings.team_day == 100.0  # nothing changed
    standing = bench.set_caps(team_day=0.5, team_month=None)
    assert standing.settings.team_day == 0.5 and standing.settings.team_month is None
    (cap,) = standing.caps
    assert cap.set_by == bench.actor.id and cap.source == f"set in Flux Lab by {bench.actor.id}"
    with pytest.raises(CapReached) as refused_run:
        kim.submit(params())  # $1 against the $0.50 set in Flux Lab
    assert "An admin can raise it in Flux Lab: the sidebar's Spend caps" in refused_run.value.user_text()
    assert bench.server.stats.submit_requests == 0
    standing = bench.set_caps(team_day=caps.RESET)
    assert standing.settings.team_day == 100.0  # the server's setting again
    assert standing.set_by == (("team_month", bench.actor.id),)  # "no cap" stays set in Flux Lab
    with bench.ledger.db() as db:
        said = [r[0] for r in db.execute("SELECT detail FROM actions WHERE action = 'caps' ORDER BY id")]
    assert said == [
        "the team's daily cap: $0.50",
        "the team's monthly cap: no cap",
        "the team's daily cap: back to the server's setting",
    ]


def test_the_cli_sets_and_resets_caps_in_flux_lab(capsys, monkeypatch, at_server):
    code, out, _ = cli(capsys, "spend", "--set-team-day", "1.5", "--set-person-day", "none")
    assert code == 0 and f"The team's daily cap: $1.50, $1.50 left (set in Flux Lab by {local_user()})" in out
    code, out, err = cli(capsys, "generate", "--prompt", "a red cube", "--count", "2")
    assert code == 2 and "An admin can raise it in Flux Lab" in err and at_server.stats.submit_requests == 0
    code, out, err = cli(capsys, "spend", "--set-team-day", "lots")
    assert code == 2 and "'lots'" in err and "none" in err
    code, out, _ = cli(capsys, "spend", "--set-team-day", "server", "--json")
    assert code == 0 and json.loads(out)["caps"] == []
