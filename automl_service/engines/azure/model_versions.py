"""Pure choices among a registered model's versions on Azure ML: the latest, the holder
of an alias (a tag, see ``tags.alias_tag``), and the versions an alias moves away from."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

#: One listed version: its number and its tags.
Listed = tuple[str, Mapping[str, str]]


def version_key(version: str) -> tuple[int, int | str]:
    """Numeric versions in numeric order, before any other, which sort as text."""
    return (0, int(version)) if version.isdigit() else (1, version)


def latest_version(versions: Iterable[str]) -> str | None:
    """The highest version number, or None for none."""
    return max(versions, key=version_key, default=None)


def _given_at(value: str | None) -> float:
    """When an alias tag was given (its value), -inf when unreadable."""
    try:
        given = float(value) if value is not None else -math.inf
    except ValueError:
        return -math.inf
    return given if math.isfinite(given) else -math.inf


def alias_holder(listed: Iterable[Listed], tag: str) -> str | None:
    """The version holding the alias whose tag key is ``tag``: of the versions tagged
    with it, the one given it last (then the highest version); None when none is."""
    tagged = [(_given_at(tags.get(tag)), version_key(v), v) for v, tags in listed if tag in tags]
    return max(tagged)[2] if tagged else None


def holders_to_clear(listed: Iterable[Listed], tag: str, keep: str) -> list[str]:
    """The versions other than ``keep`` still tagged with the alias ``tag``."""
    return sorted((v for v, tags in listed if tag in tags and v != keep), key=version_key)
