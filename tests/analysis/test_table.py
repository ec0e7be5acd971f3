"""The summary table: required and contract columns, diverged and unusable cells, design fallbacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eqscale.analysis.errors import FitError
from eqscale.analysis.synthetic import synthetic_summary
from eqscale.analysis.table import CONTRACT_COLUMNS, read_table


def test_a_format_2_summary_has_every_contract_column():
    summary = synthetic_summary(n_test_samples=64)
    assert set(CONTRACT_COLUMNS) <= set(summary.columns)
    table = read_table(summary)
    assert table.missing == () and (table.rows["status"] == "ok").all()
    assert table.arms() == ["gatr", "transformer", "transformer+aug"]


def test_missing_required_columns_are_named():
    with pytest.raises(FitError, match=r"lacks column\(s\) size, params, steps, flops, budget, data_fraction"):
        read_table(pd.DataFrame({"arm": ["gatr"], "test_mse": [0.1]}))


def test_diverged_cells_are_kept_and_say_why():
    summary = synthetic_summary(n_test_samples=64)
    summary.loc[0, "diverged"] = True
    summary.loc[0, "test_mse"] = np.nan
    summary.loc[1, "test_mse"] = np.inf
    summary.loc[2, "test_mse"] = 2 * summary.loc[2, "const_velocity_mse"]  # worse than predicting no change
    summary.loc[3, "params"] = 0
    table = read_table(summary)
    rows = table.rows
    assert rows.loc[:3, "status"].tolist() == ["diverged", "diverged", "diverged", "unusable"]
    assert "diverged (recorded by training)" in rows.loc[0, "status_reason"]
    assert "test MSE is inf" in rows.loc[1, "status_reason"]
    assert "above 1 x the constant-velocity MSE" in rows.loc[2, "status_reason"]
    assert "non-positive params" in rows.loc[3, "status_reason"]
    assert len(table.usable) == len(summary) - 4 and len(table.rows) == len(summary)
    lenient = read_table(summary, diverged_cv_ratio=3.0)
    assert lenient.rows.loc[2, "status"] == "ok"


def test_older_summaries_read_with_fallbacks_and_say_what_is_missing():
    summary = synthetic_summary()
    old = summary[["arm", "size", "params", "steps", "flops", "budget", "data_fraction", "num_train_trajectories",
                   "test_mse"]]
    table = read_table(old)
    assert "in_scaling" in table.missing and "cell" in table.missing and "test_mse_se" in table.missing
    # designs inferred: full-data cells are the scaling grid; per arm the (size, budget) group with most fractions
    assert table.rows["in_scaling"].tolist() == np.isclose(old["data_fraction"], 1.0).tolist()
    de = table.rows[table.rows["in_data_efficiency"]]
    assert set(de["arm"]) == {"gatr", "transformer", "transformer+aug"} and de["data_fraction"].nunique() == 5
