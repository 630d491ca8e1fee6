"""A model's health over time, for on-call: one record per use case, read from where the loop writes.

Nothing here is recorded twice: every number is read from its source when the view is built.

* **history** (MLflow): each version's decision tags (``promotion.*``, ``rollback.*``, ``shadow.*``)
  and the registered model's ``champion.history`` (from which data day each champion served);
* **per day** (the storage root): rows scored (the prediction partition's parquet footer), rows
  quarantined (``quarantine/<uc>/<dataset>/date=<day>/rows.parquet``), the realized primary metric
  of the served predictions and of the shadow challenger's once their labels landed (the same
  metric functions as the gate), and the drift share and top drifted features of the day's
  drift report (``reports/<uc>/drift/date=<day>/report.json``).

:func:`figures` turns it into Plotly figures (Plotly ships in the environment as Evidently's
dependency, with its JavaScript bundled: the page needs no network).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlloop import layout
from mlloop import tags as tag_keys

if TYPE_CHECKING:
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
    shadow_rows: int = 0
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
        if tags.get("rollback.restored_at"):
            events.append(
                Event(tags["rollback.restored_at"], version, "rolled back to", tags.get("rollback.reason", ""))
            )
        if tags.get("rollback.replaced_at"):
            events.append(Event(tags["rollback.replaced_at"], version, "rolled back from", ""))
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


def model_health(storage: Storage, client: MlflowClient, spec: UseCaseSpec, last_days: int = 60) -> Health:
    """The use case's health record: history from MLflow, the newest ``last_days`` days from storage."""
    from mlloop.drift_report import _join_columns, report_paths
    from mlloop.ingestion import quarantine_paths
    from mlloop.registry import CHAMPION, aliases
    from mlloop.scoring import MODEL_VERSION_COLUMN, SCORE_COLUMN, predictions_path
    from mlloop.shadow import PENDING, shadow_path
    from mlloop.training_set import label_partitions, read_latest_labels

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
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    landed = label_partitions(storage, spec)
    labels = (
        _join_columns(read_latest_labels(storage, spec, min(all_days), max(landed))[0], spec)
        if all_days and landed
        else None
    )
    days = []
    for day in all_days:
        item = Day(day)
        for dataset in QUARANTINE_DATASETS:
            rows_path = quarantine_paths(storage, spec, dataset, day)[0]  # type: ignore[arg-type]
            if storage.exists(rows_path):
                item.rows_quarantined[dataset] = storage.row_count(rows_path)
        served_path = predictions_path(storage, spec, day)
        if day in scored:
            served = _join_columns(
                storage.read_frame(served_path, columns=[key, ts, SCORE_COLUMN, MODEL_VERSION_COLUMN]), spec
            )
            item.rows_scored = len(served)
            item.served_versions = sorted({str(v) for v in served[MODEL_VERSION_COLUMN]}, key=int)
            if labels is not None:
                joined = served.merge(labels, on=[key, ts])
                item.labelled_rows = len(joined)
                item.champion_quality = _realized(spec, joined, SCORE_COLUMN)
        if day in shadowed:
            shadow = _join_columns(
                storage.read_frame(
                    shadow_path(storage, spec, day), columns=[key, ts, SCORE_COLUMN, MODEL_VERSION_COLUMN]
                ),
                spec,
            )
            item.shadow_version = ",".join(sorted({str(v) for v in shadow[MODEL_VERSION_COLUMN]}))
            if labels is not None:
                joined = shadow.merge(labels, on=[key, ts])
                item.shadow_rows = len(joined)
                item.shadow_quality = _realized(spec, joined, SCORE_COLUMN)
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
                    f"v{d.shadow_version}, {d.shadow_rows} labelled rows" if d.shadow_version else ""
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
