"""What every family pricer shares: checks against the market, factor columns, blocks, sensitivity entries.

A family pricer values all instruments of one family under all scenarios at once. It first checks each instrument
against the market (maturity after the valuation date, every factor present): an instrument that fails is
reported with a reason and left out, so one bad instrument never stops the rest. It then fetches each distinct
factor once and prices the rest in a few array operations on (instruments × scenarios) blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

import numpy as np
import scipy.sparse as sp

from ..domain import Instrument, MarketScenarios, fx_factor, rate_factor, year_fraction
from ..errors import MissingFactorError
from ._curve import CurveSet

__all__ = [
    "BLOCK_ELEMENTS",
    "Checked",
    "Checks",
    "Exposures",
    "FactorColumns",
    "Family",
    "Leg",
    "Sink",
    "Workspace",
    "block_rows",
    "blocks",
    "fx_ids",
    "maturity_reason",
    "pair_legs",
]

#: Elements of one (instruments × scenarios) block: big enough that numpy's per-call overhead vanishes, small
#: enough that a block's temporaries stay in cache.
BLOCK_ELEMENTS = 1 << 17

InstrumentT = TypeVar("InstrumentT", bound=Instrument)


@dataclass(frozen=True)
class Sink:
    """Where a family pricer writes values: rows of the portfolio's (n_instruments, n_scenarios) array.

    Writing blocks straight into the result keeps one (instruments × scenarios) array alive, not two.
    """

    values: np.ndarray
    #: Portfolio row of each of the family's instruments.
    rows: np.ndarray

    def put(self, rows: np.ndarray | slice, block: np.ndarray, columns: slice = slice(None)) -> None:
        """Store values (reporting currency per unit) of the family's instruments ``rows`` in ``columns``."""
        self.values[self.rows[rows], columns] = block


