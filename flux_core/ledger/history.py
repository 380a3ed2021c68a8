"""Finding runs again: search and filters over the ledger, paging, facets, soft delete with undo,
export of selected runs, recall from an image file, and the figures behind the insight charts.

Every query leaves deleted runs out unless it asks for the trash; every user string goes in as a
bound parameter, full-text input through `quote_fts`.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Mapping

from flux_core import defaults as D
from flux_core import lifecycle, structured
from flux_core.ledger import actions, reviews, store
from flux_core.ledger import checks as check_table
from flux_core.media.images import read_recipe
from flux_core.params import FluxParams, ParamsError
from flux_core.ledger.records import TIME_FIELDS, Run
from flux_core.ledger.store import Ledger

STATUS_GROUPS = lifecycle.BY_GROUP  # the status filters: group name -> its statuses
# order, and the runs a sort applies to (sorting by inference time lists the runs that have one)
SORTS = {
    "newest": ("seq DESC", None),
    "oldest": ("seq ASC", None),
    "fastest": ("inference_time ASC, seq DESC", "inference_time IS NOT NULL"),
    "slowest": ("inference_time DESC, seq ASC", "inference_time IS NOT NULL"),
    "rating": ("rating DESC, seq DESC", None),  # SQLite puts NULLs last in DESC order
    # by a check's score (flux_core/checks): the runs that have one, highest first
    "text score": (
        f"(SELECT score FROM checks WHERE run_id = runs.id AND name = '{check_table.TEXT}') DESC, seq DESC",
        f"EXISTS (SELECT 1 FROM checks WHERE run_id = runs.id AND name = '{check_table.TEXT}' AND score IS NOT NULL)",
    ),
    "palette score": (
        f"(SELECT score FROM checks WHERE run_id = runs.id AND name = '{check_table.PALETTE}') DESC, seq DESC",
        f"EXISTS (SELECT 1 FROM checks WHERE run_id = runs.id AND name = '{check_table.PALETTE}' "
        "AND score IS NOT NULL)",
    ),
}
# the text check filter: its words all read right, or some misspelt or missing (runs checked only)
_TEXT_WRONG = (
    "(COALESCE(json_array_length(result, '$.misspelt'), 0) > 0 "
    "OR COALESCE(json_array_length(result, '$.missing'), 0) > 0)"
)
TEXT_FILTERS = {
    "all right": f"json_extract(result, '$.error') IS NULL AND score IS NOT NULL AND NOT {_TEXT_WRONG}",
    "misspelt or missing": f"json_extract(result, '$.error') IS NULL AND {_TEXT_WRONG}",
}


@dataclass(frozen=True)
class Query:
    text: str = ""
    statuses: tuple[str, ...] = ()
    seed: int | None = None
    tolerances: tuple[int, ...] = ()
    size: str | None = None  # "1024x768"
    formats: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # slugs (D.MODELS): runs of any of them
    favourite: bool = False
    min_rating: int | None = None
    tag: str | None = None
    sweep_id: str | None = None
    board: str | None = None  # a board's id: the runs on it
    date_from: date | None = None
    date_to: date | None = None
    backends: tuple[str, ...] = ()
    by: str | None = None  # who made the runs (runs.created_by): a person's runs
    text_check: str | None = None  # a key of TEXT_FILTERS: runs whose text check says so
    verdict: str | None = None  # one of reviews.VERDICTS (from anyone) or reviews.UNREVIEWED
    field: tuple[str, str] | None = None  # (path, words): runs whose structured prompt's field holds them
    sort: str = "newest"
    page: int = 1
    page_size: int = D.HISTORY_PAGE_SIZE
    trash: bool = False  # the deleted runs instead of the live ones

    def with_page(self, page: int) -> "Query":
        return replace(self, page=max(1, page))


# --- History's view as a URL carries it --------------------------------------------------------
# Each filter's parameter (pages/history.py binds its widgets to them; the presenter view reads the
# same link), with the words a refusal uses: (label, what it allows).
BACKENDS = ("emulator", "segmind")
RATINGS = (0, 1, 2, 3, 4, 5)
FILTERS = {
    "h_status": ("Status", "one of " + ", ".join(STATUS_GROUPS)),
    "h_sort": ("Sort by", "one of " + ", ".join(SORTS)),
    "h_trash": ("Trash", "true or false"),
    "h_seed": ("Seed", "a whole number"),
    "h_tol": ("Safety tolerance", f"a whole number from {D.SAFETY_MIN} to {D.SAFETY_MAX}"),
    "h_size": ("Size", "a width x height such as 1024x768"),
    "h_fmt": ("Format", " or ".join(D.OUTPUT_FORMATS)),
    "h_model": ("Model", "one of " + ", ".join(D.MODELS)),
    "h_fav": ("Favourites only", "true or false"),
    "h_rating": ("Rating at least", "a whole number from 0 to 5"),
    "h_from": ("From", "a date such as 2026-12-01"),
    "h_to": ("To", "a date such as 2026-12-01"),
    "h_backend": ("Backend", " or ".join(BACKENDS)),
    "h_textcheck": ("Text check", "one of " + ", ".join(TEXT_FILTERS)),
    "h_verdict": ("Verdict", "one of " + ", ".join((*reviews.VERDICTS, reviews.UNREVIEWED))),
    "h_board": ("Board", "the name of a board"),
    "h_field": ("Field", "a field's path, = and the words it holds, such as subject.attire.top = green"),
}


URL_KEYS = ("h_q", "h_tag", "h_sweep", "h_by", *FILTERS)  # every parameter of a History view's query


def to_url(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """History's filter values (as its widgets hand them back) as a link carries them: the inverse
    of query_from; a filter left at "any" is left out."""
    out: dict[str, list[str]] = {}
    for key in URL_KEYS:
        value = values.get(key)
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        kept = [
            v for v in items if not (v is None or v == "" or v is False or (key == "h_rating" and v == 0))
        ]
        words = [
            v.isoformat() if isinstance(v, date) else str(v).lower() if v is True else str(v) for v in kept
        ]
        if key == "h_sort" and words == ["newest"]:
            continue
        if words:
            out[key] = words
    return out


class FilterError(ParamsError):
    """Filters of a History view that cannot be used: `bad` holds (label, what it allows, the value
    as given) for each; `problems` says them in one line each."""

    def __init__(self, bad: list[tuple[str, str, str]]):
        self.bad = bad
        super().__init__([f"{label}: must be {allowed}, not {value!r}" for label, allowed, value in bad])


def query_from(values: Mapping[str, Any], boards: Mapping[str, str] | None = None) -> Query:
    """The Query of a History view from its filters by parameter name (h_q, h_status, ...: see
    FILTERS), as a link carries them (strings, lists of strings) or as History's widgets hand them
    back (numbers, dates, booleans). `boards` maps board names to ids. Every filter that holds a
    value it cannot use is named at once (FilterError); nothing is looked up for a bad view."""
    bad: list[tuple[str, str, str]] = []

    def many(key: str) -> list[Any]:
        raw = values.get(key)
        if raw is None or raw == "":
            return []
        return [v for v in (list(raw) if isinstance(raw, (list, tuple)) else [raw]) if v != ""]

    def one(key: str) -> Any:
        found = many(key)
        return found[-1] if found else None

    def fail(key: str, value: Any) -> None:
        label, allowed = FILTERS[key]
        bad.append((label, allowed, str(value)))

    def whole(key: str, allowed: tuple[int, ...] | None = None) -> int | None:
        value = one(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        number = _whole(value)
        if number is None or (allowed is not None and number not in allowed):
            fail(key, value.strip() if isinstance(value, str) else value)
            return None
        return number

    def chosen(key: str, allowed: Any) -> tuple[str, ...]:
        found = tuple(str(v) for v in many(key))
        for value in found:
            if value not in allowed:
                fail(key, value)
        return tuple(v for v in found if v in allowed)

    def flag(key: str) -> bool:
        value = one(key)
        if value is None or isinstance(value, bool):
            return bool(value)
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        fail(key, value)
        return False

    def day(key: str) -> date | None:
        value = one(key)
        if value is None or isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            fail(key, value)
            return None

    tolerances = []
    for value in many("h_tol"):
        number = _whole(value)
        if number is None or not D.SAFETY_MIN <= number <= D.SAFETY_MAX:
            fail("h_tol", value)
        else:
            tolerances.append(number)
    size = one("h_size")
    if size is not None:
        width, _, height = str(size).lower().partition("x")
        if not (width.isdigit() and height.isdigit()):
            fail("h_size", size)
            size = None
    sort = one("h_sort") or "newest"
    if sort not in SORTS:
        fail("h_sort", sort)
    text_check = one("h_textcheck")
    if text_check is not None and text_check not in TEXT_FILTERS:
        fail("h_textcheck", text_check)
    verdict = one("h_verdict")
    if verdict is not None and verdict not in (*reviews.VERDICTS, reviews.UNREVIEWED):
        fail("h_verdict", verdict)
    board = one("h_board")
    if board is not None and board not in (boards or {}):
        fail("h_board", board)
    field = None
    if one("h_field") is not None and str(one("h_field")).strip():
        try:
            field = field_filter(str(one("h_field")))
        except ParamsError:
            fail("h_field", one("h_field"))
    query = Query(
        text=str(one("h_q") or ""),
        statuses=chosen("h_status", STATUS_GROUPS),
        seed=whole("h_seed"),
        tolerances=tuple(tolerances),
        size=str(size) if size else None,
        formats=chosen("h_fmt", D.OUTPUT_FORMATS),
        models=chosen("h_model", D.MODELS),
        favourite=flag("h_fav"),
        min_rating=whole("h_rating", RATINGS) or None,
        tag=str(one("h_tag")) if one("h_tag") else None,
        sweep_id=str(one("h_sweep") or "").strip() or None,
        board=(boards or {}).get(board) if board else None,
        date_from=day("h_from"),
        date_to=day("h_to"),
        backends=chosen("h_backend", BACKENDS),
        by=str(one("h_by")) if one("h_by") else None,
        text_check=text_check,
        verdict=verdict,
        field=field,
        sort=sort,
        trash=flag("h_trash"),
    )
    if bad:
        raise FilterError(bad)
    return query


def _whole(value: Any) -> int | None:
    """`value` as a whole number (an int, or a string of one), else None."""
    if isinstance(value, bool) or isinstance(value, float):
        return None
    try:
        return int(value.strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Page:
    rows: list[Run]
    total: int  # matches, counted up to HISTORY_COUNT_AHEAD beyond the page's first run
    capped: bool  # more matched than were counted
    page: int
    pages: int
    query: Query = field(repr=False)


_FTS_JOIN = "runs_fts JOIN runs ON runs.seq = runs_fts.rowid"
# newest and oldest, when a search joins the full-text index: its own rowid order (the runs' seq),
# which FTS5 walks in either direction and stops after a page, instead of sorting every match
_FTS_ORDER = {"newest": "runs_fts.rowid DESC", "oldest": "runs_fts.rowid ASC"}


def _where(db, q: Query, skip: str | None = None) -> tuple[str, list[Any]]:
    """What follows FROM for the runs `q` matches: the table (joined to the full-text index when
    the query searches words or a tag) and its WHERE clause; and the clause's arguments."""
    where = ["deleted_at IS NOT NULL" if q.trash else "deleted_at IS NULL"]
    applies_to = SORTS.get(q.sort, SORTS["newest"])[1]
    if applies_to:
        where.append(applies_to)
    args: list[Any] = []
    matches = []
    if q.text.strip():
        quoted = store.fts_query(q.text)
        if quoted:
            matches.append(quoted)
    if q.tag and q.tag.strip():
        quoted = db.quote_fts(q.tag.strip())
        if quoted:
            matches.append("tags : (" + quoted + ")")
    if matches:
        where.append("runs_fts MATCH ?")
        args.append(" AND ".join(matches))
    if q.statuses and skip != "status":
        statuses = [s for group in q.statuses for s in STATUS_GROUPS.get(group, ())]
        where.append(f"status IN ({','.join('?' * len(statuses))})")
        args.extend(statuses)
    if q.seed is not None:
        where.append("seed = ?")
        args.append(int(q.seed))
    if q.tolerances and skip != "tolerance":
        where.append(f"safety_tolerance IN ({','.join('?' * len(q.tolerances))})")
        args.extend(int(t) for t in q.tolerances)
    if q.size:
        width, _, height = q.size.lower().partition("x")
        where.append("width = ? AND height = ?")
        args.extend([int(width), int(height)])
    if q.formats:
        where.append(f"output_format IN ({','.join('?' * len(q.formats))})")
        args.extend(q.formats)
    if q.models:
        where.append(f"model IN ({','.join('?' * len(q.models))})")
        args.extend(q.models)
    if q.favourite:
        where.append("favourite = 1")
    if q.min_rating:
        where.append("rating >= ?")
        args.append(int(q.min_rating))
    if q.sweep_id:
        where.append("sweep_id = ?")
        args.append(q.sweep_id)
    if q.board:
        where.append("id IN (SELECT run_id FROM board_runs WHERE board_id = ?)")
        args.append(q.board)
    if q.date_from:
        where.append("created_at >= ?")
        args.append(q.date_from.isoformat())
    if q.date_to:
        where.append("created_at < ?")
        args.append((q.date_to + timedelta(days=1)).isoformat())
    if q.backends:
        where.append(f"backend IN ({','.join('?' * len(q.backends))})")
        args.extend(q.backends)
    if q.by:
        where.append("created_by = ?")
        args.append(q.by)
    if q.text_check:
        where.append(text_check_sql(q.text_check))
    if q.verdict:
        where.append(reviews.filter_sql(q.verdict))
    if q.field:
        clause, more = field_sql(db, *q.field)
        where.append(clause)
        args.extend(more)
    return f"{_FTS_JOIN if matches else 'runs'} WHERE {' AND '.join(where)}", args


