"""Orders about a request already sent, carried by the request queue as messages of their
own so that any worker can carry them out: ``{"action": "cancel", "request_id": ...}``.

A message is an order when it is a JSON object with an ``action`` key; anything else is a
request for ``request.parse_request``.
"""

from __future__ import annotations

import getpass
import json
import socket
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidRequest
from .request import RequestId, describe_validation_error, load_json


class CancelOrder(BaseModel):
    """Stop the request wherever it is; it ends ``canceled`` with who asked and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["cancel"]
    request_id: RequestId
    reason: str | None = Field(None, max_length=500)
    requested_by: str | None = Field(None, max_length=200)

    @property
    def explanation(self) -> str:
        """What the canceled request's result says."""
        who = self.requested_by or "an operator"
        return f"canceled by {who}" + (f": {self.reason}" if self.reason else "")

    def to_message(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True))


def cancel_order(request_id: str, reason: str | None = None) -> CancelOrder:
    """An order to cancel ``request_id``, signed with this user and host."""
    return CancelOrder(
        action="cancel",
        request_id=request_id,
        reason=reason,
        requested_by=f"{_user()}@{socket.gethostname()}"[:200],
    )


def parse_order(text: str | bytes) -> CancelOrder | None:
    """The order the message carries, or None when it is not an order. Raises
    InvalidRequest for an order that cannot be carried out (with the reason)."""
    data = load_json(text)
    if not isinstance(data, dict) or "action" not in data:
        return None
    try:
        return CancelOrder.model_validate(data)
    except ValidationError as exc:
        reason = describe_validation_error(exc).replace("invalid request", "invalid order", 1)
        raise InvalidRequest(reason) from None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's random user)
        return "unknown"
