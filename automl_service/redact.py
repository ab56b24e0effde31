"""Secret scrubbing for every text the service shows: log lines, health answers, errors.

``scrub`` cleans one string; ``scrub_value`` walks a JSON-like value (dicts, lists,
tuples) and cleans every string in it; ``secret_values`` collects the literal secrets of
a settings model so that a secret echoed verbatim is redacted even where no pattern would
recognise it. Pure: no logging, no I/O, no imports of the service's other modules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

REDACTED = "***"

# Each pattern keeps its first group (the key) and replaces the secret after it.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Connection-string and key=value secrets (Azure Storage, Service Bus, SQL, OAuth).
    (
        re.compile(
            r"(?i)\b((?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|"
            r"client_secret|ClientSecret)[\"']?\s*[=:]\s*)(?:\"[^\"]*\"|'[^']*'|[^;\s\"'<>]+)"
        ),
        r"\1" + REDACTED,
    ),
    # Secrets in query strings: SAS signatures, tokens, API keys.
    (
        re.compile(
            r"(?i)\b((?:sig|signature|token|access_token|refresh_token|id_token|"
            r"api[-_]?key|subscription-key)=)[^&\s\"'<>;]+"
        ),
        r"\1" + REDACTED,
    ),
    # Authorization headers.
    (re.compile(r"(?i)\b(Bearer|Basic|SharedKey)\s+[A-Za-z0-9\-._~+/:]+=*"), r"\1 " + REDACTED),
    # Passwords in URLs: scheme://user:password@host.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
    # Bare JSON Web Tokens.
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), REDACTED),
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret we can recognise replaced by ``***``.

    Recognised: connection-string keys (``AccountKey=``, ``SharedAccessSignature=``,
    ``Password=``...), query-string signatures and tokens (``sig=``, ``token=``...),
    ``Bearer``/``Basic`` credentials, passwords in URLs, JSON Web Tokens, and any of the
    literal ``secrets`` given (e.g. the values of the settings' ``SecretStr`` fields).
    """
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub_value(value: Any, secrets: Iterable[str] = ()) -> Any:
    """``value`` with every string in it scrubbed, nested dicts, lists and tuples included
    (a tuple comes back as a list, as JSON would have it); keys and other values as they
    are."""
    known = tuple(s for s in secrets if s)

    def clean(item: Any) -> Any:
        if isinstance(item, str):
            return scrub(item, known)
        if isinstance(item, dict):
            return {key: clean(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [clean(inner) for inner in item]
        return item

    return clean(value)


def secret_values(model: BaseModel) -> list[str]:
    """The values of every ``SecretStr`` field in ``model`` and its nested models.

    Pass them to ``scrub`` (or ``HealthServer(secrets=...)``, ``configure_logging``) so
    that a secret echoed verbatim in an error is redacted even where no pattern would
    recognise it.
    """
    found: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            found.extend(secret_values(value))
    return [s for s in found if s]


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its user info, and the user name and password it carried.

    ``http://user:p%40ss@host/x`` gives ``("http://host/x", "user", "p@ss")``; a URL
    without user info comes back unchanged with ``(None, None)``.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    bare = urlunsplit(parts._replace(netloc=host))
    return bare, unquote(user) or None, unquote(password) or None
