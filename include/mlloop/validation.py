"""Validate a batch against its contract with Great Expectations; quarantine bad rows with reasons.

Three stages, each cheaper and coarser than the next:

1. **Table** (GX): the column set matches the contract exactly (no name twice), and the batch has
   enough rows.
2. **Types** (:mod:`mlloop.coercion`, the one coercion policy): each column is converted to its
   contract dtype without loss; a value that cannot be kept (outside int64, fractional in an int
   column) quarantines its row; a column with no lossless conversion rejects the batch.
3. **Rows** (GX, ``COMPLETE`` result format keyed by ``_row_number``): nulls, ranges, allowed
   values, patterns and lengths, the join key's rules, timestamps inside the interval (labels: not
   after it, not older than the spec's horizon), duplicate keys. Every failing row is quarantined
   with every rule it failed.

A failure in stage 1 or 2, or a share of bad rows above the contract's limit, rejects the whole
batch (:class:`BatchRejected`). Otherwise good rows go on and bad rows go to quarantine.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlloop.spec import ColumnSpec, UseCaseSpec

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

ROW_NUMBER = "_row_number"
REASONS = "_reasons"
EXPECTATIONS = "_expectations"
COERCION = "lossless_coercion"  # the "expectation" a value that cannot be kept fails

# Rules every join key obeys, whatever the spec says: a key that is empty, padded or carries
# control characters is a different key that merely looks the same (it slips past uniqueness,
# joins nothing, and pollutes the online store). Strings longer than this are not identifiers.
KEY_MAX_LENGTH = 256
KEY_MALFORMED = r"^$|^\s|\s$|[\x00-\x1f\x7f]"


@dataclass(frozen=True)
class Contract:
    """What a batch must look like: the columns with their rules, plus batch-level rules."""

    name: str
    columns: dict[str, ColumnSpec]
    unique: tuple[str, ...] = ()
    timestamp_column: str | None = None
    max_bad_row_share: float = 0.0
    min_rows: int = 1
    keys: tuple[str, ...] = ()  # join keys: the key rules apply
    # The timestamp rule's window is [interval start - lookback, interval end): labels label
    # observations of earlier days, up to a horizon.
    lookback: dt.timedelta | None = None


def observations_contract(spec: UseCaseSpec) -> Contract:
    return Contract(
        name=f"{spec.name}.observations",
        columns=dict(spec.raw.columns),
        unique=tuple(spec.raw.unique),
        timestamp_column=spec.raw.timestamp_column,
        max_bad_row_share=spec.raw.max_bad_row_share,
        min_rows=spec.raw.min_rows,
        keys=(spec.entity.join_key,),
    )


def labels_contract(spec: UseCaseSpec) -> Contract:
    """Label events: one row per labelled observation; the timestamp is the observation's.

    A label lands after the observation it labels, so its timestamp may be up to
    ``labels.horizon_days`` before the batch's interval, never after it.
    """
    key, ts, label = spec.entity.join_key, spec.raw.timestamp_column, spec.labels.column
    raw_key = spec.raw.columns[key]
    return Contract(
        name=f"{spec.name}.labels",
        columns={
            key: ColumnSpec(dtype=spec.entity.dtype, pattern=raw_key.pattern, max_length=raw_key.max_length),
            ts: ColumnSpec(dtype="datetime"),
            label: ColumnSpec(dtype=spec.labels.dtype, min=spec.labels.min, max=spec.labels.max),
        },
        unique=(key, ts),
        timestamp_column=ts,
        max_bad_row_share=spec.raw.max_bad_row_share,
        min_rows=1,
        keys=(key,),
        lookback=dt.timedelta(days=spec.labels.horizon_days),
    )


@dataclass(frozen=True)
class RowRule:
    """A row rule that needs more than the batch (e.g. other partitions): ``check`` gets the coerced
    frame (with ``_row_number``) and returns ``{row number: reason}`` for the rows it fails."""

    name: str
    column: str
    check: Callable[[pd.DataFrame], dict[int, str]]


@dataclass(frozen=True)
class ExpectationFailure:
    expectation: str
    column: str
    failed_rows: int
    detail: str = ""


@dataclass
class ValidationReport:
    """What a validation saw; ``summary()`` is the one screen an on-call engineer reads."""

    contract: str
    source: str
    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    max_bad_row_share: float = 0.0
    schema_errors: list[str] = field(default_factory=list)
    failures: list[ExpectationFailure] = field(default_factory=list)
    rejected: bool = False
    reason: str = ""
    labels_superseded: int = 0  # earlier deliveries of the same labels this batch corrects

    @property
    def bad_share(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0

    def summary(self) -> str:
        verdict = f"REJECTED: {self.reason}" if self.rejected else "accepted"
        lines = [
            f"Validation of {self.contract} from {self.source}: {verdict}",
            f"rows in {self.rows_in} | valid {self.rows_valid} | quarantined {self.rows_quarantined} "
            f"({self.bad_share:.2%}, limit {self.max_bad_row_share:.2%})",
        ]
        if self.labels_superseded:
            lines.append(
                f"corrections: {self.labels_superseded} label(s) of earlier deliveries superseded "
                "(the latest delivery wins)"
            )
        lines += [f"schema: {err}" for err in self.schema_errors]
        if self.failures:
            lines.append(f"{'expectation':<44} {'column':<28} {'failed rows':>11}")
            lines += [f"{f.expectation:<44} {f.column:<28} {f.failed_rows:>11}" for f in self.failures]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "source": self.source,
            "rows_in": self.rows_in,
            "rows_valid": self.rows_valid,
            "rows_quarantined": self.rows_quarantined,
            "rejected": self.rejected,
            "reason": self.reason,
            "labels_superseded": self.labels_superseded,
            "schema_errors": list(self.schema_errors),
            "failures": [f.__dict__ for f in self.failures],
        }


class BatchRejected(ValueError):
    """The batch as a whole is unusable; nothing of it may go downstream."""

    def __init__(self, report: ValidationReport, quarantined: pd.DataFrame | None = None) -> None:
        super().__init__(f"{report.contract}: batch {report.source} rejected: {report.reason}")
        self.report = report
        self.quarantined = quarantined


@dataclass(frozen=True)
class ValidationResult:
    valid: pd.DataFrame
    quarantined: pd.DataFrame
    report: ValidationReport


# ---------------------------------------------------------------------------------- GX suites
def _gx_context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _row_expectations(contract: Contract, interval: tuple[dt.datetime, dt.datetime] | None) -> list[Any]:
    """The GX expectations for every row-level rule of the contract."""
    import great_expectations.expectations as gxe
    import pandas as pd

    rules: list[Any] = []
    for name, col in contract.columns.items():
        if not col.nullable:
            rules.append(gxe.ExpectColumnValuesToNotBeNull(column=name))
        if col.min is not None or col.max is not None:
            rules.append(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=col.min, max_value=col.max))
        if col.allowed is not None:
            rules.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=list(col.allowed)))
        if col.pattern is not None:
            rules.append(gxe.ExpectColumnValuesToMatchRegex(column=name, regex=full_match(col.pattern)))
        max_length = col.max_length
        if name in contract.keys and col.dtype == "string":
            rules.append(gxe.ExpectColumnValuesToNotMatchRegex(column=name, regex=KEY_MALFORMED))
            max_length = min(max_length or KEY_MAX_LENGTH, KEY_MAX_LENGTH)
        if max_length is not None:
            rules.append(gxe.ExpectColumnValueLengthsToBeBetween(column=name, max_value=max_length))
    if contract.timestamp_column and interval is not None:
        start, end = (pd.Timestamp(t).tz_convert("UTC") for t in interval)
        if contract.lookback is not None:
            start -= contract.lookback
        rules.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=contract.timestamp_column, min_value=start, max_value=end, strict_max=True
            )
        )
    if len(contract.unique) == 1:
        rules.append(gxe.ExpectColumnValuesToBeUnique(column=contract.unique[0]))
    elif contract.unique:
        rules.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(contract.unique)))
    return rules


def full_match(pattern: str) -> str:
    """A spec's ``pattern`` must match the whole value (GX searches: anchor it)."""
    return rf"^(?:{pattern})\Z"


