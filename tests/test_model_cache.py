"""The cache of downloaded models: complete entries only, whatever happens mid-download;
and the pure choice of an Azure model's latest version and alias holder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from automl_service.engines.azure.model_cache import ModelCache
from automl_service.engines.azure.model_versions import (
    alias_holder,
    holders_to_clear,
    latest_version,
)
from automl_service.errors import InvalidRequest, PermanentError


def write_model(into: Path) -> None:
    """What ``models.download`` leaves: ``<into>/<name>/<folder>/`` with the files."""
    folder = into / "iris" / "mlflow-model"
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "model.pkl").write_bytes(b"x")


def test_an_entry_appears_only_once_its_download_is_complete(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path)
    calls: list[Path] = []

    def crashes(into: Path) -> None:
        calls.append(into)
        write_model(into)
        raise ConnectionResetError("connection lost mid-download")

    with pytest.raises(ConnectionResetError):
        cache.fill("iris", "1", crashes)
    assert cache.get("iris", "1") is None
    assert not calls[0].exists(), "the partial download is removed"

    def downloads(into: Path) -> None:
        calls.append(into)
        write_model(into)

    entry = cache.fill("iris", "1", downloads)
    assert entry == tmp_path / "iris" / "1"
    assert sorted(p.name for p in entry.iterdir()) == ["MLmodel", "model.pkl"]
    assert cache.fill("iris", "1", downloads) == entry and len(calls) == 2  # no new download
    assert [p.name for p in tmp_path.iterdir()] == ["iris"]


def test_a_crashed_processs_partial_folder_is_removed_once_stale(tmp_path: Path) -> None:
    """A partial folder left by a killed process is never an entry, and goes once stale."""
    now = [10_000.0]
    cache = ModelCache(tmp_path, clock=lambda: now[0])
    left = tmp_path / ".partial-killed"
    write_model(left)
    os.utime(left, (now[0] - 7200, now[0] - 7200))
    fresh = tmp_path / ".partial-running"
    fresh.mkdir()
    os.utime(fresh, (now[0] - 60, now[0] - 60))
    cache.fill("iris", "2", write_model)
    assert not left.exists() and fresh.exists()
    assert cache.get("iris", "2") is not None


def test_a_download_without_an_mlmodel_is_refused(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path)

    def no_model(into: Path) -> None:
        (into / "readme.txt").write_text("hi")

    with pytest.raises(PermanentError, match="no MLflow model"):
        cache.fill("iris", "1", no_model)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidRequest):
        cache.folder("../etc", "1")


def test_latest_version_and_alias_holder() -> None:
    assert latest_version(["2", "10", "9"]) == "10"
    assert latest_version([]) is None
    tag = "automl_service.alias.champion"
    listed = [("1", {tag: "100.0"}), ("2", {}), ("3", {tag: "200.0"}), ("4", {tag: "junk"})]
    assert alias_holder(listed, tag) == "3"  # given last
    assert alias_holder([("1", {})], tag) is None
    assert holders_to_clear(listed, tag, keep="3") == ["1", "4"]
