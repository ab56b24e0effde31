"""The fault-injection benchmark at a small size: two workers started together on a fresh
data folder, killed with their trainers three times and restarted, three requests and the
hostile bodies; nothing lost, duplicated or failed because of a kill."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
