"""A model's features for all-numeric tables are made in numpy, exactly as FLAML's own
transform makes them, and FLAML's transform still runs for everything else."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from flaml.automl.data import DataTransformer
from flaml.automl.task.factory import task_factory
from sklearn.preprocessing import LabelEncoder

from automl_service.engines.local.model import FlamlModel, numeric_features


def fitted(frame: pd.DataFrame, y: pd.Series, task_name: str = "classification") -> Any:
    task = task_factory(task_name)
    transformer = DataTransformer()
    transformer.fit_transform(frame.copy(), y, task)
    return transformer, task


def numbers(rows: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.integers(0, 9, size=rows),
            "c": rng.normal(size=rows).astype(np.float32),
        }
    )


def test_numeric_features_equal_flamls_transform_missing_values_included() -> None:
    train = numbers()
    train.loc[3, "a"] = np.nan
    transformer, task = fitted(train, pd.Series([0, 1] * 20))
    asked = numbers(6).iloc[2:]
    asked.loc[3, "a"] = np.nan
    asked.loc[4, "c"] = np.nan
    fast = numeric_features(asked, transformer, task)
    assert fast is not None
    expected = task.preprocess(asked.copy(), transformer)
    pd.testing.assert_frame_equal(fast, expected, check_dtype=False)
    assert not fast.isna().any().any() and list(fast.index) == [2, 3, 4, 5]


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(b=f["b"].astype(str)),  # a column that is not a number
        lambda f: f[["b", "a", "c"]],  # columns in another order
    ],
)
def test_anything_but_the_fitted_numbers_goes_through_flaml(change: Any) -> None:
    transformer, task = fitted(numbers(), pd.Series([0, 1] * 20))
    assert numeric_features(change(numbers(5)), transformer, task) is None


def test_a_table_with_text_keeps_flamls_transform() -> None:
    train = numbers().assign(color=["red", "blue"] * 20)
    transformer, task = fitted(train, pd.Series([0, 1] * 20))
    assert numeric_features(train.head(3), transformer, task) is None


def test_labels_decode_as_the_label_encoder_does() -> None:
    encoder = LabelEncoder().fit(["no", "yes", "maybe"])
    model = FlamlModel(None, task_factory("classification"), None, encoder, [])
    codes = np.array([2, 0, 1, 1])
    assert list(model.decode(codes)) == list(encoder.inverse_transform(codes))
    with pytest.raises(ValueError, match="does not know"):
        model.decode(np.array([3]))
