"""Markets and random mixed portfolios for the pricing tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pytest

from riskstream.domain import (
    TENORS,
    Equity,
    EquityIndexFuture,
    EquityOption,
    FixedRateBond,
    FxForward,
    FxOption,
    FxSpot,
    Instrument,
    InterestRateSwap,
    MarketScenarios,
    MarketSnapshot,
    OptionType,
    ZeroCouponBond,
)

AS_OF = date(2024, 1, 2)

# equity name → (currency, spot); FX pairs with their vols; JPY has a partial curve on purpose
EQUITIES = {"AAPL": ("USD", 190.0), "SPX": ("USD", 4700.0), "SAP": ("EUR", 160.0), "SX5E": ("EUR", 4500.0)}
FX = {"EUR": 1.10, "JPY": 0.0068, "GBP": 1.27}
PAIRS = {"EURUSD": 0.08, "USDJPY": 0.10, "EURJPY": 0.11, "GBPEUR": 0.07}
JPY_TENORS = ("3M", "1Y", "5Y", "10Y")


def market_values() -> dict[str, float]:
    values: dict[str, float] = {}
    for name, (_, spot) in EQUITIES.items():
        values[f"EQ.{name}"] = spot
        values[f"VOL.{name}"] = 0.15 + 0.01 * len(name)
    for ccy, x in FX.items():
        values[f"FX.{ccy}"] = x
    for pair, vol in PAIRS.items():
        values[f"VOL.{pair}"] = vol
    for ccy, level, slope in (("USD", 0.045, 0.0004), ("EUR", 0.028, 0.0006), ("GBP", 0.04, -0.0003)):
        for tenor, t in TENORS.items():
            values[f"IR.{ccy}.{tenor}"] = level + slope * t + 0.002 * np.sin(t)
    for tenor in JPY_TENORS:
        values[f"IR.JPY.{tenor}"] = 0.001 + 0.001 * TENORS[tenor]
    return values


@pytest.fixture
def as_of() -> date:
    """Valuation date of the test markets."""
    return AS_OF


@pytest.fixture
def snapshot() -> MarketSnapshot:
    """A market with USD (reporting), EUR, GBP full curves, a partial JPY curve, four equities, four FX vols."""
    return MarketSnapshot(AS_OF, market_values(), "USD")


@pytest.fixture
def make_scenarios() -> Callable[..., MarketScenarios]:
    return shocked


@pytest.fixture
def make_instruments() -> Callable[..., list[Instrument]]:
    return random_instruments


def flat_snapshot(rates: dict[str, float], extra: dict[str, float] | None = None) -> MarketSnapshot:
    """Flat zero curves (every tenor of each currency at one rate) plus any other factors, reporting USD."""
    values = {f"IR.{ccy}.{tenor}": z for ccy, z in rates.items() for tenor in TENORS}
    return MarketSnapshot(AS_OF, {**values, **(extra or {})}, "USD")


@pytest.fixture
def flat() -> Callable[..., MarketSnapshot]:
    return flat_snapshot


def shocked(snapshot: MarketSnapshot, n: int, seed: int = 0, scale: float = 1.0) -> MarketScenarios:
    """Scenarios around ``snapshot``: lognormal relative moves of prices, FX, vols; absolute moves of rates."""
    rng = np.random.default_rng(seed)
    ids = snapshot.factor_ids
    base = np.array([snapshot[f] for f in ids])
    is_rate = np.array([f.startswith("IR.") for f in ids])
    z = rng.standard_normal((n, len(ids))) * scale
    levels = np.where(is_rate, base + 0.005 * z, base * np.exp(0.05 * z))
    return MarketScenarios(snapshot.as_of, ids, levels, snapshot.reporting_currency)


def random_instruments(n: int, seed: int = 0) -> list[Instrument]:
    """``n`` instruments cycling through the nine families, random terms, several currencies."""
    rng = np.random.default_rng(seed)
    return [_random_instrument(f"I{k}", k % 9, rng) for k in range(n)]


def _random_instrument(iid: str, family: int, rng: np.random.Generator) -> Instrument:
    def days(lo: int, hi: int) -> date:
        return AS_OF + timedelta(days=int(rng.integers(lo, hi)))

    def pick(options: tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))]

    underlying = pick(tuple(EQUITIES))
    ccy, spot = EQUITIES[underlying]
    pair = pick(tuple(PAIRS))
    if family == 0:
        return Equity(iid, ccy, underlying=underlying)
    if family == 1:
        return FxSpot(iid, pick(("EUR", "JPY", "GBP", "USD")))
    if family == 2:
        return EquityIndexFuture(
            iid,
            ccy,
            underlying=underlying,
            maturity=days(5, 400),
            trade_price=spot * float(rng.uniform(0.9, 1.1)),
            multiplier=float(rng.choice([1.0, 10.0, 50.0])),
            dividend_yield=float(rng.uniform(0, 0.04)),
        )
    if family == 3:
        return FxForward(
            iid,
            pair[3:],
            foreign_currency=pair[:3],
            strike=pair_spot(pair) * float(rng.uniform(0.9, 1.1)),
            maturity=days(5, 10 * 365),
        )
    if family == 4:
        return FixedRateBond(
            iid,
            pick(("USD", "EUR", "JPY", "GBP")),
            maturity=days(5, 31 * 365),
            coupon_rate=float(rng.uniform(0, 0.08)),
            frequency=int(rng.choice([1, 2, 4, 12])),
            face=float(rng.choice([100.0, 1000.0])),
            spread=float(rng.uniform(-0.005, 0.03)),
        )
    if family == 5:
        return ZeroCouponBond(
            iid, pick(("USD", "EUR", "JPY")), maturity=days(5, 31 * 365), spread=float(rng.uniform(0, 0.02))
        )
    if family == 6:
        return InterestRateSwap(
            iid,
            pick(("USD", "EUR", "GBP")),
            maturity=days(5, 31 * 365),
            fixed_rate=float(rng.uniform(0.0, 0.06)),
            frequency=int(rng.choice([1, 2, 4])),
            pay_fixed=bool(rng.integers(2)),
        )
    if family == 7:
        return EquityOption(
            iid,
            ccy,
            underlying=underlying,
            strike=spot * float(rng.uniform(0.7, 1.3)),
            maturity=days(5, 5 * 365),
            option_type=OptionType(pick(("call", "put"))),
            dividend_yield=float(rng.uniform(0, 0.03)),
            multiplier=float(rng.choice([1.0, 100.0])),
        )
    return FxOption(
        iid,
        pair[3:],
        foreign_currency=pair[:3],
        strike=pair_spot(pair) * float(rng.uniform(0.8, 1.2)),
        maturity=days(5, 3 * 365),
        option_type=OptionType(pick(("call", "put"))),
    )


def pair_spot(pair: str) -> float:
    """Domestic units per foreign unit of a 6-letter pair in the test market."""
    fx = {"USD": 1.0, **FX}
    return fx[pair[:3]] / fx[pair[3:]]
