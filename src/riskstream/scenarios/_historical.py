"""Historical simulation: today's portfolio under the factor moves of each day of a past window."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from ..domain import MarketSnapshot, ShockType
from ..errors import ConfigurationError, InsufficientHistoryError
from ._scenario_set import (
    ScenarioSet,
    apply_shocks,
    factor_changes,
    history_matrix,
    labels_from_index,
    scale_changes,
    shock_types_for,
)

__all__ = ["HistoricalScenarios", "HorizonRule"]

#: How a multi-day horizon is built: overlapping h-day changes from the history, or 1-day changes scaled by √h.
HorizonRule = Literal["overlapping", "sqrt_time"]


def check_horizon(horizon_days: int, rule: str) -> None:
    if not isinstance(horizon_days, int) or horizon_days < 1:
        raise ConfigurationError("horizon_days", horizon_days, "must be a positive integer")
    if rule not in ("overlapping", "sqrt_time"):
        raise ConfigurationError("horizon_rule", rule, "must be 'overlapping' or 'sqrt_time'")


@dataclass(frozen=True)
class HistoricalScenarios:
    """Plain historical simulation (equal weights).

    Parameters
    ----------
    window
        Number of scenarios: the last ``window`` changes of the history (default 500 business days ≈ 2 years).
    horizon_days
        P&L horizon in business days (1 or 10 are usual).
    horizon_rule
        ``"overlapping"`` (default): ``window`` overlapping h-day changes, needing ``window + h`` days of history;
        ``"sqrt_time"``: 1-day changes scaled by √h (multiplicatively for relative shocks).
    shock_types
        Overrides of the shock convention by factor id or kind, e.g. ``{"VOL": "absolute"}``; default relative
        for prices, FX and vols, absolute for rates.
    """

    window: int = 500
    horizon_days: int = 1
    horizon_rule: HorizonRule = "overlapping"
    shock_types: Mapping[str, ShockType | str] = field(default_factory=dict)

    method = "hs"

    def __post_init__(self) -> None:
        if not isinstance(self.window, int) or self.window < 1:
            raise ConfigurationError("window", self.window, "must be a positive integer")
        check_horizon(self.horizon_days, self.horizon_rule)

    def generate(
        self, snapshot: MarketSnapshot, history: pd.DataFrame, factor_ids: Sequence[str]
    ) -> ScenarioSet:
        types = shock_types_for(factor_ids, self.shock_types)
        step = self.horizon_days if self.horizon_rule == "overlapping" else 1
        needed = self.window + step
        if len(history) < needed:
            raise InsufficientHistoryError(
                f"history has {len(history)} days; window {self.window} with a {step}-day change needs {needed}"
            )
        recent = history.iloc[-needed:]
        levels = history_matrix(recent, factor_ids, snapshot.reporting_currency)
        changes = factor_changes(levels, types, step)
        if self.horizon_rule == "sqrt_time":
            changes = scale_changes(changes, types, math.sqrt(self.horizon_days))
        market = apply_shocks(snapshot, factor_ids, changes, types)
        return ScenarioSet(
            self.method, market, changes, types, labels_from_index(recent.index[step:]), self.horizon_days
        )
