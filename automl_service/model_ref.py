"""A registered model named by the user: ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidRequest


@dataclass(frozen=True)
class ModelRef:
    """A registered model: its name, and a version or an alias (neither: the latest)."""

    name: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def parse_model_ref(text: str) -> ModelRef:
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``; raises InvalidRequest otherwise."""
    name, alias = text.split("@", 1) if "@" in text else (text, None)
    name, version = name.split(":", 1) if ":" in name else (name, None)
    if not name or (version is not None and not version.isdigit()) or alias == "":
        raise InvalidRequest(f"--model {text!r}: give NAME, NAME:VERSION (a number) or NAME@ALIAS")
    if version is not None and alias is not None:
        raise InvalidRequest(f"--model {text!r}: give a version or an alias, not both")
    return ModelRef(name, version, alias)
