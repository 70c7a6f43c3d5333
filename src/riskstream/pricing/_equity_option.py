"""European equity and index options: Black-Scholes-Merton with a continuous dividend yield, × multiplier.

Value per contract in the reporting currency: ``X·m·BSM(S, K, T, r, b = r − q, σ)`` with ``S = EQ.<underlying>``,
``σ = VOL.<underlying>``, ``r = z(T)`` the zero rate of the option's currency at expiry (``T`` ACT/365F
years), ``q`` the option's dividend yield, ``m`` its multiplier and ``X = FX.<currency>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..domain import EquityOption, MarketScenarios, equity_factor, vol_factor
from ._black_scholes import OptionSetup, option_signs
from ._curve import CurveSet
from ._family import Checks, Exposures, FactorColumns, Family, Leg, Sink, Workspace
from ._translation import add_fx_exposure

__all__ = ["EQUITY_OPTION"]


@dataclass
class _Setup(OptionSetup):
    dividend_yield: np.ndarray
    multiplier: np.ndarray
    spot: FactorColumns
    leg: Leg

    def market_inputs(
        self, rows: slice, ws: Workspace
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = rows.stop - rows.start
        rate = self.leg.rate(rows)
        carry = np.subtract(rate, self.dividend_yield[rows, None], out=ws("carry", n))
        scale = self.leg.fx.rows(rows, out=ws("scale", n))
        scale *= self.multiplier[rows, None]
        return self.spot.rows(rows, out=ws("spot", n)), rate, carry, scale


def _setup(options: Sequence[EquityOption], market: MarketScenarios) -> _Setup:
    checks = Checks(options, market)
    expiry = checks.maturity()
    spot = checks.factors([equity_factor(o.underlying) for o in options])
    vol = checks.factors([vol_factor(o.underlying) for o in options])
    ccys = checks.currencies([o.currency for o in options])
    ok = checks.ok
    live = [options[i] for i in ok]
    return _Setup(
        checks,
        ok,
        expiry[ok],
        np.array([o.strike for o in live], dtype=np.float64),
        option_signs(live),
        FactorColumns(market, vol[ok]),
        np.array([o.dividend_yield for o in live], dtype=np.float64),
        np.array([o.multiplier for o in live], dtype=np.float64),
        FactorColumns(market, spot[ok]),
        Leg.at_expiry(market, CurveSet(market, ccys[ok]), ccys[ok], expiry[ok]),
    )


def value(options: Sequence[EquityOption], market: MarketScenarios, sink: Sink) -> dict[int, str]:
    """Write values in the reporting currency per contract; return the failed options."""
    return _setup(options, market).value(market.n_scenarios, sink)


def exposures(options: Sequence[EquityOption], market: MarketScenarios) -> Exposures:
    """Closed-form spot delta/gamma, vega/volga, key-rate rho and its own gamma, FX delta (Haug ch. 2).

    The option's rate ``r`` moves both the discounting and the carry ``b = r − q``: ``∂V/∂r = V_r + V_b`` and
    ``∂²V/∂r² = V_rr + 2·V_rb + V_bb``.
    """
    s = _setup(options, market)
    out = Exposures(failed=s.checks.failed)
    inputs, g = s.greeks()
    spot, *_, scale = inputs
    underlying = [options[i].underlying for i in s.ok]
    out.add(s.ok, [equity_factor(u) for u in underlying], scale * spot * g.delta, scale * spot**2 * g.gamma)
    s.add_vol_exposures(out, [vol_factor(u) for u in underlying], inputs, g)
    d2_rate = scale * (g.d2_rate + 2.0 * g.d_rate_carry + g.d2_carry)
    out.add_rate(s.ok, s.leg.curves.factor_ids, s.leg.weights, scale * (g.d_rate + g.d_carry), d2_rate)
    add_fx_exposure(out, s.ok, s.leg.currency, market.reporting_currency, scale * g.price)
    return out


EQUITY_OPTION = Family(value, exposures)
