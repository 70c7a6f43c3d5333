"""Scenario sets: factor shocks, and the shocked market levels every pricer consumes.

Shock convention (per factor, default from :class:`~riskstream.domain.ShockType`): a *relative* shock ``r``
moves a level ``x`` to ``x·(1 + r)``; an *absolute* shock ``d`` moves it to ``x + d``. Historical changes are
measured the same way (``x_t / x_{t−h} − 1`` or ``x_t − x_{t−h}``), so a historical scenario replays the move
of a past period on today's levels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from ..domain import MarketScenarios, MarketSnapshot, ShockType, parse_factor
from ..errors import ConfigurationError, InsufficientHistoryError, InvalidFieldError, MissingFactorError

__all__ = [
    "RELATIVE_FLOOR",
    "ScenarioGenerator",
    "ScenarioSet",
    "apply_shocks",
    "factor_changes",
    "history_matrix",
    "labels_from_index",
    "scale_changes",
    "shock_types_for",
]

#: Relative shocks are floored here so a price, FX rate or vol stays positive under any scenario.
RELATIVE_FLOOR = -0.9999


@dataclass(frozen=True)
class ScenarioSet:
    """A batch of scenarios ready for pricing.

    Attributes
    ----------
    method
        Generator that produced it (``hs``, ``fhs``, ``mc``, ``stress``).
    market
        Shocked factor levels, one row per scenario (``market.levels``: n_scenarios × n_factors).
    changes
        The shocks applied, same shape; relative or absolute per ``shock_types``.
    shock_types
        Shock convention of each factor column.
    labels
        One label per scenario: the end date of a historical change, a path number, a stress name.
    horizon_days
        Horizon of the P&L these scenarios produce, in business days.
    """

    method: str
    market: MarketScenarios
    changes: np.ndarray
    shock_types: tuple[ShockType, ...]
    labels: tuple[str, ...]
    horizon_days: int = 1

    @property
    def n_scenarios(self) -> int:
        return self.market.n_scenarios

    @property
    def factor_ids(self) -> tuple[str, ...]:
        return self.market.factor_ids


class ScenarioGenerator(Protocol):
    """What every scenario method implements."""

    method: str

    def generate(
        self, snapshot: MarketSnapshot, history: pd.DataFrame, factor_ids: Sequence[str]
    ) -> ScenarioSet:
        """Scenarios for ``factor_ids`` around ``snapshot`` from a history of factor levels (dates × factors)."""
        ...


def shock_types_for(
    factor_ids: Sequence[str], overrides: Mapping[str, ShockType | str] | None = None
) -> tuple[ShockType, ...]:
    """Shock type of each factor: ``overrides`` by factor id or by kind (``"IR"``, ``"VOL"``...), else the default."""
    overrides = dict(overrides or {})
    out = []
    for fid in factor_ids:
        factor = parse_factor(fid)
        raw = overrides.get(fid, overrides.get(factor.kind.value))
        try:
            out.append(ShockType(raw) if raw is not None else factor.shock_type)
        except ValueError:
            raise ConfigurationError("shock_type", raw, "must be 'relative' or 'absolute'") from None
    return tuple(out)


def history_matrix(
    history: pd.DataFrame, factor_ids: Sequence[str], reporting_currency: str = "USD"
) -> np.ndarray:
    """Levels of ``factor_ids`` over the history (dates × factors), oldest first; FX of the reporting ccy is 1."""
    if history is None or len(history) == 0:
        raise InsufficientHistoryError("factor history is empty")
    one = f"FX.{reporting_currency}"
    missing = [f for f in factor_ids if f not in history.columns and f != one]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MissingFactorError(missing[0] + more, where="history")
    cols = [history[f].to_numpy(dtype=np.float64) if f != one else np.ones(len(history)) for f in factor_ids]
    levels = np.column_stack(cols) if cols else np.empty((len(history), 0))
    bad = ~np.isfinite(levels)
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise InvalidFieldError(
            factor_ids[j], levels[t, j], f"history value on {history.index[t]} is not finite"
        )
    return levels


def factor_changes(levels: np.ndarray, shock_types: Sequence[ShockType], horizon_days: int = 1) -> np.ndarray:
    """Overlapping ``horizon_days`` changes of each column: ``x_t/x_{t−h} − 1`` or ``x_t − x_{t−h}``.

    Returns an array with ``len(levels) − horizon_days`` rows; row ``i`` is the change ending at ``i + h``.
    """
    h = int(horizon_days)
    if h < 1:
        raise ConfigurationError("horizon_days", horizon_days, "must be a positive integer")
    if len(levels) <= h:
        raise InsufficientHistoryError(f"{len(levels)} days of history cannot give a {h}-day change")
    rel = np.array([s is ShockType.RELATIVE for s in shock_types], dtype=bool)
    now, then = levels[h:], levels[:-h]
    out = now - then
    if rel.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, rel] = now[:, rel] / then[:, rel] - 1.0
    return out


def scale_changes(changes: np.ndarray, shock_types: Sequence[ShockType], power: float) -> np.ndarray:
    """Scale shocks in time: ``(1+r)^power − 1`` (relative, stays multiplicative) or ``power·d`` (absolute).

    ``power = √h`` is the square-root-of-time rule; a relative shock scaled this way never takes a price below 0.
    """
    changes = np.asarray(changes, dtype=np.float64)
    if power == 1.0:
        return changes
    rel = np.array([s is ShockType.RELATIVE for s in shock_types], dtype=bool)
    out = changes * power
    if rel.any():
        out[:, rel] = np.maximum(1.0 + changes[:, rel], 1.0 + RELATIVE_FLOOR) ** power - 1.0
    return out


def apply_shocks(
    snapshot: MarketSnapshot, factor_ids: Sequence[str], changes: np.ndarray, shock_types: Sequence[ShockType]
) -> MarketScenarios:
    """Shocked levels ``x·(1+r)`` (relative, ``r`` floored at −99.99 %) or ``x + d`` (absolute), one row per row
    of ``changes``."""
    base = np.array([snapshot[f] for f in factor_ids], dtype=np.float64)
    changes = np.asarray(changes, dtype=np.float64)
    if changes.ndim != 2 or changes.shape[1] != len(factor_ids):
        raise InvalidFieldError("changes", changes.shape, f"expected (n_scenarios, {len(factor_ids)})")
    rel = np.array([s is ShockType.RELATIVE for s in shock_types], dtype=bool)
    levels = base + changes
    if rel.any():
        levels[:, rel] = base[rel] * np.maximum(1.0 + changes[:, rel], 1.0 + RELATIVE_FLOOR)
    return MarketScenarios(snapshot.as_of, tuple(factor_ids), levels, snapshot.reporting_currency)


def labels_from_index(index: pd.Index) -> tuple[str, ...]:
    """Scenario labels from a history index: ISO dates where the index holds dates."""
    if isinstance(index, pd.DatetimeIndex):
        return tuple(index.strftime("%Y-%m-%d"))
    return tuple(str(x) for x in index)
