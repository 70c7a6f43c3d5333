"""Kupiec and Christoffersen tests, the Basel traffic light and the back-test result."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskstream.errors import ConfigurationError, EmptyInputError, InvalidFieldError
from riskstream.risk._backtest import (
    BASEL_PLUS_FACTORS,
    christoffersen_independence,
    conditional_coverage,
    evaluate_backtest,
    kupiec_pof,
    traffic_light,
)


def _binomial_cdf(x: int, n: int, p: float) -> float:
    """P(X <= x) for X ~ Binomial(n, p), summed term by term (independent of scipy)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(x + 1))


# --- Kupiec ---------------------------------------------------------------------------------------------------


def test_kupiec_by_hand_250_days_8_exceptions() -> None:
    # Kupiec (1995) LR_pof = -2 ln[(1-p)^(T-x) p^x] + 2 ln[(1-x/T)^(T-x) (x/T)^x], T = 250, x = 8, p = 0.01:
    #   ln L0 = 242 ln 0.99 + 8 ln 0.01   = 242(-0.0100503) + 8(-4.6051702) = -2.4321813 - 36.8413615 = -39.2735428
    #   ln L1 = 242 ln 0.968 + 8 ln 0.032 = 242(-0.0325232) + 8(-3.4420194) = -7.8706124 - 27.5361550 = -35.4067674
    #   LR = -2(-39.2735428 + 35.4067674) = 7.7335508; p = P(chi2(1) > 7.7336) = 0.00542
    lr = kupiec_pof(8, 250, 0.01)
    assert lr.statistic == pytest.approx(7.7335508, abs=1e-6)
    assert lr.pvalue == pytest.approx(0.005420, abs=1e-5)
    assert lr.dof == 1


def test_kupiec_zero_exceptions() -> None:
    # x = 0: ln L1 = 0 (0 log 0 = 0), so LR = -2 * 250 * ln 0.99 = 500 * 0.01005034 = 5.025168
    assert kupiec_pof(0, 250, 0.01).statistic == pytest.approx(5.025168, abs=1e-6)


def test_kupiec_exact_rate_gives_zero() -> None:
    lr = kupiec_pof(2, 200, 0.01)
    assert lr.statistic == pytest.approx(0.0, abs=1e-12)
    assert lr.pvalue == pytest.approx(1.0)


@given(st.integers(1, 2000), st.data(), st.floats(0.001, 0.2))
def test_kupiec_is_a_valid_statistic(n: int, data: st.DataObject, p: float) -> None:
    x = data.draw(st.integers(0, n))
    lr = kupiec_pof(x, n, p)
    assert lr.statistic >= 0.0
    assert 0.0 <= lr.pvalue <= 1.0


def test_kupiec_rejects_bad_counts() -> None:
    with pytest.raises(InvalidFieldError, match=r"'exceptions'.*300"):
        kupiec_pof(300, 250, 0.01)
    with pytest.raises(ConfigurationError, match=r"'coverage'.*1\.5"):
        kupiec_pof(1, 250, 1.5)
    with pytest.raises(EmptyInputError, match="observations"):
        kupiec_pof(0, 0, 0.01)


# --- Christoffersen -------------------------------------------------------------------------------------------


def test_christoffersen_by_hand_clustered_exceptions() -> None:
    # flags 0001110000: transitions n00 = 5, n01 = 1, n10 = 1, n11 = 2 (Christoffersen 1998, section 3);
    # pi01 = 1/6, pi11 = 2/3, pi = 3/9 = 1/3:
    #   ln L0 = 6 ln(2/3) + 3 ln(1/3)                            = -2.4327906 - 3.2958369            = -5.7286275
    #   ln L1 = 5 ln(5/6) + ln(1/6) + ln(1/3) + 2 ln(2/3)        = -0.9116078 - 1.7917595 - 1.0986123
    #                                                              - 0.8109302                       = -4.6129098
    #   LR = 2(5.7286275 - 4.6129098) = 2.2314355; p = P(chi2(1) > 2.2314) = 0.13523
    lr = christoffersen_independence([0, 0, 0, 1, 1, 1, 0, 0, 0, 0])
    assert lr.statistic == pytest.approx(2.2314355, abs=1e-6)
    assert lr.pvalue == pytest.approx(0.13523, abs=1e-5)


