"""The parameters of one FLUX.2 request ([max], [pro] or [flex]), validated before anything is sent or
written."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from flux_core import defaults as D


class ParamsError(ValueError):
    """Invalid parameters. `problems` names every bad field and what is allowed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


_EXPECTED = {
    "model": "one of " + ", ".join(D.MODELS),
    "prompt": f"text of at most {D.PROMPT_MAX_CHARS:,} characters",
    "image_urls": f"a list of at most {D.MAX_IMAGE_URLS} http(s) URLs",
    "width": f"a whole number from {D.SIZE_MIN} to {D.SIZE_MAX}, a multiple of {D.SIZE_STEP}",
    "height": f"a whole number from {D.SIZE_MIN} to {D.SIZE_MAX}, a multiple of {D.SIZE_STEP}",
    "seed": f"a whole number from 0 to {D.SEED_MAX}, or random",
    "safety_tolerance": f"a whole number from {D.SAFETY_MIN} to {D.SAFETY_MAX}",
    "output_format": " or ".join(D.OUTPUT_FORMATS),
    "steps": f"a whole number from {D.FLEX_STEPS_MIN} to {D.FLEX_STEPS_MAX} ({D.MODELS[D.FLEX_SLUG]} only)",
    "guidance": f"a number from {D.FLEX_GUIDANCE_MIN} to {D.FLEX_GUIDANCE_MAX} ({D.MODELS[D.FLEX_SLUG]} only)",
    "prompt_upsampling": f"true or false ({D.MODELS[D.FLEX_SLUG]} only)",
}
FLEX_DEFAULTS = {  # [flex]'s own fields when a [flex] request leaves them out
    "steps": D.FLEX_STEPS,
    "guidance": D.FLEX_GUIDANCE,
    "prompt_upsampling": D.FLEX_PROMPT_UPSAMPLING,
}


def model_name(model: str) -> str:
    """A model's name as people read it ("FLUX.2 [pro]"); an unknown slug as it is."""
    return D.MODELS.get(model, model)


def model_tag(model: str) -> str:
    """A model's short name, for a card's caption ("[pro]")."""
    return model_name(model).removeprefix("FLUX.2 ")


