from __future__ import annotations

import json

from flux_core.ledger import history, store
from flux_core.params import FluxParams
from flux_core.ledger.records import PUBLIC_FIELDS, Run
from flux_core.ledger.store import Ledger

EXPECTED_RUN_COLUMNS = [
    "seq",
    "id",
    "created_at",
    "updated_at",
    "status",
    "model",
    "backend",
    "base_url",
    "prompt",
    "image_urls_json",
    "width",
    "height",
    "seed",
    "seed_random",
    "safety_tolerance",
    "output_format",
    "request_json",
    "request_hash",
    "request_id",
    "status_url",
    "response_url",
    "poll_url",
    "submitted_at",
    "processing_at",
    "finished_at",
    "queue_time",
    "inference_time",
    "total_time",
    "observed_queue_s",
    "observed_total_s",
    "cost",
    "remaining_credits",
    "error",
    "error_kind",
    "output_url",
    "image_sha256",
    "image_path",
    "thumb_path",
    "image_width",
    "image_height",
    "image_bytes",
    "sweep_id",
    "favourite",
    "rating",
    "notes",
    "tags_json",
    "lease",
    "deleted_at",
    "key_id",
    "lease_until",
    "download_attempts",
    "submit_began_at",
    "resent",
    "settlement",
    "cost_usd",
    "cost_checked_at",
    "origin",
    "created_by",
    "parent_run_id",
    "lineage",
    "version_name",
    "pinned",
]

# every migration, in the order applied (a migration added elsewhere: its name joins the list)
MIGRATIONS = [
    "0001_runs",
    "0002_sweep_cells_and_votes",
    "0003_history_indexes_and_soft_delete",
    "0004_sort_indexes",
    "0005_key_ids_lease_expiry_download_attempts",
    "0006_settling_real_cost_imports",
    "0007_real_cost_index",
    "0008_key_limits",
    "0009_boards",
    "0010_presets",
    "0011_run_owner",
    "0012_attribution",
    "0013_caps",
    "0014_checks",
    "0015_reviews",
    "0016_lineage",
    "0017_favourites_index",
    "0020_hunts",
]


def test_schema_of_a_blank_database(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    with ledger.db() as db:
        tables = set(db.table_names())
        assert {
            "runs",
            "run_events",
            "sweeps",
            "sweep_cells",
            "votes",
            "key_limits",
            "boards",
            "board_runs",
            "presets",
            "actions",
            "caps",
            "runs_fts",
            "_sqlite_migrations",
        } <= tables
        assert [c.name for c in db["runs"].columns] == EXPECTED_RUN_COLUMNS
        assert [c.name for c in db["run_events"].columns] == ["id", "run_id", "at", "status", "detail"]
        assert [c.name for c in db["sweeps"].columns] == [
            "id",
            "created_at",
            "name",
            "base_json",
            "axes_json",
            "created_by",
        ]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r["name"] for r in db["_sqlite_migrations"].rows] == MIGRATIONS
        assert [c.name for c in db["boards"].columns] == ["id", "name", "created_at", "owner", "created_by"]
        assert [c.name for c in db["board_runs"].columns] == ["board_id", "run_id", "added_at"]
        assert db["board_runs"].pks == ["board_id", "run_id"]
        assert {i.name for i in db["board_runs"].indexes} >= {"board_runs_run"}
        assert [c.name for c in db["sweep_cells"].columns] == [
            "sweep_id",
            "idx",
            "coords_json",
            "run_id",
            "reused",
        ]
        assert [c.name for c in db["votes"].columns] == [
            "id",
            "sweep_id",
            "voter",
            "winner_run_id",
            "loser_run_id",
            "at",
        ]
        assert [c.name for c in db["presets"].columns] == ["name", "params_json", "created_at", "owner"]
        assert [c.name for c in db["actions"].columns] == [
            "id",
            "at",
            "actor",
            "action",
            "run_id",
            "sweep_id",
            "board_id",
            "detail",
        ]
        assert {i.name for i in db["votes"].indexes} >= {"votes_one_per_pair"}
        triggers = {t.name for t in db.triggers}
        assert triggers == {"runs_fts_ai", "runs_fts_ad", "runs_fts_au"}


def test_opening_twice_applies_nothing_again(data_dir):
    Ledger(data_dir / "ledger.db")
    Ledger._migrated.clear()
    ledger = Ledger(data_dir / "ledger.db")
    with ledger.db() as db:
        assert db["_sqlite_migrations"].count == len(MIGRATIONS)


