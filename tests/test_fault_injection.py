"""The fault-injection benchmark at a small size: two workers started together on a fresh
data folder, killed with their trainers three times and restarted, three requests and the
hostile bodies; nothing lost, duplicated or failed because of a kill. The same on the azure
backend, with 429 / 503 / reset connections from the queue and from Azure ML (Azurite
needed: the test skips without it, as the other Azurite tests do, and fails in CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_azurite import require_azurite

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.mark.timeout(360)
def test_kills_and_hostile_bodies_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fault_injection",
         "--requests", "3", "--kills", "3", "--workers", "2", "--slots", "2",
         "--budget", "5", "--max-trials", "3", "--kill-gap", "2", "--deadline", "240",
         "--data-dir", str(tmp_path / "data"), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=330,
    )  # fmt: skip
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    report = json.loads(out.read_text())
    assert report["missed"] == [], printed
    assert report["succeeded"] == report["requests"] == 3
    assert report["lost"] == report["duplicated_jobs"] == report["duplicated_versions"] == 0
    assert report["failed_by_kill"] == 0
    assert report["hostile_poisoned"] == report["hostile_sent"] > 0
    assert report["kills"] == 3


@pytest.mark.timeout(240)
def test_azure_faults_and_kills_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    """On the azure backend (Azurite behind a proxy that fails 15% of the calls, the Azure
    ML fake failing as many): four requests, one deploying, and the hostile bodies, with
    two workers killed three times; every request succeeds once and every hostile body is
    poisoned with a reason."""
    out = tmp_path / "report.json"
    env = {**os.environ, "AZURITE_QUEUE_BIN": require_azurite()}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fault_injection", "--backend", "azure",
         "--requests", "4", "--kills", "3", "--workers", "2", "--fault-rate", "0.15",
         "--running-polls", "2", "--kill-gap", "3", "--deadline", "180",
         "--data-dir", str(tmp_path / "data"), "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=220,
    )  # fmt: skip
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    report = json.loads(out.read_text())
    assert report["missed"] == [], printed
    assert report["succeeded"] == report["requests"] == 4
    assert report["lost"] == report["duplicated_jobs"] == report["duplicated_versions"] == 0
    assert report["failed_by_kill"] == 0
    assert report["hostile_poisoned"] == report["hostile_sent"] > 0
    assert report["kills"] == 3
    assert report["replied"] == 4 <= report["reply_messages"]
    assert sum(report["faults"]["the queue proxy"].values()) > 0, printed
    assert sum(report["faults"]["the Azure ML fake"].values()) > 0, printed