def field_filter(text: str) -> tuple[str, str]:
    """`path = words` as History's field filter takes it: (path, words), a ParamsError otherwise."""
    path, eq, words = text.partition("=")
    if not eq or not path.strip() or not words.strip():
        label, allowed = FILTERS["h_field"]
        raise ParamsError([f"{label.lower()}: must be {allowed}, not {text!r}"])
    return path.strip(), words.strip()


def field_sql(db: Any, path: str, words: str) -> tuple[str, list[Any]]:
    """A WHERE clause: runs whose prompt's field at `path` holds `words` (any case). The words are
    looked for in the whole prompt first (SQL), and only those prompts are read as fields (Python)."""
    db.conn.create_function("prompt_field", 2, structured.lookup, deterministic=True)
    like = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return (
        "prompt LIKE ? ESCAPE '\\' AND prompt_field(prompt, ?) LIKE ? ESCAPE '\\'",
        [like, path, like],
    )


def text_check_sql(name: str) -> str:
    """A WHERE clause on runs.id: runs whose text check says `name` (a key of TEXT_FILTERS)."""
    if name not in TEXT_FILTERS:
        raise ParamsError([f"text check: must be one of {', '.join(TEXT_FILTERS)}, not {name!r}"])
    return f"id IN (SELECT run_id FROM checks WHERE name = '{check_table.TEXT}' AND {TEXT_FILTERS[name]})"


