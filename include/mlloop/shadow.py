"""Shadow scoring and the shadow gate: evidence from production days, not only from a holdout.

With ``promotion.shadow_days: N`` (0: off), a challenger that passes the holdout gate
(:mod:`mlloop.evaluation`) does not become champion: it becomes **pending** (alias ``pending``, tag
``shadow.state=pending``). From then on batch scoring also scores it, from the same feature fetch
as the champion, into the shadow area ``shadow/<use_case>/date=<day>/data.parquet``: a storage area
nothing reads as predictions (drift checks, consumers and the predictions Asset only know
``predictions/``), published all-or-nothing like predictions.

A day of more than ``promotion.shadow_max_rows`` rows (default 50,000) is shadow-scored on a
deterministic sample of that many rows (:mod:`mlloop.shadow_sample`): the same rows whatever the run,
the number of parts or the model, so the shadow's cost stays near flat as days grow.

Once labels of N shadow days have landed, the shadow gate compares the two models **on the
predictions each actually made on those days**: the rows both scored that have a label (the
samples, on sampled days: the champion's served predictions of exactly those rows), with the
same floor, relative and segment rules as the holdout gate (:func:`mlloop.promotion.decide`). Passed:
the challenger is promoted; failed: rejected. The pending state, its days and the result are tags on
the version (``shadow.*``), so MLflow shows why a version is or is not serving.

A pending challenger never serves: it never holds alias ``champion`` (only a shadow gate pass moves
it), and a rollback refuses it (:func:`refuse_pending`). Only a day the challenger has not learned
from (on or after the day after its training cutoff) is shadow-scored, so the evidence is out of sample.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlloop import layout
from mlloop import tags as tag_keys
from mlloop.promotion import GateDecision, GatePolicy, Scorecard, decide

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from mlloop.registry import ModelRef
    from mlloop.scoring import CommitResult, Lineage, PartResult
    from mlloop.spec import UseCaseSpec
    from mlloop.storage import Storage

log = logging.getLogger(__name__)

PENDING = "pending"
"""Alias of the version waiting for its shadow days, and the value of its ``shadow.state`` tag."""
PROMOTED, REJECTED, SUPERSEDED = "promoted", "rejected", "superseded"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------ paths
def shadow_path(storage: Storage, spec: UseCaseSpec, day: dt.date) -> str:
    """The day's shadow partition: the challenger's rows, never listed as predictions."""
    return layout.SHADOW.path(storage, spec, day)


def shadow_part_path(storage: Storage, spec: UseCaseSpec, day: dt.date, partition: int, partitions: int) -> str:
    return layout.SHADOW_PARTS.path(storage, spec, day, f"part-{partition:05d}-of-{partitions:05d}.parquet")


def shadow_days(storage: Storage, spec: UseCaseSpec) -> list[dt.date]:
    """Days with a published shadow partition, oldest first."""
    days = {layout.day_of(path) for path in storage.glob(layout.SHADOW.pattern(storage, spec))}
    return sorted(day for day in days if day is not None)


# ---------------------------------------------------------------------------------------- scoring
def shadow_candidate(
    client: MlflowClient, spec: UseCaseSpec, champion: ModelRef, day: dt.date
) -> tuple[ModelRef | None, str]:
    """The version to shadow-score ``day`` with, and why (or why none).

    The pending version, else the current challenger; never the champion, a rejected version, a day
    the version has learned from, or a version on another feature service (it could not be scored
    from the champion's feature fetch).
    """
    from mlloop.champion import REJECTED as DECISION_REJECTED
    from mlloop.champion import serving_day
    from mlloop.registry import CHALLENGER, get_alias
    from mlloop.scoring import feature_service_for

    if spec.promotion.shadow_days <= 0:
        return None, "promotion.shadow_days is 0: shadow scoring is off"
    model = spec.registered_model_name
    ref = get_alias(client, model, PENDING) or get_alias(client, model, CHALLENGER)
    if ref is None:
        return None, f"{model} has no pending version and no challenger"
    if ref.version == champion.version:
        return None, f"the challenger v{ref.version} is the champion"
    if ref.tags.get(tag_keys.DECISION) == DECISION_REJECTED or ref.tags.get(tag_keys.SHADOW_STATE) in (
        REJECTED,
        SUPERSEDED,
    ):
        return None, f"the challenger v{ref.version} was already rejected"
    first = serving_day(ref.tags.get(tag_keys.TRAINING_CUTOFF))
    if first is None or day < first:
        return (
            None,
            f"v{ref.version} has learned from {day} (its first unseen day is {first}): no out-of-sample evidence",
        )
    if feature_service_for(ref, spec) != feature_service_for(champion, spec):
        return None, (
            f"v{ref.version} uses feature service '{feature_service_for(ref, spec)}', the champion "
            f"'{feature_service_for(champion, spec)}': it cannot be scored from the champion's feature fetch"
        )
    state = "pending" if PENDING in ref.aliases else "challenger"
    return ref, f"{state} v{ref.version}, unseen day {day}"


def commit_shadow(
    storage: Storage,
    spec: UseCaseSpec,
    day: dt.date,
    parts: list[PartResult],
    *,
    lineage: Lineage,
    expected_rows: int | None = None,
) -> CommitResult:
    """Validate the shadow parts and publish them as the day's shadow partition, all or nothing
    (the same checks and the same atomic move as predictions, into the shadow area).

    ``expected_rows`` is the day's shadow sample (:class:`mlloop.shadow_sample.ShadowSample`
    ``rows``); None: drawn again from the day's rows (the same sample: it depends on nothing else).
    """
    from mlloop.scoring import PartResult, PredictionValidationError, publish_parts
    from mlloop.shadow_sample import day_sample

    shadow_parts = [
        PartResult.from_dict({**p.as_dict(), "path": p.shadow_path, "model_version": p.shadow_version})
        for p in parts
        if p.shadow_path
    ]
    if len(shadow_parts) != len(parts):
        raise PredictionValidationError(
            f"{len(parts) - len(shadow_parts)} part(s) were scored without the shadow model"
        )
    return publish_parts(
        storage,
        spec,
        day,
        shadow_parts,
        lineage=lineage,
        target=shadow_path(storage, spec, day),
        expected_rows=day_sample(storage, spec, day).rows if expected_rows is None else expected_rows,
    )


# ------------------------------------------------------------------------------------ pending state
def pending_version(client: MlflowClient, spec: UseCaseSpec) -> ModelRef | None:
    from mlloop.registry import get_alias

    return get_alias(client, spec.registered_model_name, PENDING)


def mark_pending(
    client: MlflowClient, spec: UseCaseSpec, version: str, tags: dict[str, str] | None = None
) -> str | None:
    """Make ``version`` the pending challenger (alias ``pending``); returns the version it superseded.

    A newer challenger that passed the holdout gate replaces an older pending one: the older one is
    tagged ``shadow.state=superseded`` and stops being shadow-scored.
    """
    from mlloop.champion import serving_day, set_version_tags
    from mlloop.registry import get_version

    model = spec.registered_model_name
    previous = pending_version(client, spec)
    superseded = previous.version if previous and previous.version != str(version) else None
    if superseded:
        set_version_tags(
            client,
            model,
            superseded,
            {tag_keys.SHADOW_STATE: SUPERSEDED, tag_keys.SHADOW_RESULT: f"superseded by v{version}"},
        )
    since = serving_day(get_version(client, model, version).tags.get(tag_keys.TRAINING_CUTOFF))
    client.set_registered_model_alias(model, PENDING, str(version))
    set_version_tags(
        client,
        model,
        str(version),
        {
            tag_keys.SHADOW_STATE: PENDING,
            tag_keys.SHADOW_DAYS_REQUIRED: str(spec.promotion.shadow_days),
            tag_keys.SHADOW_PENDING_SINCE: since.isoformat() if since else "unknown",
            tag_keys.SHADOW_DAYS_LABELLED: "0",
            tag_keys.SHADOW_RESULT: PENDING,
            **(tags or {}),
        },
    )
    return superseded


def conclude(client: MlflowClient, spec: UseCaseSpec, version: str, state: str, result: str = "") -> bool:
    """End ``version``'s pending state (promoted or rejected); False if it was not pending."""
    from mlloop.champion import set_version_tags
    from mlloop.registry import get_version

    model = spec.registered_model_name
    ref = get_version(client, model, version)
    if ref.tags.get(tag_keys.SHADOW_STATE) != PENDING:
        return False
    tags = {tag_keys.SHADOW_STATE: state}
    if ref.tags.get(tag_keys.SHADOW_RESULT, PENDING) == PENDING:  # the shadow gate's own result, if it decided, stays
        tags[tag_keys.SHADOW_RESULT] = (result or state)[:4900]
    set_version_tags(client, model, str(version), tags)
    current = pending_version(client, spec)
    if current is not None and current.version == str(version):
        client.delete_registered_model_alias(model, PENDING)
    return True


