"""The Airflow pools the loop's DAGs need; a deployment creates them once (see ``ensure_pools``).

``mlloop_champion_moves`` (1 slot) serializes every task that moves alias ``champion`` (promotion and
rollback, of every use case): MLflow aliases have no compare-and-set, so "re-read the champion, then
move it" is only safe when no other mover runs in between. One slot makes it a critical section.

``mlloop_feast_registry`` (1 slot) serializes every Feast materialization (every use case, every
day): each one rewrites the whole Feast registry (read, add its interval, write back), so two at once
lose one's interval, and the watermark that keeps old backfills from overwriting newer online values
reads those intervals. ``FeastMaterializeOperator`` runs in it by default.
A task in a pool that does not exist is never scheduled (it waits in ``scheduled``), so a deployment
must create the pools: ``mlloop_cli.airflow_local`` does it for the embedded Airflow; elsewhere run
``airflow pools set mlloop_champion_moves 1 "<description>"`` once (e.g. in the init container).
"""

from __future__ import annotations

CHAMPION_POOL = "mlloop_champion_moves"
FEAST_REGISTRY_POOL = "mlloop_feast_registry"

POOLS: dict[str, tuple[int, str]] = {
    CHAMPION_POOL: (
        1,
        "mlloop: one alias move of 'champion' at a time (promotion, rollback); MLflow aliases have no "
        "compare-and-set. Keep at 1 slot.",
    ),
    FEAST_REGISTRY_POOL: (
        1,
        "mlloop: one Feast materialization at a time; each rewrites the whole registry (its materialized "
        "intervals). Keep at 1 slot.",
    ),
}
"""name -> (slots, description)."""
