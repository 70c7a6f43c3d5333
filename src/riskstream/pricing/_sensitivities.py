"""Sensitivities of instrument values to every risk factor they depend on, in each factor's shock convention.

For a relative-shock factor (EQ, FX, VOL; a move ``X → X·(1+r)``) the delta is ``X·∂V/∂X`` and the gamma
``X²·∂²V/∂X²``; for an absolute-shock factor (IR zero rates; ``z → z+d``) they are ``∂V/∂z`` and ``∂²V/∂z²``
per unit of rate (1 = 10,000 bp), so that for small moves

    P&L ≈ Σ_j delta_j·m_j + ½·Σ_j gamma_j·m_j²,   m_j = r_j (relative) or d_j (absolute).

Values are per unit of instrument in the reporting currency. Only own (diagonal) gammas are kept: cross-gammas
such as spot × FX of a foreign share, spot × vol (vanna) or rate × rate across tenors are ignored.

:func:`sensitivities` uses closed forms (Black-Scholes/Garman-Kohlhagen greeks, key-rate durations from the
curve's interpolation weights, linear instruments directly, FX translation); :func:`sensitivities_by_bumping`
is the plain reference, by central finite differences through :func:`value_instruments`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..domain import TENORS, Instrument, MarketScenarios, MarketSnapshot, ShockType, parse_factor, vol_factor
from ._family import Exposures, Family
from ._valuation import for_each_family, frozen_failures, value_instruments

__all__ = ["Sensitivities", "factor_dependencies", "sensitivities", "sensitivities_by_bumping"]

#: One basis point, in the units of a zero rate.
BASIS_POINT = 1e-4
#: One volatility point (1 %), in the units of a Black volatility.
VOL_POINT = 0.01


@dataclass(frozen=True)
class Sensitivities:
    """Deltas and own gammas of instruments to risk factors, in the factors' shock convention.

    Attributes
    ----------
    factor_ids
        The factors any of the instruments depends on, in the snapshot's order (a whole curve counts for an
        instrument that uses it).
    levels
        Base value of each factor, shape (n_factors,).
    delta, gamma
        Shape (n_instruments, n_factors), reporting currency per unit of instrument: ``X·∂V/∂X`` and
        ``X²·∂²V/∂X²`` for relative factors, ``∂V/∂z`` and ``∂²V/∂z²`` (per unit of rate) for rates. NaN rows for
        failed instruments; cross-gammas are not computed.
    failed
        Instrument index → why it could not be priced.
    reporting_currency
        Currency of every number.
    """

    factor_ids: tuple[str, ...]
    levels: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    failed: Mapping[int, str]
    reporting_currency: str = "USD"

    def _column(self, factor_id: str) -> int | None:
        try:
            return self.factor_ids.index(factor_id)
        except ValueError:
            return None

    def _take(self, matrix: np.ndarray, factor_id: str) -> np.ndarray:
        j = self._column(factor_id)
        if j is None:  # no instrument depends on it
            col = np.zeros(matrix.shape[0])
            col[list(self.failed)] = np.nan
            return col
        return matrix[:, j].copy()

    def level(self, factor_id: str) -> float:
        """Base value of a factor the instruments depend on (NaN if none does)."""
        j = self._column(factor_id)
        return float(self.levels[j]) if j is not None else float("nan")

    @property
    def shock_types(self) -> tuple[ShockType, ...]:
        """Shock convention of each factor (absolute for rates, relative otherwise)."""
        return tuple(parse_factor(f).shock_type for f in self.factor_ids)

    def delta_to(self, factor_id: str) -> np.ndarray:
        """Delta of each instrument to one factor, shape (n_instruments,); zeros if none depends on it."""
        return self._take(self.delta, factor_id)

    def gamma_to(self, factor_id: str) -> np.ndarray:
        """Own gamma of each instrument to one factor, shape (n_instruments,); zeros if none depends on it."""
        return self._take(self.gamma, factor_id)

    def pv01(self, currency: str) -> dict[str, np.ndarray]:
        """Key-rate PV01: value change per instrument for +1 bp in each tenor's zero rate, tenor → (n,).

        First order (``delta × 1e-4``), reporting currency per unit of instrument, tenors shortest first.
        """
        return {
            tenor: self.delta[:, j] * BASIS_POINT
            for tenor in TENORS
            if (j := self._column(f"IR.{currency}.{tenor}")) is not None
        }

    def vega(self, underlying: str) -> np.ndarray:
        """Value change per instrument for +1 vol point (σ + 0.01) in ``VOL.<underlying>``: ``∂V/∂σ × 0.01``."""
        fid = vol_factor(underlying)
        j = self._column(fid)
        if j is None:
            return self._take(self.delta, fid)
        return self.delta[:, j] / self.levels[j] * VOL_POINT

    def cash_delta(self, factor_id: str) -> np.ndarray:
        """``X·∂V/∂X`` of a relative factor: value change for a 100 % move, to first order (the delta column)."""
        return self.delta_to(factor_id)

    def cash_gamma(self, factor_id: str) -> np.ndarray:
        """``X²·∂²V/∂X²`` of a relative factor: change in cash delta for a 100 % move (the gamma column)."""
        return self.gamma_to(factor_id)

    def spot_delta(self, factor_id: str) -> np.ndarray:
        """``∂V/∂X`` per unit of the factor (e.g. shares-equivalent × FX for a spot; per unit of rate for IR)."""
        delta = self.delta_to(factor_id)
        return (
            delta
            if parse_factor(factor_id).shock_type is ShockType.ABSOLUTE
            else delta / self.level(factor_id)
        )

    def spot_gamma(self, factor_id: str) -> np.ndarray:
        """``∂²V/∂X²`` per unit of the factor squared."""
        gamma = self.gamma_to(factor_id)
        if parse_factor(factor_id).shock_type is ShockType.ABSOLUTE:
            return gamma
        return gamma / self.level(factor_id) ** 2

    def taylor_pnl(self, moves: np.ndarray) -> np.ndarray:
        """Delta-gamma P&L per unit of instrument: ``Σ delta·m + ½ Σ gamma·m²``, shape (n_instruments, n_moves).

        Parameters
        ----------
        moves
            Factor moves aligned with ``factor_ids``, shape (n_moves, n_factors): relative moves ``r`` for
            relative factors, absolute changes for rates.
        """
        m = np.atleast_2d(np.asarray(moves, dtype=np.float64))
        return np.asarray(self.delta @ m.T + 0.5 * (self.gamma @ (m * m).T))


def factor_dependencies(instruments: Sequence[Instrument], snapshot: MarketSnapshot) -> tuple[str, ...]:
    """Factors of ``snapshot`` any instrument depends on, in the snapshot's order (whole curves, by currency)."""
    wanted: set[str] = set()
    curves: set[str] = set()
    for inst in instruments:
        for fid in inst.factors(snapshot.reporting_currency):
            if fid.endswith(".*"):
                curves.add(fid.split(".")[1])
            else:
                wanted.add(fid)
    return tuple(
        f for f in snapshot.factor_ids if f in wanted or (f.startswith("IR.") and f.split(".")[1] in curves)
    )


