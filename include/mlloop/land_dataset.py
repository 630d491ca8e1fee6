"""Land a real public data set as daily raw batches, as an upstream system would deliver them.

    python -m mlloop.land_dataset hourly_temps --start 2010-01-01 --end 2010-03-31

The ``hourly_temps`` use case runs on the hourly temperatures of Seattle and San Francisco for 2010
that the ``vega_datasets`` package ships (``seattle-temps.csv``, ``sf-temps.csv``; a dev
dependency: nothing is downloaded). Each (city, hour of day) is an entity, ``seattle-07`` say, so a
day holds 48 observations, fewer when an hour is missing from the data (2010-03-14 03:00 is, in
both cities). An observation carries what is known at that hour the day before: the temperature
at the same hour yesterday and a week ago, and yesterday's mean. Its label, the temperature
measured, lands the next day (``labels.delay_days`` 1).

Writes ``landing/<use case>/{observations,labels}/date=<day>/batch.parquet`` under the storage
root and replaces only those days' files; whatever else is landed stays.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING

from mlloop import layout
from mlloop.ingestion import landing_path
from mlloop.landing import date_range
from mlloop.settings import get_settings
from mlloop.spec import UseCaseSpec, get_spec
from mlloop.storage import Storage

if TYPE_CHECKING:
    import pandas as pd

CITIES = {"seattle": "seattle_temps", "san_francisco": "sf_temps"}
"""City -> the ``vega_datasets.data`` loader of its hourly temperatures (local files of the package)."""


def hourly_temperatures() -> pd.DataFrame:
    """Every city's hourly readings: ``city``, ``time`` (naive hour, read as UTC), ``temp_f``."""
    import pandas as pd
    from vega_datasets import data

    frames = []
    for city, loader in CITIES.items():
        frame = getattr(data, loader)()
        frames.append(pd.DataFrame({"city": city, "time": pd.to_datetime(frame["date"]), "temp_f": frame["temp"]}))
    return pd.concat(frames, ignore_index=True)


def observations_with_history(readings: pd.DataFrame) -> pd.DataFrame:
    """One row per reading with what was known the day before: same hour yesterday and last week,
    and yesterday's mean (NaN where the data has no such reading)."""
    import pandas as pd

    out = readings.copy()
    out["day"] = out["time"].dt.normalize()
    out["hour"] = out["time"].dt.hour.astype("int64")
    indexed = readings.set_index(["city", "time"])["temp_f"]
    for column, lag in (("temp_prev_day", pd.Timedelta(days=1)), ("temp_prev_week", pd.Timedelta(days=7))):
        keys = pd.MultiIndex.from_arrays([out["city"], out["time"] - lag])
        out[column] = indexed.reindex(keys).to_numpy()
    daily = out.groupby(["city", "day"])["temp_f"].mean().rename("temp_prev_day_mean").reset_index()
    daily["day"] = daily["day"] + pd.Timedelta(days=1)
    return out.merge(daily, on=["city", "day"], how="left")


def batches(spec: UseCaseSpec, days: list[dt.date]) -> dict[dt.date, tuple[pd.DataFrame, pd.DataFrame]]:
    """``day -> (observations, labels)`` as they land on that day."""
    import pandas as pd

    rows = observations_with_history(hourly_temperatures())
    key, ts, label = spec.entity.join_key, spec.raw.timestamp_column, spec.labels.column
    rows[key] = rows["city"] + "-" + rows["hour"].map("{:02d}".format)
    rows[ts] = rows["time"].dt.tz_localize("UTC")
    rows["day_of_year"] = rows["time"].dt.dayofyear.astype("int64")
    rows[label] = rows["temp_f"]
    observed = [key, ts, "city", "hour", "day_of_year", "temp_prev_day", "temp_prev_week", "temp_prev_day_mean"]
    rows["landing_day"] = rows["day"].dt.date
    by_day = {day: frame for day, frame in rows.groupby("landing_day")}
    empty = rows.iloc[0:0]
    out = {}
    for day in days:
        observations = by_day.get(day, empty)[observed].reset_index(drop=True)
        labelled = by_day.get(day - dt.timedelta(days=spec.labels.delay_days), empty)
        out[day] = (observations, pd.DataFrame(labelled[[key, ts, label]]).reset_index(drop=True))
    return out


def land(storage: Storage, spec: UseCaseSpec, start: dt.date, end: dt.date) -> list[str]:
    """Write the days of ``[start, end]`` that the data set has; returns one line per day written."""
    written = []
    for day, (observations, labels) in batches(spec, date_range(start, end)).items():
        if observations.empty:
            continue
        storage.write_frame(observations, landing_path(storage, spec, "observations", day))
        if not labels.empty:  # the first day has no earlier day to label: no labels batch lands
            storage.write_frame(labels, landing_path(storage, spec, "labels", day))
        written.append(f"{day}: {len(observations)} observations, {len(labels)} labels")
    return written


DATASETS = {"hourly_temps": land}
"""Use case -> the function that lands its real data set."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("use_case", choices=sorted(DATASETS))
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True)
    args = parser.parse_args(argv)
    spec = get_spec(args.use_case)
    storage = Storage.from_url(get_settings().storage_root)
    lines = DATASETS[args.use_case](storage, spec, args.start, args.end)
    for line in lines:
        print(line)
    print(f"landed {len(lines)} day(s) of {spec.name} under {layout.LANDING_OBSERVATIONS.area_folder(storage, spec)}")


if __name__ == "__main__":
    main()
