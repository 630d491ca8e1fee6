"""A model's health over time, for on-call: one record per use case, read from where the loop writes.

Nothing here is recorded twice: every number is read from its source when the view is built.

* **history** (MLflow): each version's decision tags (``promotion.*``, ``rollback.*``, ``shadow.*``)
  and the registered model's ``champion.history`` (from which data day each champion served);
* **per day** (the storage root): rows scored (the prediction partition's parquet footer), rows
  quarantined (``quarantine/<uc>/<dataset>/date=<day>/rows.parquet``), the realized primary metric
  of the served predictions and of the shadow challenger's once their labels landed (the same
  metric functions as the gate; the shadow's on its rows only, the day's shadow sample when the day
  has more than ``promotion.shadow_max_rows`` rows), and the drift share and top drifted features of the day's
  drift report (``reports/<uc>/drift/date=<day>/report.json``).

:func:`figures` turns it into Plotly figures (Plotly ships in the environment as Evidently's
dependency, with its JavaScript bundled: the page needs no network).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlloop import layout
from mlloop import tags as tag_keys

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    from mlflow import MlflowClient

    from mlloop.spec import UseCaseSpec
    from mlloop.storage import Storage

QUARANTINE_DATASETS = ("observations", "labels")
TOP_DRIFTED = 3


@dataclass(frozen=True)
class Event:
    """One thing that happened to a version: promoted, rejected, rolled back, pending, superseded."""

    at: str
    version: str
    kind: str
    detail: str = ""


@dataclass
class Day:
    day: dt.date
    rows_scored: int | None = None
    served_versions: list[str] = field(default_factory=list)
    rows_quarantined: dict[str, int] = field(default_factory=dict)
    labelled_rows: int = 0
    champion_quality: float | None = None
    shadow_version: str | None = None
    shadow_scored: int = 0
    """Rows the shadow challenger scored: the day's shadow sample (``promotion.shadow_max_rows``)."""
    shadow_rows: int = 0
    """Of those, the labelled ones ``shadow_quality`` rests on."""
    shadow_quality: float | None = None
    drift_share: float | None = None
    top_drifted: list[str] = field(default_factory=list)


@dataclass
class Health:
    use_case: str
    model: str
    metric: str
    champion: str | None
    pending: str | None
    events: list[Event]
    serving: list[tuple[dt.date, str]]
    days: list[Day]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["serving"] = [(d.isoformat(), v) for d, v in self.serving]
        for item in out["days"]:
            item["day"] = item["day"].isoformat()
        return out


def _days_in(storage: Storage, pattern: str) -> set[dt.date]:
    """The days of the partitions matching ``pattern`` (a glob from :mod:`mlloop.layout`)."""
    days = {layout.day_of(path) for path in storage.glob(pattern)}
    return {day for day in days if day is not None}


def history(client: MlflowClient, spec: UseCaseSpec) -> tuple[list[Event], list[tuple[dt.date, str]]]:
    """Every recorded decision on the use case's versions, oldest first, and the champion history."""
    from mlloop.champion import champion_history
    from mlloop.registry import ModelNotFound, _model_is_missing

    model = spec.registered_model_name
    try:
        versions = client.search_model_versions(f"name = '{model}'")
        serving = champion_history(client, model)
    except Exception as exc:  # a model never registered: no history yet
        if _model_is_missing(client, exc, model) or isinstance(exc, ModelNotFound):
            return [], []
        raise
    events = []
    for mv in versions:
        tags, version = dict(mv.tags or {}), str(mv.version)
        if tags.get(tag_keys.DECISION):
            detail = (
                tags.get(tag_keys.REASONS, "")
                if tags[tag_keys.DECISION] == "rejected"
                else tags.get(tag_keys.GATE_WINDOW, "")
            )
            events.append(Event(tags.get(tag_keys.DECIDED_AT, ""), version, tags[tag_keys.DECISION], detail))
        if tags.get(tag_keys.ROLLBACK_RESTORED_AT):
            events.append(
                Event(
                    tags[tag_keys.ROLLBACK_RESTORED_AT],
                    version,
                    "rolled back to",
                    tags.get(tag_keys.ROLLBACK_REASON, ""),
                )
            )
        if tags.get(tag_keys.ROLLBACK_REPLACED_AT):
            events.append(Event(tags[tag_keys.ROLLBACK_REPLACED_AT], version, "rolled back from", ""))
        if tags.get(tag_keys.SHADOW_STATE):
            at = tags.get(tag_keys.SHADOW_CHECKED_AT, "") or tags.get(tag_keys.DECIDED_AT, "")
            labelled, required = (
                tags.get(tag_keys.SHADOW_DAYS_LABELLED, "0"),
                tags.get(tag_keys.SHADOW_DAYS_REQUIRED, "?"),
            )
            days = f"{labelled} of {required} shadow days"
            detail = f"{tags.get(tag_keys.SHADOW_RESULT, '')} ({days})"
            events.append(Event(at, version, f"shadow: {tags[tag_keys.SHADOW_STATE]}", detail))
    return sorted(events, key=lambda e: (e.at, int(e.version))), serving


