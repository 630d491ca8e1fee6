"""Seeded synthetic data generators, one module per bundled use case.

A generator is a function ``(day, **params) -> GeneratedBatch`` named in the use-case spec's
``generator.callable``. It must be a pure function of its arguments so any day can be regenerated
(labels for day d are computed from the observations of day d - delay without keeping state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class GeneratedBatch:
    """One day's landing: raw observations, label events that arrived that day, injected faults."""

    observations: pd.DataFrame
    labels: pd.DataFrame
    injected_bad_rows: dict[int, list[str]] = field(default_factory=dict)
    """Row position in ``observations`` -> the kinds of corruption injected into that row."""
