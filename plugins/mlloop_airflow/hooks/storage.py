"""Storage root access through an Airflow connection (or none, for a local folder)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from mlloop.storage import Storage


class StorageHook(BaseHook):
    """Hands out the :class:`mlloop.storage.Storage` of the configured storage root, once it can be listed.

    The root and connection come from ``MLLOOP_STORAGE_ROOT`` / ``MLLOOP_STORAGE_CONN_ID`` unless
    given. The filesystem is Airflow's ``ObjectStoragePath`` one, so an ``s3://`` root authenticates
    with the Amazon provider's connection (``aws_default`` style) and a local root needs none.

    :param root: storage root URL; defaults to the ``MLLOOP_STORAGE_ROOT`` setting.
    :param conn_id: Airflow connection for the root's filesystem; defaults to ``MLLOOP_STORAGE_CONN_ID``.
    """

    conn_name_attr = "conn_id"
    hook_name = "mlloop storage root"

    def __init__(self, root: str | None = None, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.conn_id = conn_id

    @cached_property
    def storage(self) -> Storage:
        from airflow.sdk import ObjectStoragePath

        from mlloop.settings import get_settings
        from mlloop.storage import Storage

        settings = get_settings()
        root = self.root or settings.storage_root
        if not self.root and not settings.storage_root_configured:
            settings.prepare_local_paths()  # the embedded default (under MLLOOP_HOME) creates its own folder
        conn_id = self.conn_id or settings.storage_conn_id
        path = ObjectStoragePath(root, conn_id=conn_id)
        storage = Storage.from_filesystem(root, path.fs)
        # A configured root (a mount, a bucket) is never created behind the operator's back: missing
        # or unreachable, it is an outage, never "not landed yet".
        storage.check_available()
        return storage

    def get_conn(self) -> Storage:
        return self.storage
