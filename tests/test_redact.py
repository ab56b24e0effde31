"""Secret scrubbing: recognised credentials and literal secrets never leave in any text."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, SecretStr

from automl_service.redact import REDACTED, scrub, scrub_value, secret_values, split_credentials


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc+/12==;EndpointSuffix=x",
            "abc+/12==",
        ),
        ("Endpoint=sb://ns/;SharedAccessKeyName=root;SharedAccessKey=k3y+val=", "k3y+val="),
        ("BlobEndpoint=https://a/;SharedAccessSignature=sv=2020&ss=q&sig=Zm9v%3D", "Zm9v%3D"),
        (
            "https://a.queue.core.windows.net/q?sv=2020-08-04&sig=c2lnbmF0dXJl&se=2030",
            "c2lnbmF0dXJl",
        ),
        ("header Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0 sent", "eyJzdWIiOi"),
        ("Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("postgresql://svc:hunter2@db.example:5432/mlflow", "hunter2"),
        ("Server=tcp:x;User ID=u;Password=p@ss;w0rd", "p@ss"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123 expired", "eyJzdWIiOiIxIn0"),
        ('{"client_secret": "s3cr3t-value"}', "s3cr3t-value"),
    ],
)
def test_scrub_removes_recognisable_secrets(text: str, secret: str) -> None:
    """scrub removes connection-string keys, signatures, tokens and URL passwords."""
    cleaned = scrub(text)
    assert secret not in cleaned
    assert "***" in cleaned


def test_scrub_keeps_harmless_text() -> None:
    """scrub leaves text without secrets as it was."""
    text = "queue automl-requests at https://acct.queue.core.windows.net/ is unreachable"
    assert scrub(text) == text


def test_scrub_value_walks_nested_json() -> None:
    """Every string in nested dicts, lists and tuples is scrubbed; keys and numbers stay."""
    value = {
        "error": "AccountKey=abc123;x",
        "rows": [{"note": "said s3cr3t twice: s3cr3t"}, 4, None],
        "pair": ("Bearer tok.en", 1.5),
    }
    assert scrub_value(value, ["s3cr3t"]) == {
        "error": f"AccountKey={REDACTED};x",
        "rows": [{"note": f"said {REDACTED} twice: {REDACTED}"}, 4, None],
        "pair": [f"Bearer {REDACTED}", 1.5],
    }


def test_secret_values_finds_nested_secret_fields() -> None:
    """Every non-empty SecretStr of a model and its nested models is collected."""

    class Inner(BaseModel):
        key: SecretStr = SecretStr("inner-key")
        empty: SecretStr = SecretStr("")

    class Outer(BaseModel):
        name: str = "plain"
        password: SecretStr = SecretStr("outer-pass")
        inner: Inner = Inner()

    assert sorted(secret_values(Outer())) == ["inner-key", "outer-pass"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:p%40ss@host:5000/x?y=1", ("http://host:5000/x?y=1", "user", "p@ss")),
        ("https://token@host", ("https://host", "token", None)),
        ("http://host:5000", ("http://host:5000", None, None)),
        ("sqlite:////data/mlflow.db", ("sqlite:////data/mlflow.db", None, None)),
    ],
)
def test_credentials_are_split_off_urls(
    url: str, expected: tuple[str, str | None, str | None]
) -> None:
    """User info comes off a URL, decoded; URLs without it are returned as they are."""
    assert split_credentials(url) == expected
