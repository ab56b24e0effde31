"""The command line: help, input errors, exit codes, submit and status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from automl_service.cli import build_parser

COMMANDS = ["worker", "drain", "submit", "status", "demo", "health", "report", "serve"]


def cli(
    tmp_path: Path, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOML_SERVICE_")}
    environ["AUTOML_SERVICE_LOCAL__DATA_DIR"] = str(tmp_path / "data")
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "automl_service", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


@pytest.mark.process
def test_every_command_has_help(tmp_path: Path) -> None:
    """`--help` works for the program and every command, and names the command."""
    top = cli(tmp_path, "--help")
    assert top.returncode == 0
    for command in COMMANDS:
        assert command in top.stdout
        sub = cli(tmp_path, command, "--help")
        assert sub.returncode == 0, sub.stderr
        assert f"automl-service {command}" in sub.stdout


def test_parser_knows_exactly_the_documented_commands() -> None:
    """The parser's commands are the documented ones."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices is not None
    assert sorted(sub.choices) == sorted(COMMANDS)


@pytest.mark.process
def test_submit_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    """An invalid request is refused before it reaches the queue."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"task": "classification", "training_data": "sample:iris"}))
    done = cli(tmp_path, "submit", str(bad))
    assert done.returncode == 2
    assert "target_column_name: Field required" in done.stderr
    missing = cli(tmp_path, "submit", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    listed = cli(tmp_path, "status", "--json")
    assert json.loads(listed.stdout) == []


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"a":' * 5000, "nests 5000 levels"),
        (b"1" * 5000, "5000-digit number"),
        (b'{"task": "\xff"}', "not UTF-8"),
    ],
    ids=["deep", "digits", "bad-utf8"],
)
@pytest.mark.process
def test_submit_refuses_hostile_bodies_with_a_reason(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    """Bodies that break the JSON decoder get a one-line error and exit 2, no traceback."""
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    done = cli(tmp_path, "submit", str(bad))
    assert done.returncode == 2
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr and "bad settings" not in done.stderr


@pytest.mark.process
def test_submit_from_stdin_then_status(tmp_path: Path) -> None:
    """`submit -` enqueues from standard input and prints the id; `status` finds it."""
    body = {
        "task": "regression",
        "training_data": "sample:diabetes",
        "target_column_name": "target",
    }
    done = cli(tmp_path, "submit", "-", stdin=json.dumps(body))
    assert done.returncode == 0, done.stderr
    request_id = done.stdout.strip()
    assert request_id.startswith("req-")

    shown = cli(tmp_path, "--json", "status", request_id)
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["state"] == "received"
    listed = cli(tmp_path, "status")
    assert request_id in listed.stdout
    unknown = cli(tmp_path, "status", "req-unknown")
    assert unknown.returncode == 2


@pytest.mark.process
def test_bad_settings_exit_2(tmp_path: Path) -> None:
    """A malformed setting stops the service with exit code 2 and says which."""
    done = cli(tmp_path, "status", AUTOML_SERVICE_WORKER__MAX_FAILURES="many")
    assert done.returncode == 2
    assert "max_failures" in done.stderr
    missing = cli(tmp_path, "--settings", str(tmp_path / "none.toml"), "status")
    assert missing.returncode == 2


@pytest.mark.process
def test_drain_on_an_empty_queue_exits_0(tmp_path: Path) -> None:
    """A scheduled run with nothing to do ends at once with exit code 0."""
    done = cli(tmp_path, "drain")
    assert done.returncode == 0, done.stderr
