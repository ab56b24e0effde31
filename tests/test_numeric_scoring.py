"""A FLAML model of numbers scores rows in numpy exactly as its pyfunc ``predict`` does
(and as FLAML's own transform and the learner's own ``predict_proba`` do), and the
scoring server's answer from it is the same JSON, byte for byte."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fixtures_models import fitted_flaml
from flaml.automl.model import LGBMEstimator, RandomForestEstimator

from automl_service.engines.local.answers import (
    answer_bytes,
    answer_json,
    scored_answer,
    scored_body,
)
from automl_service.engines.local.model import FlamlModel
from automl_service.engines.local.probabilities import Scored
from automl_service.engines.local.scoring_body import read_scoring_body
from automl_service.engines.local.served import Served


def table(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.integers(0, 9, size=rows),
            "c": rng.normal(size=rows),
        }
    )


def fitted(learner: Any, y: pd.Series, task_name: str = "classification") -> FlamlModel:
    """``learner`` fitted by FLAML's own steps on ``table()`` (a missing value included)."""
    X = table()
    X.loc[3, "a"] = np.nan
    return fitted_flaml(X, y, learner, task_name)


def asked() -> pd.DataFrame:
    rows = table(7, seed=1)
    rows.loc[2, "a"] = np.nan
    rows.loc[5, "c"] = np.nan
    return rows


def reference(model: FlamlModel, rows: pd.DataFrame) -> np.ndarray[Any, Any]:
    """What FLAML's transform and the learner's own predict_proba (predict) make."""
    features = model.task.preprocess(rows.copy(), model.transformer)
    if model.classifies:
        return np.asarray(model.estimator.predict_proba(features))
    return np.asarray(model.estimator.predict(features))


@pytest.mark.parametrize("learner", [LGBMEstimator, RandomForestEstimator])
@pytest.mark.parametrize("classes", [["no", "yes"], ["x", "y", "z"]])
def test_numbers_score_as_the_pyfunc_predict_and_the_learner_do(
    learner: Any, classes: list[str]
) -> None:
    y = pd.Series(np.array(classes)[np.arange(120) % len(classes)])
    model = fitted(learner, y)
    scorer = model.numeric_scorer()
    assert scorer is not None and scorer.columns == ("a", "b", "c")
    rows = asked()
    scored = model.scored_numbers(rows.to_numpy(dtype=np.float64), scorer)
    table_answer = model.predict(None, rows)

    assert np.array_equal(scorer(rows.to_numpy(dtype=np.float64)), reference(model, rows))
    assert list(scored.values) == table_answer["prediction"].tolist()
    assert scored.classes == tuple(classes)
    proba = table_answer[[f"proba_{c}" for c in classes]].to_numpy()
    assert scored.proba is not None and np.array_equal(scored.proba, proba)
    assert np.allclose(scored.proba.sum(axis=1), 1.0)
    assert scored_answer(scored) == answer_json(table_answer)


def test_a_regressor_scores_numbers_as_its_predict_does() -> None:
    model = fitted(LGBMEstimator, pd.Series(np.linspace(0, 5, 120)), "regression")
    scorer = model.numeric_scorer()
    assert scorer is not None
    rows = asked()
    scored = model.scored_numbers(rows.to_numpy(dtype=np.float64), scorer)
    assert scored.proba is None
    assert np.array_equal(scored.values, reference(model, rows))
    assert np.array_equal(scored.values, model.predict(None, rows))


class Loaded:
    """A loaded pyfunc model, as far as the scoring server uses one."""

    def __init__(self, inner: FlamlModel) -> None:
        self.inner = inner
        self.tables = 0  # how many times the table path ran

    def unwrap_python_model(self) -> FlamlModel:
        return self.inner

    def predict(self, frame: pd.DataFrame) -> Any:
        self.tables += 1
        return self.inner.predict(None, frame)


def split(frame: pd.DataFrame) -> bytes:
    rows = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": rows}}).encode()


