"""What a request will cost, before it is sent: per model ([max], [pro], [flex]).

Once the ledger holds real costs of a model (each run's `cost_usd`, from Segmind's request
history), that model's estimate is learned from them: a price per output megapixel from runs
without reference images, and a price per reference image from the rest, both medians of this
server's most recent runs of that model (a learned [max] price is never applied to [pro]). Until
then it is the flat price per image: FLUX_LAB_PRICE, or the embedded emulator's own price, both a
[max] image's, the other models' in the proportions of the price table (D.PRICES_USD).

The spend caps (flux_core/caps.py) need a price in USD for every request, flat price or not:
`Pricing.rates()` is the learned price when there is one, else the flat price spread over a default
image's megapixels (as `learn` divides a real cost by its megapixels; Segmind's credits are USD),
else the model's price in the table (D.PRICES_USD; [max]'s overridable by env).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlite_utils import Database

from flux_core import defaults as D
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams
from flux_core.settings import price_rates


@dataclass(frozen=True)
class Pricing:
    """The prices on one server: `model`'s own fields, and `others`, the other models' learned
    prices; `of(model)` is one model's (a model with no learned price: the flat price in the table's
    proportions)."""

    per_image: float | None = None  # the flat price, in credits
    per_megapixel: float | None = None  # learned, in USD
    per_reference: float = 0.0  # learned, in USD
    learned_from: int = 0  # how many runs' real costs it was learned from
    model: str = D.MODEL_SLUG
    others: tuple["Pricing", ...] = ()

    def of(self, model: str | None) -> "Pricing":
        """The pricing of `model`'s requests (None: this one's model)."""
        if model is None or model == self.model:
            return self
        for other in self.others:
            if other.model == model:
                return other
        return Pricing(per_image=in_proportion(self.per_image, self.model, model), model=model)

    @property
    def learned(self) -> bool:
        return self.per_megapixel is not None

    def learned_for(self, models: Iterable[str]) -> bool:
        """Whether every one of `models` has a learned price (an estimate over them is in USD)."""
        return all(self.of(m).learned for m in models)

    def for_params(self, params: FluxParams) -> float | None:
        return self.for_size(params.width, params.height, len(params.image_urls), params.model)

    def for_size(
        self, width: int, height: int, references: int = 0, model: str | None = None
    ) -> float | None:
        own = self.of(model)
        if own.per_megapixel is None:
            return own.per_image
        return round(own.per_megapixel * width * height / 1e6 + own.per_reference * references, 6)

    def rates(self, model: str | None = None) -> tuple[float, float]:
        """USD per output megapixel and per reference image of `model`, for every estimate in USD."""
        own = self.of(model)
        if own.per_megapixel is not None:
            return own.per_megapixel, own.per_reference
        if own.per_image is not None:
            return round(own.per_image / (D.WIDTH * D.HEIGHT / 1e6), 6), 0.0
        return price_rates(own.model)

    def usd(self, width: int, height: int, references: int = 0, model: str | None = None) -> float:
        """What a request of this size to `model` costs in USD, always a number (see `rates`)."""
        per_mp, per_ref = self.rates(model)
        return round(per_mp * width * height / 1e6 + per_ref * references, 6)

    def words(self, cost: float | None, cells: int = 1, models: Iterable[str] | None = None) -> str | None:
        """An estimate (of requests to `models`; None: this one's model) as people read it, with
        where it comes from."""
        if cost is None:
            return None
        used = list(dict.fromkeys(models or [self.model]))
        images = f" ({cells} images)" if cells > 1 else ""
        if self.learned_for(used):
            runs = sum(self.of(m).learned_from for m in used)
            return f"Estimated cost: ${cost:.4g}{images}, learned from {runs} runs' real costs"
        return f"Estimated cost: {cost:.4g} credits{images}"


def in_proportion(flat: float | None, model: str, other: str) -> float | None:
    """A flat price of a `model` image as an `other` image's, in the price table's proportions."""
    if flat is None or model == other:
        return flat
    return round(flat * D.PRICES_USD[other][0] / D.PRICES_USD[model][0], 6)


def learn(ledger: Ledger, base_url: str, flat: float | None, sample: int = D.PRICING_SAMPLE) -> Pricing:
    """The pricing of `base_url`'s requests, each model's learned from the ledger's real costs of
    that model when it has any; `flat` is a [max] image's price."""
    with ledger.db() as db:  # one connection for every model's costs (a new one reads the schema again)
        learned = [
            _learn_one(db, base_url, model, in_proportion(flat, D.MODEL_SLUG, model), sample)
            for model in D.MODELS
        ]
    own, others = learned[0], tuple(p for p in learned[1:] if p.learned)
    return replace(own, others=others)


def _learn_one(db: Database, base_url: str, model: str, flat: float | None, sample: int) -> Pricing:
    rows = db.execute(
        "SELECT width, height, image_urls_json, cost_usd FROM runs WHERE base_url = ? AND model = ? "
        "AND cost_usd IS NOT NULL AND cost_usd > 0 ORDER BY seq DESC LIMIT ?",
        [base_url, model, sample],
    ).fetchall()
    if not rows:
        return Pricing(per_image=flat, model=model)
    seen = [(w * h / 1e6, len(json.loads(urls or "[]")), cost) for w, h, urls, cost in rows]
    plain = [cost / mp for mp, refs, cost in seen if refs == 0 and mp > 0]
    per_mp = (
        statistics.median(plain) if plain else statistics.median(cost / mp for mp, _, cost in seen if mp > 0)
    )
    per_ref = [(cost - per_mp * mp) / refs for mp, refs, cost in seen if refs > 0]
    return Pricing(
        per_image=flat,
        per_megapixel=round(per_mp, 6),
        per_reference=round(max(0.0, statistics.median(per_ref)), 6) if per_ref else 0.0,
        learned_from=len(seen),
        model=model,
    )
