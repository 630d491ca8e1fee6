"""The loop over landed real history, by the documented commands: the same decisions as last time.

A user's path with no generator: ``mlloop land-dataset hourly_temps`` lands a month of the real data
set shipped in ``vega_datasets``, ``mlloop replay`` runs the whole loop over it on the embedded
Airflow (its own home, port and process tree; stopped at the end). Nothing is mocked. The replay
prints its time breakdown (per stage and per chunk; per day in the JSON), which
``docs/authoring.md`` quotes.

Reproducible: its decisions (trainings with their cutoffs and reasons, gate decisions, drift
verdicts and the retrains they started, the champion at the end, rows scored) must equal those of
an earlier replay of the same history, recorded in ``expected/replay_hourly_temps.json``. That
file is written by this test with ``MLLOOP_RECORD_REPLAY=1`` (the test then fails, so a recording
is never mistaken for a pass) and reviewed like code: a change to the loop that changes a
decision shows up as a diff of it. One replay instead of two back to back saves CI five minutes;
the recorded one is a replay on another day, in another process tree, which is the stronger check.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlloop import tags as tag_keys
from mlloop.landing import date_range
from mlloop_cli.airflow_local import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3000)]

ROOT = Path(__file__).resolve().parents[2]
USE_CASE = "hourly_temps"
# Two months: a replayed day costs about 9 s, mostly task start-ups, on a 2-core machine
# (docs/authoring.md, Part 3), so this replay takes about 9 minutes.
FIRST, LAST = "2010-01-01", "2010-02-28"
EXPECTED = Path(__file__).parent / "expected" / "replay_hourly_temps.json"


def replay(home: Path) -> tuple[dict[str, Any], str, float]:
    """Land the range and replay it on ``home``; (the --result JSON, the printed summary, seconds)."""
    env = {**os.environ, "MLLOOP_HOME": str(home), "MLLOOP_AIRFLOW_PORT": str(free_port())}
    mlloop = str(Path(sys.executable).parent / "mlloop")
    land = [mlloop, "land-dataset", USE_CASE, "--start", FIRST, "--end", LAST]
    subprocess.run(land, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    result = home / "replay.json"
    command = [mlloop, "replay", "--use-case", USE_CASE, "--from", FIRST, "--to", LAST]
    started = time.monotonic()
    out = subprocess.run(
        [*command, "--result", str(result), "--stop"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return json.loads(result.read_text()), out.stdout, seconds


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, float]:
    return replay(tmp_path_factory.mktemp("replay") / "mlloop")


def decisions(result: dict[str, Any]) -> dict[str, Any]:
    """What a replay decided; the part of its result that must not depend on when or how fast it ran."""
    return {key: result[key] for key in ("trainings", "champion", "drift_checks", "rows_scored", "days_scored")}


def test_the_replay_trains_promotes_scores_and_checks_drift_in_data_time(replayed) -> None:  # type: ignore[no-untyped-def]
    result, summary, seconds = replayed
    print(f"replay: {seconds:.0f} s")
    print(summary[summary.index("Time: ") : summary.index("Drift reports:")])
    trainings = result["trainings"]
    assert len(trainings) >= 2, summary
    cutoffs = [t["cutoff"] for t in trainings]
    assert all(FIRST <= c <= LAST for c in cutoffs), cutoffs
    assert {t["decision"] for t in trainings} <= {"promoted", "rejected"}
    promoted = [t for t in trainings if t["decision"] == "promoted"]
    assert promoted and result["champion"] in {t["version"] for t in promoted}
    for version in promoted:  # a promoted version serves from the day after its cutoff
        assert version["serves_from"] > version["cutoff"]
    # The summary shows each training's cutoff and why, the gate's table, drift and rows.
    for training in trainings:
        assert f"v{training['version']}: cutoff {training['cutoff']}" in summary
    assert tag_keys.GATE_PREFIX in summary
    assert result["drift_checks"], summary
    assert "Drift checks:" in summary and "Rows scored:" in summary
    retrained = [day for day, check in result["drift_checks"].items() if check["retrained"]]
    drift_trainings = [t for t in trainings if t["why"].startswith("drift")]
    assert sorted(t["cutoff"] for t in drift_trainings) == sorted(retrained)
    assert result["rows_scored"] > 0 and result["days_scored"] > 7
    # Where the time went, per replayed day (not counting the scheduler's own run of yesterday).
    timings = result["timings"]
    days = [str(day) for day in date_range(dt.date.fromisoformat(FIRST), dt.date.fromisoformat(LAST))]
    assert timings["days"] == len(days) == 59 and sorted(timings["per_day"]) == days
    assert timings["stages"]["feature_ingestion"]["runs"] == len(days)
    assert "s per replayed day" in summary and "per chunk (driver wait, s):" in summary


def test_a_replay_of_the_same_history_decides_what_the_recorded_one_did(replayed) -> None:  # type: ignore[no-untyped-def]
    result = decisions(replayed[0])
    if os.environ.get("MLLOOP_RECORD_REPLAY") == "1":
        EXPECTED.parent.mkdir(exist_ok=True)
        EXPECTED.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        recorded = EXPECTED.relative_to(ROOT)
        pytest.fail(f"recorded {recorded}: review it, commit it, then run again without MLLOOP_RECORD_REPLAY")
    expected = json.loads(EXPECTED.read_text())
    assert result["trainings"] == expected["trainings"]
    assert result["champion"] == expected["champion"]
    assert result["drift_checks"] == expected["drift_checks"]
    assert (result["rows_scored"], result["days_scored"]) == (expected["rows_scored"], expected["days_scored"])
