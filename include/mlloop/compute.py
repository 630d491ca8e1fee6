"""How many CPU threads model fitting and prediction may use.

Kept apart from training and scoring so both (and the benchmarks) apply the same cap.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from mlloop.settings import get_settings


def _controller() -> Any:
    """threadpoolctl's view of the loaded OpenMP/BLAS libraries, rebuilt only after new imports.

    Building it scans every loaded shared library; per scored chunk that was 0.3 s of a 1M-row day
    (bench B2). A library is loaded by importing a module, so the view is kept while the number of
    imported modules stays the same: an OpenMP runtime loaded by a later import is still capped.
    """
    return _controller_for(len(sys.modules))


@lru_cache(maxsize=1)
def _controller_for(modules: int) -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def compute_threads() -> Iterator[None]:
    """Cap the OpenMP/BLAS threads of fitting and predicting (``MLLOOP_TRAINING_THREADS``, default 1).

    Measured on the project's 2-vCPU machines: HistGradientBoosting on 6k rows fits in 0.2 s with one
    thread and 4.5 s with two (14 s inside a busy Airflow task process); on 100k rows 1.2 s vs 7.8 s.
    OpenMP threads that spin-wait for cores other processes hold cost more than they bring, and an
    Airflow worker runs several tasks at once. Raise it on dedicated many-core workers.
    """
    threads = get_settings().training_threads
    with _controller().limit(limits=max(threads, 1)):
        yield
