"""Land generated raw batches, as an upstream system would, for demos and tests.

    python -m mlloop.landing credit_risk --start 2026-11-01 --end 2026-11-14 [--drift-from 2026-11-10]

writes ``landing/<use_case>/{observations,labels}/date=*/batch.parquet`` under the storage root.
The generator named by the spec is called as ``generator(day, label_delay_days=..., **params)``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
from collections.abc import Callable, Iterable
from typing import Any

from mlloop.generators import GeneratedBatch
from mlloop.ingestion import landing_path
from mlloop.settings import get_settings
from mlloop.spec import SpecError, UseCaseSpec, get_spec
from mlloop.storage import Storage


def load_generator(spec: UseCaseSpec) -> Callable[..., GeneratedBatch]:
    if spec.generator is None:
        raise SpecError(f"{spec.name}: the spec has no 'generator' section; nothing to generate")
    module, _, name = spec.generator.callable.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise SpecError(
            f"{spec.name}: generator.callable '{spec.generator.callable}' cannot be imported: {exc}"
        ) from exc


def generate(spec: UseCaseSpec, day: dt.date, **overrides: Any) -> GeneratedBatch:
    params = {**(spec.generator.params if spec.generator else {}), **overrides}
    return load_generator(spec)(day, label_delay_days=spec.labels.delay_days, **params)


def land_days(
    storage: Storage, spec: UseCaseSpec, days: Iterable[dt.date], **overrides: Any
) -> dict[dt.date, GeneratedBatch]:
    """Generate and write each day's observations and labels; return what was generated."""
    landed = {}
    for day in days:
        batch = generate(spec, day, **overrides)
        storage.write_frame(batch.observations, landing_path(storage, spec, "observations", day))
        storage.write_frame(batch.labels, landing_path(storage, spec, "labels", day))
        landed[day] = batch
    return landed


def date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("use_case")
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--drift-from", type=dt.date.fromisoformat, default=None, help="switch the drift scenario on")
    args = parser.parse_args(argv)
    spec = get_spec(args.use_case)
    storage = Storage.from_url(get_settings().storage_root)
    overrides: dict[str, Any] = {}
    if args.drift_from:
        if spec.generator is None or not spec.generator.drift_param:
            parser.error(f"{spec.name}: the spec's generator declares no drift_param")
        overrides[spec.generator.drift_param] = args.drift_from
    landed = land_days(storage, spec, date_range(args.start, args.end), **overrides)
    for day, batch in landed.items():
        print(f"landed {spec.name} {day}: {len(batch.observations)} observations, {len(batch.labels)} labels")


if __name__ == "__main__":
    main()
