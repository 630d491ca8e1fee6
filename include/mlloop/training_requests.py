"""The training ledger: which data day asked for a training, and why, so "is a training due?" is a
question about data days, not about what MLflow happens to hold at the wall-clock moment it is asked.

Every decision to train writes one entry at its cutoff day:
``staging/<use_case>/training_requests/date=<cutoff>/<source>.json`` (``source``: ``features`` for
ingestion's scheduled rule, ``drift`` or ``manual`` for the training DAG's other triggers). The
decision at day D (:func:`decide_training_due`) reads only entries of days before D, plus the
labels ingested up to D, so it is the same whenever it runs: a replay of a year decides what the
days decided live, a slow training run cannot cause a second one (its request is in the ledger as
soon as it is made, long before its model version is registered), and rerunning day D decides again
exactly as before (its own entry is ignored, then replaced).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlloop import layout
from mlloop.training import TrainingDecision, decide_training

if TYPE_CHECKING:
    from mlloop.spec import UseCaseSpec
    from mlloop.storage import Storage

SOURCES = ("features", "drift", "manual")


@dataclass(frozen=True)
class TrainingRequest:
    """One decision to train: the cutoff (the data day it was made at), who asked, and why."""

    cutoff_day: dt.date
    source: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cutoff_day": self.cutoff_day.isoformat()}


def request_path(storage: Storage, spec: UseCaseSpec, day: dt.date, source: str) -> str:
    if source not in SOURCES:
        raise ValueError(f"unknown training request source {source!r}; expected one of {SOURCES}")
    return layout.TRAINING_REQUESTS.path(storage, spec, day, f"{source}.json")


def record_request(storage: Storage, spec: UseCaseSpec, request: TrainingRequest) -> str:
    """Write (or replace) the ledger entry of ``request``; returns its URL."""
    path = request_path(storage, spec, request.cutoff_day, request.source)
    return storage.write_bytes(json.dumps(request.as_dict(), indent=2).encode(), path)


def requests(storage: Storage, spec: UseCaseSpec) -> list[TrainingRequest]:
    """Every ledger entry, oldest cutoff first."""
    found = []
    for url in storage.glob(layout.TRAINING_REQUESTS.pattern(storage, spec)):
        day, source = layout.day_of(url), url.rsplit("/", 1)[-1].removesuffix(".json")
        if day is None or source not in SOURCES:
            continue
        data = json.loads(storage.read_bytes(url))
        found.append(TrainingRequest(day, source, str(data.get("reason", ""))))
    return sorted(found, key=lambda r: (r.cutoff_day, r.source))


def latest_request_before(storage: Storage, spec: UseCaseSpec, day: dt.date) -> TrainingRequest | None:
    """The newest training asked for at a day before ``day`` (any source)."""
    earlier = [r for r in requests(storage, spec) if r.cutoff_day < day]
    return earlier[-1] if earlier else None


def decide_training_due(storage: Storage, spec: UseCaseSpec, day: dt.date) -> TrainingDecision:
    """Whether data day ``day`` is due a training (the rules of :func:`mlloop.training.decide_training`,
    with the ledger standing in for the registry): the first training as soon as the window up to
    ``day`` holds ``model.min_training_rows`` labelled rows, then one whenever the newest earlier
    request is ``model.retrain_after_days`` data days old.

    Pure in data time: it reads the ledger before ``day`` and the labels up to ``day`` only, except
    for one question about later days: when a later day already asked for a training and ``day``
    never did (a dead day fixed and cleared after the later days decided), it is not due
    (:func:`late_day_decision`). It does
    not retrain early when a model was rejected (that needs the gate's verdict, which a decision
    made in data order cannot wait for); a drift check or a manual run does that.
    """
    from mlloop.training_set import count_labels, training_window

    first, last = training_window(spec, day)
    labels = count_labels(storage, spec, first, last)
    ledger = requests(storage, spec)
    later = [r for r in ledger if r.cutoff_day > day]
    decided_before = any(r.cutoff_day == day and r.source == "features" for r in ledger)
    if later and not decided_before:
        return late_day_decision(spec, day, labels.with_features, later[0])
    previous = latest_request_before(storage, spec, day)
    return decide_training(
        spec,
        cutoff_day=day,
        labelled_rows=labels.with_features,
        latest_version=previous.cutoff_day.isoformat() if previous else None,
        latest_described=f"the training requested at {previous.cutoff_day} ({previous.source})" if previous else None,
        latest_cutoff=previous.cutoff_day if previous else None,
        has_champion=True,
    )


def late_day_decision(spec: UseCaseSpec, day: dt.date, labelled_rows: int, later: TrainingRequest) -> TrainingDecision:
    """The decision of a day ingested after a later day already asked for a training (a dead day fixed
    and cleared weeks later): not due. Decisions are made in day order and the later ones stand (their
    trainings ran); deciding this day now would add a training out of order, with a cutoff before
    models already trained. Its labels count for the next training. A day that was due when it first
    decided keeps deciding as before (its own entry is in the ledger), so a rerun changes nothing."""
    return TrainingDecision(
        train=False,
        cutoff_day=day,
        reason="a later day already decided",
        explanation=(
            f"{day} was ingested after a later day decided a training ({later.cutoff_day}, {later.source}): "
            "decisions are made in day order and are not re-made out of order; this day's labels count for "
            "the next training."
        ),
        labelled_rows=labelled_rows,
        latest_cutoff=later.cutoff_day,
    )