def is_pending(ref: ModelRef) -> bool:
    return ref.tags.get(tag_keys.SHADOW_STATE) == PENDING


def refuse_pending(ref: ModelRef) -> str | None:
    """Why ``ref`` must not serve yet (it waits for its shadow days), or None."""
    if not is_pending(ref):
        return None
    labelled, required = (
        ref.tags.get(tag_keys.SHADOW_DAYS_LABELLED, "0"),
        ref.tags.get(tag_keys.SHADOW_DAYS_REQUIRED, "?"),
    )
    return (
        f"{ref.name} v{ref.version} is pending its shadow days (shadow.state=pending, "
        f"{labelled} of {required} labelled): "
        "it must not serve before the shadow gate passes"
    )


# ------------------------------------------------------------------------------------ the shadow gate
@dataclass(frozen=True)
class ShadowEvidence:
    """The two models' predictions of the same labelled rows on the shadow days, and the verdict."""

    challenger_version: str
    days: tuple[dt.date, ...]
    required_days: int
    rows: int
    decision: GateDecision | None = None
    cards: dict[str, Scorecard] = field(default_factory=dict)
    served_rows: int = 0
    """Rows served (scored by the champion) on the deciding days."""
    shadow_rows: int = 0
    """Rows of those days' shadow samples (:mod:`mlloop.shadow_sample`): the rows both models scored."""

    @property
    def ready(self) -> bool:
        return self.decision is not None

    def describe(self) -> str:
        days = ", ".join(d.isoformat() for d in self.days) or "none"
        text = (
            f"shadow days with labels: {len(self.days)} of {self.required_days} required ({days}); "
            f"{self.rows} labelled rows scored by both models"
        )
        if self.shadow_rows < self.served_rows:
            text += (
                f" (the shadow samples: {self.shadow_rows} of the {self.served_rows} rows served on those days, "
                "promotion.shadow_max_rows; the champion is judged on the same rows)"
            )
        return text

    def table(self, spec: UseCaseSpec) -> str:
        if self.decision is None:
            return f"Shadow gate of {spec.registered_model_name} v{self.challenger_version}: waiting; {self.describe()}"
        d = self.decision
        lines = [
            d.table(
                f"Shadow gate of {spec.registered_model_name}: challenger v{d.challenger_version} vs the served "
                f"predictions (champion {d.champion_version}), on the predictions each made"
            ),
            self.describe(),
        ]
        for name in self.cards[d.challenger_version].metrics:
            values = "  ".join(
                f"{label} {card.metrics.get(name, float('nan')):.4f}" for label, card in self._labelled()
            )
            lines.append(f"  {name:<20} {values}")
        return "\n".join(lines)

    def _labelled(self) -> list[tuple[str, Scorecard]]:
        assert self.decision is not None
        challenger = self.cards[self.decision.challenger_version]
        return [("challenger", challenger), *[("champion", c) for v, c in self.cards.items() if c is not challenger]]

    def tags(self) -> dict[str, str]:
        tags = {
            tag_keys.SHADOW_DAYS_LABELLED: str(len(self.days)),
            tag_keys.SHADOW_DAYS: ",".join(d.isoformat() for d in self.days)[:4900],
            tag_keys.SHADOW_CHECKED_AT: _now(),
        }
        if self.decision is not None:
            tags.update({tag_keys.SHADOW_PREFIX + k: v for k, v in self.decision.tags().items()})
            tags[tag_keys.SHADOW_RESULT] = (
                "passed" if self.decision.passed else "failed: " + "; ".join(self.decision.reasons)
            )[:4900]
        return tags


