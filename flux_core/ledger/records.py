"""What leaves the ledger: typed records of runs and sweeps, never bare rows.

`Run` is one row of `runs` with its JSON columns decoded (`image_urls`, `tags`, `request`) and its
flags as booleans; the lifecycle's meaning of its status is a property away (`run.state`). The
public JSON shape of a run (the CLI's `--json`, manifests, exports) is `run.public(data_dir)`, the
model's own dump of the fields in `PUBLIC_FIELDS` (its times among them, under the names every front
end uses: `TIME_FIELDS`), with stored paths made absolute; it never holds the key, its fingerprint or
the lease.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, SerializationInfo, computed_field, field_serializer

from flux_core import defaults as D
from flux_core import lifecycle
from flux_core.params import FluxParams

# A run's times as every front end names them (exports' columns, `--json`): the person's wait, from
# Generate to the image stored (`Run.wait_s`), and Segmind's own inference and queue time.
TIME_FIELDS = ("wait_s", "inference_s", "queue_s")

# The fields of a run's public shape (the model's own dump of them, `id` as `run_id`).
PUBLIC_FIELDS = (
    "id",
    "request_id",
    "status",
    "model",
    "prompt",
    "seed",
    "seed_random",
    "width",
    "height",
    "safety_tolerance",
    "output_format",
    "image_urls",
    "image_path",
    "thumb_path",
    "inference_time",
    "queue_time",
    "total_time",
    "observed_total_s",
    "cost",
    "cost_usd",
    "remaining_credits",
    "error",
    "error_kind",
    "backend",
    "sweep_id",
    "origin",
    "settlement",
    "created_at",
    "created_by",
    "finished_at",
    "favourite",
    "rating",
    "notes",
    "tags",
    "parent_run_id",
    "lineage",
    "version_name",
    "pinned",
    *TIME_FIELDS,
)


class Run(BaseModel):
    """One run as the ledger holds it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    seq: int = 0
    id: str = Field(serialization_alias="run_id")
    created_at: str
    updated_at: str
    status: str
    model: str
    backend: str
    base_url: str
    prompt: str
    image_urls: tuple[str, ...] = ()
    width: int
    height: int
    seed: int
    seed_random: bool = False
    safety_tolerance: int
    output_format: str
    request: dict[str, Any]  # the exact body that is (or was) sent
    request_hash: str
    created_by: str = ""  # who asked for it: the signed-in address, else "local:<user>"
    key_id: str | None = None  # a one-way fingerprint of the key that submitted it, never the key
    # Segmind's job
    request_id: str | None = None
    status_url: str | None = None
    response_url: str | None = None
    poll_url: str | None = None
    submitted_at: str | None = None
    processing_at: str | None = None
    finished_at: str | None = None
    queue_time: float | None = None
    inference_time: float | None = None
    total_time: float | None = None
    observed_queue_s: float | None = None
    observed_total_s: float | None = None
    cost: float | None = None
    remaining_credits: float | None = None
    error: str | None = None
    error_kind: str | None = None
    # settling with Segmind's own record (its request history)
    submit_began_at: str | None = None  # when the latest submit of this run began
    resent: bool = False  # sent again once, automatically, after the history showed no job
    settlement: str | None = None  # what the last look at Segmind's record found, in words
    cost_usd: float | None = None  # the real cost, from Segmind's record (credits_deduction)
    cost_checked_at: str | None = None
    origin: str = "flux-lab"  # or "imported": made elsewhere, brought in from Segmind's record
    # the image
    output_url: str | None = None
    download_attempts: int = 0
    image_sha256: str | None = None
    image_path: str | None = None  # relative to the data directory
    thumb_path: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    image_bytes: int | None = None
    # where it belongs and what people made of it
    sweep_id: str | None = None
    favourite: bool = False
    rating: int | None = None
    notes: str = ""
    tags: tuple[str, ...] = ()
    deleted_at: str | None = None
    # where it came from (flux_core/ledger/lineage.py)
    parent_run_id: str | None = None  # the run it was made from, if any (it may have been purged since)
    lineage: str | None = None  # how: one of store.LINEAGE_KINDS
    version_name: str | None = None  # a name a person gave this version
    pinned: bool = False  # the best of its lineage tree (at most one a tree)
    # which process drives it
    lease: str | None = None
    lease_until: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Run":
        data = dict(row)
        data["image_urls"] = json.loads(data.pop("image_urls_json", None) or "[]")
        data["tags"] = json.loads(data.pop("tags_json", None) or "[]")
        data["request"] = json.loads(data.pop("request_json", None) or "{}")
        return cls.model_validate(data)

    @property
    def state(self) -> lifecycle.State:
        return lifecycle.STATES[self.status]

    @property
    def active(self) -> bool:
        return not self.state.terminal

    @property
    def params(self) -> FluxParams:
        """The run's request as parameters (to run it again): its body, sent to its model."""
        return FluxParams.parse({**self.request, "model": self.model})

    @computed_field  # type: ignore[prop-decorator]
    @property
    def wait_s(self) -> float | None:
        """The wait the person had: seconds from Generate (`created_at`, written as it was pressed) to
        the image stored (`finished_at` of a COMPLETED run, written in the same change). None for a run
        with no image, and for one made outside Flux Lab (imported: nobody here pressed Generate)."""
        if self.status != lifecycle.COMPLETED or self.origin == D.IMPORTED or not self.finished_at:
            return None
        began, stored = _moment(self.created_at), _moment(self.finished_at)
        return round(max(0.0, (stored - began).total_seconds()), 3)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def inference_s(self) -> float | None:
        """Segmind's inference time for the job, as its reply gave it."""
        return self.inference_time

    @computed_field  # type: ignore[prop-decorator]
    @property
    def queue_s(self) -> float | None:
        """Segmind's time in its queue for the job, as its reply gave it."""
        return self.queue_time

    @field_serializer("image_path", "thumb_path")
    def _absolute(self, value: str | None, info: SerializationInfo) -> str | None:
        context = info.context or {}
        if value is None or "data_dir" not in context:
            return value
        return str((Path(context["data_dir"]) / value).resolve())

    def public(self, data_dir: Path | None = None) -> dict[str, Any]:
        """The public JSON shape of the run: stored paths absolute under `data_dir` when given."""
        context = {"data_dir": data_dir} if data_dir is not None else None
        return self.model_dump(mode="json", by_alias=True, include=set(PUBLIC_FIELDS), context=context)


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Event(BaseModel):
    """One transition in a run's history."""

    model_config = ConfigDict(frozen=True)

    at: str
    status: str
    detail: str | None = None