def _reason(expectation_type: str, kwargs: dict[str, Any]) -> str:
    """A row's quarantine reason in words, from the expectation that failed it."""
    column = kwargs.get("column") or "+".join(kwargs.get("column_list", []))
    if expectation_type == "expect_column_values_to_not_be_null":
        return f"{column} is null (null in a non-nullable column)"
    if expectation_type == "expect_column_values_to_match_regex":
        return f"{column} does not match the pattern {kwargs.get('regex')}"
    if expectation_type == "expect_column_values_to_not_match_regex":
        return f"{column} is empty, padded with whitespace or has control characters (key rules)"
    if expectation_type == "expect_column_value_lengths_to_be_between":
        return f"{column} longer than {kwargs.get('max_value')} characters"
    if expectation_type == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        closing = ")" if kwargs.get("strict_max") else "]"
        return f"{column} outside [{_fmt(low, '-inf')}, {_fmt(high, 'inf')}{closing}"
    if expectation_type == "expect_column_values_to_be_in_set":
        return f"{column} not one of {list(kwargs.get('value_set', []))}"
    if expectation_type in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        return f"{column} duplicated in the batch"
    return f"{column} failed {expectation_type}"


def _fmt(value: Any, unbounded: str) -> str:
    if value is None:
        return unbounded
    return value.isoformat() if hasattr(value, "isoformat") else f"{value:g}"


