"""Closed-form sensitivities against central finite differences through the pricer, for every family."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pytest

from riskstream.domain import (
    INSTRUMENT_CLASSES,
    EquityOption,
    FixedRateBond,
    Instrument,
    MarketScenarios,
    MarketSnapshot,
    ShockType,
)
from riskstream.pricing import (
    Sensitivities,
    black_scholes_greeks,
    instrument_pnl,
    sensitivities,
    sensitivities_by_bumping,
    value_instruments,
)

EPS = np.finfo(float).eps
REL_BUMP, ABS_BUMP = 1e-4, 1e-5  # sensitivities_by_bumping's defaults
FAMILIES = list(INSTRUMENT_CLASSES.values())


def _size(instruments: list[Instrument], snapshot: MarketSnapshot, s: Sensitivities) -> np.ndarray:
    """Gross size of each instrument: |V| + Σ|delta| bounds the terms the pricer adds up (rounding scale)."""
    value = value_instruments(instruments, snapshot.to_scenarios()).values[:, 0]
    return (1.0 + np.abs(value) + np.abs(s.delta).sum(axis=1))[:, None]


def assert_agree(instruments: list[Instrument], snapshot: MarketSnapshot) -> Sensitivities:
    analytic = sensitivities(instruments, snapshot)
    bumped = sensitivities_by_bumping(instruments, snapshot, REL_BUMP, ABS_BUMP)
    assert analytic.factor_ids == bumped.factor_ids
    assert dict(analytic.failed) == dict(bumped.failed) == {}
    size = _size(instruments, snapshot, analytic)
    h = np.array([REL_BUMP if t is ShockType.RELATIVE else ABS_BUMP for t in analytic.shock_types])
    # Central differences err by O(h²)·(third derivative) — h² = 1e-8 times X²·V'''/V', which reaches 10³ for
    # options days from expiry at the money: 1e-4 relative — plus rounding ε·size/h on deltas (≤ 2e-11·size)
    # and ≈ 4ε·size/h² on gammas (≤ 1e-5·size for rates): the absolute terms below hold those with margin.
    delta_err = np.abs(analytic.delta - bumped.delta)
    gamma_err = np.abs(analytic.gamma - bumped.gamma)
    assert np.all(delta_err <= 1e-4 * np.abs(analytic.delta) + 1e-9 * size), "delta"
    assert np.all(gamma_err <= 1e-4 * np.abs(analytic.gamma) + 10 * EPS * size / h**2), "gamma"
    return analytic


@pytest.mark.parametrize("family", FAMILIES, ids=lambda c: c.__name__)
def test_analytic_sensitivities_match_bumping(
    family: type[Instrument], snapshot: MarketSnapshot, make_instruments: Callable[..., list[Instrument]]
) -> None:
    instruments = [i for i in make_instruments(9 * 12, 5) if type(i) is family]
    # every family is covered with instruments outside the reporting currency (FX translation)
    assert any(i.currency != snapshot.reporting_currency for i in instruments)
    s = assert_agree(instruments, snapshot)
    assert np.any(s.delta != 0)


def test_fx_delta_of_a_foreign_instrument_is_its_reporting_value(
    snapshot: MarketSnapshot, make_instruments: Callable[..., list[Instrument]]
) -> None:
    single = [
        i for i in make_instruments(90, 2) if i.currency == "EUR" and "foreign_currency" not in i.to_record()
    ]
    s = sensitivities(single, snapshot)
    value = value_instruments(single, snapshot.to_scenarios()).values[:, 0]
    # V_rep = X·V_local, so X·∂V_rep/∂X = V_rep and the own FX gamma is 0
    np.testing.assert_allclose(s.delta_to("FX.EUR"), value, rtol=1e-14)
    np.testing.assert_array_equal(s.gamma_to("FX.EUR"), 0.0)


def test_option_accessors(as_of: date, snapshot: MarketSnapshot) -> None:
    option = EquityOption(
        "O", "EUR", underlying="SAP", strike=150.0, maturity=as_of + timedelta(days=300), multiplier=10.0
    )
    s = sensitivities([option], snapshot)
    spot, vol, fx = snapshot["EQ.SAP"], snapshot["VOL.SAP"], snapshot["FX.EUR"]
    years = 300 / 365
    r = snapshot["IR.EUR.6M"] + (snapshot["IR.EUR.1Y"] - snapshot["IR.EUR.6M"]) * (years - 0.5) / 0.5
    g = black_scholes_greeks(spot, 150.0, years, r, r, vol, 1.0)
    # spot delta in units of the underlying: FX·multiplier·N(d1); cash delta in the shock convention: × S
    assert s.spot_delta("EQ.SAP")[0] == pytest.approx(fx * 10.0 * float(g.delta), rel=1e-13)
    assert s.cash_delta("EQ.SAP")[0] == pytest.approx(fx * 10.0 * float(g.delta) * spot, rel=1e-13)
    assert s.spot_gamma("EQ.SAP")[0] == pytest.approx(fx * 10.0 * float(g.gamma), rel=1e-12)
    # vega per vol point: ∂V/∂σ × 0.01, against σ ± 1e-5 through the pricer (truncation O(h²) ≈ 1e-10
    # relative, rounding ε·V/h ≈ 1e-9 relative)
    up = value_instruments([option], snapshot.bumped("VOL.SAP", 1e-5).to_scenarios()).values[0, 0]
    down = value_instruments([option], snapshot.bumped("VOL.SAP", -1e-5).to_scenarios()).values[0, 0]
    assert s.vega("SAP")[0] == pytest.approx((up - down) / 2e-5 * 0.01, rel=1e-7)
    assert s.vega("AAPL")[0] == 0.0  # no dependence
    pv01 = s.pv01("EUR")
    assert list(pv01) == ["1M", "3M", "6M", "1Y", "2Y", "3Y", "5Y", "7Y", "10Y", "15Y", "20Y", "30Y"]
    np.testing.assert_allclose(pv01["6M"], s.delta_to("IR.EUR.6M") * 1e-4, rtol=1e-15)
    assert pv01["6M"][0] > 0 and pv01["1Y"][0] > 0  # a long call gains when its rate rises
    assert s.spot_delta("IR.EUR.1Y")[0] == s.delta_to("IR.EUR.1Y")[0]  # absolute: the delta itself


def test_taylor_pnl_is_third_order_accurate_one_factor_at_a_time(
    snapshot: MarketSnapshot, make_instruments: Callable[..., list[Instrument]]
) -> None:
    instruments = make_instruments(9 * 8, 11)
    s = sensitivities(instruments, snapshot)
    base = snapshot.to_scenarios(s.factor_ids)
    relative = np.array([t is ShockType.RELATIVE for t in s.shock_types])
    size = _size(instruments, snapshot, s)
    errors = []
    for m_rel, m_abs in ((1e-2, 1e-3), (1e-3, 1e-4)):
        moves = np.diag(np.where(relative, m_rel, m_abs))  # scenario j moves factor j alone (no cross terms)
        levels = np.where(relative, base.levels * (1 + moves), base.levels + moves)
        pnl = instrument_pnl(instruments, snapshot, MarketScenarios(base.as_of, s.factor_ids, levels)).values
        errors.append(np.abs(pnl - s.taylor_pnl(moves)).max())
        assert np.all(np.abs(pnl - s.taylor_pnl(moves)) <= 1e-3 * (m_rel / 1e-2) ** 3 * size)
    # P&L − (delta·m + ½·gamma·m²) = O(m³): ten times smaller moves, about a thousand times smaller error
    assert errors[0] / errors[1] > 300


def test_failed_instruments_are_nan_rows(as_of: date, snapshot: MarketSnapshot) -> None:
    good = FixedRateBond("B", "EUR", maturity=as_of + timedelta(days=900), coupon_rate=0.03)
    matured = FixedRateBond("M", "EUR", maturity=as_of - timedelta(days=1), coupon_rate=0.03)
    s = sensitivities([good, matured], snapshot)
    assert list(s.failed) == [1] and "maturity" in s.failed[1]
    assert np.all(np.isnan(s.delta[1])) and np.all(np.isfinite(s.delta[0]))
    # a bond depends on its whole curve and its FX, in the snapshot's order
    assert s.factor_ids == tuple(f for f in snapshot.factor_ids if f.startswith("IR.EUR.") or f == "FX.EUR")
