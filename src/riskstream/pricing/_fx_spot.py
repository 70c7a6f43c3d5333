"""Currency held: one unit of ``currency`` is worth ``X = FX.<currency>`` in the reporting currency (1 for the
reporting currency itself)."""

from __future__ import annotations

from collections.abc import Sequence

from ..domain import FxSpot, MarketScenarios
from ._family import Checks, Exposures, FactorColumns, Family, Sink
from ._translation import add_fx_exposure

__all__ = ["FX_SPOT"]


def _checked(units: Sequence[FxSpot], market: MarketScenarios) -> tuple[Checks, FactorColumns]:
    checks = Checks(units, market)
    fx = checks.fx([u.currency for u in units])
    return checks, FactorColumns(market, fx[checks.ok])


def value(units: Sequence[FxSpot], market: MarketScenarios, sink: Sink) -> dict[int, str]:
    """Write values in the reporting currency per unit of currency; return the failed instruments."""
    checks, fx = _checked(units, market)
    sink.put(checks.ok, fx.rows(slice(None)))
    return checks.failed


def exposures(units: Sequence[FxSpot], market: MarketScenarios) -> Exposures:
    """Relative FX delta = value; no gamma."""
    checks, fx = _checked(units, market)
    ok = checks.ok
    out = Exposures(failed=checks.failed)
    add_fx_exposure(
        out, ok, [units[i].currency for i in ok], market.reporting_currency, fx.rows(slice(None))[:, 0]
    )
    return out


FX_SPOT = Family(value, exposures)