def test_christoffersen_independent_pattern_gives_zero() -> None:
    # flags 0011000100: n00 = 4, n01 = 2, n10 = 2, n11 = 1, so pi01 = pi11 = pi = 1/3 and LR = 0
    assert christoffersen_independence([0, 0, 1, 1, 0, 0, 0, 1, 0, 0]).statistic == pytest.approx(
        0.0, abs=1e-12
    )


@pytest.mark.parametrize(
    "flags",
    [[0] * 20, [1] * 20, [0] * 19 + [1], [0, 1, 0, 1, 0, 0, 0]],
    ids=["no-exception", "all-exceptions", "only-last-day", "never-two-in-a-row"],
)
def test_christoffersen_zero_count_edge_cases_are_finite(flags: list[int]) -> None:
    lr = christoffersen_independence(flags)
    assert math.isfinite(lr.statistic) and lr.statistic >= 0.0
    assert 0.0 <= lr.pvalue <= 1.0


def test_christoffersen_no_exception_is_zero() -> None:
    assert christoffersen_independence([0] * 50).statistic == 0.0


def test_conditional_coverage_is_the_sum() -> None:
    flags = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    cc = conditional_coverage(flags, 0.01)
    total = kupiec_pof(3, 10, 0.01).statistic + christoffersen_independence(flags).statistic
    assert cc.statistic == pytest.approx(total)
    # chi2(2) survival function is exp(-x/2)
    assert cc.pvalue == pytest.approx(math.exp(-total / 2))
    assert cc.dof == 2


def test_christoffersen_needs_two_days() -> None:
    with pytest.raises(InvalidFieldError, match="exception_flags"):
        christoffersen_independence([1])


# --- Basel traffic light ---------------------------------------------------------------------------------------

# BCBS (1996) "Supervisory framework for the use of 'backtesting' in conjunction with the internal models approach
# to market risk capital requirements", Table 2: 250 observations, 99 % VaR.
# exceptions: (zone, plus factor, cumulative probability in %)
BASEL_TABLE_2 = {
    0: ("green", 0.00, 8.11),
    1: ("green", 0.00, 28.58),
    2: ("green", 0.00, 54.32),
    3: ("green", 0.00, 75.81),
    4: ("green", 0.00, 89.22),
    5: ("yellow", 0.40, 95.88),
    6: ("yellow", 0.50, 98.63),
    7: ("yellow", 0.65, 99.60),
    8: ("yellow", 0.75, 99.89),
    9: ("yellow", 0.85, 99.97),
    10: ("red", 1.00, 99.99),
}


@pytest.mark.parametrize("exceptions", sorted(BASEL_TABLE_2))
def test_traffic_light_reproduces_basel_table(exceptions: int) -> None:
    zone, plus, cum_pct = BASEL_TABLE_2[exceptions]
    light = traffic_light(exceptions, 250, 0.01)
    assert light.zone == zone
    assert light.plus_factor == plus
    assert 100 * light.cumulative_probability == pytest.approx(cum_pct, abs=0.005)


def test_traffic_light_red_beyond_ten() -> None:
    assert traffic_light(25, 250, 0.01).zone == "red"
    assert traffic_light(25, 250, 0.01).plus_factor == 1.0
    assert BASEL_PLUS_FACTORS[9] == 0.85


@pytest.mark.parametrize(("n", "p"), [(500, 0.01), (250, 0.025), (1000, 0.01), (120, 0.05)])
def test_traffic_light_general_rule(n: int, p: float) -> None:
    # BCBS 1996 zone rule: green while P(X <= x) < 95 %, yellow while < 99.99 %, red beyond
    for x in range(0, int(6 * n * p) + 6):
        cum = _binomial_cdf(x, n, p)
        expected = "green" if cum < 0.95 else "yellow" if cum < 0.9999 else "red"
        light = traffic_light(x, n, p)
        assert light.zone == expected, (x, cum)
        assert light.cumulative_probability == pytest.approx(cum, rel=1e-9)
        if light.zone == "yellow":
            assert 0.40 <= light.plus_factor <= 0.85