def check_sort(sort: str) -> None:
    if sort not in SORTS:
        raise ParamsError([f"sort: must be one of {', '.join(SORTS)}, not {sort!r}"])


def find(ledger: Ledger, q: Query) -> Page:
    """One page of matching runs, and how many matched (counted up to HISTORY_COUNT_AHEAD past it)."""
    sort = q.sort if q.sort in SORTS else "newest"
    offset = (q.page - 1) * q.page_size
    with ledger.db() as db:
        source, args = _where(db, q)
        order = _FTS_ORDER.get(sort, SORTS[sort][0]) if source.startswith(_FTS_JOIN) else SORTS[sort][0]
        rows = [
            Run.from_row(row)
            for row in db.query(
                f"SELECT runs.* FROM {source} ORDER BY {order} LIMIT ? OFFSET ?",
                [*args, q.page_size, offset],
            )
        ]
        # counted as far as HISTORY_COUNT_AHEAD beyond this page's first run: exact below that
        # ("1,000+" above), and the pages beyond stay reachable, HISTORY_COUNT_AHEAD at a time
        reach = offset + D.HISTORY_COUNT_AHEAD
        counted = db.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {source} LIMIT ?)", [*args, reach + 1]
        ).fetchone()[0]
    capped = counted > reach
    total = min(counted, reach)
    pages = max(1, -(-total // q.page_size))
    return Page(rows, total, capped, q.page, pages, q)


def facets(ledger: Ledger, q: Query) -> dict[str, dict[str, int]]:
    """Counts by status group and by safety tolerance within the rest of the query."""
    with ledger.db() as db:
        source, args = _where(db, q, skip="status")
        by_status = {
            r[0]: r[1] for r in db.execute(f"SELECT status, COUNT(*) FROM {source} GROUP BY status", args)
        }
        source, args = _where(db, q, skip="tolerance")
        by_tol = {
            str(r[0]): r[1]
            for r in db.execute(
                f"SELECT safety_tolerance, COUNT(*) FROM {source} GROUP BY safety_tolerance", args
            )
        }
    groups = {name: sum(by_status.get(s, 0) for s in members) for name, members in STATUS_GROUPS.items()}
    return {"status": groups, "safety_tolerance": by_tol}


def all_tags(ledger: Ledger) -> list[str]:
    with ledger.db() as db:
        found: set[str] = set()
        for (raw,) in db.execute(
            "SELECT DISTINCT tags_json FROM runs WHERE tags_json != '[]' AND deleted_at IS NULL"
        ):
            found.update(json.loads(raw))
    return sorted(found)


def people(ledger: Ledger) -> list[str]:
    """Everyone who made a run, for the History filter (read from the index on created_by)."""
    with ledger.db() as db:
        return [
            r[0] for r in db.execute("SELECT DISTINCT created_by FROM runs WHERE created_by != '' ORDER BY 1")
        ]


# --- curation, and delete with undo; each change recorded with who made it (actions.py) ------
def curate(
    ledger: Ledger,
    run_id: str,
    *,
    actor: str,
    favourite: bool | None = None,
    rating: int | None = None,
    notes: str | None = None,
    tags: list[str] | None = None,
) -> None:
    """Favourite, rating (1-5), notes and tags of one run; what changes is recorded under `actor`
    in the same transaction (a value saved again unchanged records nothing)."""
    wanted: dict[str, Any] = {}
    if favourite is not None:
        wanted["favourite"] = int(favourite)
    if rating is not None:
        if not 1 <= rating <= 5:
            raise ValueError("rating must be from 1 to 5")
        wanted["rating"] = rating
    if notes is not None:
        wanted["notes"] = notes
    if tags is not None:
        wanted["tags_json"] = json.dumps(sorted({t.strip() for t in tags if t.strip()}))
    if not wanted:
        return
    at = store.now_iso()
    with ledger.write() as db:
        found = db.execute(
            "SELECT favourite, rating, notes, tags_json FROM runs WHERE id = ?", [run_id]
        ).fetchone()
        if found is None:
            return
        now = dict(zip(("favourite", "rating", "notes", "tags_json"), found))
        changed = {k: v for k, v in wanted.items() if now[k] != v}
        if not changed:
            return
        sets = ", ".join(f"[{k}] = ?" for k in changed)
        db.execute(f"UPDATE runs SET {sets}, updated_at = ? WHERE id = ?", [*changed.values(), at, run_id])
        for field, value in changed.items():
            _record_curation(db, actor, run_id, field, value, at)


def _record_curation(db: Any, actor: str, run_id: str, field: str, value: Any, at: str) -> None:
    if field == "favourite":
        actions.record(db, actor, actions.FAVOURITE, run_id=run_id, detail="on" if value else "off", at=at)
    elif field == "rating":
        actions.record(db, actor, actions.RATING, run_id=run_id, detail=str(value), at=at)
    elif field == "notes":
        actions.record(db, actor, actions.NOTES, run_id=run_id, detail=str(value)[:200], at=at)
    else:
        actions.record(db, actor, actions.TAGS, run_id=run_id, detail=", ".join(json.loads(value)), at=at)


def delete(ledger: Ledger, run_ids: list[str], *, actor: str) -> None:
    """Move runs to the trash: hidden everywhere, kept in the ledger until purged."""
    at = store.now_iso()
    with ledger.write() as db:
        for run_id in run_ids:
            cursor = db.execute(
                "UPDATE runs SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL", [at, run_id]
            )
            if cursor.rowcount:
                actions.record(db, actor, actions.DELETE, run_id=run_id, at=at)


def restore(ledger: Ledger, run_ids: list[str], *, actor: str) -> None:
    with ledger.write() as db:
        for run_id in run_ids:
            cursor = db.execute(
                "UPDATE runs SET deleted_at = NULL WHERE id = ? AND deleted_at IS NOT NULL", [run_id]
            )
            if cursor.rowcount:
                actions.record(db, actor, actions.RESTORE, run_id=run_id)


def curate_many(
    ledger: Ledger,
    run_ids: list[str],
    *,
    add_tags: tuple[str, ...] = (),
    remove_tags: tuple[str, ...] = (),
    rating: int | None = None,
    favourite: bool | None = None,
    actor: str,
) -> int:
    """The same curation for many runs, in one transaction: tags added and taken away (each run
    keeps its other tags), a rating, a favourite mark, each change recorded under `actor`. Returns
    how many runs were changed."""
    at = store.now_iso()
    changed = 0
    with ledger.write() as db:
        for run_id in dict.fromkeys(run_ids):
            found = db.execute(
                "SELECT tags_json, rating, favourite FROM runs WHERE id = ?", [run_id]
            ).fetchone()
            if found is None:
                continue
            fields: dict[str, Any] = {}
            if add_tags or remove_tags:
                tags = (set(json.loads(found[0])) | set(add_tags)) - set(remove_tags)
                if json.dumps(sorted(tags)) != found[0]:
                    fields["tags_json"] = json.dumps(sorted(tags))
            if rating is not None and rating != found[1]:
                fields["rating"] = rating
            if favourite is not None and int(favourite) != found[2]:
                fields["favourite"] = int(favourite)
            if fields:
                sets = ", ".join(f"[{k}] = ?" for k in fields)
                db.execute(
                    f"UPDATE runs SET {sets}, updated_at = ? WHERE id = ?", [*fields.values(), at, run_id]
                )
                for field, value in fields.items():
                    _record_curation(db, actor, run_id, field, value, at)
            changed += 1
    return changed


def purge(ledger: Ledger, data_dir: Path, run_ids: list[str] | None = None, *, actor: str) -> int:
    """Delete runs in the trash for good (all of them, or those named), with image files no other
    run uses. Runs still in flight are never purged. Each purge is recorded under `actor`, with the
    run's prompt: the record outlives the run."""
    sql = "SELECT * FROM runs WHERE deleted_at IS NOT NULL"
    args: list[Any] = []
    if run_ids is not None:
        sql += f" AND id IN ({','.join('?' * len(run_ids))})"
        args = list(run_ids)
    doomed = [run for run in ledger.runs(sql, args) if not run.active]
    with ledger.write() as db:
        for run in doomed:
            db.execute("DELETE FROM run_events WHERE run_id = ?", [run.id])
            db.execute("DELETE FROM sweep_cells WHERE run_id = ?", [run.id])
            db.execute("DELETE FROM checks WHERE run_id = ?", [run.id])
            reviews.forget(db, run.id)
            db.execute("DELETE FROM runs WHERE id = ?", [run.id])
            actions.record(db, actor, actions.PURGE, run_id=run.id, detail=run.prompt[:200])
        for run in doomed:
            if (
                run.image_sha256
                and not db.execute(
                    "SELECT 1 FROM runs WHERE image_sha256 = ? LIMIT 1", [run.image_sha256]
                ).fetchone()
            ):
                for rel in (run.image_path, run.thumb_path):
                    if rel:
                        (data_dir / rel).unlink(missing_ok=True)
    return len(doomed)


# --- export and recall ----------------------------------------------------------------------
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell a spreadsheet shows and never runs: text that starts like a formula
    (= + - @, a tab or a carriage return) gets a leading single quote (OWASP's advice); numbers and
    other text are left alone."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS):
        return "'" + value
    return value


def _zip_name(run: Run) -> str:
    return f"images/{run.id}{Path(run.image_path or '').suffix}"


def export_zip(rows: list[Run], data_dir: Path, boards: dict[str, list[str]] | None = None) -> bytes:
    """Images (their recipes embedded), manifest.json and runs.csv for the given runs; `boards`:
    the names of the boards each run is on, listed in the manifest."""
    manifest = []
    for run in rows:
        info = run.public()
        if boards is not None:
            info["boards"] = boards.get(run.id, [])
        info.pop("image_path", None)
        info.pop("thumb_path", None)
        has_image = bool(run.image_path) and (data_dir / (run.image_path or "")).exists()
        info["file"] = _zip_name(run) if has_image else None
        manifest.append(info)
    table = io.StringIO()
    columns = [
        "run_id",
        "status",
        "model",
        "prompt",
        "seed",
        "width",
        "height",
        "safety_tolerance",
        "output_format",
        *TIME_FIELDS,  # the person's wait (Generate to image stored), Segmind's inference and queue time
        "cost",
        "created_at",
        "created_by",
        "file",
        "rating",
        "favourite",
        "notes",
        "tags",
        "boards",
    ]
    writer = csv.DictWriter(table, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(
        {k: csv_cell(", ".join(v) if k in ("tags", "boards") else v) for k, v in info.items()}
        for info in manifest
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for run, info in zip(rows, manifest):
            if info["file"] and run.image_path:
                zf.write(data_dir / run.image_path, info["file"])
        models = list(dict.fromkeys(run.model for run in rows))
        zf.writestr("manifest.json", json.dumps({"models": models, "runs": manifest}, indent=2))
        zf.writestr("runs.csv", table.getvalue())
    return out.getvalue()


@dataclass(frozen=True)
class Recalled:
    params: FluxParams
    run_id: str | None
    recipe: dict[str, Any]


def recall_image(data: bytes) -> Recalled:
    """The recipe embedded in an image Flux Lab produced; ParamsError when there is none."""
    recipe = read_recipe(data)
    if not recipe or not isinstance(recipe.get("params"), dict):
        raise ParamsError(["this image carries no Flux Lab recipe (only images Flux Lab saved do)"])
    model = recipe.get("model") or D.MODEL_SLUG  # a recipe names its model beside the body sent
    return Recalled(FluxParams.parse({**recipe["params"], "model": model}), recipe.get("run_id"), recipe)


# --- insights --------------------------------------------------------------------------------
def insights(ledger: Ledger, sample: int = D.INSIGHTS_SAMPLE) -> dict[str, list[dict[str, Any]]]:
    """The figures behind the charts: inference time against megapixels, outcome by tolerance,
    runs, reported credits and real spend (USD, from Segmind's record) per day, and by person: runs,
    images made and real spend."""
    with ledger.db() as db:
        speed = [
            {"megapixels": round(r[0] * r[1] / 1e6, 3), "inference_s": r[2], "format": r[3]}
            for r in db.execute(
                "SELECT width, height, inference_time, output_format FROM runs WHERE deleted_at IS NULL "
                "AND status = ? AND inference_time IS NOT NULL ORDER BY seq DESC LIMIT ?",
                [store.COMPLETED, sample],
            )
        ]
        outcome_rows = db.execute(
            "SELECT safety_tolerance, status, COUNT(*) FROM runs WHERE deleted_at IS NULL "
            "GROUP BY safety_tolerance, status"
        ).fetchall()
        daily = [
            {"day": r[0], "runs": r[1], "credits": round(r[2] or 0.0, 4), "spend_usd": round(r[3] or 0.0, 4)}
            for r in db.execute(
                "SELECT substr(created_at, 1, 10) AS day, COUNT(*), SUM(cost), SUM(cost_usd) FROM runs "
                "WHERE deleted_at IS NULL GROUP BY day ORDER BY day"
            )
        ]
        people = [
            {
                "person": r[0] or "(nobody recorded)",
                "runs": r[1],
                "images": r[2],
                "spend_usd": round(r[3] or 0.0, 4),
            }
            for r in db.execute(
                "SELECT created_by, COUNT(*), SUM(status = ?), SUM(cost_usd) FROM runs WHERE deleted_at IS NULL "
                "GROUP BY created_by ORDER BY COUNT(*) DESC, created_by",
                [store.COMPLETED],
            )
        ]
    group_of = {s: name for name, members in STATUS_GROUPS.items() for s in members}
    outcomes: dict[tuple[int, str], int] = {}
    for tol, status, count in outcome_rows:
        key = (tol, group_of.get(status, "failed"))
        outcomes[key] = outcomes.get(key, 0) + count
    by_tol = [{"safety_tolerance": t, "outcome": o, "runs": n} for (t, o), n in sorted(outcomes.items())]
    return {"speed": speed, "outcomes": by_tol, "daily": daily, "people": people}
