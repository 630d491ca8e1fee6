"""Moving alias ``champion``: promotion, recorded rejection and rollback, never blindly.

The registry's aliases are last-writer-wins with no compare-and-set: setting ``champion``
overwrites whatever another run set a moment ago. So every move states which champion it expects to
replace, re-reads the alias right before writing, refuses (:class:`ChampionChanged`) if it moved, and
reads it back afterwards. That re-check is only atomic if no other writer runs between the read and
the write: the Airflow layer runs every alias-moving task in one pool of a single slot
(``mlloop_airflow.pools.CHAMPION_POOL``), which makes check-and-set a critical section.
The replaced champion keeps alias ``previous-champion``, which is what rollback restores.

Decisions are written as model-version tags (``promotion.decision`` = promoted / rejected, with
reasons) so the registry itself shows why a version is or is not champion.

Every move also records, in data time, from which day the new champion serves (registered-model tag
``champion.history``, a JSON list of ``{"from_day", "version"}`` in the order of the moves). A version
promoted from a challenger with training cutoff C serves from day C+1: it has seen day C's labels,
so C is the last day it must not score. A rollback serves from the day after the newest ingested
day (the first day not yet scored). :func:`champion_at` answers "which version was champion at the
end of day D", which is what a backfilled scoring day uses (``MODEL_POLICIES``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlloop import seams
from mlloop import tags as tag_keys
from mlloop.registry import CHAMPION, PREVIOUS_CHAMPION, ModelNotFound, aliases, get_alias, get_version

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlloop.spec import UseCaseSpec

log = logging.getLogger(__name__)

CHAMPION_AT_DAY = "champion_at_day"
CURRENT = "current"
MODEL_POLICIES = (CHAMPION_AT_DAY, CURRENT)
"""How a scoring day picks its model: the version that was champion at the end of that day (data
time, the default: a backfill of last month scores each day as it was served), or the champion now."""
PROMOTED = "promoted"
REJECTED = "rejected"


class ChampionChanged(RuntimeError):
    """Alias ``champion`` is not where the caller's decision assumed it was."""


class RollbackRefused(ValueError):
    """The requested rollback target does not exist or must not serve (it was rejected)."""


@dataclass(frozen=True)
class AliasMove:
    """What a promotion or rollback did to the aliases (``moved`` False: it was already so)."""

    model: str
    champion: str
    previous_champion: str | None
    moved: bool

    def describe(self) -> str:
        if not self.moved:
            return f"{self.model}: v{self.champion} already is the champion; aliases unchanged"
        before = f"v{self.previous_champion}" if self.previous_champion else "no champion"
        kept = f"; {PREVIOUS_CHAMPION} -> v{self.previous_champion}" if self.previous_champion else ""
        return f"{self.model}: {CHAMPION} {before} -> v{self.champion}{kept}"

    def as_dict(self) -> dict[str, object]:
        return {"model": self.model, "champion": self.champion, "previous_champion": self.previous_champion}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def current_champion(client: MlflowClient, model: str) -> str | None:
    ref = get_alias(client, model, CHAMPION)
    return ref.version if ref else None