def _realized(spec: UseCaseSpec, rows: pd.DataFrame, score: str) -> float | None:
    from mlloop.metrics import compute_metrics

    if rows.empty:
        return None
    value = compute_metrics(
        [spec.model.primary_metric], rows[spec.labels.column].to_numpy("float64"), rows[score].to_numpy("float64")
    )[spec.model.primary_metric]
    return None if math.isnan(value) else float(value)


_DAY = "_day"


def _read_days(
    storage: Storage,
    spec: UseCaseSpec,
    days: list[dt.date],
    path_of: Callable[[Storage, UseCaseSpec, dt.date], str],
    columns: list[str],
) -> pd.DataFrame | None:
    """The rows of each day's partition (``path_of``), in one frame with the day in column ``_day``."""
    import pandas as pd

    from mlloop.drift_report import _join_columns

    if not days:
        return None
    frames = [storage.read_frame(path_of(storage, spec, day), columns=columns).assign(**{_DAY: day}) for day in days]
    return _join_columns(pd.concat(frames, ignore_index=True), spec)


def _by_day(frame: pd.DataFrame | None) -> dict[dt.date, pd.DataFrame]:
    return {} if frame is None else {day: rows for day, rows in frame.groupby(_DAY, sort=False)}  # type: ignore[misc]


def _labelled_by_day(
    frame: pd.DataFrame | None, labels: pd.DataFrame | None, key: str, ts: str
) -> dict[dt.date, pd.DataFrame]:
    """Each day's rows joined with their landed labels (the latest delivery)."""
    if frame is None or labels is None:
        return {}
    return _by_day(frame.merge(labels, on=[key, ts]))


# The scored days' numbers of the last few distinct inputs, by their fingerprint (see _scored_days).
_SCORED_CACHE: OrderedDict[tuple[Any, ...], dict[dt.date, dict[str, Any]]] = OrderedDict()
_SCORED_CACHE_SIZE = 8


