"""Benchmarks: each stage of the loop next to its raw limit, measured in the same run.

    python -m bench                 # default sizes (minutes)
    python -m bench --size smoke    # tiny sizes, as in CI: proves the suite still runs
    python -m bench --size full     # the sizes the targets are stated at (long)
    python -m bench --only B1 B4    # a subset

Results: bench/results/latest.json (machine-readable) and bench/RESULTS.md (the table the README
links). Ratios, not absolute times: these machines are noisy, so every comparison runs both
sides back to back on the same data.
"""
