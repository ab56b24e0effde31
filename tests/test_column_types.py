"""Values that are not numbers in columns a model reads as numbers (column_types)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_service.engines.local.column_types import NotNumbers, not_numbers


def test_the_first_text_value_of_each_number_column_is_named() -> None:
    frame = pd.DataFrame(
        {
            "a": [1.0, "2.5", None, "x", "y"],
            "b": [1, 2, 3, 4, 5],
            "c": ["u", "v", "w", "x", "y"],
            "d": [np.nan, "3", 4, 5, 6],
        }
    )
    found = not_numbers(frame, ["a", "b", "d", "absent"])
    assert [(f.column, f.row, f.value) for f in found] == [("a", 3, "x")]
    assert str(NotNumbers(found, first_row=100)) == "column 'a' needs numbers; row 104 has 'x'"
    assert not_numbers(frame, ["c"])[0].row == 0


def test_missing_values_and_numbers_written_as_text_pass() -> None:
    frame = pd.DataFrame({"a": [None, "1e3", "-2", float("nan")]})
    assert not_numbers(frame, ["a"]) == []


def test_not_numbers_is_a_value_error_listing_its_columns() -> None:
    frame = pd.DataFrame({"a": ["x"], "b": ["y"]})
    with pytest.raises(ValueError, match="column 'b' needs numbers; row 1 has 'y'"):
        raise NotNumbers(not_numbers(frame, ["a", "b"]))
    assert NotNumbers(not_numbers(frame, ["a", "b"])).columns == ["a", "b"]


def test_a_signature_names_the_columns_it_types_as_numbers() -> None:
    """A model with no FLAML members: the columns its MLflow signature types as numbers."""
    from types import SimpleNamespace

    from mlflow.models import infer_signature

    from automl_service.engines.local.column_types import number_columns

    signature = infer_signature(pd.DataFrame({"a": [1.5], "b": ["x"], "c": [1], "d": [True]}))
    model = SimpleNamespace(metadata=SimpleNamespace(get_input_schema=lambda: signature.inputs))
    assert number_columns(model) == ("a", "c")
    assert number_columns(SimpleNamespace()) == ()
