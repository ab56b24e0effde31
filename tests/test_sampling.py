"""A table larger than its search's time is searched on a sample, and the leaders
refitted on every row when the time limit allows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures_models import search_csv, separable_table

from automl_service.engines.local import sampling
from automl_service.engines.local.sampling import sample_positions, search_rows, search_sample


def test_a_search_is_given_rows_for_its_seconds_and_never_fewer_than_the_minimum() -> None:
    assert search_rows(1) == sampling.MIN_SEARCH_ROWS
    assert search_rows(600) == 600 * sampling.ROWS_PER_SEARCH_SECOND


def test_a_sample_by_class_keeps_each_class_share_and_its_rare_rows() -> None:
    classes = np.array([0] * 9_000 + [1] * 990 + [2] * 10)
    np.random.default_rng(1).shuffle(classes)
    chosen = sample_positions(len(classes), 1_000, classes)
    assert len(set(chosen.tolist())) == len(chosen) and (np.diff(chosen) > 0).all()
    counts = np.bincount(classes[chosen], minlength=3)
    assert counts[0] == 900 and counts[1] == 99 and counts[2] == 1
    again = sample_positions(len(classes), 1_000, classes)
    assert (again == chosen).all()  # a fixed seed: the same rows on a retry


def test_rows_without_a_class_are_left_out_and_a_plain_sample_is_uniform() -> None:
    classes = np.array([-1] * 500 + [0] * 500 + [1] * 1_000)
    chosen = sample_positions(len(classes), 300, classes)
    assert (classes[chosen] >= 0).all()
    plain = sample_positions(10_000, 2_000)
    assert len(np.unique(plain)) == 2_000 and plain.max() < 10_000
    assert 0.4 < (plain < 5_000).mean() < 0.6


def test_a_table_that_fits_is_searched_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.DataFrame({"x": range(50), "y": [0, 1] * 25})
    assert search_sample(frame, "y", 10.0, by_class=True) is frame
    monkeypatch.setattr(sampling, "MIN_SEARCH_ROWS", 10)
    monkeypatch.setattr(sampling, "ROWS_PER_SEARCH_SECOND", 2)
    sample = search_sample(frame, "y", 10.0, by_class=True)
    assert len(sample) == 20 and sample["y"].value_counts().tolist() == [10, 10]


@pytest.mark.slow
def test_a_search_on_a_sample_is_recorded_and_its_leader_refitted_on_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from automl_service.tags import SEARCHED_ROWS_TAG

    monkeypatch.setattr(sampling, "MIN_SEARCH_ROWS", 400)
    monkeypatch.setattr(sampling, "ROWS_PER_SEARCH_SECOND", 1)
    separable_table(2_000).to_csv(tmp_path / "t.csv", index=False)
    client, parent, record, model = search_csv(tmp_path / "t.csv")
    assert client.get_run(parent).data.tags[SEARCHED_ROWS_TAG] == "400"
    assert model.fitted_rows == 2_000 and model.refit_error is None
    assert record.metrics["accuracy"] > 0.9
