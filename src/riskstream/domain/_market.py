"""Market state: a snapshot of factor values, and a batch of scenario states for vectorised pricing."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

import numpy as np

from ..errors import InvalidFieldError, MissingFactorError
from ._factor import TENORS, parse_factor, rate_factor

__all__ = ["MarketScenarios", "MarketSnapshot", "year_fraction"]


def year_fraction(start: date, end: date) -> float:
    """ACT/365F year fraction from ``start`` to ``end`` (negative if ``end`` is earlier)."""
    return (end - start).days / 365.0


@dataclass(frozen=True)
class MarketSnapshot:
    """Values of risk factors at one instant.

    Parameters
    ----------
    as_of
        Valuation date; instrument maturities are measured from it (ACT/365F).
    values
        Factor id → value. Prices, FX and vols must be finite and > 0; rates finite.
    reporting_currency
        Currency of every reported value; ``FX.<reporting_currency>`` is 1 by definition.
    """

    as_of: date
    values: Mapping[str, float]
    reporting_currency: str = "USD"

    def __post_init__(self) -> None:
        clean: dict[str, float] = {}
        for fid, raw in self.values.items():
            factor = parse_factor(fid)
            try:
                v = float(raw)
            except (TypeError, ValueError):
                raise InvalidFieldError(fid, raw, "factor value is not a number") from None
            if not math.isfinite(v):
                raise InvalidFieldError(fid, raw, "factor value must be finite")
            if factor.positive and v <= 0:
                raise InvalidFieldError(fid, raw, f"{factor.kind.value} values must be > 0")
            clean[factor.id] = v
        object.__setattr__(self, "values", MappingProxyType(clean))

    def __getitem__(self, factor_id: str) -> float:
        if factor_id == f"FX.{self.reporting_currency}":
            return 1.0
        try:
            return self.values[factor_id]
        except KeyError:
            raise MissingFactorError(factor_id) from None

    def __contains__(self, factor_id: object) -> bool:
        return factor_id in self.values or factor_id == f"FX.{self.reporting_currency}"

    @property
    def factor_ids(self) -> tuple[str, ...]:
        return tuple(self.values)

    def curve_tenors(self, currency: str) -> tuple[str, ...]:
        """Tenors present for ``currency``'s zero curve, shortest first."""
        return tuple(t for t in TENORS if rate_factor(currency, t) in self.values)

    def to_scenarios(self, factor_ids: Sequence[str] | None = None) -> MarketScenarios:
        """This snapshot as a batch of one scenario (the base case)."""
        ids = tuple(factor_ids) if factor_ids is not None else self.factor_ids
        levels = np.array([[self[f] for f in ids]], dtype=np.float64)
        return MarketScenarios(self.as_of, ids, levels, self.reporting_currency)

    def bumped(self, factor_id: str, amount: float, *, relative: bool = False) -> MarketSnapshot:
        """A copy with one factor moved by ``amount`` (absolute) or by ``amount`` × value (relative)."""
        values = dict(self.values)
        base = self[factor_id]
        values[factor_id] = base * (1 + amount) if relative else base + amount
        return MarketSnapshot(self.as_of, values, self.reporting_currency)


@dataclass(frozen=True)
class MarketScenarios:
    """Factor levels under ``n`` scenarios: ``levels[s, j]`` is factor ``factor_ids[j]`` in scenario ``s``.

    Pricing values every instrument under every row in one call. Scenarios shock factor levels at a fixed
    valuation date (no time decay), which is the convention of 1-day and 10-day VaR in riskstream.
    """

    as_of: date
    factor_ids: tuple[str, ...]
    levels: np.ndarray
    reporting_currency: str = "USD"
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        levels = np.asarray(self.levels, dtype=np.float64)
        if levels.ndim != 2 or levels.shape[1] != len(self.factor_ids):
            raise InvalidFieldError(
                "levels", levels.shape, f"expected (n_scenarios, {len(self.factor_ids)}) for the factor ids"
            )
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "factor_ids", tuple(self.factor_ids))
        object.__setattr__(self, "_index", {f: j for j, f in enumerate(self.factor_ids)})

    @property
    def n_scenarios(self) -> int:
        return int(self.levels.shape[0])

    def __contains__(self, factor_id: object) -> bool:
        return factor_id in self._index or factor_id == f"FX.{self.reporting_currency}"

    def column(self, factor_id: str) -> np.ndarray:
        """Levels of one factor across scenarios, shape ``(n_scenarios,)``; FX of the reporting ccy is 1."""
        if factor_id == f"FX.{self.reporting_currency}":
            return np.ones(self.n_scenarios)
        try:
            return self.levels[:, self._index[factor_id]]
        except KeyError:
            raise MissingFactorError(factor_id) from None

    def columns(self, factor_ids: Iterable[str]) -> np.ndarray:
        """Levels of several factors, shape ``(len(factor_ids), n_scenarios)``: one row per requested id."""
        ids = list(factor_ids)
        if not ids:
            return np.empty((0, self.n_scenarios))
        one = f"FX.{self.reporting_currency}"
        try:
            idx = np.fromiter(
                (-1 if f == one else self._index[f] for f in ids),
                dtype=np.intp,
                count=len(ids),
            )
        except KeyError as exc:
            raise MissingFactorError(str(exc.args[0])) from None
        # gather only the requested columns (no copy of the whole level matrix); the reporting FX is 1
        unit = idx < 0
        out = self.levels[:, np.where(unit, 0, idx)].T
        out[unit] = 1.0
        return out

    def curve(self, currency: str) -> tuple[np.ndarray, np.ndarray]:
        """Zero curve of ``currency``: tenor times (k,) and zero rates (k, n_scenarios), shortest tenor first."""
        tenors = [t for t in TENORS if rate_factor(currency, t) in self._index]
        if not tenors:
            raise MissingFactorError(rate_factor(currency, "*"))
        times = np.array([TENORS[t] for t in tenors])
        return times, self.columns(rate_factor(currency, t) for t in tenors)

    def kinds(self) -> np.ndarray:
        """Factor kind codes (``"EQ"``, ``"FX"``, ``"IR"``, ``"VOL"``) aligned with ``factor_ids``."""
        return np.array([parse_factor(f).kind.value for f in self.factor_ids])

    def snapshot(self, s: int = 0) -> MarketSnapshot:
        """Scenario ``s`` as a MarketSnapshot."""
        return MarketSnapshot(
            self.as_of,
            dict(zip(self.factor_ids, self.levels[s].tolist(), strict=True)),
            self.reporting_currency,
        )
