"""Shares: value per share ``S·X`` in the reporting currency (``S`` the spot ``EQ.<name>`` in the share's
currency, ``X = FX.<currency>``)."""

from __future__ import annotations

from collections.abc import Sequence

from ..domain import Equity, MarketScenarios, equity_factor
from ._family import Checks, Exposures, FactorColumns, Family, Sink
from ._translation import add_fx_exposure

__all__ = ["EQUITY"]


def _checked(
    shares: Sequence[Equity], market: MarketScenarios
) -> tuple[Checks, FactorColumns, FactorColumns]:
    checks = Checks(shares, market)
    spot = checks.factors([equity_factor(s.underlying) for s in shares])
    fx = checks.fx([s.currency for s in shares])
    ok = checks.ok
    return checks, FactorColumns(market, spot[ok]), FactorColumns(market, fx[ok])


def value(shares: Sequence[Equity], market: MarketScenarios, sink: Sink) -> dict[int, str]:
    """Write values in the reporting currency per share; return the failed shares."""
    checks, spot, fx = _checked(shares, market)
    sink.put(checks.ok, spot.rows(slice(None)) * fx.rows(slice(None)))
    return checks.failed


def exposures(shares: Sequence[Equity], market: MarketScenarios) -> Exposures:
    """Relative deltas to spot and FX: both equal the reporting-currency value (linear, no own gamma)."""
    checks, spot, fx = _checked(shares, market)
    ok = checks.ok
    out = Exposures(failed=checks.failed)
    v = (spot.rows(slice(None)) * fx.rows(slice(None)))[:, 0]
    out.add(ok, [equity_factor(shares[i].underlying) for i in ok], v)
    add_fx_exposure(out, ok, [shares[i].currency for i in ok], market.reporting_currency, v)
    return out


EQUITY = Family(value, exposures)
