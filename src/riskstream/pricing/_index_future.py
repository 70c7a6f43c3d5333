"""Equity index futures, marked to market: ``(F − trade_price)·multiplier`` per contract, undiscounted.

``F = S·exp((r − q)·T)``: ``S`` the index level ``EQ.<index>``, ``r = z(T)`` the zero rate of the contract's
currency at maturity (``T`` ACT/365F years), ``q`` the contract's dividend yield. Translated at
``FX.<currency>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..domain import EquityIndexFuture, MarketScenarios, equity_factor
from ._curve import CurveSet
from ._family import Checked, Checks, Exposures, FactorColumns, Family, Leg, Sink
from ._translation import add_fx_exposure

__all__ = ["INDEX_FUTURE"]


@dataclass
class _Setup(Checked):
    spot: FactorColumns
    leg: Leg
    dividend_yield: np.ndarray
    trade_price: np.ndarray
    multiplier: np.ndarray

    def forward(self) -> np.ndarray:
        """Futures price F, shape (n_ok, n_scenarios)."""
        growth = self.leg.rate()
        growth -= self.dividend_yield[:, None]
        growth *= self.expiry[:, None]
        np.exp(growth, out=growth)
        growth *= self.spot.rows(slice(None))
        return growth


def _setup(futures: Sequence[EquityIndexFuture], market: MarketScenarios) -> _Setup:
    checks = Checks(futures, market)
    expiry = checks.maturity()
    spot = checks.factors([equity_factor(f.underlying) for f in futures])
    ccys = checks.currencies([f.currency for f in futures])
    ok = checks.ok
    live = [futures[i] for i in ok]
    return _Setup(
        checks,
        ok,
        expiry[ok],
        FactorColumns(market, spot[ok]),
        Leg.at_expiry(market, CurveSet(market, ccys[ok]), ccys[ok], expiry[ok]),
        np.array([f.dividend_yield for f in live], dtype=np.float64),
        np.array([f.trade_price for f in live], dtype=np.float64),
        np.array([f.multiplier for f in live], dtype=np.float64),
    )


def value(futures: Sequence[EquityIndexFuture], market: MarketScenarios, sink: Sink) -> dict[int, str]:
    """Write values in the reporting currency per contract; return the failed contracts."""
    s = _setup(futures, market)
    values = s.forward()
    values -= s.trade_price[:, None]
    values *= s.multiplier[:, None]
    values *= s.leg.fx.rows(slice(None))
    sink.put(s.ok, values)
    return s.checks.failed


def exposures(futures: Sequence[EquityIndexFuture], market: MarketScenarios) -> Exposures:
    """Index delta ``X·m·F`` (no gamma), key-rate deltas ``X·m·F·T·w_k`` and gammas ``X·m·F·T²·w_k²``, FX."""
    s = _setup(futures, market)
    out = Exposures(failed=s.checks.failed)
    scale = s.multiplier * s.leg.fx.rows(slice(None))[:, 0]
    fwd = s.forward()[:, 0] * scale
    out.add(s.ok, [equity_factor(futures[i].underlying) for i in s.ok], fwd)
    out.add_rate(s.ok, s.leg.curves.factor_ids, s.leg.weights, fwd * s.expiry, fwd * s.expiry**2)
    add_fx_exposure(out, s.ok, s.leg.currency, market.reporting_currency, fwd - s.trade_price * scale)
    return out


INDEX_FUTURE = Family(value, exposures)
