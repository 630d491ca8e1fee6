"""The Feast objects of every use case, built from its spec: the spec is the one source of truth.

``feature_repo/use_cases.py`` puts what :func:`repo_definitions` returns into its module namespace,
where ``feast apply`` (the CLI and :func:`mlloop.feature_store.apply_registry`) finds them. Per spec
it builds the entity (``entity``), the ``FileSource`` over the partitions ingestion writes, the
feature view (``features``) and the feature service (``model.feature_service``), named and typed as
the hand-written files of the shipped use cases were.

A use case that needs Feast objects the spec cannot express (an on-demand view, several views)
keeps a hand-written ``feature_repo/<name>.py``; nothing is generated for it, and
:func:`check_handwritten` compares what the file defines with the spec, failing with one message
that names both files and the fields that disagree. Any other Python file Feast would import from
the repo is refused: it would register objects no spec knows about.

Feast is imported inside functions, as everywhere in the core.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mlloop.settings import Settings, get_settings
from mlloop.spec import SpecError, UseCaseSpec, load_specs

if TYPE_CHECKING:
    from feast import Entity, FeatureService, FeatureView, FileSource

GENERATED_MODULE = "use_cases.py"
"""The repo file that exposes the generated objects; every other repo file is a hand-written one."""


class FeastDefinitionError(SpecError):
    """A file in the feature repo disagrees with a spec, or Feast would import a file no spec owns."""


@dataclass(frozen=True)
class UseCaseFeastObjects:
    """What one spec becomes in Feast."""

    entity: Entity
    source: FileSource
    view: FeatureView
    service: FeatureService

    def by_attribute(self, use_case: str) -> dict[str, object]:
        """Module attribute names for ``feature_repo/use_cases.py``, unique across use cases."""
        return {
            f"{use_case}__entity": self.entity,
            f"{use_case}__source": self.source,
            f"{use_case}__feature_view": self.view,
            f"{use_case}__feature_service": self.service,
        }


def feast_type(dtype: str) -> Any:
    """The Feast field type of a spec column dtype."""
    from feast import types

    return {
        "int64": types.Int64,
        "float64": types.Float64,
        "string": types.String,
        "bool": types.Bool,
        "datetime": types.UnixTimestamp,
    }[dtype]


def entity_value_type(dtype: str) -> Any:
    from feast import ValueType

    return {"int64": ValueType.INT64, "string": ValueType.STRING}[dtype]


def build(spec: UseCaseSpec, settings: Settings | None = None) -> UseCaseFeastObjects:
    """Entity, source, feature view and feature service of one use case, from its spec alone."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource
    from feast.data_format import ParquetFormat

    from mlloop.feature_store import feature_source_path

    tags = {"use_case": spec.name}
    view_name = spec.features.feature_view
    entity = Entity(
        name=spec.entity.name,
        join_keys=[spec.entity.join_key],
        value_type=entity_value_type(spec.entity.dtype),
        description=spec.entity.description,
    )
    # Daily partitions written by the <name>__feature_ingestion DAG (validated rows only).
    source = FileSource(
        name=f"{spec.name}_{view_name}_source",
        path=feature_source_path(spec.name, view_name, settings),
        file_format=ParquetFormat(),
        timestamp_field=spec.raw.timestamp_column,
    )
    view = FeatureView(
        name=view_name,
        entities=[entity],
        ttl=dt.timedelta(days=spec.features.ttl_days),
        schema=[
            Field(name=name, dtype=feast_type(column.dtype), description=column.description)
            for name, column in spec.features.columns.items()
        ],
        online=True,
        source=source,
        description=spec.features.description,
        tags=tags,
    )
    # The features this model version reads; a model that needs other features gets a new service.
    service = FeatureService(name=spec.model.feature_service, features=[view], tags=tags)
    return UseCaseFeastObjects(entity, source, view, service)


def _objects(module: ModuleType, kind: type[Any]) -> dict[str, Any]:
    found: list[Any] = [getattr(module, attr) for attr in dir(module)]
    return {obj.name: obj for obj in found if isinstance(obj, kind)}


