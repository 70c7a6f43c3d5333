"""Equity and FX option families: the Black-Scholes-Merton formula with curve rates, multiplier, FX translation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from riskstream.domain import EquityOption, FxOption, MarketSnapshot, OptionType
from riskstream.pricing import black_scholes, value_instruments


def test_equity_option_uses_curve_rate_dividend_multiplier_and_fx(
    as_of: date, flat: Callable[..., MarketSnapshot]
) -> None:
    snapshot = flat({"EUR": 0.03}, {"EQ.SAP": 160.0, "VOL.SAP": 0.25, "FX.EUR": 1.1})
    days = 250
    years = days / 365
    option = EquityOption(
        "O",
        "EUR",
        underlying="SAP",
        strike=150.0,
        maturity=as_of + timedelta(days=days),
        option_type=OptionType.PUT,
        dividend_yield=0.02,
        multiplier=100.0,
    )
    value = value_instruments([option], snapshot.to_scenarios()).values[0, 0]
    # Merton (1973): BSM with r = z(T) = 3 %, b = r − q; × multiplier × FX.EUR
    expected = float(black_scholes(160.0, 150.0, years, 0.03, 0.03 - 0.02, 0.25, -1.0)) * 100.0 * 1.1
    assert value == pytest.approx(expected, rel=1e-14)


def test_fx_option_is_garman_kohlhagen_translated_at_the_domestic_fx(
    as_of: date, flat: Callable[..., MarketSnapshot]
) -> None:
    # Haug's Garman-Kohlhagen inputs (S = 1.56, K = 1.60, r_d = 6 %, r_f = 8 %, σ = 12 %) with an EUR
    # domestic currency and a GBP foreign one, reported in USD: S = FX.GBP / FX.EUR
    snapshot = flat({"EUR": 0.06, "GBP": 0.08}, {"FX.EUR": 1.25, "FX.GBP": 1.56 * 1.25, "VOL.GBPEUR": 0.12})
    days = 183
    years = days / 365
    option = FxOption("X", "EUR", foreign_currency="GBP", strike=1.60, maturity=as_of + timedelta(days=days))
    value = value_instruments([option], snapshot.to_scenarios()).values[0, 0]
    expected = float(black_scholes(1.56, 1.60, years, 0.06, 0.06 - 0.08, 0.12, 1.0)) * 1.25
    assert value == pytest.approx(expected, rel=1e-13)
    # at T = 183/365 ≈ 0.5014 the price is within 2e-4 of Haug's 0.0291 at T = 0.5 (per EUR, before translation)
    assert value / 1.25 == pytest.approx(0.0291, abs=2e-4)