@dataclass
class Exposures:
    """First and own-second derivatives of instruments' values as sparse entries (row, factor, delta, gamma).

    Values are in the reporting currency per unit of instrument, derivatives in the shock convention of the
    factor: ``X·∂V/∂X`` and ``X²·∂²V/∂X²`` for relative factors (EQ, FX, VOL), ``∂V/∂z`` and ``∂²V/∂z²`` for
    rates. Several entries for one (row, factor) add up.
    """

    rows: list[np.ndarray] = field(default_factory=list)
    factors: list[np.ndarray] = field(default_factory=list)
    delta: list[np.ndarray] = field(default_factory=list)
    gamma: list[np.ndarray] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    def add(
        self,
        rows: np.ndarray,
        factor_ids: np.ndarray | Sequence[str] | str,
        delta: np.ndarray,
        gamma: np.ndarray | float = 0.0,
    ) -> None:
        """Record derivatives of the instruments ``rows`` to ``factor_ids`` (one id per row, or one for all)."""
        rows = np.asarray(rows, dtype=np.intp)
        if not len(rows):
            return
        self.rows.append(rows)
        self.factors.append(np.broadcast_to(np.asarray(factor_ids, dtype=object), rows.shape))
        self.delta.append(np.broadcast_to(np.asarray(delta, dtype=np.float64), rows.shape))
        self.gamma.append(np.broadcast_to(np.asarray(gamma, dtype=np.float64), rows.shape))

    def add_rate(
        self,
        rows: np.ndarray,
        curve_factor_ids: Sequence[str],
        weights: sp.spmatrix,
        d_rate: np.ndarray,
        d2_rate: np.ndarray,
    ) -> None:
        """Key-rate entries of values that depend on one interpolated zero rate ``z = Σ_k w_k·z_k`` each.

        ``∂V/∂z_k = w_k·∂V/∂z`` and ``∂²V/∂z_k² = w_k²·∂²V/∂z²`` (own gamma per tenor point; cross-tenor terms
        are left out like every other cross-gamma).

        Parameters
        ----------
        rows
            Instrument rows, shape (m,).
        curve_factor_ids
            Rate factor id of each column of ``weights``.
        weights
            Interpolation weights (m, n_points), see :meth:`CurveSet.weights`.
        d_rate, d2_rate
            ``∂V/∂z`` and ``∂²V/∂z²`` per instrument, reporting currency per unit of rate, shape (m,).
        """
        coo = sp.coo_matrix(weights)
        w = coo.data
        self.add(
            np.asarray(rows)[coo.row],
            np.asarray(curve_factor_ids, dtype=object)[coo.col],
            d_rate[coo.row] * w,
            d2_rate[coo.row] * w * w,
        )

    def extend(self, other: Exposures, rows: np.ndarray) -> None:
        """Add ``other``'s entries with its row ``i`` renamed ``rows[i]`` (a family's rows → the portfolio's)."""
        self.rows.extend(rows[r] for r in other.rows)
        self.factors.extend(other.factors)
        self.delta.extend(other.delta)
        self.gamma.extend(other.gamma)

    def dense(self, n_rows: int, factor_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Delta and gamma matrices (n_rows, len(factor_ids)); every recorded factor must be in ``factor_ids``."""
        delta = np.zeros((n_rows, len(factor_ids)))
        gamma = np.zeros((n_rows, len(factor_ids)))
        if self.rows:
            column = {f: j for j, f in enumerate(factor_ids)}
            rows = np.concatenate(self.rows)
            cols = np.fromiter(
                (column[f] for f in np.concatenate(self.factors)), dtype=np.intp, count=len(rows)
            )
            np.add.at(delta, (rows, cols), np.concatenate(self.delta))
            np.add.at(gamma, (rows, cols), np.concatenate(self.gamma))
        return delta, gamma


@dataclass(frozen=True)
class Family(Generic[InstrumentT]):
    """The two entry points of a family pricer: values under scenarios, and analytic sensitivities.

    ``value`` writes the values of the instruments it can price into the sink and returns the others, each
    with the reason it failed; ``exposures`` works on a one-scenario market.
    """

    value: Callable[[Sequence[InstrumentT], MarketScenarios, Sink], dict[int, str]]
    exposures: Callable[[Sequence[InstrumentT], MarketScenarios], Exposures]


def maturity_reason(maturity: date, as_of: date) -> str:
    return f"maturity {maturity.isoformat()} is on or before the valuation date {as_of.isoformat()}"


class Checks:
    """Checks a family's instruments against a market; failures keep the first reason found."""

    def __init__(self, instruments: Sequence[Any], market: MarketScenarios):
        self.instruments = instruments
        self.market = market
        self.failed: dict[int, str] = {}

    def maturity(self) -> np.ndarray:
        """Time to maturity in years (ACT/365F from the valuation date); T ≤ 0 fails."""
        as_of = self.market.as_of
        years = np.array([year_fraction(as_of, inst.maturity) for inst in self.instruments], dtype=np.float64)
        for i in np.flatnonzero(~(years > 0)):
            self.failed.setdefault(int(i), maturity_reason(self.instruments[int(i)].maturity, as_of))
        return years

    def factors(self, factor_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Require one factor per instrument (``FX.<reporting>`` is always present); returns the ids."""
        ids = np.asarray(factor_ids, dtype=object)
        missing = {f for f in set(ids.tolist()) if f not in self.market}
        if missing:
            for i in np.flatnonzero(np.isin(ids, list(missing))):
                self.failed.setdefault(int(i), str(MissingFactorError(str(ids[i]))))
        return ids

    def fx(self, currencies: Sequence[str] | np.ndarray) -> np.ndarray:
        """Require the FX factor of each instrument's currency; returns the ids."""
        return self.factors(fx_ids(currencies))

    def currencies(self, currencies: Sequence[str] | np.ndarray) -> np.ndarray:
        """Require a zero curve (at least one tenor point) and an FX rate per instrument's currency."""
        ccys = self.curves(currencies)
        self.fx(ccys)
        return ccys

    def curves(self, currencies: Sequence[str] | np.ndarray) -> np.ndarray:
        """Require a zero curve (at least one tenor point) per instrument's currency; returns the currencies."""
        ccys = np.asarray(currencies, dtype=object)
        have = {f.split(".")[1] for f in self.market.factor_ids if f.startswith("IR.")}
        for i in np.flatnonzero(~np.isin(ccys, list(have))):
            self.failed.setdefault(int(i), str(MissingFactorError(rate_factor(str(ccys[i]), "*"))))
        return ccys

    @property
    def ok(self) -> np.ndarray:
        """Indices of the instruments that passed every check."""
        keep = np.ones(len(self.instruments), dtype=bool)
        keep[list(self.failed)] = False
        return np.flatnonzero(keep)


@dataclass
class Checked:
    """Instruments checked against a market: the checks (and failures), the rows that passed, their expiry.

    ``expiry`` is the time to maturity in years (ACT/365F) of each instrument that passed.
    """

    checks: Checks
    ok: np.ndarray
    expiry: np.ndarray


class FactorColumns:
    """Levels of one factor per instrument, fetched from the market once per distinct factor id."""

    def __init__(self, market: MarketScenarios, factor_ids: Sequence[str] | np.ndarray):
        uniq, self.index = np.unique(np.asarray(factor_ids, dtype=str), return_inverse=True)
        # row-major: blocks of instruments read whole rows
        self.levels = np.ascontiguousarray(market.columns(uniq.tolist()))

    def rows(
        self, rows: slice | np.ndarray, columns: slice = slice(None), out: np.ndarray | None = None
    ) -> np.ndarray:
        """Levels for the instruments ``rows`` in the scenarios ``columns``: shape (n_rows, n_columns).

        ``out``, if given, receives all scenarios' levels (``columns`` must then be all of them).
        """
        if out is not None:
            return np.take(self.levels, self.index[rows], axis=0, out=out)
        return self.levels[self.index[rows], columns]


class Workspace:
    """Scratch (rows × scenarios) buffers that every block of a pricing call reuses.

    Fresh large temporaries cost page faults on every block (the allocator hands big blocks back to the system
    when they are freed); a block's inputs and intermediates are written into these instead.
    """

    def __init__(self, max_rows: int, n_scenarios: int):
        self.max_rows = max_rows
        self.n_scenarios = n_scenarios
        self._buffers: dict[str, np.ndarray] = {}

    def __call__(self, name: str, n_rows: int, depth: int = 0) -> np.ndarray:
        """Buffer ``name`` for ``n_rows`` rows: shape (n_rows, n_scenarios), or (depth, n_rows, n_scenarios)."""
        buf = self._buffers.get(name)
        if buf is None:
            shape = (
                (self.max_rows, self.n_scenarios) if not depth else (depth, self.max_rows, self.n_scenarios)
            )
            buf = self._buffers[name] = np.empty(shape)
        return buf[:n_rows] if not depth else buf[:, :n_rows]


@dataclass(frozen=True)
class Leg:
    """What instruments pay in one currency at expiry needs: that currency's zero rate at T, and its FX.

    Attributes
    ----------
    currency
        Currency of each instrument's leg, shape (n,).
    weights
        Interpolation weights of each instrument's expiry on its currency's curve, (n, n_points) of ``curves``.
    fx
        ``FX.<currency>`` of each instrument (1 for the reporting currency).
    curves
        The zero curves the weights point into.
    """

    currency: np.ndarray
    weights: sp.csr_matrix
    fx: FactorColumns
    curves: CurveSet

    @classmethod
    def at_expiry(
        cls, market: MarketScenarios, curves: CurveSet, currency: np.ndarray, expiry: np.ndarray
    ) -> Leg:
        """The leg of instruments (all checked) in ``currency`` expiring in ``expiry`` years."""
        return cls(
            currency, curves.weights(currency, expiry), FactorColumns(market, fx_ids(currency)), curves
        )

    def rate(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """Zero rate z(T) of the instruments ``rows`` under every scenario: (n_rows, n_scenarios)."""
        return self.curves.zero_rates(self.weights[rows])


def pair_legs(
    instruments: Sequence[Any], market: MarketScenarios, *more_factors: Sequence[str]
) -> tuple[Checks, np.ndarray, Leg, Leg]:
    """Check currency-pair instruments (curves and FX of both currencies, maturity); build their two legs.

    Parameters
    ----------
    instruments
        Instruments with ``currency`` (domestic), ``foreign_currency`` and ``maturity``.
    market
        Scenario markets.
    more_factors
        Further factor ids to require, one per instrument each.

    Returns
    -------
    the checks, time to expiry in years of every instrument, and the domestic and foreign legs of the
    instruments that passed.
    """
    checks = Checks(instruments, market)
    expiry = checks.maturity()
    for ids in more_factors:
        checks.factors(ids)
    dom = checks.currencies([i.currency for i in instruments])
    fgn = checks.currencies([i.foreign_currency for i in instruments])
    ok = checks.ok
    curves = CurveSet(market, [*dom[ok], *fgn[ok]])
    return (
        checks,
        expiry,
        Leg.at_expiry(market, curves, dom[ok], expiry[ok]),
        Leg.at_expiry(market, curves, fgn[ok], expiry[ok]),
    )


def fx_ids(currencies: Sequence[str] | np.ndarray) -> list[str]:
    return [fx_factor(str(c)) for c in currencies]


def block_rows(n_scenarios: int) -> int:
    """Rows of one block: :data:`BLOCK_ELEMENTS` (rows × scenarios) elements, at least one row."""
    return max(1, BLOCK_ELEMENTS // max(1, n_scenarios))


def blocks(n_rows: int, n_scenarios: int) -> Iterator[slice]:
    """Row slices of at most :data:`BLOCK_ELEMENTS` (rows × scenarios) elements, covering ``range(n_rows)``."""
    step = block_rows(n_scenarios)
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))
