"""FX forwards: buy one unit of ``foreign_currency`` for ``strike`` units of ``currency`` (domestic) at maturity.

Value in the reporting currency: ``X_for·DF_for(T) − K·X_dom·DF_dom(T)`` — the domestic value
``S·DF_for(T) − K·DF_dom(T)`` (``S = X_for/X_dom``) translated at ``X_dom``; ``DF`` from each currency's zero
curve, ``T`` ACT/365F years to maturity. At the covered-interest-parity strike ``K = S·DF_for/DF_dom`` it is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..domain import FxForward, MarketScenarios
from ._family import Checked, Exposures, Family, Leg, Sink, pair_legs
from ._translation import add_pair_exposures

__all__ = ["FX_FORWARD"]


@dataclass
class _Setup(Checked):
    strike: np.ndarray
    domestic: Leg
    foreign: Leg

    def discounted(self, leg: Leg) -> np.ndarray:
        """``X·DF(T)`` of one leg's currency, shape (n_ok, n_scenarios)."""
        df = leg.rate()
        df *= -self.expiry[:, None]
        np.exp(df, out=df)
        df *= leg.fx.rows(slice(None))
        return df


def _setup(forwards: Sequence[FxForward], market: MarketScenarios) -> _Setup:
    checks, expiry, domestic, foreign = pair_legs(forwards, market)
    ok = checks.ok
    strike = np.array([forwards[i].strike for i in ok], dtype=np.float64)
    return _Setup(checks, ok, expiry[ok], strike, domestic, foreign)


def value(forwards: Sequence[FxForward], market: MarketScenarios, sink: Sink) -> dict[int, str]:
    """Write values in the reporting currency per unit of foreign currency; return the failed forwards."""
    s = _setup(forwards, market)
    values = s.discounted(s.foreign)
    dom = s.discounted(s.domestic)
    dom *= s.strike[:, None]
    values -= dom
    sink.put(s.ok, values)
    return s.checks.failed


def exposures(forwards: Sequence[FxForward], market: MarketScenarios) -> Exposures:
    """FX deltas of both currencies (linear: no own gamma) and key-rate deltas/gammas of both curves."""
    s = _setup(forwards, market)
    out = Exposures(failed=s.checks.failed)
    fgn_leg = s.discounted(s.foreign)[:, 0]  # X_for·DF_for
    dom_leg = s.strike * s.discounted(s.domestic)[:, 0]  # K·X_dom·DF_dom
    t = s.expiry
    ids = s.domestic.curves.factor_ids
    out.add_rate(s.ok, ids, s.foreign.weights, -t * fgn_leg, t * t * fgn_leg)
    out.add_rate(s.ok, ids, s.domestic.weights, t * dom_leg, -t * t * dom_leg)
    x_dom = s.domestic.fx.rows(slice(None))[:, 0]
    f = (fgn_leg - dom_leg) / x_dom
    # ∂f/∂S = DF_for, linear in S
    f_s = fgn_leg / s.foreign.fx.rows(slice(None))[:, 0]
    add_pair_exposures(
        out, s.ok, s.domestic, s.foreign, market.reporting_currency, f, f_s, np.zeros(len(s.ok))
    )
    return out


FX_FORWARD = Family(value, exposures)
