"""Synthetic smart-meter readings with delayed consumption labels (the energy_demand use case).

A fixed pool of households, each with a smart meter (a string id such as ``MTR-004217``), reports
once a day (most days: a meter misses a day now and then): the household's profile, the day's
outdoor temperature forecast for its region, and its average daily consumption of the previous
week. The label, the kWh the household used that day, is settled and lands ``label_delay_days``
later. Consumption depends on household size, floor area, EV chargers, tariff and, through the
heating system, on the cold (electric heating most, heat pumps less, gas and district heating
hardly).

A small share of rows is corrupted on purpose (null meter id, impossible household size, negative
floor area, unknown heating type, impossible temperature, timestamp outside the day, duplicate
meter) and some values are simply missing. The drift scenario is a cold snap from a given date:
temperatures fall by ``cold_snap_delta_c`` and heat pumps lose efficiency in the cold (a concept
shift a model trained before the snap has not seen).

Every value is a pure function of (seed, meter, day), so any day can be regenerated, including
the previous week's consumption and the labels of earlier days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from mlloop.generators import GeneratedBatch

HEATING = np.array(["gas", "electric", "heat_pump", "district"])
TARIFFS = np.array(["flat", "time_of_use", "prepaid"])
REGIONS = np.array(["coastal", "inland", "mountain"])
REGION_BASE_TEMP_C = np.array([9.0, 6.0, 1.0])
# kWh per heating degree-day per 100 m2, by heating system; heat pumps double in a cold snap.
HEATING_KWH = np.array([0.06, 0.9, 0.35, 0.04])
HEAT_PUMP = 2
BAD_ROW_KINDS = (
    "null_key",
    "household_size_out_of_range",
    "negative_floor_area",
    "unknown_heating_type",
    "temperature_out_of_range",
    "timestamp_outside_interval",
    "duplicate_key",
)
HISTORY_DAYS = 7


@dataclass(frozen=True)
class _Households:
    ids: np.ndarray
    region: np.ndarray
    heating: np.ndarray
    tariff: np.ndarray
    household_size: np.ndarray
    floor_area: np.ndarray
    ev_chargers: np.ndarray
    thrift: np.ndarray


@lru_cache(maxsize=4)
def _households(seed: int, n_meters: int) -> _Households:
    rng = np.random.default_rng([seed, 0])
    size = np.clip(rng.poisson(1.6, n_meters) + 1, 1, 8)
    return _Households(
        ids=np.array([f"MTR-{n:06d}" for n in rng.permutation(900_000)[:n_meters] + 100_000], dtype=object),
        region=rng.choice(3, size=n_meters, p=[0.4, 0.4, 0.2]),
        heating=rng.choice(4, size=n_meters, p=[0.45, 0.2, 0.2, 0.15]),
        tariff=rng.choice(3, size=n_meters, p=[0.6, 0.3, 0.1]),
        household_size=size.astype(np.int64),
        floor_area=np.round(np.clip(rng.lognormal(np.log(45 + 18 * size), 0.3), 20, 600), 1),
        ev_chargers=(rng.random(n_meters) < 0.15).astype(np.int64) + (rng.random(n_meters) < 0.02),
        thrift=rng.normal(0.0, 0.15, n_meters),
    )


def _temperature(seed: int, day: dt.date, house: _Households, cold_snap: bool, delta_c: float) -> np.ndarray:
    """Each meter's outdoor temperature forecast for ``day``: region climate, season, weather, micro-climate."""
    season = 6.0 * np.cos(2 * np.pi * (day.timetuple().tm_yday - 200) / 365.25)
    weather = np.random.default_rng([seed, day.toordinal(), 10]).normal(0.0, 0.4, len(REGIONS))
    micro = np.random.default_rng([seed, day.toordinal(), 11]).normal(0.0, 2.0, len(house.ids))
    temp = REGION_BASE_TEMP_C[house.region] + season + weather[house.region] + micro
    return temp - delta_c if cold_snap else temp


def _consumption(seed: int, day: dt.date, house: _Households, temp: np.ndarray, cold_snap: bool) -> np.ndarray:
    """True kWh of every household on ``day``."""
    noise = np.random.default_rng([seed, day.toordinal(), 12]).normal(0.0, 0.1, len(house.ids))
    per_degree = HEATING_KWH[house.heating] * np.where((house.heating == HEAT_PUMP) & cold_snap, 2.0, 1.0)
    heating = per_degree * np.maximum(0.0, 16.0 - temp) * house.floor_area / 100.0
    base = 2.0 + 1.9 * house.household_size + 0.02 * house.floor_area + 7.0 * house.ev_chargers
    tariff = np.array([1.0, 0.9, 0.85])[house.tariff]
    return (base + heating) * tariff * np.exp(house.thrift + noise)