def handwritten_mismatches(spec: UseCaseSpec, module: ModuleType, settings: Settings | None = None) -> list[str]:
    """Where the objects a hand-written repo file defines disagree with ``spec``: ``field '<path>': why``."""
    from feast import Entity, FeatureService, FeatureView

    from mlloop.feature_store import feature_source_path

    problems: list[str] = []

    def mismatch(field: str, why: str) -> None:
        problems.append(f"field '{field}': {why}")

    entity = _objects(module, Entity).get(spec.entity.name)
    if entity is None:
        mismatch("entity.name", f"the file defines no Entity named '{spec.entity.name}'")
    else:
        if entity.join_key != spec.entity.join_key:
            mismatch("entity.join_key", f"the spec says '{spec.entity.join_key}', the Entity has '{entity.join_key}'")
        if entity.value_type != entity_value_type(spec.entity.dtype):
            mismatch("entity.dtype", f"the spec says {spec.entity.dtype}, the Entity has {entity.value_type.name}")

    view_name = spec.features.feature_view
    view = _objects(module, FeatureView).get(view_name)
    if view is None:
        mismatch("features.feature_view", f"the file defines no FeatureView named '{view_name}'")
    else:
        if spec.entity.name not in view.entities:
            mismatch("entity.name", f"feature view '{view_name}' is keyed by {view.entities}, not '{spec.entity.name}'")
        schema = {f.name: f.dtype for f in view.schema if f.name != spec.entity.join_key}
        missing = [c for c in spec.features.columns if c not in schema]
        extra = [c for c in schema if c not in spec.features.columns]
        if missing or extra:
            mismatch(
                "features.columns",
                f"feature view '{view_name}' lacks {missing} and has {extra} that the spec does not list",
            )
        for name, column in spec.features.columns.items():
            if name in schema and schema[name] != feast_type(column.dtype):
                mismatch(f"features.columns.{name}.dtype", f"the spec says {column.dtype}, the view has {schema[name]}")
        ttl = dt.timedelta(days=spec.features.ttl_days)
        if view.ttl != ttl:
            mismatch("features.ttl_days", f"the spec says {spec.features.ttl_days}, the view's ttl is {view.ttl}")
        source = view.batch_source
        expected_path = feature_source_path(spec.name, view_name, settings)
        if getattr(source, "path", None) != expected_path:
            mismatch(
                "features.feature_view",
                f"the view's source reads {getattr(source, 'path', source)!r}, but ingestion writes {expected_path!r} "
                f"(use feature_source_path('{spec.name}', '{view_name}'))",
            )
        if source is not None and source.timestamp_field != spec.raw.timestamp_column:
            mismatch(
                "raw.timestamp_column",
                f"the spec says '{spec.raw.timestamp_column}', the source's timestamp_field is "
                f"'{source.timestamp_field}'",
            )

    service = _objects(module, FeatureService).get(spec.model.feature_service)
    if service is None:
        mismatch("model.feature_service", f"the file defines no FeatureService named '{spec.model.feature_service}'")
    else:
        served = {f.name for projection in service.feature_view_projections for f in projection.features}
        for kind in ("numeric_features", "categorical_features"):
            unserved = [f for f in getattr(spec.model, kind) if f not in served]
            if unserved:
                mismatch(f"model.{kind}", f"service '{service.name}' does not serve {unserved}")
    return problems


def check_handwritten(spec: UseCaseSpec, module: ModuleType, spec_path: Path, settings: Settings | None = None) -> None:
    """Raise one :class:`FeastDefinitionError` naming both files and every field that disagrees."""
    problems = handwritten_mismatches(spec, module, settings)
    if problems:
        raise FeastDefinitionError(
            f"{module.__file__} disagrees with the use-case spec {spec_path}: " + "; ".join(problems)
        )


def _repo_module(path: Path) -> ModuleType:
    """The module Feast imports for ``path``: a top-level module named after the file (Feast runs from
    the repo folder). Loaded from that file and registered under that name, so that Feast's own import,
    before or after this one, yields the same module and the same objects (Feast skips an object it
    has seen, but registers an equal copy twice)."""
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == path.resolve():
            return module
    loader_spec = importlib.util.spec_from_file_location(path.stem, path)
    if loader_spec is None or loader_spec.loader is None:
        raise FeastDefinitionError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[path.stem] = module
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[path.stem]
        raise
    return module


def repo_python_files(repo: Path) -> list[Path]:
    """The Python files ``feast apply`` imports from ``repo`` (Feast's own rule, ``.feastignore`` included)."""
    from feast.repo_operations import get_repo_files

    return [Path(p) for p in get_repo_files(repo.resolve())]


def repo_definitions(repo: Path, settings: Settings | None = None) -> dict[str, object]:
    """The generated Feast objects of every spec without a hand-written file, by module attribute name.

    Checks, at the moment Feast loads the repo, that every hand-written file agrees with its spec and
    that Feast imports no file that belongs to no use case.
    """
    settings = settings or get_settings()
    folder = settings.use_cases_dir
    if not folder.is_dir():
        # An empty registry would be applied, deleting every use case's objects from it.
        raise FeastDefinitionError(f"the use-case folder {folder} (MLLOOP_USE_CASES_DIR) is not a directory")
    specs = {spec.name: spec for spec in load_specs(folder)}
    handwritten: dict[str, Path] = {}
    for path in repo_python_files(repo):
        if path.name == GENERATED_MODULE:
            continue
        if path.parent.resolve() != repo.resolve() or path.stem not in specs:
            raise FeastDefinitionError(
                f"{path}: Feast imports every Python file of {repo} and would register what this one defines, "
                f"but no use-case spec in {folder} is named '{path.stem}'. A use case's hand-written Feast "
                f"definitions go in {repo}/<name>.py next to {folder}/<name>.yaml; anything else goes outside "
                f"the repo or in a folder listed in {repo}/.feastignore"
            )
        handwritten[path.stem] = path
    definitions: dict[str, object] = {}
    for name, spec in specs.items():
        if name in handwritten:
            check_handwritten(spec, _repo_module(handwritten[name]), folder / f"{name}.yaml", settings)
            continue
        definitions.update(build(spec, settings).by_attribute(name))
    return definitions