def _result(
    factor_ids: tuple[str, ...],
    snapshot: MarketSnapshot,
    delta: np.ndarray,
    gamma: np.ndarray,
    failed: Mapping[int, str],
) -> Sensitivities:
    rows = list(failed)
    delta[rows] = np.nan
    gamma[rows] = np.nan
    return Sensitivities(
        factor_ids,
        np.array([snapshot[f] for f in factor_ids], dtype=np.float64),
        delta,
        gamma,
        frozen_failures(failed),
        snapshot.reporting_currency,
    )


def sensitivities(instruments: Sequence[Instrument], snapshot: MarketSnapshot) -> Sensitivities:
    """Closed-form deltas and own gammas of every instrument to every factor it depends on.

    Parameters
    ----------
    instruments
        The instruments, any mix of families.
    snapshot
        Today's market; its ``as_of`` is the valuation date.
    """
    market = snapshot.to_scenarios()
    total = Exposures()

    def collect(family: Family[Any], members: list[Instrument], idx: np.ndarray) -> dict[int, str]:
        part = family.exposures(members, market)
        total.extend(part, idx)
        return part.failed

    failed = for_each_family(instruments, collect)
    factor_ids = factor_dependencies(instruments, snapshot)
    delta, gamma = total.dense(len(instruments), factor_ids)
    return _result(factor_ids, snapshot, delta, gamma, failed)


def sensitivities_by_bumping(
    instruments: Sequence[Instrument],
    snapshot: MarketSnapshot,
    rel_bump: float = 1e-4,
    abs_bump: float = 1e-5,
) -> Sensitivities:
    """Reference sensitivities by central finite differences, every bump priced in one call to the pricer.

    ``delta ≈ (V(+h) − V(−h)) / 2h`` and ``gamma ≈ (V(+h) − 2·V(0) + V(−h)) / h²`` with the factor moved by
    ``x·(1 ± h)`` (relative factors, ``h = rel_bump``) or ``x ± h`` (rates, ``h = abs_bump``), which yields
    the same shock convention as :func:`sensitivities`; errors are O(h²) plus rounding O(ε·V/h²) on gammas.

    Parameters
    ----------
    instruments
        The instruments.
    snapshot
        Today's market.
    rel_bump
        Relative bump of EQ, FX and VOL factors (1e-4 = 1 bp of the level).
    abs_bump
        Absolute bump of zero rates (1e-5 = 0.1 bp).
    """
    factor_ids = factor_dependencies(instruments, snapshot)
    base = snapshot.to_scenarios()
    column = {f: j for j, f in enumerate(base.factor_ids)}
    levels = np.repeat(base.levels, 1 + 2 * len(factor_ids), axis=0)
    steps = np.empty(len(factor_ids))
    for k, fid in enumerate(factor_ids):
        j, x = column[fid], base.levels[0, column[fid]]
        relative = parse_factor(fid).shock_type is ShockType.RELATIVE
        steps[k] = rel_bump if relative else abs_bump
        move = x * rel_bump if relative else abs_bump
        levels[1 + 2 * k, j] = x + move
        levels[2 + 2 * k, j] = x - move
    bumped = MarketScenarios(snapshot.as_of, base.factor_ids, levels, snapshot.reporting_currency)
    valued = value_instruments(instruments, bumped)
    v0, up, down = valued.values[:, :1], valued.values[:, 1::2], valued.values[:, 2::2]
    delta = (up - down) / (2.0 * steps)
    gamma = (up - 2.0 * v0 + down) / steps**2
    return _result(factor_ids, snapshot, delta, gamma, valued.failed)