def text_field(field: str, value: Any, max_chars: int, *, one_line: bool = True) -> str:
    """A person's short text as kept (a board's or a version's name, a comment): trimmed, 1 to
    `max_chars` characters and, when `one_line`, without line breaks or control characters; a
    ParamsError naming `field` otherwise."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ParamsError([f"{field}: must not be empty"])
    if len(text) > max_chars:
        raise ParamsError([f"{field}: at most {max_chars} characters (this one has {len(text)})"])
    if one_line and not text.isprintable():
        raise ParamsError([f"{field}: one line of text, without control characters"])
    return text


def random_seed() -> int:
    return secrets.randbelow(D.SEED_MAX + 1)


def reference_url_problems(urls: list[str] | tuple[str, ...]) -> list[str]:
    """Why each reference URL is refused (numbered from 1, as a person counts lines); [] if all are fine.

    A reference is an http(s) URL (or an uploaded file): never a path or any other scheme, so no
    front end opens or fetches anything it was given before this says it may."""
    problems = []
    for i, url in enumerate(urls, start=1):
        text = str(url).strip()
        try:
            parts = urlsplit(text)
            ok = (
                parts.scheme in ("http", "https")
                and bool(parts.hostname)
                and not any(c.isspace() for c in text)
            )
        except ValueError:  # e.g. an unbalanced [ in the host
            ok = False
        if not ok:
            shown = text if len(text) <= 80 else text[:79] + "…"
            problems.append(f"image URL {i} must be an http:// or https:// URL (got {shown!r})")
    return problems


def parse_seeds(text: str) -> list[int]:
    """Seeds typed as a comma-separated list; every bad one is named at once."""
    values: list[int] = []
    problems: list[str] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        try:
            seed = int(part)
        except ValueError:
            problems.append(f"seed {part!r} must be a whole number")
            continue
        if not 0 <= seed <= D.SEED_MAX:
            problems.append(f"seed {seed} must be from 0 to {D.SEED_MAX}")
        values.append(seed)
    if not values and not problems:
        problems.append("seeds: give at least one whole number, separated by commas")
    if problems:
        raise ParamsError(problems)
    return values


def size_problem(name: str, value: int) -> str | None:
    """Why `value` is not an allowed width/height, with the nearest allowed values; None if fine."""
    if value < D.SIZE_MIN or value > D.SIZE_MAX:
        return f"{name} must be from {D.SIZE_MIN} to {D.SIZE_MAX} (got {value})"
    if value % D.SIZE_STEP:
        lower = max(D.SIZE_MIN, value - value % D.SIZE_STEP)
        upper = min(D.SIZE_MAX, lower + D.SIZE_STEP)
        return f"{name} must be a multiple of {D.SIZE_STEP}: try {lower} or {upper}"
    return None


class FluxParams(BaseModel):
    """One FLUX.2 request: the model it goes to (its slug; flux-2-max when none is named, as every
    run and recipe before the model axis) and its body. [flex]'s own fields (D.FLEX_FIELDS) are
    refused for the other models and take their defaults for [flex], so a [flex] request always says
    them. Build with `FluxParams.parse(...)` to get a `ParamsError`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = D.MODEL_SLUG
    prompt: str
    image_urls: tuple[str, ...] = ()
    width: int = D.WIDTH
    height: int = D.HEIGHT
    seed: int
    safety_tolerance: int = D.SAFETY_TOLERANCE
    output_format: str = D.OUTPUT_FORMAT
    steps: int | None = None
    guidance: float | None = None
    prompt_upsampling: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _draw_seed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            seed = data.get("seed")
            if seed is None or (isinstance(seed, str) and seed.strip().lower() in ("", "random")):
                data = {**data, "seed": random_seed()}
            if data.get("image_urls") is None:
                data = {k: v for k, v in data.items() if k != "image_urls"}
            if data.get("model") is None:
                data = {**data, "model": D.MODEL_SLUG}
            if isinstance(data["model"], str) and data["model"].strip().lower() == D.FLEX_SLUG:
                data = {**data, **{k: v for k, v in FLEX_DEFAULTS.items() if data.get(k) is None}}
        return data

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, v: Any) -> Any:
        slug = v.strip().lower() if isinstance(v, str) else v
        if slug not in D.MODELS:
            raise ValueError(f"model must be {_EXPECTED['model']} (got {v!r})")
        return slug

    @field_validator("steps", "guidance", "prompt_upsampling", mode="before")
    @classmethod
    def _flex_types(cls, v: Any, info) -> Any:
        name = info.field_name
        if v is not None and isinstance(v, bool) != (name == "prompt_upsampling"):
            if not (name == "prompt_upsampling" and isinstance(v, str) and v.lower() in ("true", "false")):
                raise ValueError(f"{name} must be {_EXPECTED[name]} (got {v!r})")
        return v

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: int | None) -> int | None:
        if v is not None and not D.FLEX_STEPS_MIN <= v <= D.FLEX_STEPS_MAX:
            raise ValueError(f"steps must be from {D.FLEX_STEPS_MIN} to {D.FLEX_STEPS_MAX} (got {v})")
        return v

    @field_validator("guidance")
    @classmethod
    def _guidance(cls, v: float | None) -> float | None:
        if v is not None and not D.FLEX_GUIDANCE_MIN <= v <= D.FLEX_GUIDANCE_MAX:
            raise ValueError(
                f"guidance must be from {D.FLEX_GUIDANCE_MIN} to {D.FLEX_GUIDANCE_MAX} (got {v:g})"
            )
        return v

    @field_validator("width", "height", "seed", "safety_tolerance", mode="before")
    @classmethod
    def _no_bools(cls, v: Any, info) -> Any:
        if isinstance(v, bool):
            raise ValueError(f"{info.field_name} must be {_EXPECTED[info.field_name]} (got {v!r})")
        return v

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt is required and must not be blank")
        if len(v) > D.PROMPT_MAX_CHARS:
            raise ValueError(f"prompt must be at most {D.PROMPT_MAX_CHARS:,} characters (got {len(v):,})")
        return v

    @field_validator("image_urls")
    @classmethod
    def _urls(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        problems = []
        if len(v) > D.MAX_IMAGE_URLS:
            problems.append(f"image_urls allows at most {D.MAX_IMAGE_URLS} URLs (got {len(v)})")
        problems += reference_url_problems(v)
        if problems:
            raise ValueError("; ".join(problems))
        return tuple(u.strip() for u in v)

    @field_validator("width", "height")
    @classmethod
    def _size(cls, v: int, info) -> int:
        problem = size_problem(info.field_name, v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        if not 0 <= v <= D.SEED_MAX:
            raise ValueError(f"seed must be from 0 to {D.SEED_MAX}, or random (got {v})")
        return v

    @field_validator("safety_tolerance")
    @classmethod
    def _tolerance(cls, v: int) -> int:
        if not D.SAFETY_MIN <= v <= D.SAFETY_MAX:
            raise ValueError(
                f"safety_tolerance must be from {D.SAFETY_MIN} (strictest) to {D.SAFETY_MAX} (got {v})"
            )
        return v

    @field_validator("output_format", mode="before")
    @classmethod
    def _format(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().lower()
            v = "jpeg" if v == "jpg" else v
            if v not in D.OUTPUT_FORMATS:
                raise ValueError(f"output_format must be png or jpeg (got {v!r})")
        return v

    @model_validator(mode="after")
    def _per_model(self) -> "FluxParams":
        if self.model != D.FLEX_SLUG:
            given = [name for name in D.FLEX_FIELDS if getattr(self, name) is not None]
            if given:
                raise ValueError(
                    "; ".join(
                        f"{name}: only {model_name(D.FLEX_SLUG)} takes it (this request is for "
                        f"{model_name(self.model)})"
                        for name in given
                    )
                )
        return self

    @model_validator(mode="after")
    def _pixels(self) -> "FluxParams":
        if self.width * self.height > D.MAX_PIXELS:
            raise ValueError(
                f"width x height must be at most {D.MAX_PIXELS // (1024 * 1024)} megapixels "
                f"(got {self.width}x{self.height})"
            )
        return self

    @classmethod
    def parse(cls, data: dict[str, Any] | None = None, /, **kwargs: Any) -> "FluxParams":
        """Validate; raise one ParamsError naming every bad field and what is allowed."""
        merged = {**(data or {}), **kwargs}
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            raise ParamsError(_problems(exc)) from None

    def payload(self) -> dict[str, Any]:
        """The JSON body sent to Segmind (the model is in the URL, not here): `image_urls` omitted
        when empty, seed always explicit, [flex]'s own fields for [flex] only, always explicit."""
        body: dict[str, Any] = {"prompt": self.prompt}
        if self.image_urls:
            body["image_urls"] = list(self.image_urls)
        body.update(
            seed=self.seed,
            width=self.width,
            height=self.height,
            safety_tolerance=self.safety_tolerance,
            output_format=self.output_format,
        )
        if self.model == D.FLEX_SLUG:
            body.update(steps=self.steps, guidance=self.guidance, prompt_upsampling=self.prompt_upsampling)
        return body

    def fields(self) -> dict[str, Any]:
        """The request as Flux Lab keeps it (a sweep's base, a recipe shown): its model and body."""
        return {"model": self.model, **self.payload()}

    def replace(self, **changes: Any) -> "FluxParams":
        """This request with `changes`; moved to a model other than [flex], it leaves [flex]'s own
        fields behind (a model axis over a [flex] base)."""
        kept = self.fields()
        if changes.get("model", self.model) != D.FLEX_SLUG:
            kept = {k: v for k, v in kept.items() if k not in D.FLEX_FIELDS}
        return FluxParams.parse({**kept, **changes})


def _problems(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        field = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "value_error":
            msg = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
            problems.extend(m for m in msg.split("; ") if m not in problems)
        elif err["type"] == "missing":
            problems.append(f"{field} is required")
        elif err["type"] == "extra_forbidden":
            problems.append(f"unknown parameter {field!r}; allowed: {', '.join(_EXPECTED)}")
        else:
            expected = _EXPECTED.get(field, "a valid value")
            problems.append(f"{field} must be {expected} (got {err.get('input')!r})")
    return problems
