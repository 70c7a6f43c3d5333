"""Component, marginal and incremental VaR/ES, and the top-contributors report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from riskstream.errors import ConfigurationError, InvalidFieldError
from riskstream.risk import (
    QUANTILE_RULES,
    Contributor,
    HistoricalEstimator,
    NormalEstimator,
    component_var_es,
    incremental_var_es,
    marginal_var_es,
    top_contributors,
    var_es,
)

# Three positions over ten scenarios. Node P&L (column sums) = 3, -6, 1, -10, 4, -2, 0, -8, 5, 2;
# sorted: -10 (s3), -8 (s7), -6 (s1), -2, ...; at α = 0.8, t = 10·0.2 = 2:
#   VaR = −X_(2) = 8 in scenario s7 → component VaR = −row P&L in s7 = (5, −1, 4)
#   ES = (10 + 8)/2 = 9 → component ES = −(row[s3] + row[s7])/2 = −((−6 − 5)/2, (−1 + 1)/2, (−3 − 4)/2) = (5.5, 0, 3.5)
HAND_ROWS = np.array(
    [
        [1.0, -4.0, 0.0, -6.0, 2.0, -1.0, 0.0, -5.0, 3.0, 1.0],
        [1.0, 0.0, 1.0, -1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        [1.0, -2.0, 0.0, -3.0, 1.0, -1.0, 0.0, -4.0, 1.0, 1.0],
    ]
)

ROW_MATRICES = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(2, 50)),
    elements=st.one_of(st.integers(-100, 100).map(float), st.floats(-1e4, 1e4, allow_nan=False)),
)
CONFIDENCES = st.integers(1, 999).map(lambda i: i / 1000)


def test_component_var_es_by_hand() -> None:
    result = component_var_es(HAND_ROWS, HistoricalEstimator(0.8))
    assert (result.total_var, result.total_es) == (8.0, 9.0)
    np.testing.assert_allclose(result.var, [5.0, -1.0, 4.0])
    np.testing.assert_allclose(result.es, [5.5, 0.0, 3.5])
    assert result.kind == "component"


@settings(max_examples=150, deadline=None)
@given(rows=ROW_MATRICES, confidence=CONFIDENCES, rule=st.sampled_from(QUANTILE_RULES))
def test_components_sum_to_the_node(rows: np.ndarray, confidence: float, rule: str) -> None:
    for estimator in (HistoricalEstimator(confidence, rule), NormalEstimator(confidence)):  # type: ignore[arg-type]
        result = component_var_es(rows, estimator)
        node_var, node_es = estimator.var_es(rows.sum(axis=0))
        tol = 1e-9 * max(1.0, float(np.abs(rows).sum()))
        assert math.isclose(result.var.sum(), float(node_var), abs_tol=tol)
        assert math.isclose(result.es.sum(), float(node_es), abs_tol=tol)
        assert math.isclose(result.total_var, float(node_var), abs_tol=tol)


def test_marginal_is_the_derivative_per_unit_of_exposure() -> None:
    rng = np.random.default_rng(17)
    exposures = np.array([1e6, -2e6, 5e5, 3e6])
    unit_pnl = rng.normal(0.0, 0.01, size=(4, 500))  # P&L per unit of exposure
    rows = unit_pnl * exposures[:, None]
    estimator = HistoricalEstimator(0.99)
    marginal = marginal_var_es(rows, exposures, estimator)
    component = component_var_es(rows, estimator)
    np.testing.assert_allclose(marginal.var * exposures, component.var)
    # finite difference: a small extra exposure h to row i moves VaR and ES by ≈ marginal·h (exact while the
    # tail scenarios stay the same, which a 1e-6 relative bump does here)
    for i in range(4):
        h = 1e-6 * abs(exposures[i])
        bumped = rows.copy()
        bumped[i] += unit_pnl[i] * h
        var_up, es_up = var_es(bumped.sum(axis=0), 0.99)
        assert (float(var_up) - marginal.total_var) / h == pytest.approx(marginal.var[i], rel=1e-6)
        assert (float(es_up) - marginal.total_es) / h == pytest.approx(marginal.es[i], rel=1e-6)


def test_marginal_is_nan_for_a_zero_exposure() -> None:
    result = marginal_var_es(HAND_ROWS, [1.0, 0.0, 2.0], HistoricalEstimator(0.8))
    np.testing.assert_allclose(result.var, [5.0, np.nan, 2.0])
    with pytest.raises(InvalidFieldError):
        marginal_var_es(HAND_ROWS, [1.0, 2.0], HistoricalEstimator(0.8))


def test_incremental_var_es_by_hand() -> None:
    result = incremental_var_es(HAND_ROWS, HistoricalEstimator(0.8))
    # without row 0 the node is (2, −2, 1, −4, 2, −1, 0, −3, 2, 1): VaR = −X_(2) = 3, ES = (4 + 3)/2 = 3.5,
    # so incremental VaR = 8 − 3 = 5 and incremental ES = 9 − 3.5 = 5.5
    assert (result.var[0], result.es[0]) == (5.0, 5.5)
    assert result.kind == "incremental"


@settings(max_examples=60, deadline=None)
@given(rows=ROW_MATRICES, confidence=CONFIDENCES, chunk=st.integers(1, 4))
def test_incremental_equals_recomputation_row_by_row(rows: np.ndarray, confidence: float, chunk: int) -> None:
    estimator = HistoricalEstimator(confidence)
    result = incremental_var_es(rows, estimator, chunk_rows=chunk)
    node = rows.sum(axis=0)
    tol = 1e-9 * max(1.0, float(np.abs(rows).sum()))
    for i in range(rows.shape[0]):
        var_without, es_without = var_es(node - rows[i], confidence)
        assert math.isclose(result.var[i], result.total_var - float(var_without), abs_tol=tol)
        assert math.isclose(result.es[i], result.total_es - float(es_without), abs_tol=tol)


def test_incremental_rejects_bad_chunk() -> None:
    with pytest.raises(ConfigurationError):
        incremental_var_es(HAND_ROWS, HistoricalEstimator(0.8), chunk_rows=0)


def test_top_contributors() -> None:
    values = [5.0, -1.0, 4.0, 0.5, 4.0]
    labels = ["FX.EUR", "IR.USD.5Y", "EQ.ACME", "EQ.BETA", "EQ.GAMMA"]
    top = top_contributors(values, labels, 3)
    # total 12.5: shares 5/12.5 = 0.4, 4/12.5 = 0.32; equal values keep their input order
    assert top == (
        Contributor("FX.EUR", 5.0, 0.4),
        Contributor("EQ.ACME", 4.0, 0.32),
        Contributor("EQ.GAMMA", 4.0, 0.32),
    )
    by_abs = top_contributors(values, labels, 10, by="abs", total=10.0)
    assert [c.label for c in by_abs] == ["FX.EUR", "EQ.ACME", "EQ.GAMMA", "IR.USD.5Y", "EQ.BETA"]
    assert by_abs[3].share == pytest.approx(-0.1)
    assert math.isnan(top_contributors([1.0, -1.0], ["a", "b"], 1)[0].share)


@pytest.mark.parametrize(
    ("values", "labels", "k", "error"),
    [
        ([1.0, 2.0], ["a"], 1, InvalidFieldError),
        ([1.0, np.nan], ["a", "b"], 1, InvalidFieldError),
        ([1.0, 2.0], ["a", "b"], 0, ConfigurationError),
    ],
)
def test_top_contributors_rejects_bad_input(
    values: list[float], labels: list[str], k: int, error: type
) -> None:
    with pytest.raises(error):
        top_contributors(values, labels, k)
