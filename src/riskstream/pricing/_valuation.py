"""Full revaluation of a portfolio's instruments under a batch of scenarios, and their P&L against a base market.

Instruments are grouped by family and each family's vectorised pricer is called once with all its instruments
and all scenarios. Values are per unit of instrument (one share, one contract, one bond of its face, one unit of
swap notional, one unit of foreign currency) in the market's reporting currency. An instrument that cannot be
priced (a missing risk factor, a maturity on or before the valuation date, a family with no pricer) gets a NaN
row and a reason in ``failed``; the others are priced as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ..domain import Instrument, InstrumentType, MarketScenarios, MarketSnapshot
from ..errors import ConfigurationError, RiskstreamError
from ._equity import EQUITY
from ._equity_option import EQUITY_OPTION
from ._family import Family, Sink
from ._fixed_rate_bond import FIXED_RATE_BOND
from ._fx_forward import FX_FORWARD
from ._fx_option import FX_OPTION
from ._fx_spot import FX_SPOT
from ._index_future import INDEX_FUTURE
from ._interest_rate_swap import INTEREST_RATE_SWAP
from ._zero_coupon_bond import ZERO_COUPON_BOND

__all__ = [
    "FAMILIES",
    "Valuation",
    "for_each_family",
    "frozen_failures",
    "group_by_family",
    "instrument_pnl",
    "value_instruments",
]

#: The pricer of each instrument family.
FAMILIES: Mapping[InstrumentType, Family[Any]] = MappingProxyType(
    {
        InstrumentType.EQUITY: EQUITY,
        InstrumentType.INDEX_FUTURE: INDEX_FUTURE,
        InstrumentType.FX_SPOT: FX_SPOT,
        InstrumentType.FX_FORWARD: FX_FORWARD,
        InstrumentType.FIXED_RATE_BOND: FIXED_RATE_BOND,
        InstrumentType.ZERO_COUPON_BOND: ZERO_COUPON_BOND,
        InstrumentType.INTEREST_RATE_SWAP: INTEREST_RATE_SWAP,
        InstrumentType.EQUITY_OPTION: EQUITY_OPTION,
        InstrumentType.FX_OPTION: FX_OPTION,
    }
)


@dataclass(frozen=True)
class Valuation:
    """Values of instruments under scenarios.

    Attributes
    ----------
    values
        Shape (n_instruments, n_scenarios): value (or P&L) per unit of each instrument in the reporting currency;
        NaN rows for the failed instruments.
    failed
        Instrument index → why it could not be priced.
    """

    values: np.ndarray
    failed: Mapping[int, str]

    @property
    def n_instruments(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_scenarios(self) -> int:
        return int(self.values.shape[1])

    @property
    def priced(self) -> np.ndarray:
        """Boolean mask (n_instruments,) of the instruments that were priced."""
        mask = np.ones(self.n_instruments, dtype=bool)
        mask[list(self.failed)] = False
        return mask


def group_by_family(
    instruments: Sequence[Instrument],
) -> tuple[dict[InstrumentType, np.ndarray], dict[int, str]]:
    """Indices of the instruments of each family with a pricer, and a reason for each one without."""
    groups: dict[InstrumentType, list[int]] = {}
    unknown: dict[int, str] = {}
    for i, inst in enumerate(instruments):
        kind = getattr(inst, "type", None)
        if isinstance(kind, InstrumentType) and kind in FAMILIES:
            groups.setdefault(kind, []).append(i)
        else:
            unknown[i] = f"no pricer for instrument type {kind!r} ({type(inst).__name__})"
    return {k: np.array(v, dtype=np.intp) for k, v in groups.items()}, unknown


def frozen_failures(failed: Mapping[int, str]) -> Mapping[int, str]:
    """Failures as a read-only mapping, by instrument index."""
    return MappingProxyType(dict(sorted(failed.items())))


def for_each_family(
    instruments: Sequence[Instrument],
    run: Callable[[Family[Any], list[Instrument], np.ndarray], Mapping[int, str]],
) -> dict[int, str]:
    """Call ``run(family pricer, its instruments, their indices)`` once per family; collect every failure.

    ``run`` returns the failures among the family's instruments (by position in the family). A family whose
    pricer raises a RiskstreamError (market data it cannot use at all) fails whole; the others go on.
    """
    groups, failed = group_by_family(instruments)
    for kind, idx in groups.items():
        try:
            family_failed = run(FAMILIES[kind], [instruments[i] for i in idx], idx)
        except RiskstreamError as exc:
            failed.update({int(i): f"{kind.value} pricing failed: {exc}" for i in idx})
            continue
        failed.update({int(idx[i]): reason for i, reason in family_failed.items()})
    return failed


def value_instruments(instruments: Sequence[Instrument], market: MarketScenarios) -> Valuation:
    """Value every instrument under every scenario (full revaluation).

    Parameters
    ----------
    instruments
        The instruments, any mix of families.
    market
        Factor levels under ``n_scenarios`` scenarios; its ``as_of`` is the valuation date (time to maturity is
        ACT/365F from it) and its reporting currency the currency of the values.

    Returns
    -------
    Valuation with ``values`` (n_instruments, n_scenarios) per unit of instrument in the reporting currency.
    """
    values = np.empty((len(instruments), market.n_scenarios))
    failed = for_each_family(
        instruments, lambda family, members, idx: family.value(members, market, Sink(values, idx))
    )
    values[list(failed)] = np.nan
    return Valuation(values, frozen_failures(failed))


def instrument_pnl(
    instruments: Sequence[Instrument], base: MarketSnapshot, scenarios: MarketScenarios
) -> Valuation:
    """P&L per unit of each instrument under each scenario: value under the scenario minus value in ``base``.

    Parameters
    ----------
    instruments
        The instruments.
    base
        Today's market; values are measured against it.
    scenarios
        Scenario markets, same reporting currency as ``base``.

    Returns
    -------
    Valuation with ``values`` (n_instruments, n_scenarios): P&L per unit in the reporting currency (positive =
    gain); an instrument that fails in either market is failed (the base market's reason first).
    """
    if base.reporting_currency != scenarios.reporting_currency:
        raise ConfigurationError(
            "reporting_currency",
            scenarios.reporting_currency,
            f"scenarios report in a different currency from the base market ({base.reporting_currency})",
        )
    today = value_instruments(instruments, base.to_scenarios())
    moved = value_instruments(instruments, scenarios)
    pnl = moved.values
    pnl -= today.values
    failed = dict(today.failed)
    for i, reason in moved.failed.items():
        failed.setdefault(i, reason)
    pnl[list(failed)] = np.nan
    return Valuation(pnl, frozen_failures(failed))
