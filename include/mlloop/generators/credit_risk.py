"""Synthetic retail-credit applications with delayed default labels.

Customers recur over days (a fixed pool, some applying more often than others) and their income,
debt and utilization move slowly. Default labels arrive ``label_delay_days`` after the application.
A small share of rows is corrupted on purpose (null key, impossible age, negative income, unknown
category, out-of-range utilization, timestamp outside the day, duplicate key) and some values are
simply missing, as in real feeds. The drift scenario is an income shock from a given date: most
customers' income falls, utilization rises, and self-employed customers become riskier (a concept
shift a model trained before the shock has not seen).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from mlloop.generators import GeneratedBatch

EMPLOYMENT = np.array(["salaried", "self_employed", "unemployed", "retired"])
REGIONS = np.array(["north", "south", "east", "west"])
BAD_ROW_KINDS = (
    "null_key",
    "age_out_of_range",
    "negative_income",
    "unknown_employment_type",
    "utilization_out_of_range",
    "timestamp_outside_interval",
    "duplicate_key",
)
EPOCH = dt.date(2020, 1, 1)


@dataclass(frozen=True)
class _Customers:
    ids: np.ndarray
    birth_age: np.ndarray
    region: np.ndarray
    employment: np.ndarray
    base_income: np.ndarray
    debt_ratio: np.ndarray
    utilization: np.ndarray
    late_payments: np.ndarray
    open_accounts: np.ndarray
    risk_trait: np.ndarray
    shock_exposed: np.ndarray
    apply_weight: np.ndarray


@lru_cache(maxsize=4)
def _customers(seed: int, n_customers: int) -> _Customers:
    rng = np.random.default_rng([seed, 0])
    employment_idx = rng.choice(4, size=n_customers, p=[0.62, 0.2, 0.06, 0.12])
    income_mu = np.array([10.9, 10.8, 9.6, 10.3])[employment_idx]
    weight = rng.gamma(2.0, 1.0, n_customers)
    return _Customers(
        ids=100_000 + np.arange(n_customers, dtype=np.int64),
        birth_age=rng.integers(21, 75, n_customers),
        region=REGIONS[rng.choice(4, size=n_customers, p=[0.3, 0.3, 0.2, 0.2])],
        employment=EMPLOYMENT[employment_idx],
        base_income=np.exp(rng.normal(income_mu, 0.45)),
        debt_ratio=rng.beta(2.0, 5.0, n_customers) * 1.2,
        utilization=rng.beta(2.0, 3.0, n_customers),
        late_payments=rng.poisson(0.4, n_customers),
        open_accounts=rng.integers(1, 12, n_customers),
        risk_trait=rng.normal(0.0, 1.0, n_customers),
        shock_exposed=rng.random(n_customers) < 0.8,
        apply_weight=weight / weight.sum(),
    )


def _applications(
    day: dt.date,
    *,
    seed: int,
    n_customers: int,
    rows_per_day: int,
    income_shock_from: dt.date | None,
    income_shock_factor: float,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Clean applications of one day plus each row's true default probability."""
    cust = _customers(seed, n_customers)
    rng = np.random.default_rng([seed, day.toordinal(), 1])
    n_rows = min(rows_per_day, n_customers)
    idx = rng.choice(n_customers, size=n_rows, replace=False, p=cust.apply_weight)
    shocked = bool(income_shock_from is not None and day >= income_shock_from) & cust.shock_exposed[idx]

    years = (day - EPOCH).days / 365.25
    income = cust.base_income[idx] * np.exp(rng.normal(0.0, 0.05, n_rows) + 0.02 * years)
    income = np.where(shocked, income * income_shock_factor, income)
    debt = cust.debt_ratio[idx] * cust.base_income[idx] * np.exp(rng.normal(0.0, 0.1, n_rows))
    utilization = np.clip(cust.utilization[idx] + rng.normal(0.0, 0.05, n_rows) + 0.15 * shocked, 0.0, 1.0)
    late = cust.late_payments[idx] + rng.poisson(0.1, n_rows)
    loan = np.round(np.exp(rng.normal(9.2, 0.6, n_rows)), -2)
    employment = cust.employment[idx]
    age = (cust.birth_age[idx] + years).astype(np.int64)
    seconds = np.sort(rng.integers(0, 86_400, n_rows))
    start = pd.Timestamp(day, tz="UTC")

    frame = pd.DataFrame(
        {
            "customer_id": cust.ids[idx],
            "event_timestamp": start + pd.to_timedelta(seconds, unit="s"),
            "age": age,
            "annual_income": np.round(income, 2),
            "total_debt": np.round(debt, 2),
            "credit_utilization": np.round(utilization, 4),
            "n_late_payments_12m": late.astype(np.int64),
            "n_open_accounts": cust.open_accounts[idx].astype(np.int64),
            "loan_amount": loan,
            "employment_type": employment,
            "region": cust.region[idx],
        }
    )
    dti = np.minimum(debt / income, 3.0)
    logit = (
        -5.6
        + 4.0 * dti
        + 4.5 * (utilization - 0.4)
        + 1.0 * late
        + 1.2 * (employment == "unemployed")
        + 1.4 * ((employment == "self_employed") & shocked)
        + 0.8 * np.minimum(loan / income, 2.0)
        + 0.25 * cust.risk_trait[idx]
        - 0.015 * (age - 40)
    )
    return frame, 1.0 / (1.0 + np.exp(-logit))


