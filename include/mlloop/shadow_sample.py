"""Which of a day's rows the shadow challenger scores: a deterministic sample, bounded per day.

Shadow scoring every row costs a second model's predict on the whole day (bench B2 shadow row:
1.7x the scoring time at 400k rows, predict dominating). Real shadow deployments mirror a share of
the traffic instead; so does this: with ``promotion.shadow_max_rows: K`` (0/null: every row), a day
of more than K rows is shadow-scored on the K rows with the smallest **sample key**, a stable hash
of the entity key and the event timestamp.

Why a bottom-K by hash rather than "keep a row when its hash is below K/rows":

* the sample depends only on the day's rows, never on the run, the number of parts, how a part
  is chunked or which model scores it, so two runs publish the same shadow rows and the gate
  judges champion and challenger on exactly those rows (it joins the served predictions to them);
* it is exactly K rows (a fixed share gives K give or take its square root), so the commit can
  check the shadow partition's row count like the predictions' one;
* the cut-off key is found once per day, by :func:`day_sample` in the run's ``resolve_shadow``
  step (one read of the day's key and timestamp columns, no features), and travels to every part
  with the pinned shadow version; each part keeps the rows of each chunk whose key is at most it.

The day's row count comes from the feature partition's parquet footer, so a day within the bound
costs nothing: every row is kept and no key is computed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlloop.spec import UseCaseSpec
    from mlloop.storage import Storage


def sample_keys(entities: pd.DataFrame, spec: UseCaseSpec) -> np.ndarray:
    """A stable number per entity row, from its key and event timestamp only (int64, >= 0).

    ``entities`` have scoring's normalized key columns (:func:`mlloop.scoring.iter_entities`): an
    int64 or str key and a ns UTC timestamp. pandas' row hash uses a fixed hash key, so every
    process agrees; the top bit is dropped so the cut-off is an ordinary int64 in any XCom.
    """
    import numpy as np
    import pandas as pd

    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    stamps = entities[ts].to_numpy(dtype="datetime64[ns]").view("int64")  # UTC nanoseconds
    frame = pd.DataFrame({"key": entities[key].to_numpy(), "ts": stamps})
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return (hashed >> np.uint64(1)).astype(np.int64)


@dataclass(frozen=True)
class ShadowSample:
    """One day's shadow sample: the rows whose sample key is at most ``below`` (None: every row)."""

    day_rows: int
    """Rows in the day's feature partition."""
    rows: int
    """Rows in the sample: what the shadow partition must hold."""
    below: int | None = None
    max_rows: int | None = None
    """``promotion.shadow_max_rows`` when it was drawn (None: every row)."""

    @property
    def sampled(self) -> bool:
        return self.below is not None

    def select(self, rows: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
        """The rows of ``rows`` in the sample, in their order."""
        if self.below is None:
            return rows
        return rows[sample_keys(rows, spec) <= self.below]

    def describe(self) -> str:
        if not self.sampled:
            return f"every row ({self.rows})"
        return f"a sample of {self.rows} of {self.day_rows} rows (promotion.shadow_max_rows: {self.max_rows})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShadowSample:
        return cls(
            day_rows=int(data["day_rows"]),
            rows=int(data["rows"]),
            below=None if data.get("below") is None else int(data["below"]),
            max_rows=None if data.get("max_rows") is None else int(data["max_rows"]),
        )


def day_sample(storage: Storage, spec: UseCaseSpec, day: dt.date) -> ShadowSample:
    """The day's shadow sample under ``promotion.shadow_max_rows``: its cut-off key and row count."""
    import numpy as np

    from mlloop.scoring import day_entity_count, iter_entities

    limit = spec.promotion.shadow_max_rows
    day_rows = day_entity_count(storage, spec, day)
    if not limit or day_rows <= limit:
        return ShadowSample(day_rows=day_rows, rows=day_rows, max_rows=limit)
    keys = np.concatenate(
        [sample_keys(chunk, spec) for chunk in iter_entities(storage, spec, day, spec.scoring.fetch_rows)]
    )
    below = int(np.partition(keys, limit - 1)[limit - 1])
    # Rows sharing a key and timestamp share a sample key: they are in or out together.
    return ShadowSample(day_rows=day_rows, rows=int((keys <= below).sum()), below=below, max_rows=limit)
