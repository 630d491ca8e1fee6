"""The loop over landed real history, by the documented commands, twice: the same decisions.

A user's path with no generator: ``python -m mlloop.land_dataset hourly_temps`` lands a month of
the real data set shipped in ``vega_datasets``, ``mlloop replay`` runs the whole loop over it on
the embedded Airflow (its own home, port and process tree; stopped at the end). Then a second
replay of the same landed history on a fresh home must decide exactly the same: the same trainings
with the same cutoffs, the same gate decisions, the same drift verdicts and retrains, the same
champion. Nothing is mocked. Each replay prints its time breakdown (per stage and per chunk; per
day in the JSON), which ``docs/authoring.md`` quotes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlloop import tags as tag_keys
from mlloop_cli.airflow_local import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3000)]

ROOT = Path(__file__).resolve().parents[2]
USE_CASE = "hourly_temps"
# A month, not the months issue 13 asks for: a replayed day costs about 13 s of CPU-bound task time
# on a 2-core machine, so two replays of 59 days take about 30 min (docs/authoring.md, Part 3).
FIRST, LAST = "2010-01-01", "2010-01-31"


def replay(home: Path) -> tuple[dict[str, Any], str, float]:
    """Land the range and replay it on ``home``; (the --result JSON, the printed summary, seconds)."""
    env = {**os.environ, "MLLOOP_HOME": str(home), "MLLOOP_AIRFLOW_PORT": str(free_port())}
    python = sys.executable
    land = [python, "-m", "mlloop.land_dataset", USE_CASE, "--start", FIRST, "--end", LAST]
    subprocess.run(land, env=env, check=True, capture_output=True, text=True)
    result = home / "replay.json"
    command = [str(Path(python).parent / "mlloop"), "replay", "--use-case", USE_CASE, "--from", FIRST, "--to", LAST]
    started = time.monotonic()
    out = subprocess.run(
        [*command, "--result", str(result), "--stop"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return json.loads(result.read_text()), out.stdout, seconds


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict[str, Any], str, float]]:
    return [replay(tmp_path_factory.mktemp(f"replay{n}") / "mlloop") for n in (1, 2)]


def test_the_replay_trains_promotes_scores_and_checks_drift_in_data_time(replays) -> None:  # type: ignore[no-untyped-def]
    result, summary, seconds = replays[0]
    print(f"first replay: {seconds:.0f} s")
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
    assert timings["days"] == 31 and sorted(timings["per_day"]) == [f"2010-01-{n:02d}" for n in range(1, 32)]
    assert timings["stages"]["feature_ingestion"]["runs"] == 31
    assert "s per replayed day" in summary and "per chunk (driver wait, s):" in summary


def test_a_second_replay_of_the_same_history_decides_the_same(replays) -> None:  # type: ignore[no-untyped-def]
    (first, _, _), (second, summary, seconds) = replays
    print(f"second replay: {seconds:.0f} s")
    print(summary[summary.index("Time: ") : summary.index("Drift reports:")])
    assert second["trainings"] == first["trainings"]
    assert second["champion"] == first["champion"]
    assert second["drift_checks"] == first["drift_checks"]
    assert (second["rows_scored"], second["days_scored"]) == (first["rows_scored"], first["days_scored"])
