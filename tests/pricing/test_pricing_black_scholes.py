"""Generalised Black-Scholes-Merton: published prices, put-call parity, closed-form greeks against differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskstream.pricing import black_scholes, black_scholes_greeks

CALL, PUT = 1.0, -1.0


def test_hull_stock_option() -> None:
    # Hull, Options, Futures and Other Derivatives, ch. "The Black-Scholes-Merton model", worked example:
    # S0 = 42, K = 40, r = 10 %, σ = 20 %, T = 0.5 → c = 4.76, p = 0.81 (no dividends: b = r)
    assert round(float(black_scholes(42.0, 40.0, 0.5, 0.10, 0.10, 0.20, CALL)), 2) == 4.76
    assert round(float(black_scholes(42.0, 40.0, 0.5, 0.10, 0.10, 0.20, PUT)), 2) == 0.81


def test_haug_merton_index_put() -> None:
    # Haug, The Complete Guide to Option Pricing Formulas, 2nd ed., §1.1 (Merton 1973, continuous dividend
    # yield): S = 100, K = 95, T = 0.5, r = 10 %, q = 5 %, σ = 20 % → p = 2.4648 (b = r − q)
    assert float(black_scholes(100.0, 95.0, 0.5, 0.10, 0.05, 0.20, PUT)) == pytest.approx(2.4648, abs=5e-5)


def test_haug_garman_kohlhagen_call() -> None:
    # Haug, 2nd ed., §1.1 (Garman-Kohlhagen 1983): S = 1.56, K = 1.60, T = 0.5, r_d = 6 %, r_f = 8 %, σ = 12 %
    # → c = 0.0291 (b = r_d − r_f)
    assert float(black_scholes(1.56, 1.60, 0.5, 0.06, 0.06 - 0.08, 0.12, CALL)) == pytest.approx(
        0.0291, abs=5e-5
    )


@settings(deadline=None)
@given(
    spot=st.floats(1.0, 1000.0),
    moneyness=st.floats(0.5, 2.0),
    expiry=st.floats(0.01, 10.0),
    rate=st.floats(-0.02, 0.2),
    carry=st.floats(-0.2, 0.2),
    vol=st.floats(0.01, 1.5),
)
def test_put_call_parity(
    spot: float, moneyness: float, expiry: float, rate: float, carry: float, vol: float
) -> None:
    # C − P = S·e^{(b−r)T} − K·e^{−rT} (with b = r − q: S·e^{−qT} − K·e^{−rT}), model-free
    strike = spot * moneyness
    call = float(black_scholes(spot, strike, expiry, rate, carry, vol, CALL))
    put = float(black_scholes(spot, strike, expiry, rate, carry, vol, PUT))
    forward_value = spot * math.exp((carry - rate) * expiry) - strike * math.exp(-rate * expiry)
    # prices are differences of terms of size ≤ S + K: rounding error a few ε·(S + K)
    assert call - put == pytest.approx(forward_value, abs=1e-12 * (spot + strike))


CASES = [  # (S, K, T, r, b, σ, φ): ITM/OTM calls and puts, equity and FX-style carry
    (42.0, 40.0, 0.5, 0.10, 0.10, 0.20, CALL),
    (100.0, 95.0, 0.5, 0.10, 0.05, 0.20, PUT),
    (1.56, 1.60, 0.5, 0.06, -0.02, 0.12, CALL),
    (50.0, 70.0, 2.0, 0.03, 0.01, 0.35, PUT),
    (50.0, 30.0, 0.1, -0.005, 0.02, 0.6, CALL),
]


def _bumped(case: tuple[float, ...], arg: int, h: float) -> float:
    args = list(case)
    args[arg] += h
    return float(black_scholes(*args))


def _first(case: tuple[float, ...], arg: int, h: float) -> float:
    return (_bumped(case, arg, h) - _bumped(case, arg, -h)) / (2 * h)


def _second(case: tuple[float, ...], arg: int, h: float) -> float:
    return (_bumped(case, arg, h) - 2 * _bumped(case, arg, 0.0) + _bumped(case, arg, -h)) / (h * h)


@pytest.mark.parametrize("case", CASES)
def test_greeks_match_finite_differences(case: tuple[float, ...]) -> None:
    s, _, _, _, _, v, _ = case
    g = black_scholes_greeks(*case)
    # central differences: truncation O(h²) ≈ 1e-8 relative for these steps, rounding ε·V/h (first order) and
    # ε·V/h² (second order) — so 1e-6 relative on first and 1e-4 on second derivatives, with an absolute floor
    hs, hr, hv = 1e-4 * s, 1e-4, 1e-4 * v
    first = {"delta": (0, hs), "vega": (5, hv), "d_rate": (3, hr), "d_carry": (4, hr)}
    second = {"gamma": (0, hs), "volga": (5, hv), "d2_rate": (3, hr), "d2_carry": (4, hr)}
    for name, (arg, h) in first.items():
        assert float(getattr(g, name)) == pytest.approx(_first(case, arg, h), rel=1e-6, abs=1e-8), name
    for name, (arg, h) in second.items():
        assert float(getattr(g, name)) == pytest.approx(_second(case, arg, h), rel=1e-4, abs=1e-5), name
    # mixed ∂²V/∂r∂b from the four-point stencil
    args = list(case)

    def at(dr: float, db: float) -> float:
        a = list(args)
        a[3] += dr
        a[4] += db
        return float(black_scholes(*a))

    mixed = (at(hr, hr) - at(hr, -hr) - at(-hr, hr) + at(-hr, -hr)) / (4 * hr * hr)
    assert float(g.d_rate_carry) == pytest.approx(mixed, rel=1e-4, abs=1e-5)
    assert float(g.price) == pytest.approx(float(black_scholes(*case)), rel=1e-14)


def test_vectorised_over_mixed_shapes() -> None:
    # one call prices a (rows, scenarios) grid with per-row strikes; each element equals the scalar price
    spot = np.array([[40.0, 42.0, 44.0], [90.0, 100.0, 110.0]])
    strike = np.array([[40.0], [95.0]])
    phi = np.array([[CALL], [PUT]])
    grid = black_scholes(spot, strike, 0.5, 0.10, 0.05, 0.20, phi)
    for i in range(2):
        for j in range(3):
            scalar = black_scholes(spot[i, j], strike[i, 0], 0.5, 0.10, 0.05, 0.20, phi[i, 0])
            assert grid[i, j] == pytest.approx(float(scalar), rel=1e-15)


def test_outside_the_domain_is_nan_without_warnings() -> None:
    # a scenario may hold a non-positive spot or vol: the price is NaN and the run goes on (warnings are errors)
    out = black_scholes(np.array([-1.0, 42.0, 42.0]), 40.0, 0.5, 0.1, 0.1, np.array([0.2, 0.0, -0.2]), CALL)
    assert np.isnan(out[0]) and np.isnan(out[2])