def _day(
    day: dt.date, seed: int, n_meters: int, report_share: float, cold_snap_from: dt.date | None, delta_c: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """Clean readings of one day plus each row's true consumption (the future label)."""
    house = _households(seed, n_meters)

    def snap(d: dt.date) -> bool:
        return cold_snap_from is not None and d >= cold_snap_from

    temp = _temperature(seed, day, house, snap(day), delta_c)
    kwh = _consumption(seed, day, house, temp, snap(day))
    history = []
    for back in range(1, HISTORY_DAYS + 1):
        d = day - dt.timedelta(days=back)
        history.append(_consumption(seed, d, house, _temperature(seed, d, house, snap(d), delta_c), snap(d)))
    rng = np.random.default_rng([seed, day.toordinal(), 1])
    reporting = np.flatnonzero(rng.random(n_meters) < report_share)
    seconds = np.sort(rng.integers(0, 86_400, len(reporting)))
    frame = pd.DataFrame(
        {
            "meter_id": house.ids[reporting],
            "event_timestamp": pd.Timestamp(day, tz="UTC") + pd.to_timedelta(seconds, unit="s"),
            "region": REGIONS[house.region[reporting]],
            "heating_type": HEATING[house.heating[reporting]],
            "tariff": TARIFFS[house.tariff[reporting]],
            "household_size": house.household_size[reporting],
            "floor_area_m2": house.floor_area[reporting],
            "ev_chargers": house.ev_chargers[reporting].astype(np.int64),
            "outdoor_temp_c": np.round(temp[reporting], 1),
            "kwh_prev_7d": np.round(np.mean(history, axis=0)[reporting], 2),
        }
    )
    return frame, np.round(kwh[reporting], 3)


def _corrupt(frame: pd.DataFrame, rng: np.random.Generator, n_bad: int, day: dt.date) -> dict[int, list[str]]:
    """Inject ``n_bad`` faults (cycling through BAD_ROW_KINDS) into distinct rows, in place."""
    injected: dict[int, list[str]] = {}
    if n_bad <= 0 or len(frame) < 2 * n_bad + 2:
        return injected
    rows = rng.choice(len(frame), size=2 * n_bad, replace=False)
    for i, (row, donor) in enumerate(zip(rows[:n_bad].tolist(), rows[n_bad:].tolist(), strict=True)):
        kind = BAD_ROW_KINDS[i % len(BAD_ROW_KINDS)]
        if kind == "null_key":
            frame.loc[row, "meter_id"] = None
        elif kind == "household_size_out_of_range":
            frame.loc[row, "household_size"] = 40
        elif kind == "negative_floor_area":
            frame.loc[row, "floor_area_m2"] = -80.0
        elif kind == "unknown_heating_type":
            frame.loc[row, "heating_type"] = "wood_stove"
        elif kind == "temperature_out_of_range":
            frame.loc[row, "outdoor_temp_c"] = 99.0
        elif kind == "timestamp_outside_interval":
            frame.loc[row, "event_timestamp"] = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=2)
        elif kind == "duplicate_key":
            frame.loc[row, "meter_id"] = frame.loc[donor, "meter_id"]
            injected.setdefault(donor, []).append(kind)
        injected.setdefault(row, []).append(kind)
    return injected


def _landed(
    day: dt.date, bad_row_share: float, missing_share: float, common: dict[str, object]
) -> tuple[pd.DataFrame, np.ndarray, dict[int, list[str]]]:
    """Readings of ``day`` as they land (missing values, injected faults), the clean true kWh, the faults."""
    frame, kwh = _day(day, **common)  # type: ignore[arg-type]
    rng = np.random.default_rng([int(common["seed"]), day.toordinal(), 2])  # type: ignore[call-overload]
    frame.loc[rng.random(len(frame)) < missing_share, "outdoor_temp_c"] = np.nan
    frame.loc[rng.random(len(frame)) < missing_share, "kwh_prev_7d"] = np.nan
    injected = _corrupt(frame, rng, round(len(frame) * bad_row_share), day)
    return frame, kwh, injected


def generate_day(
    day: dt.date,
    *,
    seed: int = 11,
    n_meters: int = 800,
    report_share: float = 0.9,
    bad_row_share: float = 0.01,
    missing_share: float = 0.02,
    label_delay_days: int = 2,
    cold_snap_from: dt.date | str | None = None,
    cold_snap_delta_c: float = 14.0,
) -> GeneratedBatch:
    """The landing of ``day``: that day's meter readings and the consumption labels that arrive on it."""
    snap = dt.date.fromisoformat(cold_snap_from) if isinstance(cold_snap_from, str) else cold_snap_from
    common: dict[str, object] = dict(
        seed=seed, n_meters=n_meters, report_share=report_share, cold_snap_from=snap, delta_c=cold_snap_delta_c
    )
    observations, _, injected = _landed(day, bad_row_share, missing_share, common)

    # Labels landing today settle the readings of ``label_delay_days`` ago; rows that were
    # corrupted when they landed were quarantined, so no label refers to them.
    labeled_day = day - dt.timedelta(days=label_delay_days)
    clean, kwh = _day(labeled_day, **common)  # type: ignore[arg-type]
    _, _, bad_then = _landed(labeled_day, bad_row_share, missing_share, common)
    keep = np.ones(len(clean), dtype=bool)
    keep[list(bad_then)] = False
    labels = pd.DataFrame(
        {
            "meter_id": clean["meter_id"].to_numpy()[keep],
            "event_timestamp": pd.to_datetime(clean["event_timestamp"][keep].to_numpy(), utc=True),
            "kwh": kwh[keep],
        }
    )
    return GeneratedBatch(observations=observations, labels=labels, injected_bad_rows=injected)