def make_run(ledger: Ledger, prompt: str, **kw) -> str:
    return ledger.create_run(
        FluxParams.parse(prompt=prompt, seed=kw.pop("seed", 1), **kw),
        backend="emulator",
        base_url="http://127.0.0.1:1",
    )


def test_a_run_is_written_with_its_exact_request_and_history(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    run_id = make_run(ledger, "a red cube", width=512)
    ledger.transition(run_id, store.SUBMITTING)
    ledger.transition(run_id, store.QUEUED, request_id="r-1")
    row = ledger.get(run_id)
    assert row.status == store.QUEUED and row.request_id == "r-1" and row.width == 512
    assert row.request == FluxParams.parse(prompt="a red cube", seed=1, width=512).payload()
    assert [e.status for e in ledger.events(run_id)] == ["CREATED", "SUBMITTING", "QUEUED"]


def test_a_run_leaves_the_ledger_typed_and_its_public_shape_is_its_dump(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    run_id = ledger.record_run(
        FluxParams.parse(prompt="a red cube", seed=7, image_urls=["https://example.com/a.png"]),
        store.COMPLETED,
        backend="segmind",
        base_url="https://api.segmind.com",
        key="SG_0123456789abcdef",
        image_path="images/ab/cd.png",
        cost=0.07,
    )
    history.curate(ledger, run_id, actor="test", favourite=True, rating=4, tags=["keeper", "dusk"])
    run = ledger.get(run_id)
    assert isinstance(run, Run)
    assert run.favourite is True and run.tags == ("dusk", "keeper") and run.seed_random is False
    assert run.image_urls == ("https://example.com/a.png",) and run.params.seed == 7
    assert run.state.terminal and not run.active and run.key_id and run.key_id not in run.public()
    shown = run.public(data_dir)
    assert run.public() == run.model_dump(mode="json", by_alias=True, include=set(PUBLIC_FIELDS))
    assert shown["run_id"] == run_id and shown["tags"] == ["dusk", "keeper"] and shown["cost"] == 0.07
    assert shown["image_path"] == str((data_dir / "images/ab/cd.png").resolve())
    assert not {"lease", "lease_until", "key_id", "request_hash"} & set(shown)
    assert "SG_0123456789abcdef" not in json.dumps(shown)


def test_ids_sort_by_time():
    ids = [store.new_id() for _ in range(500)]
    assert ids == sorted(ids) and len(set(ids)) == 500 and all(len(i) == 26 for i in ids)


def test_full_text_search_over_prompts_notes_and_tags(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    cube = make_run(ledger, "a red cube on a table")
    ball = make_run(ledger, "a blue ball")
    history.curate(ledger, ball, actor="test", notes="client loved the lighting", tags=["keeper"])
    assert [r.id for r in ledger.search("cube")] == [cube]
    assert [r.id for r in ledger.search("cubes")] == [cube]  # porter stemming
    assert [r.id for r in ledger.search("lighting")] == [ball]
    assert [r.id for r in ledger.search("keeper")] == [ball]
    history.curate(ledger, ball, actor="test", notes="")
    assert ledger.search("lighting") == []  # the index follows edits
    assert [r.id for r in ledger.search(None)] == [ball, cube]  # newest first


def test_search_input_is_quoted_not_parsed(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    make_run(ledger, 'say "hello" OR NOT')
    for text in ['"', "OR", "NOT (", "a*", "col:val", "'; DROP TABLE runs; --"]:
        ledger.search(text)  # never raises
    assert len(ledger.search(None)) == 1


def test_completed_runs_are_found_by_exact_request(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    run_id = make_run(ledger, "a red cube", seed=5)
    payload = FluxParams.parse(prompt="a red cube", seed=5).payload()
    assert ledger.completed_for("flux-2-max", payload) is None
    for status in (store.SUBMITTING, store.QUEUED, store.DOWNLOADING):
        ledger.transition(run_id, status)
    assert ledger.completed_for("flux-2-max", payload) is None
    ledger.transition(run_id, store.COMPLETED)
    assert ledger.completed_for("flux-2-max", payload).id == run_id
    assert ledger.completed_for("flux-2-max", {**payload, "seed": 6}) is None


def test_a_lease_is_taken_by_one_owner_only(data_dir):
    ledger = Ledger(data_dir / "ledger.db")
    run_id = make_run(ledger, "x")
    assert ledger.claim(run_id, "a", expected_lease=None)
    assert not ledger.claim(run_id, "b", expected_lease=None)
    ledger.release(run_id, "a")
    assert ledger.claim(run_id, "b", expected_lease=None)
