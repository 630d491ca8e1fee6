"""How many CPU threads model fitting and prediction may use.

Kept apart from training and scoring so both (and the benchmarks) apply the same cap.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mlloop.settings import get_settings


@contextmanager
def compute_threads() -> Iterator[None]:
    """Cap the OpenMP/BLAS threads of fitting and predicting (``MLLOOP_TRAINING_THREADS``, default 1).

    Measured on the project's 2-vCPU machines: HistGradientBoosting on 6k rows fits in 0.2 s with one
    thread and 4.5 s with two (14 s inside a busy Airflow task process); on 100k rows 1.2 s vs 7.8 s.
    OpenMP threads that spin-wait for cores other processes hold cost more than they bring, and an
    Airflow worker runs several tasks at once. Raise it on dedicated many-core workers.
    """
    from threadpoolctl import threadpool_limits

    threads = get_settings().training_threads
    with threadpool_limits(limits=max(threads, 1)):
        yield
