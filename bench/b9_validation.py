"""B9: Great Expectations validation rows/s vs the same rules as vectorized pandas checks.

Both sides get the same generated batch (with injected faults) and must find the same bad rows;
each runs in a fresh interpreter after its imports, so only the validation itself is timed.
"""

from __future__ import annotations

from bench.common import Result, run_python

CHILD = """
import datetime as dt, json, time
import numpy as np, pandas as pd, pyarrow as pa
from mlloop.generators.credit_risk import generate_day
from mlloop.ingestion import day_bounds
from mlloop.spec import get_spec
from mlloop.validation import ROW_NUMBER, observations_contract, validate_table
import great_expectations  # noqa: F401  (import cost is not what B9 measures)

rows = {rows}
day = dt.date(2026, 3, 10)
batch = generate_day(day, rows_per_day=rows, n_customers=rows, bad_row_share=0.01)
table = pa.Table.from_pandas(batch.observations, preserve_index=False)
spec = get_spec("credit_risk")
contract = observations_contract(spec)
start, end = day_bounds(day)

def pandas_rules(frame):
    bad = np.zeros(len(frame), dtype=bool)
    for name, col in contract.columns.items():
        s = frame[name]
        if not col.nullable:
            bad |= s.isna().to_numpy()
        if col.min is not None:
            bad |= (s < col.min).fillna(False).to_numpy(dtype=bool)
        if col.max is not None:
            bad |= (s > col.max).fillna(False).to_numpy(dtype=bool)
        if col.allowed is not None:
            bad |= (~s.isin(col.allowed) & s.notna()).to_numpy()
    ts = frame[contract.timestamp_column]
    bad |= ((ts < pd.Timestamp(start)) | (ts >= pd.Timestamp(end))).to_numpy()
    key = frame[list(contract.unique)]
    bad |= key.duplicated(keep=False).to_numpy() & key.notna().all(axis=1).to_numpy()
    return set(np.flatnonzero(bad).tolist())

# warm both paths once on a small slice
validate_table(table.slice(0, 1000), contract, source="warm", interval=(start, end))
t0 = time.perf_counter(); result = validate_table(table, contract, source="bench", interval=(start, end))
gx = time.perf_counter() - t0
t0 = time.perf_counter(); frame = table.to_pandas(); bad_pandas = pandas_rules(frame)
raw = time.perf_counter() - t0
bad_gx = set(result.quarantined[ROW_NUMBER].tolist())
print(json.dumps({{"gx": gx, "pandas": raw, "same": bad_gx == bad_pandas, "bad": len(bad_gx),
                  "injected": len(batch.injected_bad_rows)}}))
"""


def run(size: str, rows: int) -> list[Result]:
    out = run_python(CHILD.format(rows=rows))
    gx_rate, pandas_rate = rows / out["gx"], rows / out["pandas"]
    return [
        Result(
            "B9",
            f"GX validation of {rows:,} rows (rows/s)",
            size,
            gx_rate,
            pandas_rate,
            "rows/s",
            gx_rate / pandas_rate,
            "report",
            None,
            notes=(
                f"GX {out['gx']:.2f} s vs pandas {out['pandas']:.2f} s; same bad rows: {out['same']} "
                f"({out['bad']} found, {out['injected']} injected); peak RSS {out['peak_rss_mb']} MB"
            ),
            extra=out,
        )
    ]
