"""Zero curves: linear interpolation in zero rate, flat extrapolation, continuous compounding; coupon schedules."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from riskstream.domain import MarketSnapshot
from riskstream.errors import MissingFactorError
from riskstream.pricing import CurveSet, coupon_times, discount_factors, interpolation_weights, zero_rates

TENOR_TIMES = np.array([0.25, 1.0, 5.0, 10.0])
RATES = np.array([[0.01, 0.02], [0.02, 0.03], [0.03, 0.05], [0.04, 0.04]])  # (4 tenors, 2 scenarios)


def test_weights_are_one_hot_at_tenors_linear_between_flat_outside() -> None:
    w = interpolation_weights(TENOR_TIMES, np.array([1.0, 3.0, 0.1, 20.0]))
    # at a tenor point: that point only; 3y lies half-way from 1y to 5y; beyond the ends: the end points
    np.testing.assert_array_equal(w[0], [0, 1, 0, 0])
    np.testing.assert_allclose(w[1], [0, 0.5, 0.5, 0], rtol=1e-15)
    np.testing.assert_array_equal(w[2], [1, 0, 0, 0])
    np.testing.assert_array_equal(w[3], [0, 0, 0, 1])
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-15)


def test_zero_rates_and_discount_factors_by_hand() -> None:
    times = np.array([0.1, 3.0, 7.5, 30.0])
    z = zero_rates(times, TENOR_TIMES, RATES)
    # by hand: flat 1 % / 2 % before 3M; (2 % + 3 %)/2 and (3 % + 5 %)/2 at 3y; 3.5 % and 4.5 % at 7.5y; flat after
    np.testing.assert_allclose(z, [[0.01, 0.02], [0.025, 0.04], [0.035, 0.045], [0.04, 0.04]], rtol=1e-14)
    df, w = discount_factors(times, TENOR_TIMES, RATES)
    np.testing.assert_allclose(df, np.exp(-z * times[:, None]), rtol=1e-15)  # DF = exp(−z·t)
    np.testing.assert_allclose(w @ RATES, z, rtol=1e-15)


def test_single_point_curve_is_flat() -> None:
    z = zero_rates(np.array([0.1, 50.0]), np.array([2.0]), np.array([[0.03]]))
    np.testing.assert_array_equal(z, [[0.03], [0.03]])


def test_curve_set_interpolates_each_time_on_its_own_currency() -> None:
    values = {"IR.USD.1Y": 0.05, "IR.USD.5Y": 0.06, "IR.EUR.3M": 0.01, "IR.EUR.10Y": 0.03, "EQ.X": 1.0}
    market = MarketSnapshot(date(2024, 1, 2), values).to_scenarios()
    curves = CurveSet(market, ["USD", "EUR", "USD"])
    assert curves.factor_ids == ("IR.EUR.3M", "IR.EUR.10Y", "IR.USD.1Y", "IR.USD.5Y")
    w = curves.weights(np.array(["USD", "EUR", "USD"]), np.array([3.0, 5.125, 0.5]))
    # USD 3y: midway 1y–5y → 5.5 %; EUR 5.125y: midway 3M–10Y → 2 %; USD 6M: flat before 1Y → 5 %
    np.testing.assert_allclose(curves.zero_rates(w)[:, 0], [0.055, 0.02, 0.05], rtol=1e-14)
    with pytest.raises(MissingFactorError, match=r"IR\.JPY\.\*"):
        CurveSet(market, ["JPY"])


def test_coupon_times_roll_back_from_maturity() -> None:
    # T = 912/365 (ACT/365F): semi-annual times T, T − 0.5, ..., while > 0 (five of them)
    t = coupon_times(date(2024, 1, 2), date(2026, 7, 2), 2)
    years = 912 / 365
    np.testing.assert_allclose(t, [years - i / 2 for i in range(5)], rtol=1e-15)
    assert not t.flags.writeable  # shared through the cache
    # a maturity exactly on a period boundary: the coupon that would fall today is not in the schedule
    np.testing.assert_allclose(coupon_times(date(2024, 1, 2), date(2026, 1, 1), 1), [2.0, 1.0], rtol=1e-15)
