"""What a request will cost, before it is sent.

Once the ledger holds real costs (each run's `cost_usd`, from Segmind's request history), the
estimate is learned from them: a price per output megapixel from runs without reference images, and
a price per reference image from the rest, both medians of this server's most recent runs. Until
then it is the flat price per image: FLUX_LAB_PRICE, or the embedded emulator's own price.

The spend caps (flux_core/caps.py) need a price in USD for every request, flat price or not:
`Pricing.rates()` is the learned price when there is one, else the flat price spread over a default
image's megapixels (as `learn` divides a real cost by its megapixels; Segmind's credits are USD),
else the documented default price (PRICE_PER_MP_USD, PRICE_PER_REFERENCE_USD, overridable by env).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass

from flux_core import defaults as D
from flux_core.ledger.store import Ledger
from flux_core.params import FluxParams
from flux_core.settings import price_rates


@dataclass(frozen=True)
class Pricing:
    per_image: float | None = None  # the flat price, in credits
    per_megapixel: float | None = None  # learned, in USD
    per_reference: float = 0.0  # learned, in USD
    learned_from: int = 0  # how many runs' real costs it was learned from

    @property
    def learned(self) -> bool:
        return self.per_megapixel is not None

    def for_params(self, params: FluxParams) -> float | None:
        return self.for_size(params.width, params.height, len(params.image_urls))

    def for_size(self, width: int, height: int, references: int = 0) -> float | None:
        if self.per_megapixel is None:
            return self.per_image
        return round(self.per_megapixel * width * height / 1e6 + self.per_reference * references, 6)

    def rates(self) -> tuple[float, float]:
        """USD per output megapixel and per reference image, for every estimate in USD."""
        if self.per_megapixel is not None:
            return self.per_megapixel, self.per_reference
        if self.per_image is not None:
            return round(self.per_image / (D.WIDTH * D.HEIGHT / 1e6), 6), 0.0
        return price_rates()

    def usd(self, width: int, height: int, references: int = 0) -> float:
        """What a request of this size costs in USD, always a number (see `rates`)."""
        per_mp, per_ref = self.rates()
        return round(per_mp * width * height / 1e6 + per_ref * references, 6)

    def words(self, cost: float | None, cells: int = 1) -> str | None:
        """An estimate as people read it, with where it comes from."""
        if cost is None:
            return None
        images = f" ({cells} images)" if cells > 1 else ""
        if self.learned:
            return f"Estimated cost: ${cost:.4g}{images}, learned from {self.learned_from} runs' real costs"
        return f"Estimated cost: {cost:.4g} credits{images}"


def learn(ledger: Ledger, base_url: str, flat: float | None, sample: int = D.PRICING_SAMPLE) -> Pricing:
    """The pricing of `base_url`'s requests, learned from the ledger's real costs when it has any."""
    with ledger.db() as db:
        rows = db.execute(
            "SELECT width, height, image_urls_json, cost_usd FROM runs WHERE base_url = ? "
            "AND cost_usd IS NOT NULL AND cost_usd > 0 ORDER BY seq DESC LIMIT ?",
            [base_url, sample],
        ).fetchall()
    if not rows:
        return Pricing(per_image=flat)
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
    )
