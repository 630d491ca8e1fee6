"""The model health record: every number equals the record it is read from (MLflow, the storage root)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from test_shadow import SHADOW_DAYS, day, loop, score_with_shadow, shadow_spec  # noqa: F401 (fixtures)

from loop_fixtures import labelled_frame, register_champion
from mlloop import tags as tag_keys
from mlloop.health import figures, model_health, render_html
from mlloop.scoring import predictions_path

pytestmark = pytest.mark.integration


def realized_auc(storage, spec, path: str) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """The metric computed here, independently: the day's rows joined with every landed label."""
    key, ts, label = spec.entity.join_key, spec.raw.timestamp_column, spec.labels.column
    labels = pd.concat(
        [storage.read_frame(p) for p in storage.glob(storage.path("features", spec.name, "labels", "*", "*.parquet"))]
    )
    rows = storage.read_frame(path)
    for frame in (labels, rows):
        frame[key] = frame[key].astype("int64")
        frame[ts] = pd.to_datetime(frame[ts], utc=True)
    joined = rows.merge(labels.drop_duplicates([key, ts], keep="last"), on=[key, ts])
    return float(roc_auc_score(joined[label], joined["score"])), len(joined)


def test_the_health_record_equals_its_sources(storage, shadow_spec, loop) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from mlloop.champion import promote, reject
    from mlloop.registry import mlflow_client
    from mlloop.shadow import mark_pending, shadow_path

    # A shadow sample of 150 of each day's 400 rows: the shadow's quality rests on those rows only.
    promotion = shadow_spec.promotion.model_copy(update={"shadow_max_rows": 150})
    spec, client = shadow_spec.model_copy(update={"promotion": promotion}), mlflow_client()
    frame = labelled_frame(storage, spec, [day(n) for n in range(1, 5)])
    v1 = register_champion(spec, frame, model=loop["good"], alias=None).version
    v2 = register_champion(spec, frame, model=loop["coin_sk"], alias=None).version
    v3 = register_champion(spec, frame, model=loop["good"], alias=None).version
    promote(client, spec, v1, expected_champion=None, serves_from=day(1))
    reject(client, spec, v2, ["roc_auc 0.5 does not reach the floor"])
    client.set_model_version_tag(spec.registered_model_name, v3, tag_keys.TRAINING_CUTOFF, day(4).isoformat())
    mark_pending(client, spec, v3)
    for d in SHADOW_DAYS:
        score_with_shadow(storage, spec, d, (v1, loop["good"]), (v3, loop["coin"]))
    quarantine = storage.partition("quarantine", spec.name, "observations", day(6), "rows.parquet")
    storage.write_frame(pd.DataFrame({"x": range(7)}), quarantine)
    report = storage.partition("reports", spec.name, "drift", day(7), "report.json")
    verdict = {"drifted_share": 0.4, "drifted_features": {"utilization": 0.01, "age": 0.02, "income": 0.03, "x": 0.04}}
    storage.write_bytes(json.dumps({"verdict": verdict}).encode(), report)

    health = model_health(storage, client, spec)

    assert health.champion == v1 and health.pending == v3
    assert [d.day for d in health.days] == SHADOW_DAYS
    by_day = {d.day: d for d in health.days}
    for d in SHADOW_DAYS:
        item = by_day[d]
        served = predictions_path(storage, spec, d)
        assert item.rows_scored == len(storage.read_frame(served))
        assert item.served_versions == [v1] and item.shadow_version == v3
        auc, rows = realized_auc(storage, spec, served)
        assert item.champion_quality == pytest.approx(auc) and item.labelled_rows == rows
        shadow_auc, shadow_rows = realized_auc(storage, spec, shadow_path(storage, spec, d))
        assert item.shadow_quality == pytest.approx(shadow_auc) and item.shadow_rows == shadow_rows
        assert (item.shadow_scored, item.rows_scored) == (150, 400) and 0 < shadow_rows < item.labelled_rows
    assert by_day[day(6)].rows_quarantined == {"observations": 7}
    assert by_day[day(7)].drift_share == 0.4 and by_day[day(7)].top_drifted == ["utilization", "age", "income"]
    assert by_day[day(5)].drift_share is None
    kinds = {(e.version, e.kind) for e in health.events}
    assert {(v1, "promoted"), (v2, "rejected"), (v3, "shadow: pending")} <= kinds
    assert next(e for e in health.events if e.version == v2).detail == "roc_auc 0.5 does not reach the floor"
    assert health.serving == [(day(1), v1)]

    charts = figures(health)
    assert set(charts) == {"quality", "drift", "volumes"}
    assert [t.name for t in charts["quality"].data] == ["served (champion)", "shadow challenger"]
    assert charts["quality"].data[1].text[0].endswith("labelled rows of its sample (150 of 400 rows shadow-scored)")
    assert list(charts["volumes"].data[0].y) == [by_day[d].rows_scored for d in SHADOW_DAYS]
    page = render_html(health, "/js/plotly.min.js")
    assert '<script src="/js/plotly.min.js">' in page and "cdn" not in page.lower()
    assert page.count("Plotly.newPlot") == 3

    # The scored days' numbers are kept between requests by their files' footers (the page stays
    # cheap); a re-scored day, then a later label delivery correcting another day, show at once.
    def shown_equals_recomputed(d):  # type: ignore[no-untyped-def]
        shown = next(item for item in model_health(storage, client, spec).days if item.day == d)
        auc, rows = realized_auc(storage, spec, predictions_path(storage, spec, d))
        assert shown.champion_quality == pytest.approx(auc) and shown.labelled_rows == rows
        assert shown.champion_quality != pytest.approx(by_day[d].champion_quality)

    score_with_shadow(storage, spec, day(5), (v1, loop["coin"]), (v3, loop["good"]))  # the same file name
    shown_equals_recomputed(day(5))
    from mlloop.ingestion import validated_path

    labels = storage.read_frame(validated_path(storage, spec, "labels", day(9)))  # day 6's labels landed day 9
    flipped = labels.assign(**{spec.labels.column: 1 - labels[spec.labels.column]})
    storage.write_frame(flipped, validated_path(storage, spec, "labels", day(11)))
    shown_equals_recomputed(day(6))