def _run_suite(context: Any, suite_name: str, expectations: list[Any], frame: pd.DataFrame, result_format: Any) -> Any:
    import great_expectations as gx

    source = context.data_sources.add_or_update_pandas(name="mlloop")
    asset_name = f"{suite_name}.batch"
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(name=asset_name)
    batch_definition = asset.add_batch_definition_whole_dataframe(f"{suite_name}.whole")
    # The suite is stored whole: adding expectations one by one to a stored suite re-saves it each time.
    suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
    )
    return definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)


# ---------------------------------------------------------------------------------- entry point
def validate_table(
    table: pa.Table,
    contract: Contract,
    *,
    source: str,
    interval: tuple[dt.datetime, dt.datetime] | None = None,
    row_rules: Sequence[RowRule] = (),
) -> ValidationResult:
    """Validate one batch; return valid rows, quarantined rows with reasons, and the report.

    Raises :class:`BatchRejected` when the batch cannot be used at all (wrong or repeated columns,
    a column with no lossless conversion to its type, too few rows, or more bad rows than
    ``contract.max_bad_row_share``).
    """
    import great_expectations.expectations as gxe
    import numpy as np

    from mlloop.coercion import coerce_table, duplicate_columns

    report = ValidationReport(contract=contract.name, source=source, max_bad_row_share=contract.max_bad_row_share)
    coerced = coerce_table(table, contract.columns)
    frame = coerced.frame
    report.rows_in = len(frame)
    context = _gx_context()
    twice = duplicate_columns(table.schema.names)
    if twice:
        report.schema_errors.append(
            f"column name(s) {twice} appear more than once in the file: rename or drop the copies upstream"
        )

    table_result = _run_suite(
        context,
        f"{contract.name}.table",
        [
            gxe.ExpectTableColumnsToMatchSet(column_set=list(contract.columns), exact_match=True),
            gxe.ExpectTableRowCountToBeBetween(min_value=contract.min_rows),
        ],
        frame,
        {"result_format": "SUMMARY"},
    )
    for res in table_result.results:
        if res.success:
            continue
        if res.expectation_config.type == "expect_table_columns_to_match_set":
            details = res.result.get("details", {}).get("mismatched", {})
            missing, extra = details.get("missing", []), details.get("unexpected", [])
            if missing:
                report.schema_errors.append(f"missing column(s) {sorted(missing)}")
            if extra:
                report.schema_errors.append(
                    f"unexpected column(s) {sorted(extra)} (add them to the contract if they are intended)"
                )
        else:
            report.schema_errors.append(
                f"{report.rows_in} row(s); the contract needs at least {contract.min_rows}"
                + (" (the file is empty)" if report.rows_in == 0 else "")
            )
    report.schema_errors += coerced.errors
    if report.schema_errors:
        report.rejected = True
        report.reason = "; ".join(report.schema_errors)
        raise BatchRejected(report)

    frame = frame[list(contract.columns)].copy()
    frame[ROW_NUMBER] = np.arange(len(frame), dtype=np.int64)
    row_result = _run_suite(
        context,
        f"{contract.name}.rows",
        _row_expectations(contract, interval),
        frame,
        {"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_NUMBER]},
    )
    # Values that could not be kept are nulls now; their row's reason is the value, not the null.
    reasons: dict[int, list[str]] = coerced.row_reasons()
    expectations: dict[int, list[str]] = {row: [COERCION] * len(r) for row, r in reasons.items()}
    for column, rows_lost in coerced.lossy.items():
        detail = next(iter(rows_lost.values())).split(": ", 1)[1] if rows_lost else ""
        report.failures.append(ExpectationFailure(COERCION, column, len(rows_lost), detail))
    for res in row_result.results:
        if res.exception_info and res.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"expectation {res.expectation_config.type} raised: {res.exception_info['exception_message']}"
            )
        if res.success:
            continue
        rows = [int(item[ROW_NUMBER]) for item in res.result.get("unexpected_index_list") or []]
        cfg = res.expectation_config
        column = cfg.kwargs.get("column") or "+".join(cfg.kwargs.get("column_list", []))
        reason = _reason(cfg.type, cfg.kwargs)
        if cfg.type == "expect_column_values_to_not_be_null":
            rows = [row for row in rows if row not in coerced.lossy.get(column, {})]
            if not rows:
                continue
        report.failures.append(ExpectationFailure(cfg.type, column, len(rows), reason))
        for row in rows:
            reasons.setdefault(row, []).append(reason)
            expectations.setdefault(row, []).append(cfg.type)

    for rule in row_rules:
        failed = rule.check(frame)
        if failed:
            report.failures.append(ExpectationFailure(rule.name, rule.column, len(failed), next(iter(failed.values()))))
        for row, reason in failed.items():
            reasons.setdefault(row, []).append(reason)
            expectations.setdefault(row, []).append(rule.name)

    bad = frame[ROW_NUMBER].isin(list(reasons))
    quarantined = frame[bad].copy()
    quarantined[REASONS] = ["; ".join(reasons[r]) for r in quarantined[ROW_NUMBER]]
    quarantined[EXPECTATIONS] = [",".join(expectations[r]) for r in quarantined[ROW_NUMBER]]
    valid = frame[~bad].drop(columns=[ROW_NUMBER]).reset_index(drop=True)
    report.rows_quarantined = int(bad.sum())
    report.rows_valid = len(valid)
    if report.bad_share > contract.max_bad_row_share:
        top = Counter({f.detail: f.failed_rows for f in report.failures}).most_common(3)
        report.rejected = True
        report.reason = (
            f"{report.rows_quarantined} of {report.rows_in} rows ({report.bad_share:.1%}) failed validation, "
            f"above the limit of {contract.max_bad_row_share:.1%}; most common: "
            + ", ".join(f"{reason} ({count})" for reason, count in top)
        )
        raise BatchRejected(report, quarantined.reset_index(drop=True))
    return ValidationResult(valid=valid, quarantined=quarantined.reset_index(drop=True), report=report)


def run_expectations(frame: pd.DataFrame, suite_name: str, expectations: list[Any]) -> list[Any]:
    """Run GX expectations about a table as a whole; return GX's result per expectation.

    For checks where quarantining single rows makes no sense (a label's class balance, a target
    that never varies); row rules go through :func:`validate_table`.
    """
    result = _run_suite(_gx_context(), suite_name, expectations, frame, {"result_format": "SUMMARY"})
    for res in result.results:
        if res.exception_info and res.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"expectation {res.expectation_config.type} raised: {res.exception_info['exception_message']}"
            )
    return list(result.results)
