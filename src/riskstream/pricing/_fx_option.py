"""European FX options: Garman-Kohlhagen, the option to buy (call) or sell (put) one unit of the foreign currency.

Value per unit of foreign currency in the reporting currency: ``X_dom·GK(S, K, T, r_d, r_f, σ)``, i.e. the
generalised Black-Scholes-Merton formula with ``r = r_d`` and carry ``b = r_d − r_f``, where ``S = X_for/X_dom``
(domestic units per foreign unit), ``r_d`` and ``r_f`` the zero rates of the domestic (``currency``) and foreign
curves at expiry (``T`` ACT/365F years) and ``σ = VOL.<FOR><DOM>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..domain import FxOption, MarketScenarios, vol_factor
from ._black_scholes import OptionSetup, option_signs
from ._family import Exposures, FactorColumns, Family, Leg, Sink, Workspace, pair_legs
from ._translation import add_pair_exposures

__all__ = ["FX_OPTION"]


@dataclass
class _Setup(OptionSetup):
    domestic: Leg
    foreign: Leg

    def market_inputs(
        self, rows: slice, ws: Workspace
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = rows.stop - rows.start
        rate = self.domestic.rate(rows)
        carry = np.subtract(rate, self.foreign.rate(rows), out=ws("carry", n))
        x_dom = self.domestic.fx.rows(rows, out=ws("x_dom", n))
        spot = self.foreign.fx.rows(rows, out=ws("spot", n))
        spot /= x_dom
        return spot, rate, carry, x_dom


def _setup(options: Sequence[FxOption], market: MarketScenarios) -> _Setup:
    vol_ids = [vol_factor(o.pair) for o in options]
    checks, expiry, domestic, foreign = pair_legs(options, market, vol_ids)
    ok = checks.ok
    live = [options[i] for i in ok]
    return _Setup(
        checks,
        ok,
        expiry[ok],
        np.array([o.strike for o in live], dtype=np.float64),
        option_signs(live),
        FactorColumns(market, np.asarray(vol_ids, dtype=object)[ok]),
        domestic,
        foreign,
    )


def value(options: Sequence[FxOption], market: MarketScenarios, sink: Sink) -> dict[int, str]:
    """Write values in the reporting currency per unit of foreign currency; return the failed options."""
    return _setup(options, market).value(market.n_scenarios, sink)


def exposures(options: Sequence[FxOption], market: MarketScenarios) -> Exposures:
    """Closed-form FX deltas/gammas of both currencies, vega/volga, key-rate rho of both curves (Haug ch. 2).

    ``r_d`` moves discounting and carry: ``∂V/∂r_d = V_r + V_b``, ``∂²V/∂r_d² = V_rr + 2·V_rb + V_bb``; ``r_f``
    moves the carry only, with the opposite sign: ``∂V/∂r_f = −V_b``, ``∂²V/∂r_f² = V_bb``.
    """
    s = _setup(options, market)
    out = Exposures(failed=s.checks.failed)
    inputs, g = s.greeks()
    x_dom = inputs[-1]
    s.add_vol_exposures(out, [vol_factor(options[i].pair) for i in s.ok], inputs, g)
    ids = s.domestic.curves.factor_ids
    d_dom = x_dom * (g.d_rate + g.d_carry)
    d2_dom = x_dom * (g.d2_rate + 2.0 * g.d_rate_carry + g.d2_carry)
    out.add_rate(s.ok, ids, s.domestic.weights, d_dom, d2_dom)
    out.add_rate(s.ok, ids, s.foreign.weights, -x_dom * g.d_carry, x_dom * g.d2_carry)
    add_pair_exposures(out, s.ok, s.domestic, s.foreign, market.reporting_currency, g.price, g.delta, g.gamma)
    return out


FX_OPTION = Family(value, exposures)