def set_version_tags(client: MlflowClient, model: str, version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(model, version, key, value)


def record_gate(client: MlflowClient, model: str, version: str, tags: dict[str, str]) -> None:
    """Write an evaluation's ``gate.*`` tags, removing those of an earlier evaluation of the version
    (a re-evaluated version must not keep the reasons of a gate it now passes)."""
    stale = [
        k for k in get_version(client, model, version).tags if k.startswith(tag_keys.GATE_PREFIX) and k not in tags
    ]
    for key in stale:
        client.delete_model_version_tag(model, version, key)
    set_version_tags(client, model, version, tags)


def _move(client: MlflowClient, model: str, version: str, expected: str | None, what: str) -> AliasMove:
    """Point ``champion`` at ``version`` if it still points at ``expected``; keep the old one addressable."""
    current = current_champion(client, model)
    if current != expected:
        raise ChampionChanged(
            f"{model}: alias {CHAMPION} points at {_v(current)}, but this {what} was decided against {_v(expected)}; "
            "another promotion or rollback moved it meanwhile. Nothing was changed."
        )
    if current == version:
        return AliasMove(model, version, None, moved=False)
    seams.before_alias_move(model, version)  # a no-op unless a test deployment installed hooks
    if current is not None:
        client.set_registered_model_alias(model, PREVIOUS_CHAMPION, current)
    client.set_registered_model_alias(model, CHAMPION, version)
    after = aliases(client, model).get(CHAMPION)
    if after != version:
        raise ChampionChanged(
            f"{model}: alias {CHAMPION} was moved to {_v(after)} by another writer during this {what}"
        )
    return AliasMove(model, version, current, moved=True)


def champion_history(client: MlflowClient, model: str) -> list[tuple[dt.date, str]]:
    """``(from_day, version)`` of every recorded champion move, in the order they were made."""
    import json

    tags = client.get_registered_model(model).tags or {}
    try:
        entries = json.loads(tags.get(tag_keys.HISTORY) or "[]")
        return [(dt.date.fromisoformat(e["from_day"]), str(e["version"])) for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{model}: tag {tag_keys.HISTORY} is not a valid champion history ({exc})") from None


def record_serving(client: MlflowClient, model: str, version: str, from_day: dt.date) -> None:
    """Append ``version serves from from_day`` to the champion history (and tag the version)."""
    import json

    entries = [{"from_day": d.isoformat(), "version": v} for d, v in champion_history(client, model)]
    entries.append({"from_day": from_day.isoformat(), "version": str(version)})
    client.set_registered_model_tag(model, tag_keys.HISTORY, json.dumps(entries))
    client.set_model_version_tag(model, version, tag_keys.SERVES_FROM, from_day.isoformat())


def champion_at(history: list[tuple[dt.date, str]], day: dt.date) -> str | None:
    """The version that was champion at the end of ``day``: of the moves serving from ``day`` or
    earlier, the one with the latest ``from_day`` (the later move on a tie). None before the first."""
    serving = [(from_day, order, version) for order, (from_day, version) in enumerate(history) if from_day <= day]
    return max(serving)[2] if serving else None


def serving_day(training_cutoff: str | None) -> dt.date | None:
    """The first data day a version promoted from a challenger serves: the day after its training
    cutoff (the ``training_cutoff`` tag; it has seen that day's labels). None without a readable one."""
    try:
        return dt.date.fromisoformat(str(training_cutoff)) + dt.timedelta(days=1)
    except ValueError:
        return None


def model_for_day(history: list[tuple[dt.date, str]], day: dt.date, current: str) -> tuple[str, str]:
    """The version policy ``champion_at_day`` scores ``day`` with, and why (for the log and lineage).

    The champion at the end of ``day``; before the first recorded move, the first champion (the
    earliest data there is a model for; it has seen labels up to the day before it serves); with
    no history at all (versions promoted before the history existed), ``current``.
    """
    version = champion_at(history, day)
    if version is not None:
        return version, f"champion at the end of {day}"
    if not history:
        return current, f"no champion history recorded: the current champion (for {day})"
    first_day, first = min(history)
    return first, f"{day} precedes the first champion, which serves from {first_day}: using it"


def _v(version: str | None) -> str:
    return f"v{version}" if version else "no version"


def promote(
    client: MlflowClient,
    spec: UseCaseSpec,
    version: str,
    *,
    expected_champion: str | None,
    tags: dict[str, str] | None = None,
    serves_from: dt.date | None = None,
) -> AliasMove:
    """Make ``version`` the champion, provided the champion is still ``expected_champion``; it serves
    from data day ``serves_from`` (recorded in the champion history, if given)."""
    model = spec.registered_model_name
    get_version(client, model, version)
    move = _move(client, model, version, expected_champion, "promotion")
    if move.moved:
        set_version_tags(
            client,
            model,
            version,
            {
                tag_keys.DECISION: PROMOTED,
                tag_keys.DECIDED_AT: _now(),
                tag_keys.PREVIOUS_CHAMPION: move.previous_champion or "none",
                **(tags or {}),
            },
        )
        if serves_from is not None:
            record_serving(client, model, version, serves_from)
    log.info("%s", move.describe())
    return move


def reject(
    client: MlflowClient, spec: UseCaseSpec, version: str, reasons: list[str], tags: dict[str, str] | None = None
) -> None:
    """Record that ``version`` must not become champion, and why. Aliases are not touched."""
    text = "; ".join(reasons) or "rejected"
    set_version_tags(
        client,
        spec.registered_model_name,
        version,
        {tag_keys.DECISION: REJECTED, tag_keys.REASONS: text[:4900], tag_keys.DECIDED_AT: _now(), **(tags or {})},
    )


def rollback_target(client: MlflowClient, spec: UseCaseSpec, version: str | int | None) -> str:
    """The version a rollback restores: the one asked for, else ``previous-champion``; checked to be servable."""
    model = spec.registered_model_name
    if version in (None, ""):
        previous = get_alias(client, model, PREVIOUS_CHAMPION)
        if previous is None:
            raise RollbackRefused(
                f"{model} has no alias {PREVIOUS_CHAMPION} (no promotion has replaced a champion yet): "
                "give the version to restore explicitly"
            )
        target = previous.version
    else:
        target = str(version)
    try:
        ref = get_version(client, model, target)
    except ModelNotFound as exc:
        raise RollbackRefused(str(exc)) from None
    from mlloop.shadow import refuse_pending

    pending = refuse_pending(ref)
    if pending:
        raise RollbackRefused(f"{pending}. Choose another version.")
    if ref.tags.get(tag_keys.DECISION) == REJECTED:
        raise RollbackRefused(
            f"{model} v{target} was rejected by the promotion gate "
            f"({ref.tags.get(tag_keys.REASONS, 'no reason recorded')}); it must not serve. Choose another version."
        )
    return target


def rollback(
    client: MlflowClient,
    spec: UseCaseSpec,
    version: str | int | None,
    tags: dict[str, str] | None = None,
    serves_from: dt.date | None = None,
) -> AliasMove:
    """Point ``champion`` back at ``version`` (default: ``previous-champion``); the replaced champion
    becomes ``previous-champion``, so running rollback again undoes it. The restored version serves
    from data day ``serves_from`` (recorded in the champion history, if given)."""
    model = spec.registered_model_name
    target = rollback_target(client, spec, version)
    move = _move(client, model, target, current_champion(client, model), "rollback")
    if move.moved:
        set_version_tags(client, model, target, {tag_keys.ROLLBACK_RESTORED_AT: _now(), **(tags or {})})
        if move.previous_champion:
            set_version_tags(
                client,
                model,
                move.previous_champion,
                {tag_keys.ROLLBACK_REPLACED_AT: _now(), tag_keys.ROLLBACK_REPLACED_BY: target},
            )
        if serves_from is not None:
            record_serving(client, model, target, serves_from)
    log.info("%s", move.describe())
    return move