def _scored_days(
    storage: Storage, spec: UseCaseSpec, all_days: list[dt.date], scored: set[dt.date], shadowed: set[dt.date]
) -> dict[dt.date, dict[str, Any]]:
    """Day -> the :class:`Day` fields read from the served and shadow partitions and the labels:
    rows, versions, labelled rows, realized quality.

    These are the page's expensive numbers (every row read, joined with the labels, scored), and
    they change only when one of the files they come from changes. So they are kept in memory by
    the fingerprint of those files (each parquet footer's SHA-256: no data read) and recomputed
    when any of them changes (a new label delivery, a re-scored day, a new day): every number is
    still the one its files give now.
    """
    from mlloop.drift_report import _join_columns
    from mlloop.scoring import MODEL_VERSION_COLUMN, SCORE_COLUMN, predictions_path
    from mlloop.shadow import shadow_path
    from mlloop.training_set import label_partitions, read_latest_labels

    served_days = [d for d in all_days if d in scored]
    shadow_days = [d for d in all_days if d in shadowed]
    landed = label_partitions(storage, spec)
    label_urls = [url for day, url in landed.items() if all_days and day >= min(all_days)]
    sources = (
        [predictions_path(storage, spec, d) for d in served_days]
        + [shadow_path(storage, spec, d) for d in shadow_days]
        + label_urls
    )
    fingerprint = (spec.model_dump_json(), tuple((u, storage.footer_sha256(u)) for u in sources))
    if fingerprint in _SCORED_CACHE:
        _SCORED_CACHE.move_to_end(fingerprint)
        return _SCORED_CACHE[fingerprint]

    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    labels = (
        _join_columns(read_latest_labels(storage, spec, min(all_days), max(landed))[0], spec)
        if all_days and landed
        else None
    )
    columns = [key, ts, SCORE_COLUMN, MODEL_VERSION_COLUMN]
    served = _read_days(storage, spec, served_days, predictions_path, columns)
    shadow = _read_days(storage, spec, shadow_days, shadow_path, columns)
    # One join per source for every day at once (not one per day: each join factorizes all the labels).
    served_labelled = _labelled_by_day(served, labels, key, ts)
    shadow_labelled = _labelled_by_day(shadow, labels, key, ts)
    out: dict[dt.date, dict[str, Any]] = {}
    for day, rows in _by_day(served).items():
        fields = out.setdefault(day, {})
        fields["rows_scored"] = len(rows)
        fields["served_versions"] = sorted({str(v) for v in rows[MODEL_VERSION_COLUMN]}, key=int)
        if (joined := served_labelled.get(day)) is not None:
            fields["labelled_rows"] = len(joined)
            fields["champion_quality"] = _realized(spec, joined, SCORE_COLUMN)
    for day, rows in _by_day(shadow).items():
        fields = out.setdefault(day, {})
        fields["shadow_version"] = ",".join(sorted({str(v) for v in rows[MODEL_VERSION_COLUMN]}))
        fields["shadow_scored"] = len(rows)
        if (joined := shadow_labelled.get(day)) is not None:
            fields["shadow_rows"] = len(joined)
            fields["shadow_quality"] = _realized(spec, joined, SCORE_COLUMN)
    _SCORED_CACHE[fingerprint] = out
    while len(_SCORED_CACHE) > _SCORED_CACHE_SIZE:
        _SCORED_CACHE.popitem(last=False)
    return out


def model_health(storage: Storage, client: MlflowClient, spec: UseCaseSpec, last_days: int = 60) -> Health:
    """The use case's health record: history from MLflow, the newest ``last_days`` days from storage."""
    from mlloop.drift_report import report_paths
    from mlloop.ingestion import quarantine_paths
    from mlloop.registry import CHAMPION, aliases
    from mlloop.shadow import PENDING

    events, serving = history(client, spec)
    current = aliases(client, spec.registered_model_name)
    scored = _days_in(storage, layout.PREDICTIONS.pattern(storage, spec))
    quarantined = _days_in(
        storage,
        f"{layout.QUARANTINE.area_folder(storage, spec)}/*/{layout.PARTITION_PREFIX}*/{layout.QUARANTINE.filename}",
    )
    drifted = _days_in(storage, layout.DRIFT_REPORT.pattern(storage, spec, layout.DRIFT_REPORT_JSON))
    shadowed = _days_in(storage, layout.SHADOW.pattern(storage, spec))
    all_days = sorted(scored | quarantined | drifted | shadowed)[-last_days:]
    scored_fields = _scored_days(storage, spec, all_days, scored, shadowed)
    days = []
    for day in all_days:
        item = Day(day)
        for dataset in QUARANTINE_DATASETS:
            rows_path = quarantine_paths(storage, spec, dataset, day)[0]  # type: ignore[arg-type]
            if storage.exists(rows_path):
                item.rows_quarantined[dataset] = storage.row_count(rows_path)
        for name, value in scored_fields.get(day, {}).items():
            setattr(item, name, list(value) if isinstance(value, list) else value)  # the cached record stays as read
        report = report_paths(storage, spec, day)[1]
        if day in drifted:
            verdict = json.loads(storage.read_bytes(report)).get("verdict", {})
            item.drift_share = verdict.get("drifted_share")
            item.top_drifted = list(verdict.get("drifted_features") or {})[:TOP_DRIFTED]
        days.append(item)
    return Health(
        use_case=spec.name,
        model=spec.registered_model_name,
        metric=spec.model.primary_metric,
        champion=current.get(CHAMPION),
        pending=current.get(PENDING),
        events=events,
        serving=serving,
        days=days,
    )