def _keys(frame: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
    from mlloop.drift_report import _join_columns

    return _join_columns(frame, spec)


def labelled_shadow_rows(storage: Storage, spec: UseCaseSpec, version: str, since: dt.date | None) -> pd.DataFrame:
    """Rows of the shadow days (from ``since``) both models scored and whose label has landed:
    key, timestamp, label, ``champion_score``, ``champion_version``, ``challenger_score``, the segment column.

    The served predictions are joined to the shadow rows, so when a day's shadow is a sample
    (``promotion.shadow_max_rows``) the champion is judged on exactly the sampled rows too."""
    import pandas as pd

    from mlloop.scoring import MODEL_VERSION_COLUMN, SCORE_COLUMN, predictions_path
    from mlloop.training_set import label_partitions, read_latest_labels

    key, ts, label = spec.entity.join_key, spec.raw.timestamp_column, spec.labels.column
    segment = spec.promotion.segment_column
    days = [d for d in shadow_days(storage, spec) if since is None or d >= since]
    columns = [key, ts, "challenger_score", "champion_score", "champion_version", label]
    landed = label_partitions(storage, spec)
    if not days or not landed:
        return pd.DataFrame(columns=columns)
    labels, _ = read_latest_labels(storage, spec, min(days), max(landed))
    labels = _keys(labels, spec)
    frames = []
    for day in days:
        served_path = predictions_path(storage, spec, day)
        if not storage.exists(served_path):
            continue
        shadow = _keys(
            storage.read_frame(shadow_path(storage, spec, day), columns=[key, ts, SCORE_COLUMN, MODEL_VERSION_COLUMN]),
            spec,
        )
        shadow = shadow[shadow[MODEL_VERSION_COLUMN].astype(str) == str(version)]
        served_columns = [key, ts, SCORE_COLUMN, MODEL_VERSION_COLUMN]
        if segment and segment in storage.read_schema(served_path).names:
            served_columns.append(segment)
        served = _keys(storage.read_frame(served_path, columns=served_columns), spec)
        both = served.rename(columns={SCORE_COLUMN: "champion_score", MODEL_VERSION_COLUMN: "champion_version"}).merge(
            shadow[[key, ts, SCORE_COLUMN]].rename(columns={SCORE_COLUMN: "challenger_score"}), on=[key, ts]
        )
        frames.append(both.merge(labels, on=[key, ts]))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def _scorecard(
    spec: UseCaseSpec, version: str, rows: pd.DataFrame, score: str, trained_until: dt.date | None
) -> Scorecard:
    from mlloop.evaluation import scorecard_of

    y = rows[spec.labels.column].to_numpy(dtype="float64")
    return scorecard_of(spec, version, y, rows[score].to_numpy(dtype="float64"), rows, trained_until)


def shadow_gate(storage: Storage, spec: UseCaseSpec, challenger: ModelRef, champion: ModelRef | None) -> ShadowEvidence:
    """Compare ``challenger`` with the served predictions on its labelled shadow days.

    Not ready (``decision`` None) until ``promotion.shadow_days`` days have labelled rows both models
    scored. Then the gate's own rules decide, with the challenger's shadow scores against the served
    scores of the same rows (whichever champion version served each day).
    """
    from mlloop.champion import serving_day
    from mlloop.evaluation import training_cutoff
    from mlloop.scoring import predictions_path

    since = serving_day(challenger.tags.get(tag_keys.TRAINING_CUTOFF))
    rows = labelled_shadow_rows(storage, spec, challenger.version, since)
    ts = spec.raw.timestamp_column
    labelled_days = sorted({stamp.date() for stamp in rows[ts]}) if len(rows) else []
    required = spec.promotion.shadow_days
    if len(labelled_days) < required:
        return ShadowEvidence(challenger.version, tuple(labelled_days), required, len(rows))
    window = labelled_days[:required]  # the first N days: a decision does not wait for more
    rows = rows[rows[ts].dt.date.isin(window)]
    served = sorted({str(v) for v in rows["champion_version"]}, key=int)
    served_label = "+".join(f"v{v}" for v in served)
    mine = _scorecard(spec, challenger.version, rows, "challenger_score", training_cutoff(challenger))
    theirs = _scorecard(
        spec, served_label.removeprefix("v"), rows, "champion_score", training_cutoff(champion) if champion else None
    )
    if math.isnan(mine.primary) or math.isnan(theirs.primary):
        log.warning("%s undefined on the shadow rows: the shadow gate waits for more days", spec.model.primary_metric)
        return ShadowEvidence(challenger.version, tuple(labelled_days), required, len(rows))
    decision = decide(GatePolicy.from_spec(spec), mine, theirs)
    return ShadowEvidence(
        challenger.version,
        tuple(window),
        required,
        len(rows),
        decision,
        {mine.version: mine, theirs.version: theirs},
        served_rows=_rows_of(storage, [predictions_path(storage, spec, d) for d in window]),
        shadow_rows=_rows_of(storage, [shadow_path(storage, spec, d) for d in window]),
    )


def _rows_of(storage: Storage, paths: list[str]) -> int:
    """Rows of the partitions that exist (parquet footers: no data read)."""
    return sum(storage.row_count(path) for path in paths if storage.exists(path))


def holdout_summary(ref: ModelRef) -> str:
    """The holdout re-score that made ``ref`` pending, from its ``gate.*`` tags (one line per gate)."""
    lines = [f"Holdout re-score of v{ref.version} (when it became pending): {ref.tags.get(tag_keys.GATE_WINDOW, '')}"]
    for key in sorted(ref.tags):
        if key.startswith(tag_keys.GATE_PREFIX):
            lines.append(f"  {key}: {ref.tags[key]}")
    return "\n".join(lines)


def as_result(evidence: ShadowEvidence) -> dict[str, Any]:
    d = evidence.decision
    return {
        "days": [day.isoformat() for day in evidence.days],
        "required_days": evidence.required_days,
        "rows": evidence.rows,
        "served_rows": evidence.served_rows,
        "shadow_rows": evidence.shadow_rows,
        "passed": d.passed if d else None,
        "reasons": d.reasons if d else [],
    }