def test_traffic_light_975_at_250_days() -> None:
    # 250 days at 97.5 %: P(X <= 10) = 0.9485 (green), P(X <= 11) = 0.9753 (yellow) by the binomial sum
    assert _binomial_cdf(10, 250, 0.025) == pytest.approx(0.9485, abs=1e-4)
    assert traffic_light(10, 250, 0.025).zone == "green"
    assert traffic_light(11, 250, 0.025).zone == "yellow"


def test_plus_factor_never_falls_as_exceptions_rise() -> None:
    for n, p in [(500, 0.01), (250, 0.025)]:
        factors = [traffic_light(x, n, p).plus_factor for x in range(60)]
        assert factors == sorted(factors)


# --- evaluate_backtest ----------------------------------------------------------------------------------------


def _synthetic(n: int, exception_days: list[int]) -> tuple[np.ndarray, np.ndarray]:
    returns = np.full(n, 0.001)
    returns[exception_days] = -0.05
    return returns, np.full(n, 0.02)


def test_evaluate_backtest_counts_and_window() -> None:
    # 600 days, exceptions on days 10, 11 (inside the first 350) and 5 in the last 250 days
    days = [10, 11, 400, 450, 500, 550, 599]
    returns, var = _synthetic(600, days)
    result = evaluate_backtest(returns, var, var * 1.2, confidence=0.99, method="hs", window=500)
    assert result.observations == 600
    assert result.exceptions == 7
    assert result.expected_exceptions == pytest.approx(6.0)
    assert result.exception_rate == pytest.approx(7 / 600)
    assert result.exceptions_last_250 == 5 and result.traffic_light_observations == 250
    assert result.traffic_light == "yellow" and result.plus_factor == 0.40  # 5 in 250 days: Table 2
    assert result.kupiec_pvalue == pytest.approx(kupiec_pof(7, 600, 0.01).pvalue)
    flags = np.zeros(600, dtype=bool)
    flags[days] = True
    np.testing.assert_array_equal(result.exception_flags, flags)
    assert result.christoffersen_pvalue == pytest.approx(christoffersen_independence(flags).pvalue)
    assert result.conditional_coverage_pvalue == pytest.approx(conditional_coverage(flags, 0.01).pvalue)
    assert result.passes(0.05)


def test_exception_is_strictly_below_minus_var() -> None:
    # a loss equal to VaR is not an exception
    result = evaluate_backtest([-0.02, -0.0200001, 0.01], [0.02, 0.02, 0.02], confidence=0.99)
    assert result.exception_flags.tolist() == [False, True, False]


def test_to_dict_is_json_ready() -> None:
    returns, var = _synthetic(300, [5, 200])
    result = evaluate_backtest(
        returns, var, confidence=0.975, method="ewma", window=250, options={"lam": np.float64(0.94)}
    )
    data = result.to_dict(include_series=True)
    text = json.dumps(data, allow_nan=False)  # raises on numpy scalars and on NaN
    back = json.loads(text)
    assert back["first_date"] == "2000-01-03"
    assert back["exceptions"] == 2 and back["observations"] == 300
    assert type(data["options"]["lam"]) is float
    for key in (
        "kupiec_pvalue",
        "christoffersen_pvalue",
        "conditional_coverage_pvalue",
        "traffic_light",
        "plus_factor",
    ):
        assert key in back
    assert len(back["dates"]) == len(back["var"]) == len(back["exception_flags"]) == 300
    assert back["es"][0] is None  # no ES forecasts were given
    assert "dates" not in result.to_dict()


def test_evaluate_backtest_validation() -> None:
    with pytest.raises(InvalidFieldError, match=r"'var'.*2 values"):
        evaluate_backtest([0.01, 0.02, 0.03], [0.02, 0.02], confidence=0.99)
    with pytest.raises(InvalidFieldError, match=r"'var' has invalid value nan"):
        evaluate_backtest([0.01, 0.02], [0.02, float("nan")], confidence=0.99)
    with pytest.raises(ConfigurationError, match=r"'confidence'.*99"):
        evaluate_backtest([0.01, 0.02], [0.02, 0.02], confidence=99)
    with pytest.raises(InvalidFieldError, match=r"'dates'"):
        evaluate_backtest([0.01, 0.02], [0.02, 0.02], confidence=0.99, dates=["2020-01-01"])
