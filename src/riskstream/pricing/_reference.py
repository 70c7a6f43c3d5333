"""Plain reference pricer: one instrument, one market, scalar arithmetic straight from the domain's formulas.

Slow and obvious on purpose; tests assert that the vectorised pricers agree with it. Nothing here is shared with
them: the curve interpolation, the schedules and the normal distribution are written out again.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from ..domain import (
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
    year_fraction,
)

__all__ = ["reference_value", "reference_values"]


def _zero_rate(market: MarketSnapshot, currency: str, t: float) -> float:
    points = [(TENORS[k], market[f"IR.{currency}.{k}"]) for k in TENORS if f"IR.{currency}.{k}" in market]
    if t <= points[0][0]:
        return points[0][1]
    for (t0, z0), (t1, z1) in itertools.pairwise(points):
        if t <= t1:
            return z0 + (z1 - z0) * (t - t0) / (t1 - t0)
    return points[-1][1]


def _df(market: MarketSnapshot, currency: str, t: float) -> float:
    return math.exp(-_zero_rate(market, currency, t) * t)


def _fx(market: MarketSnapshot, currency: str) -> float:
    return market[f"FX.{currency}"]


def _coupon_times(years: float, frequency: int) -> list[float]:
    times, i = [], 0
    while years - i / frequency > 1e-9:
        times.append(years - i / frequency)
        i += 1
    return times


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _bsm(s: float, k: float, t: float, r: float, b: float, sigma: float, call: bool) -> float:
    d1 = (math.log(s / k) + (b + sigma * sigma / 2) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    if call:
        return s * math.exp((b - r) * t) * _normal_cdf(d1) - k * math.exp(-r * t) * _normal_cdf(d2)
    return k * math.exp(-r * t) * _normal_cdf(-d2) - s * math.exp((b - r) * t) * _normal_cdf(-d1)


def reference_value(inst: Instrument, market: MarketSnapshot) -> float:
    """Value of one unit of ``inst`` in the reporting currency; raises on missing factors, NaN past maturity."""
    fx = _fx(market, inst.currency)
    if isinstance(inst, Equity):
        return market[f"EQ.{inst.underlying}"] * fx
    if isinstance(inst, FxSpot):
        return fx
    years = year_fraction(market.as_of, inst.maturity)  # type: ignore[attr-defined]
    if years <= 0:
        return math.nan
    ccy = inst.currency
    if isinstance(inst, EquityIndexFuture):
        r = _zero_rate(market, ccy, years)
        fwd = market[f"EQ.{inst.underlying}"] * math.exp((r - inst.dividend_yield) * years)
        return (fwd - inst.trade_price) * inst.multiplier * fx
    if isinstance(inst, FxForward):
        s = _fx(market, inst.foreign_currency) / fx
        local = s * _df(market, inst.foreign_currency, years) - inst.strike * _df(market, ccy, years)
        return local * fx
    if isinstance(inst, FixedRateBond):
        total = 0.0
        for t in _coupon_times(years, inst.frequency):
            cash = inst.face * inst.coupon_rate / inst.frequency + (inst.face if t == years else 0.0)
            total += cash * math.exp(-(_zero_rate(market, ccy, t) + inst.spread) * t)
        return total * fx
    if isinstance(inst, ZeroCouponBond):
        return inst.face * math.exp(-(_zero_rate(market, ccy, years) + inst.spread) * years) * fx
    if isinstance(inst, InterestRateSwap):
        times = _coupon_times(years, inst.frequency)
        annuity = sum(
            (t - (times[i + 1] if i + 1 < len(times) else 0.0)) * _df(market, ccy, t)
            for i, t in enumerate(times)
        )
        receiver = inst.fixed_rate * annuity - (1.0 - _df(market, ccy, years))
        return (-receiver if inst.pay_fixed else receiver) * fx
    if isinstance(inst, EquityOption):
        r = _zero_rate(market, ccy, years)
        price = _bsm(
            market[f"EQ.{inst.underlying}"],
            inst.strike,
            years,
            r,
            r - inst.dividend_yield,
            market[f"VOL.{inst.underlying}"],
            inst.option_type is OptionType.CALL,
        )
        return price * inst.multiplier * fx
    if isinstance(inst, FxOption):
        rd = _zero_rate(market, ccy, years)
        rf = _zero_rate(market, inst.foreign_currency, years)
        s = _fx(market, inst.foreign_currency) / fx
        price = _bsm(
            s,
            inst.strike,
            years,
            rd,
            rd - rf,
            market[f"VOL.{inst.pair}"],
            inst.option_type is OptionType.CALL,
        )
        return price * fx
    raise TypeError(f"no reference pricer for {type(inst).__name__}")


def reference_values(instruments: Sequence[Instrument], market: MarketScenarios) -> np.ndarray:
    """Values (n_instruments, n_scenarios) by a loop over instruments and scenarios; NaN where one fails."""
    out = np.full((len(instruments), market.n_scenarios), np.nan)
    for s in range(market.n_scenarios):
        snapshot = market.snapshot(s)
        for i, inst in enumerate(instruments):
            try:
                out[i, s] = reference_value(inst, snapshot)
            except KeyError:
                pass
    return out
