"""Historical VaR/ES: quantile rules, hand-computed examples, tail weights and the properties ES must have."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from riskstream.errors import ConfigurationError, EmptyInputError, InvalidFieldError
from riskstream.risk import (
    QUANTILE_RULES,
    HistoricalEstimator,
    RiskEstimate,
    measure_name,
    scale_horizon,
    tail_weights,
    var_and_es,
    var_es,
    var_es_reference,
)

# Twenty P&L figures. Sorted ascending (worst first):
#   X_(1..10) = -15, -12, -9, -7.5, -6, -4, -3, -2, -1, 0.5
#   X_(11..20) = 1, 2.5, 3.5, 4, 5, 6, 7, 8, 9, 10
HAND_PNL = [
    -12.0,
    5.0,
    3.5,
    -7.5,
    10.0,
    -2.0,
    8.0,
    -15.0,
    1.0,
    0.5,
    -4.0,
    6.0,
    -9.0,
    2.5,
    -1.0,
    7.0,
    -3.0,
    4.0,
    -6.0,
    9.0,
]

# confidence, rule, VaR, ES — worked by hand from the sorted list above, t = n·(1 − α):
HAND_CASES = [
    # t = 2: VaR = −X_(2) = 12; ES = −(X_(1) + X_(2))/2 = (15 + 12)/2 = 13.5
    (0.90, "empirical", 12.0, 13.5),
    # t = 3: VaR = −X_(3) = 9; ES = (15 + 12 + 9)/3 = 12
    (0.85, "empirical", 9.0, 12.0),
    # t = 2.4: VaR = −X_(⌈2.4⌉) = −X_(3) = 9; ES = (15 + 12 + 0.4·9)/2.4 = 30.6/2.4 = 12.75
    (0.88, "empirical", 9.0, 12.75),
    # t = 1: VaR = ES = −X_(1) = 15
    (0.95, "empirical", 15.0, 15.0),
    # t = 0.5 < 1: the worst scenario carries the whole tail, VaR = ES = 15
    (0.975, "empirical", 15.0, 15.0),
    # linear: h = (n − 1)·p + 1 = 19·0.1 + 1 = 2.9 → X_(2) + 0.9·(X_(3) − X_(2)) = −12 + 0.9·3 = −9.3
    (0.90, "linear", 9.3, 13.5),
    # k_plus_1: X_(⌊t⌋+1) = X_(3) for t = 2, so exactly 2 scenarios lose more than VaR
    (0.90, "k_plus_1", 9.0, 13.5),
    (0.88, "k_plus_1", 9.0, 12.75),
]

CONFIDENCES = st.integers(min_value=1, max_value=999).map(lambda i: i / 1000)
RULES = st.sampled_from(QUANTILE_RULES)


def pnl_vectors(min_size: int = 1, max_size: int = 60) -> st.SearchStrategy[np.ndarray]:
    """P&L vectors with repeated values likely (ties are where conventions differ)."""
    return hnp.arrays(
        np.float64,
        st.integers(min_size, max_size),
        elements=st.one_of(
            st.integers(-1000, 1000).map(float), st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)
        ),
    )


def integer_matrices(max_rows: int = 6, max_scenarios: int = 40) -> st.SearchStrategy[np.ndarray]:
    """Integer-valued P&L matrices: their sums are exact in float64, so aggregation can be compared exactly."""
    shape = st.tuples(st.integers(1, max_rows), st.integers(1, max_scenarios))
    return hnp.arrays(np.float64, shape, elements=st.integers(-10_000, 10_000).map(float))


def close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, scale)


@pytest.mark.parametrize(
    ("kind", "confidence", "days", "expected"),
    [
        ("var", 0.99, 1, "var_99_1d"),
        ("es", 0.975, 10, "es_975_10d"),
        ("var", 0.999, 1, "var_999_1d"),
        ("es", 0.9, 5, "es_90_5d"),
    ],
)
def test_measure_name(kind: str, confidence: float, days: int, expected: str) -> None:
    assert measure_name(kind, confidence, days) == expected


@pytest.mark.parametrize(
    ("kind", "confidence", "days"),
    [("cvar", 0.99, 1), ("var", 99, 1), ("var", 0.99, 0), ("es", float("nan"), 1)],
)
def test_measure_name_rejects_bad_parameters(kind: str, confidence: float, days: int) -> None:
    with pytest.raises(ConfigurationError):
        measure_name(kind, confidence, days)


@pytest.mark.parametrize(("confidence", "rule", "var", "es"), HAND_CASES)
def test_hand_computed_example(confidence: float, rule: str, var: float, es: float) -> None:
    got_var, got_es = var_es(HAND_PNL, confidence, rule)  # type: ignore[arg-type]
    assert got_var == pytest.approx(var, abs=1e-12)
    assert got_es == pytest.approx(es, abs=1e-12)
    assert var_es_reference(HAND_PNL, confidence, rule) == pytest.approx((var, es), abs=1e-12)


def test_linear_rule_is_numpy_quantile() -> None:
    rng = np.random.default_rng(7)
    pnl = rng.standard_t(4, size=(5, 251))
    for confidence in (0.9, 0.95, 0.975, 0.99):
        var, _ = var_es(pnl, confidence, "linear")
        # np.quantile's default method is the linear interpolation the rule names
        np.testing.assert_allclose(var, -np.quantile(pnl, 1 - confidence, axis=-1), rtol=1e-12)


def test_tail_count_is_robust_to_binary_rounding() -> None:
    pnl = np.random.default_rng(1).permutation(np.arange(1000.0))  # X_(k) = k − 1
    # 1000·(1 − 0.99) = 10.000000000000009 in floating point: still the 10th-worst, X_(10) = 9
    assert float(var_es(pnl, 0.99)[0]) == -9.0
    assert float(var_es(pnl, 0.99, "k_plus_1")[0]) == -10.0
    # n·p = 5.000000001 counts as 5 tail scenarios, not 6: VaR = −X_(5) = −4, ES = −(0+1+2+3+4)/5 = −2
    confidence = 1 - 5.000000001 / 500
    var, es = var_es(pnl[pnl < 500], confidence)
    assert float(var) == -4.0
    assert float(es) == pytest.approx(-2.0, abs=1e-12)


def test_vector_and_matrix_paths_agree() -> None:
    pnl = np.random.default_rng(3).normal(size=(4, 300))
    var, es = var_es(pnl, 0.99)
    assert var.shape == es.shape == (4,)
    for i, row in enumerate(pnl):
        assert var_es(row, 0.99) == (var[i], es[i])


@pytest.mark.parametrize("rule", QUANTILE_RULES)
def test_tail_weights_reproduce_var_and_es(rule: str) -> None:
    pnl = np.random.default_rng(5).normal(size=(3, 250)).round(1)  # rounding makes ties in the tail
    w_var, w_es = tail_weights(pnl, 0.99, rule)  # type: ignore[arg-type]
    var, es = var_es(pnl, 0.99, rule)  # type: ignore[arg-type]
    np.testing.assert_allclose(-(w_var * pnl).sum(axis=-1), var, rtol=1e-12)
    np.testing.assert_allclose(-(w_es * pnl).sum(axis=-1), es, rtol=1e-12)
    np.testing.assert_allclose(w_var.sum(axis=-1), 1.0)
    np.testing.assert_allclose(w_es.sum(axis=-1), 1.0)
    assert (w_var >= 0).all() and (w_es >= 0).all()


def test_tied_scenarios_share_the_weight() -> None:
    # t = 10·0.2 = 2: the two worst are −5 and one of three −3s; each −3 takes a third of the boundary mass
    pnl = np.array([1.0, -3.0, 2.0, -5.0, -3.0, 0.0, 4.0, -3.0, 6.0, 7.0])
    w_var, w_es = tail_weights(pnl, 0.8)
    np.testing.assert_allclose(w_var, np.where(pnl == -3.0, 1 / 3, 0.0))
    np.testing.assert_allclose(w_es, np.where(pnl == -5.0, 0.5, np.where(pnl == -3.0, 1 / 6, 0.0)))
    perm = np.random.default_rng(0).permutation(pnl.size)
    np.testing.assert_array_equal(tail_weights(pnl[perm], 0.8)[1], w_es[perm])


@pytest.mark.parametrize(
    ("pnl", "error"),
    [
        (np.array([]), EmptyInputError),
        (np.zeros((2, 0)), EmptyInputError),
        (np.array([1.0, np.nan]), InvalidFieldError),
        (np.array([[1.0, np.inf]]), InvalidFieldError),
        (np.zeros((2, 2, 2)), InvalidFieldError),
        (["a", "b"], InvalidFieldError),
    ],
)
def test_bad_pnl_is_rejected(pnl: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        var_es(pnl, 0.99)  # type: ignore[arg-type]


def test_huge_finite_pnl_is_accepted() -> None:
    # the sum overflows to inf, but every value is finite; t = 1.5, VaR = −X_(2) = −1e308
    var, _ = var_es(np.array([1e308, 1e308, -1e308]), 0.5)
    assert float(var) == -1e308


@pytest.mark.parametrize(("confidence", "rule"), [(1.0, "empirical"), (0.0, "empirical"), (0.99, "nearest")])
def test_bad_parameters_are_rejected(confidence: float, rule: str) -> None:
    with pytest.raises(ConfigurationError):
        var_es([1.0, 2.0], confidence, rule)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        HistoricalEstimator(confidence, rule)  # type: ignore[arg-type]


def test_historical_estimator_reports_named_figures() -> None:
    estimate = HistoricalEstimator(0.9, horizon_days=10).estimate(HAND_PNL)
    assert estimate == RiskEstimate(12.0, 13.5, 0.9, 10, "historical/empirical")
    assert estimate.names == ("var_90_10d", "es_90_10d")
    assert estimate.as_dict() == {"var_90_10d": 12.0, "es_90_10d": 13.5}
    with pytest.raises(InvalidFieldError):
        HistoricalEstimator().estimate(np.zeros((2, 5)))


def test_scale_horizon_is_square_root_of_time() -> None:
    # sqrt(10) = 3.16227766 (closed form)
    assert scale_horizon(1.0, 1, 10) == pytest.approx(3.16227766, rel=1e-9)
    np.testing.assert_allclose(scale_horizon([2.0, 4.0], 10, 40), [4.0, 8.0])
    with pytest.raises(ConfigurationError):
        scale_horizon(1.0, 0, 10)
    with pytest.raises(ConfigurationError):
        scale_horizon(1.0, 1, 10, method="linear")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(pnl=pnl_vectors(), confidence=CONFIDENCES, rule=RULES)
def test_vectorised_equals_reference(pnl: np.ndarray, confidence: float, rule: str) -> None:
    var, es = var_es(pnl, confidence, rule)  # type: ignore[arg-type]
    ref_var, ref_es = var_es_reference(pnl.tolist(), confidence, rule)
    scale = float(np.abs(pnl).max())
    assert close(float(var), ref_var, scale)
    assert close(float(es), ref_es, scale)


@settings(max_examples=150, deadline=None)
@given(pnl=pnl_vectors(), confidence=CONFIDENCES, rule=RULES)
def test_es_is_at_least_var(pnl: np.ndarray, confidence: float, rule: str) -> None:
    var, es = var_es(pnl, confidence, rule)  # type: ignore[arg-type]
    assert float(es) >= float(var) - 1e-9 * max(1.0, float(np.abs(pnl).max()))


@settings(max_examples=150, deadline=None)
@given(pnl=pnl_vectors(), levels=st.lists(CONFIDENCES, min_size=2, max_size=6), rule=RULES)
def test_var_and_es_are_monotone_in_confidence(pnl: np.ndarray, levels: list[float], rule: str) -> None:
    tol = 1e-9 * max(1.0, float(np.abs(pnl).max()))
    figures = [var_es(pnl, a, rule) for a in sorted(levels)]  # type: ignore[arg-type]
    for (var_lo, es_lo), (var_hi, es_hi) in itertools.pairwise(figures):
        assert var_hi >= var_lo - tol
        assert es_hi >= es_lo - tol


@settings(max_examples=150, deadline=None)
@given(pnl=integer_matrices(max_rows=2).filter(lambda m: m.shape[0] == 2), confidence=CONFIDENCES)
def test_es_is_sub_additive(pnl: np.ndarray, confidence: float) -> None:
    (_, es_a), (_, es_b), (_, es_sum) = (var_es(v, confidence) for v in (pnl[0], pnl[1], pnl[0] + pnl[1]))
    assert float(es_sum) <= float(es_a) + float(es_b) + 1e-9 * float(np.abs(pnl).max(initial=1.0))


@settings(max_examples=100, deadline=None)
@given(positions=integer_matrices(max_rows=8), confidence=CONFIDENCES, rule=RULES, data=st.data())
def test_aggregating_vectors_equals_recomputation(
    positions: np.ndarray, confidence: float, rule: str, data: st.DataObject
) -> None:
    # positions → books (a random assignment) → desk; the desk's figures from the summed book vectors must equal
    # those recomputed from scratch from every position
    books = np.array(data.draw(st.lists(st.integers(0, 2), min_size=len(positions), max_size=len(positions))))
    book_vectors = np.stack([positions[books == b].sum(axis=0) for b in range(3)])
    desk_from_books = var_es(book_vectors.sum(axis=0), confidence, rule)  # type: ignore[arg-type]
    from_scratch = var_es_reference([math.fsum(col) for col in positions.T], confidence, rule)
    assert tuple(map(float, desk_from_books)) == pytest.approx(from_scratch, rel=1e-12, abs=1e-9)
    # and the books' own figures from the matrix path equal the reference, one book at a time
    var, es = var_es(book_vectors, confidence, rule)  # type: ignore[arg-type]
    for b in range(3):
        assert (var[b], es[b]) == pytest.approx(var_es_reference(book_vectors[b].tolist(), confidence, rule))


@settings(max_examples=60, deadline=None)
@given(
    pnl=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(1, 260)),
        elements=st.integers(-50, 50).map(float),  # small integers: many ties
    ),
    var_confidence=st.sampled_from([0.5, 0.9, 0.95, 0.975, 0.99, 0.999]),
    es_confidence=st.sampled_from([0.5, 0.9, 0.95, 0.975, 0.99, 0.999]),
    rule=st.sampled_from(["empirical", "linear", "k_plus_1"]),
)
def test_var_and_es_equals_var_es_bit_for_bit(
    pnl: np.ndarray, var_confidence: float, es_confidence: float, rule: str
) -> None:
    # the reference is var_es itself, called once per confidence
    var, es = var_and_es(pnl, var_confidence, es_confidence, rule)  # type: ignore[arg-type]
    np.testing.assert_array_equal(var, var_es(pnl, var_confidence, rule)[0])  # type: ignore[arg-type]
    np.testing.assert_array_equal(es, var_es(pnl, es_confidence, rule)[1])  # type: ignore[arg-type]


def test_var_and_es_of_continuous_pnl_at_the_regulatory_pair() -> None:
    rng = np.random.default_rng(3)
    pnl = rng.standard_t(4, size=(111, 500)) * 1e6
    var, es = var_and_es(pnl, 0.99, 0.975)
    np.testing.assert_array_equal(var, var_es(pnl, 0.99)[0])
    np.testing.assert_array_equal(es, var_es(pnl, 0.975)[1])
    with pytest.raises(ConfigurationError, match="var_confidence"):
        var_and_es(pnl, 1.5, 0.975)
