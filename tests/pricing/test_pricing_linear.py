"""Shares, currency, FX forwards and index futures: closed forms, no-arbitrage levels, FX translation."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta

import pytest

from riskstream.domain import Equity, EquityIndexFuture, FxForward, FxSpot, Instrument, MarketSnapshot
from riskstream.pricing import value_instruments


def _values(instruments: list[Instrument], snapshot: MarketSnapshot) -> list[float]:
    valuation = value_instruments(instruments, snapshot.to_scenarios())
    assert not valuation.failed
    return [float(v) for v in valuation.values[:, 0]]


def test_share_and_currency_translate_at_fx(flat: Callable[..., MarketSnapshot]) -> None:
    snapshot = flat({}, {"EQ.SAP": 160.0, "EQ.AAPL": 190.0, "FX.EUR": 1.1})
    shares = [Equity("S", "EUR", underlying="SAP"), Equity("A", "USD", underlying="AAPL")]
    cash = [FxSpot("E", "EUR"), FxSpot("U", "USD")]
    # value = spot × FX.<ccy>; one unit of the reporting currency is worth 1
    assert _values([*shares, *cash], snapshot) == pytest.approx([176.0, 190.0, 1.1, 1.0], rel=1e-15)


@pytest.mark.parametrize(("domestic", "foreign"), [("USD", "EUR"), ("JPY", "EUR"), ("JPY", "USD")])
def test_fx_forward_at_the_covered_parity_strike_is_worth_zero(
    as_of: date, flat: Callable[..., MarketSnapshot], domestic: str, foreign: str
) -> None:
    fx = {"USD": 1.0, "EUR": 1.1, "JPY": 0.0068}
    rates = {"USD": 0.05, "EUR": 0.03, "JPY": 0.001}
    snapshot = flat(rates, {"FX.EUR": fx["EUR"], "FX.JPY": fx["JPY"]})
    days = 700
    years = days / 365
    spot = fx[foreign] / fx[domestic]
    # covered interest parity: K = S·exp((r_dom − r_for)·T) makes S·DF_for − K·DF_dom = 0
    strike = spot * math.exp((rates[domestic] - rates[foreign]) * years)
    maturity = as_of + timedelta(days=days)
    at_par = FxForward("F", domestic, foreign_currency=foreign, strike=strike, maturity=maturity)
    off = FxForward("G", domestic, foreign_currency=foreign, strike=strike * 0.9, maturity=maturity)
    par_value, off_value = _values([at_par, off], snapshot)
    assert par_value == pytest.approx(0.0, abs=1e-15)
    # 10 % below parity: worth 0.1·K·DF_dom units of the domestic currency, translated at FX.<domestic>
    expected = 0.1 * strike * math.exp(-rates[domestic] * years) * fx[domestic]
    assert off_value == pytest.approx(expected, rel=1e-12)


def test_index_future_at_the_fair_price_is_worth_zero(
    as_of: date, flat: Callable[..., MarketSnapshot]
) -> None:
    r, q, spot, days = 0.045, 0.02, 4500.0, 200
    years = days / 365
    snapshot = flat({"EUR": r}, {"EQ.SX5E": spot, "FX.EUR": 1.1})
    fair = spot * math.exp((r - q) * years)  # F = S·exp((r − q)·T)
    maturity = as_of + timedelta(days=days)
    at_fair, bought_low = (
        EquityIndexFuture(
            "F", "EUR", underlying="SX5E", maturity=maturity, trade_price=p, multiplier=10.0, dividend_yield=q
        )
        for p in (fair, fair - 50.0)
    )
    values = _values([at_fair, bought_low], snapshot)
    assert values[0] == pytest.approx(0.0, abs=1e-9)
    # (F − trade_price)·multiplier·FX, undiscounted (daily margining)
    assert values[1] == pytest.approx(50.0 * 10.0 * 1.1, rel=1e-12)
