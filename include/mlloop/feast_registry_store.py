"""A Feast file registry whose writes are atomic: readers never see half a registry.

Feast's ``FileRegistryStore`` rewrites the registry file in place. Every ``materialize`` rewrites it
(to record the materialized interval), so a task reading the registry at that moment, in another
process, can parse a truncated file: protobuf accepts it and returns a registry that simply lacks
the definitions after the cut (seen in the end-to-end loop: ``Feature view meter_profile does not
exist`` while credit_risk's materialization was writing). Here the new registry is written beside
the old one and renamed over it, which POSIX makes atomic for readers.

Used for local registry paths (``MLLOOP_FEAST_REGISTRY_STORE``, see ``mlloop.settings``); S3's PUT
is already atomic. Concurrent *writers* are serialized by the Airflow pool
``mlloop_feast_registry`` (``mlloop_airflow.pools``): atomic writes stop torn reads, not lost updates.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from feast.infra.registry.file import FileRegistryStore
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.utils import _utc_now


class AtomicFileRegistryStore(FileRegistryStore):
    def _write_registry(self, registry_proto: RegistryProto) -> None:
        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(_utc_now())
        folder = self._filepath.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{self._filepath.name}.", suffix=".tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(registry_proto.SerializeToString())
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(self._filepath)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
