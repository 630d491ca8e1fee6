"""Every MLflow tag key the loop writes or reads, in one place, and typed readers of the tag sets.

Tags are the registry's contract with everyone who reads it: the operators, the demo summary, the
replay report, tests, and people in MLflow's UI. A key typed twice drifts (one side renamed, the
other silently reads nothing), so every key is a constant here and the modules that write tags
(:mod:`mlloop.training`, :mod:`mlloop.champion`, :mod:`mlloop.promotion`, :mod:`mlloop.registry`,
:mod:`mlloop.drift_report`) import them, and so do the readers (scoring, health, the replay summary,
tests); the gate's tags are read through :class:`GateRecord` rather than by parsing their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# ------------------------------------------------------------------ model version: registration
USE_CASE = "use_case"
FEATURE_SERVICE = "feature_service"
TRAINING_RUN_ID = "training_run_id"
TRAINING_CUTOFF = "training_cutoff"
TRAIN_END = "train_end"
GIT_COMMIT = "git_commit"
DAG_RUN_ID = "mlloop.dag_run_id"
MODEL_SHA256 = "mlloop.model_sha256"
MODEL_FILES = "mlloop.model_files"

# ------------------------------------------------------------------ training run: lineage
LINEAGE_PREFIX = "mlloop."
LINEAGE_USE_CASE = "mlloop.use_case"
LINEAGE_DAG_ID = "mlloop.dag_id"  # with DAG_RUN_ID: the Airflow run that trained
LINEAGE_DATA_INTERVAL_START = "mlloop.data_interval_start"
LINEAGE_DATA_INTERVAL_END = "mlloop.data_interval_end"
LINEAGE_CUTOFF_DAY = "mlloop.cutoff_day"
LINEAGE_GIT_COMMIT = "mlloop.git_commit"
LINEAGE_FEATURE_SERVICE = "mlloop.feature_service"
LINEAGE_TRAINING_SET_SHA256 = "mlloop.training_set.sha256"
TRIGGER_REASON = "mlloop.trigger_reason"
DRIFT_PREFIX = "drift."  # the drift numbers that triggered a training, inside the lineage prefix
DRIFT_REPORT = "drift_report"  # the report of that drift check, inside the lineage prefix

# ------------------------------------------------------------------ model version: promotion
DECISION = "promotion.decision"
REASONS = "promotion.reasons"
DECIDED_AT = "promotion.decided_at"
PREVIOUS_CHAMPION = "promotion.previous_champion"
SERVES_FROM = "champion.serves_from"
HISTORY = "champion.history"  # a registered-model tag: the dated list of champions
ROLLBACK_REASON = "rollback.reason"
ROLLBACK_RESTORED_AT = "rollback.restored_at"  # on the version a rollback made champion again
ROLLBACK_REPLACED_AT = "rollback.replaced_at"  # on the version it replaced, with ROLLBACK_REPLACED_BY
ROLLBACK_REPLACED_BY = "rollback.replaced_by"

# ------------------------------------------------------------------ model version: the gate
GATE_PREFIX = "gate."
GATE_PASSED = "gate.passed"
GATE_PRIMARY_METRIC = "gate.primary_metric"
GATE_CHAMPION_VERSION = "gate.champion_version"
GATE_REASONS = "gate.reasons"
GATE_ALERTS = "gate.alerts"
GATE_WINDOW = "gate.window"
GATE_EVALUATED_AT = "gate.evaluated_at"
GATE_FLOOR = "gate.floor"
GATE_VS_CHAMPION = "gate.vs_champion"
GATE_SEGMENT_PREFIX = "gate.segment"
GATE_CHECK_SEPARATOR = "; "  # a gate check's value: "status; challenger=..; champion=..; ..."
MAX_TEXT = 4900  # MLflow caps a tag value at 5000 characters

# ------------------------------------------------------------------ monitoring runs
# Shadow evaluation of a pending challenger (:mod:`mlloop.shadow`), on the model version.
SHADOW_PREFIX = "shadow."  # the shadow gate's checks are the gate's tags under this prefix
SHADOW_STATE = "shadow.state"  # pending | promoted | rejected | superseded
SHADOW_DAYS_REQUIRED = "shadow.days_required"
SHADOW_PENDING_SINCE = "shadow.pending_since"
SHADOW_DAYS_LABELLED = "shadow.days_labelled"
SHADOW_DAYS = "shadow.days"
SHADOW_RESULT = "shadow.result"
SHADOW_CHECKED_AT = "shadow.checked_at"
# The approver's answer (``promotion.require_approval``): approved | rejected | no answer, by whom, when.
APPROVAL_ANSWER = "approval.answer"
APPROVAL_BY = "approval.by"
APPROVAL_AT = "approval.at"

RUN_KIND = "run_kind"

# Which DAG run wrote a decision: "<prefix>.dag_id" / "<prefix>.dag_run_id", prefix gate, promotion, rollback.
GATE, PROMOTION, ROLLBACK, SHADOW = "gate", "promotion", "rollback", "shadow"


def run_tags(prefix: str, dag_id: str, dag_run_id: str) -> dict[str, str]:
    """The tags saying which DAG run took a decision (``gate``, ``promotion`` or ``rollback``)."""
    return {f"{prefix}.dag_id": dag_id, f"{prefix}.dag_run_id": dag_run_id}


def registration(use_case: str, feature_service: str, training_run_id: str) -> dict[str, str]:
    """The tags every registered version carries, whoever registers it (training, tests, bench): scoring
    reads the feature service from them, drift the training run (its reference sample)."""
    return {USE_CASE: use_case, FEATURE_SERVICE: feature_service, TRAINING_RUN_ID: training_run_id}


def gate_check_key(slug: str) -> str:
    return f"{GATE_PREFIX}{slug}"


@dataclass(frozen=True)
class GateCheckRecord:
    """One gate check as recorded: its status and the ``name=value`` numbers (``challenger``,
    ``champion``, ``better_by``, ``rows``), the rest (limit, note) as text."""

    status: str
    numbers: dict[str, str] = field(default_factory=dict)
    details: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> GateCheckRecord:
        status, *parts = value.split(GATE_CHECK_SEPARATOR)
        numbers = dict(p.split("=", 1) for p in parts if "=" in p and " " not in p.split("=", 1)[0])
        return cls(status, numbers, tuple(p for p in parts if p.split("=", 1)[0] not in numbers))


@dataclass(frozen=True)
class GateRecord:
    """The promotion gate's decision as recorded on a model version (``gate.*`` tags)."""

    passed: bool
    primary_metric: str
    champion_version: str | None
    checks: dict[str, GateCheckRecord]
    reasons: str = ""
    alerts: str = ""
    window: str = ""
    evaluated_at: str = ""

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> GateRecord | None:
        """The gate record in ``tags``, or None for a version the gate never evaluated."""
        if GATE_PASSED not in tags:
            return None
        plain = {GATE_PASSED, GATE_PRIMARY_METRIC, GATE_CHAMPION_VERSION, GATE_REASONS, GATE_ALERTS}
        plain |= {GATE_WINDOW, GATE_EVALUATED_AT}
        checks = {
            key.removeprefix(GATE_PREFIX): GateCheckRecord.parse(value)
            for key, value in tags.items()
            if key.startswith(GATE_PREFIX) and key not in plain and not key.endswith((".dag_id", ".dag_run_id"))
        }
        champion = tags.get(GATE_CHAMPION_VERSION, "none")
        return cls(
            passed=tags[GATE_PASSED] == "true",
            primary_metric=tags.get(GATE_PRIMARY_METRIC, ""),
            champion_version=None if champion == "none" else champion,
            checks=checks,
            reasons=tags.get(GATE_REASONS, ""),
            alerts=tags.get(GATE_ALERTS, ""),
            window=tags.get(GATE_WINDOW, ""),
            evaluated_at=tags.get(GATE_EVALUATED_AT, ""),
        )

    @property
    def headline(self) -> GateCheckRecord | None:
        """The check that says most about the primary metric: vs champion, else the floor."""
        return self.checks.get(GATE_VS_CHAMPION.removeprefix(GATE_PREFIX)) or self.checks.get(
            GATE_FLOOR.removeprefix(GATE_PREFIX)
        )

    def describe(self) -> str:
        """``roc_auc challenger=0.81, champion=0.80, better_by=+0.01; window ...`` for summaries."""
        check = self.headline
        numbers = ", ".join(f"{k}={v}" for k, v in list(check.numbers.items())[:3]) if check else ""
        return f"{self.primary_metric or 'metric'} {numbers}; {self.window}"
