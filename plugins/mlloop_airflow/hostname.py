"""The host name Airflow records on task instances, overridable per worker process.

Airflow stores the result of ``[core] hostname_callable`` (default: the machine's FQDN) as each task
instance's ``hostname``, which the UI and REST API show as "where did this run". Several Celery
workers on one machine (``mlloop_cli.scaled_local``) would all report the same FQDN; pointing the
setting here lets each worker name itself::

    AIRFLOW__CORE__HOSTNAME_CALLABLE=mlloop_airflow.hostname.worker_hostname
    MLLOOP_WORKER_HOSTNAME=worker-a

Containers and Kubernetes pods have their own host names: leave the setting at its default there.
"""

from __future__ import annotations

import socket

from mlloop.settings import get_settings


def worker_hostname() -> str:
    """``MLLOOP_WORKER_HOSTNAME`` if set, else the FQDN (Airflow's own default)."""
    return get_settings().worker_hostname or socket.getfqdn()