def figures(health: Health) -> dict[str, Any]:
    """Plotly figures of the record, by title: quality, drift, volumes (the history is a table)."""
    import plotly.graph_objects as go

    x = [d.day.isoformat() for d in health.days]
    quality = go.Figure()
    quality.add_trace(
        go.Scatter(
            x=x,
            y=[d.champion_quality for d in health.days],
            mode="lines+markers",
            name="served (champion)",
            text=[f"v{'+'.join(d.served_versions)}, {d.labelled_rows} labelled rows" for d in health.days],
        )
    )
    if any(d.shadow_version for d in health.days):
        quality.add_trace(
            go.Scatter(
                x=x,
                y=[d.shadow_quality for d in health.days],
                mode="lines+markers",
                name="shadow challenger",
                text=[
                    f"v{d.shadow_version}, {d.shadow_rows} labelled rows of its sample "
                    f"({d.shadow_scored} of {d.rows_scored} rows shadow-scored)"
                    if d.shadow_version
                    else ""
                    for d in health.days
                ],
            )
        )
    for day, version in health.serving:
        quality.add_vline(x=day.isoformat(), line_dash="dot", line_color="grey")
        quality.add_annotation(x=day.isoformat(), y=1, yref="paper", text=f"v{version}", showarrow=False)
    quality.update_layout(title=f"Realized {health.metric} per day, once labels landed", yaxis_title=health.metric)

    drift = go.Figure(
        go.Bar(
            x=x,
            y=[d.drift_share for d in health.days],
            text=[", ".join(d.top_drifted) for d in health.days],
            name="drifted share",
        )
    )
    drift.update_layout(title="Share of drifted features per day (bar text: top drifted features)", yaxis_range=[0, 1])

    volumes = go.Figure()
    volumes.add_trace(go.Bar(x=x, y=[d.rows_scored for d in health.days], name="rows scored"))
    for dataset in QUARANTINE_DATASETS:
        volumes.add_trace(
            go.Bar(x=x, y=[d.rows_quarantined.get(dataset, 0) for d in health.days], name=f"{dataset} quarantined")
        )
    volumes.update_layout(title="Rows scored and rows quarantined per day", barmode="group")
    return {"quality": quality, "drift": drift, "volumes": volumes}


def render_html(health: Health, plotly_js_url: str) -> str:
    """The health page: the charts (Plotly, its JavaScript from ``plotly_js_url``) and the history table."""
    from html import escape

    charts = "\n".join(
        f'<section class="chart" id="chart-{name}">'
        + fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{name}")
        + "</section>"
        for name, fig in figures(health).items()
    )
    rows = "\n".join(
        f"<tr><td>{escape(e.at)}</td><td>v{escape(e.version)}</td><td>{escape(e.kind)}</td><td>{escape(e.detail)}</td></tr>"
        for e in reversed(health.events)
    )
    serving = ", ".join(f"v{escape(v)} from {d.isoformat()}" for d, v in health.serving) or "none recorded"
    pending = f"v{escape(health.pending)} (pending its shadow days)" if health.pending else "none"
    champion = f"v{escape(health.champion)}" if health.champion else "none"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(health.use_case)} model health</title>
<script src="{escape(plotly_js_url)}"></script>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:90%;text-align:left}}</style></head>
<body><h1>{escape(health.use_case)}: model health</h1>
<p>Registered model <b>{escape(health.model)}</b>; champion <b>{champion}</b>;
pending challenger: <b>{pending}</b>. Champion history (data days): {serving}.</p>
{charts}
<h2>Versions: promotions, rejections, rollbacks, shadow decisions</h2>
<table id="history"><tr><th>when</th><th>version</th><th>what</th><th>why</th></tr>
{rows}</table>
</body></html>"""