def _corrupt(frame: pd.DataFrame, rng: np.random.Generator, n_bad: int, day: dt.date) -> dict[int, list[str]]:
    """Inject ``n_bad`` faults (cycling through BAD_ROW_KINDS) into distinct rows, in place."""
    injected: dict[int, list[str]] = {}
    if n_bad <= 0 or len(frame) < 2 * n_bad + 2:
        return injected
    rows = rng.choice(len(frame), size=2 * n_bad, replace=False)
    victims, donors = rows[:n_bad], rows[n_bad:]
    frame["customer_id"] = frame["customer_id"].astype("Int64")
    for i, (row, donor) in enumerate(zip(victims.tolist(), donors.tolist(), strict=True)):
        kind = BAD_ROW_KINDS[i % len(BAD_ROW_KINDS)]
        # The frame has a RangeIndex, so a row position is also its label.
        if kind == "null_key":
            frame.loc[row, "customer_id"] = pd.NA
        elif kind == "age_out_of_range":
            frame.loc[row, "age"] = 250
        elif kind == "negative_income":
            frame.loc[row, "annual_income"] = -1000.0
        elif kind == "unknown_employment_type":
            frame.loc[row, "employment_type"] = "astronaut"
        elif kind == "utilization_out_of_range":
            frame.loc[row, "credit_utilization"] = 7.5
        elif kind == "timestamp_outside_interval":
            frame.loc[row, "event_timestamp"] = pd.Timestamp(day, tz="UTC") - pd.Timedelta(days=3)
        elif kind == "duplicate_key":
            frame.loc[row, "customer_id"] = frame.loc[donor, "customer_id"]
            injected.setdefault(donor, []).append(kind)
        injected.setdefault(row, []).append(kind)
    return injected


def _landed_applications(
    day: dt.date, bad_row_share: float, missing_share: float, **common: object
) -> tuple[pd.DataFrame, np.ndarray, dict[int, list[str]]]:
    """Applications of ``day`` as they land: with missing values and injected faults."""
    frame, p_default = _applications(day, **common)  # type: ignore[arg-type]
    rng = np.random.default_rng([seed_of(common), day.toordinal(), 2])
    frame.loc[rng.random(len(frame)) < missing_share, "annual_income"] = np.nan
    frame.loc[rng.random(len(frame)) < missing_share / 2, "credit_utilization"] = np.nan
    injected = _corrupt(frame, rng, round(len(frame) * bad_row_share), day)
    return frame, p_default, injected


def seed_of(common: dict[str, object]) -> int:
    return int(common["seed"])  # type: ignore[call-overload]


def generate_day(
    day: dt.date,
    *,
    seed: int = 7,
    n_customers: int = 5000,
    rows_per_day: int = 1000,
    bad_row_share: float = 0.01,
    missing_share: float = 0.02,
    label_delay_days: int = 3,
    income_shock_from: dt.date | str | None = None,
    income_shock_factor: float = 0.6,
) -> GeneratedBatch:
    """The landing of ``day``: that day's applications and the labels that arrive on it."""
    shock = dt.date.fromisoformat(income_shock_from) if isinstance(income_shock_from, str) else income_shock_from
    common: dict[str, object] = dict(
        seed=seed,
        n_customers=n_customers,
        rows_per_day=rows_per_day,
        income_shock_from=shock,
        income_shock_factor=income_shock_factor,
    )
    observations, _, injected = _landed_applications(day, bad_row_share, missing_share, **common)

    # Labels landing today belong to the applications of ``label_delay_days`` ago. Applications
    # that were corrupted on their own landing day never became real loans, so they get no label.
    labeled_day = day - dt.timedelta(days=label_delay_days)
    clean, p_default, bad_then = _applications_with_faults(labeled_day, bad_row_share, missing_share, common)
    label_rng = np.random.default_rng([seed, labeled_day.toordinal(), 3])
    defaulted = (label_rng.random(len(clean)) < p_default).astype(np.int64)
    keep = np.ones(len(clean), dtype=bool)
    keep[list(bad_then)] = False
    labels = pd.DataFrame(
        {
            "customer_id": clean["customer_id"].to_numpy(dtype=np.int64)[keep],
            "event_timestamp": clean["event_timestamp"][keep].to_numpy(),
            "defaulted": defaulted[keep],
        }
    )
    labels["event_timestamp"] = pd.to_datetime(labels["event_timestamp"], utc=True)
    return GeneratedBatch(observations=observations, labels=labels, injected_bad_rows=injected)


def _applications_with_faults(
    day: dt.date, bad_row_share: float, missing_share: float, common: dict[str, object]
) -> tuple[pd.DataFrame, np.ndarray, dict[int, list[str]]]:
    """Clean applications of ``day`` plus which rows were corrupted when they landed."""
    clean, p_default = _applications(day, **common)  # type: ignore[arg-type]
    _, _, injected = _landed_applications(day, bad_row_share, missing_share, **common)
    return clean, p_default, injected
