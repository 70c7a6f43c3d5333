"""Bonds and swaps against closed forms on flat curves (continuous compounding, ACT/365F)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pytest

from riskstream.domain import FixedRateBond, Instrument, InterestRateSwap, MarketSnapshot, ZeroCouponBond
from riskstream.pricing import sensitivities, value_instruments

Z = 0.04  # flat zero rate


def _value(instrument: Instrument, snapshot: MarketSnapshot) -> float:
    valuation = value_instruments([instrument], snapshot.to_scenarios())
    assert not valuation.failed
    return float(valuation.values[0, 0])


def _annuity(years: float, frequency: int, z: float) -> tuple[float, int]:
    """Σ exp(−z·t_i) over t_i = T − i/f > 0 (geometric series) and the number of terms."""
    n = math.ceil(years * frequency - 1e-12)
    ratio = math.exp(z / frequency)  # each earlier payment is discounted less by this factor
    return math.exp(-z * years) * (ratio**n - 1) / (ratio - 1), n


def test_zero_coupon_bond(as_of: date, flat: Callable[..., MarketSnapshot]) -> None:
    bond = ZeroCouponBond("Z", "USD", maturity=as_of + timedelta(days=1000), face=100.0, spread=0.01)
    years = 1000 / 365
    # closed form: face·exp(−(z + s)·T)
    assert _value(bond, flat({"USD": Z})) == pytest.approx(100.0 * math.exp(-(Z + 0.01) * years), rel=1e-14)


@pytest.mark.parametrize(("days", "frequency"), [(3653, 2), (1000, 4), (400, 1), (7300, 12)])
def test_fixed_rate_bond_is_the_annuity(
    as_of: date, flat: Callable[..., MarketSnapshot], days: int, frequency: int
) -> None:
    bond = FixedRateBond(
        "B", "USD", maturity=as_of + timedelta(days=days), coupon_rate=0.05, frequency=frequency, face=1000.0
    )
    years = days / 365
    annuity, _ = _annuity(years, frequency, Z)
    # closed form: (c·F/f)·Σ_i exp(−z·t_i) + F·exp(−z·T), t_i = T − i/f
    expected = 0.05 * 1000.0 / frequency * annuity + 1000.0 * math.exp(-Z * years)
    assert _value(bond, flat({"USD": Z})) == pytest.approx(expected, rel=1e-13)


def test_z_spread_equals_a_shifted_curve(as_of: date, flat: Callable[..., MarketSnapshot]) -> None:
    maturity = as_of + timedelta(days=2900)
    with_spread = FixedRateBond("B", "EUR", maturity=maturity, coupon_rate=0.03, frequency=2, spread=0.015)
    without = FixedRateBond("B", "EUR", maturity=maturity, coupon_rate=0.03, frequency=2)
    spread = _value(with_spread, flat({"EUR": Z}, {"FX.EUR": 1.0}))
    shifted = _value(without, flat({"EUR": Z + 0.015}, {"FX.EUR": 1.0}))
    assert spread == pytest.approx(shifted, rel=1e-14)  # exp(−(z+s)t) either way


def test_swap_at_its_par_rate_is_worth_zero(as_of: date, flat: Callable[..., MarketSnapshot]) -> None:
    days, frequency = 1900, 2
    years = days / 365
    times = [years - i / frequency for i in range(math.ceil(years * frequency))]
    accruals = [t - (times[i + 1] if i + 1 < len(times) else 0.0) for i, t in enumerate(times)]
    annuity = sum(a * math.exp(-Z * t) for a, t in zip(accruals, times, strict=True))
    par = (1 - math.exp(-Z * years)) / annuity  # fixed leg = floating leg (1 − DF(T))
    snapshot = flat({"USD": Z})
    for pay_fixed in (True, False):
        swap = InterestRateSwap(
            "S",
            "USD",
            maturity=as_of + timedelta(days=days),
            fixed_rate=par,
            frequency=2,
            pay_fixed=pay_fixed,
        )
        assert _value(swap, snapshot) == pytest.approx(0.0, abs=1e-15)


def test_receiver_swap_closed_form_and_payer_is_its_negative(
    as_of: date, flat: Callable[..., MarketSnapshot]
) -> None:
    maturity = as_of + timedelta(days=5 * 365)  # T = 5 exactly: five whole annual periods
    receiver = InterestRateSwap("R", "USD", maturity=maturity, fixed_rate=0.05, frequency=1, pay_fixed=False)
    payer = InterestRateSwap("P", "USD", maturity=maturity, fixed_rate=0.05, frequency=1, pay_fixed=True)
    snapshot = flat({"USD": Z})
    # closed form: c·Σ_{i=1..5} exp(−z·i) − (1 − exp(−5z))
    expected = 0.05 * sum(math.exp(-Z * i) for i in range(1, 6)) - (1 - math.exp(-5 * Z))
    assert _value(receiver, snapshot) == pytest.approx(expected, rel=1e-13)
    assert _value(payer, snapshot) == pytest.approx(-expected, rel=1e-13)


def test_bond_on_tenor_points_uses_the_tenor_rates(as_of: date, snapshot: MarketSnapshot) -> None:
    # T = 2 exactly, annual: cashflows at 2y and 1y discount at the 2Y and 1Y points themselves
    bond = FixedRateBond("B", "USD", maturity=as_of + timedelta(days=730), coupon_rate=0.06, face=100.0)
    z1, z2 = snapshot["IR.USD.1Y"], snapshot["IR.USD.2Y"]
    expected = 6.0 * math.exp(-z1) + 106.0 * math.exp(-2 * z2)
    assert _value(bond, snapshot) == pytest.approx(expected, rel=1e-14)


def test_pv01_of_a_zero_bond(as_of: date, flat: Callable[..., MarketSnapshot]) -> None:
    days = 912  # T ≈ 2.4986: between the 2Y and 3Y points
    years = days / 365
    bond = ZeroCouponBond("Z", "USD", maturity=as_of + timedelta(days=days), face=100.0)
    pv01 = sensitivities([bond], flat({"USD": Z})).pv01("USD")
    # closed form: ∂V/∂z = −face·T·exp(−zT), so PV01 (value change for +1 bp) = −face·T·exp(−zT)·1e-4,
    # split between the bracketing tenors by the interpolation weights (3 − T) and (T − 2)
    total = -100.0 * years * math.exp(-Z * years) * 1e-4
    assert sum(float(v[0]) for v in pv01.values()) == pytest.approx(total, rel=1e-13)
    assert float(pv01["2Y"][0]) == pytest.approx(total * (3 - years), rel=1e-12)
    assert float(pv01["3Y"][0]) == pytest.approx(total * (years - 2), rel=1e-12)
    assert all(float(v[0]) == 0.0 for k, v in pv01.items() if k not in ("2Y", "3Y"))


def test_fixed_bond_parallel_pv01_is_its_duration(as_of: date, flat: Callable[..., MarketSnapshot]) -> None:
    days, frequency = 3000, 2
    years = days / 365
    bond = FixedRateBond("B", "USD", maturity=as_of + timedelta(days=days), coupon_rate=0.05, frequency=2)
    times = np.array([years - i / frequency for i in range(math.ceil(years * frequency))])
    cash = np.full(len(times), 2.5)
    cash[0] += 100.0
    # closed form: ∂V/∂(parallel z) = −Σ c_i·t_i·exp(−z·t_i) (the weights of each time sum to 1 over tenors)
    expected = -(cash * times * np.exp(-Z * times)).sum() * 1e-4
    pv01 = sensitivities([bond], flat({"USD": Z})).pv01("USD")
    assert sum(float(v[0]) for v in pv01.values()) == pytest.approx(expected, rel=1e-13)
