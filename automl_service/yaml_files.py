"""Reading the YAML files users bring (an Azure ML AutoML job, an MLTable file) safely.

Only YAML's plain data is read (``yaml.SafeLoader``), without aliases: a few lines of
``&a`` / ``*a`` can otherwise expand into gigabytes.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import Node

from .errors import InvalidRequest
from .request import decode_text

#: Largest YAML file read, in bytes.
MAX_YAML_BYTES = 256 * 1024


class _NoAliases(yaml.SafeLoader):
    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            raise InvalidRequest(f"{self.name}: YAML aliases (*name) are not accepted")
        return super().compose_node(parent, index)


def load_yaml(text: bytes, name: str) -> Any:
    """The data of one YAML document, or InvalidRequest saying what is wrong with it."""
    loader = _NoAliases(decode_text(text, name, MAX_YAML_BYTES))
    loader.name = name
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"{name} is not valid YAML: {exc}") from None
    finally:
        loader.dispose()