def test_the_server_answers_numbers_as_the_table_path_answers_them() -> None:
    """Rows of numbers skip the table (extra columns and any order too) and answer the
    same bytes; a null, a true or a text value takes the table path; a text value in a
    number column is refused by the model, as before."""
    model = fitted(LGBMEstimator, pd.Series(["no", "yes"] * 60))
    loaded = Loaded(model)
    served = Served.of(loaded)
    assert served.scorer is not None
    rows = table(6, seed=2).assign(extra=1.5)[["c", "extra", "a", "b"]]
    columns = ("a", "b", "c")
    expected = {**answer_json(model.predict(None, rows[list(columns)])), "deployment": "d"}

    answer = served.answer(read_scoring_body(split(rows)), columns, "d")
    assert answer == answer_bytes(expected)  # the table path's answer, to the byte
    assert loaded.tables == 0
    records = json.dumps({"dataframe_records": rows.to_dict(orient="records")}).encode()
    assert served.answer(read_scoring_body(records), columns, "d") == answer
    assert loaded.tables == 0

    with_null = rows.astype(object)
    with_null.iloc[0, 2] = None
    assert json.loads(served.answer(read_scoring_body(split(with_null)), columns, "d"))
    assert loaded.tables == 1
    mistyped = rows.astype(object)
    mistyped.iloc[0, 2] = "tall"
    with pytest.raises(ValueError, match="needs numbers; row 1 has 'tall'"):
        served.answer(read_scoring_body(split(mistyped)), columns, "d")
    assert loaded.tables == 1  # refused before the model saw it


@pytest.mark.parametrize(
    "data",
    [
        [[1, True, 2.0]],  # pandas keeps a true apart from numbers
        [[1, None, 2.0]],
        [[1, "2", 2.0]],
        [[1, [2], 2.0]],
    ],
)
def test_anything_but_numbers_is_not_read_as_numbers(data: list[list[Any]]) -> None:
    body = json.dumps({"input_data": {"columns": ["a", "b", "c"], "data": data}})
    assert read_scoring_body(body).numbers(["a", "b", "c"]) is None


def test_numbers_are_read_in_the_order_asked_and_twice_named_columns_are_not() -> None:
    body = json.dumps({"input_data": {"columns": ["a", "b", "c"], "data": [[1, 2.5, 3]]}})
    assert read_scoring_body(body).numbers(["c", "a"]).tolist() == [[3.0, 1.0]]  # type: ignore[union-attr]
    assert read_scoring_body(body).numbers(["d"]) is None
    twice = json.dumps({"input_data": {"columns": ["a", "a"], "data": [[1, 2]]}})
    assert read_scoring_body(twice).numbers(["a"]) is None


@pytest.mark.parametrize(
    "proba",
    [
        np.array([[0.25, 0.5, 0.25], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.0, 1.0]]),
        np.array([[np.nan, 0.5, 0.5], [0.1, 0.2, 0.7], [1.0, 0.0, 0.0]]),
    ],
)
def test_the_written_answer_is_the_answer_as_json(proba: np.ndarray[Any, Any]) -> None:
    """Keys sorted as text ('10' before '2'), every float as it was, null for NaN."""
    scored = Scored(np.array([10, 2, "é"], dtype=object), proba, (10, 2, "é"))
    written = scored_body(scored, {"deployment": "d"}).decode()
    assert json.loads(written) == {**scored_answer(scored), "deployment": "d"}
    assert written.index('"deployment"') < written.index('"predictions"')
    first = json.loads(written)["probabilities"][0]
    assert list(first) == ["10", "2", "é"]
    assert first == dict(
        zip(["10", "2", "é"], [None if np.isnan(p) else p for p in proba[0]], strict=True)
    )
    assert json.loads(written)["predictions"] == [10, 2, "é"]


def test_labels_and_values_are_written_plain() -> None:
    """Labels already plain are kept as they are; numpy values, NaN and infinities are
    made plain; probabilities that do not match their classes are refused."""
    from automl_service.engines.local.answers import predictions_json

    assert predictions_json(np.array([1.5, np.nan, np.inf])) == [1.5, None, None]
    assert predictions_json(np.array(["a", "b"])) == ["a", "b"]
    labels = predictions_json([np.int64(3), True, "x"])
    assert labels == [3, True, "x"] and type(labels[0]) is int
    with pytest.raises(ValueError, match="probabilities for 3 classes"):
        scored_answer(Scored(np.array(["a"]), np.array([[0.5, 0.5]]), ("a", "b", "c")))
