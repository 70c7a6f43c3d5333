"""Filtered historical simulation: historical moves rescaled from the volatility of their day to today's.

Each factor's 1-day changes are filtered with EWMA (RiskMetrics, λ = 0.94) or a GARCH(1,1) fitted per factor
(``arch``); a past change ``c_t`` becomes ``c_t · σ_today / σ_t`` (Hull & White 1998; Barone-Adesi et al. 1999).
Rows keep their dates, so the cross-factor dependence of each historical day is preserved.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from ..domain import MarketSnapshot, ShockType
from ..errors import ConfigurationError, InsufficientHistoryError, ModelError
from ._historical import HorizonRule, check_horizon
from ._scenario_set import (
    ScenarioSet,
    apply_shocks,
    factor_changes,
    history_matrix,
    labels_from_index,
    scale_changes,
    shock_types_for,
)
from ._volatility import RISKMETRICS_LAMBDA, GarchSpec, ewma_filter, fit_garch

__all__ = ["FilteredHistoricalScenarios", "filter_volatility"]

VolModel = Literal["ewma", "garch"]


def filter_volatility(
    changes: np.ndarray,
    model: VolModel = "ewma",
    lam: float = RISKMETRICS_LAMBDA,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Conditional vol of each row of ``changes`` (T × k) and the one-step forecast (k,), per column.

    A column with no variation keeps vol 0 (its changes are then left unscaled).
    """
    if model == "ewma":
        fv = ewma_filter(changes, lam)
        return np.asarray(fv.conditional_vol), np.atleast_1d(np.asarray(fv.forecast_vol))
    if model != "garch":
        raise ConfigurationError("vol_model", model, "must be 'ewma' or 'garch'")
    t, k = changes.shape
    cond = np.zeros((t, k))
    fcst = np.zeros(k)
    spec = GarchSpec(dist="t", mean="zero")
    for j in range(k):
        col = changes[:, j]
        if np.ptp(col) > 0:
            try:
                fit = fit_garch(col, spec)
                cond[:, j] = fit.conditional_vol
                fcst[j] = float(fit.forecast_vol)
            except (ModelError, InsufficientHistoryError):
                # a factor GARCH cannot fit (too few moves, degenerate) falls back to EWMA, which always exists
                fv = ewma_filter(col, lam)
                cond[:, j] = fv.conditional_vol
                fcst[j] = float(fv.forecast_vol)
        if progress is not None:
            progress(j + 1, k)
    return cond, fcst


@dataclass(frozen=True)
class FilteredHistoricalScenarios:
    """Filtered historical simulation.

    Parameters
    ----------
    window
        Number of scenarios (the last ``window`` days of changes).
    horizon_days, horizon_rule
        As for :class:`HistoricalScenarios`; overlapping h-day changes are rescaled by the ratio of today's vol
        to the vol on the first day of each change.
    vol_model
        ``"ewma"`` (default, λ = ``lam``) or ``"garch"`` (GARCH(1,1), Student-t, fitted per factor: slower).
    warmup
        Extra days before the window that the filter runs over, so σ_t is well initialised on the window's
        first day (default 250).
    """

    window: int = 500
    horizon_days: int = 1
    horizon_rule: HorizonRule = "sqrt_time"
    vol_model: VolModel = "ewma"
    lam: float = RISKMETRICS_LAMBDA
    warmup: int = 250
    shock_types: Mapping[str, ShockType | str] = field(default_factory=dict)
    progress: Callable[[int, int], None] | None = field(default=None, compare=False, repr=False)

    method = "fhs"

    def __post_init__(self) -> None:
        if not isinstance(self.window, int) or self.window < 2:
            raise ConfigurationError("window", self.window, "must be an integer ≥ 2")
        check_horizon(self.horizon_days, self.horizon_rule)
        if self.vol_model not in ("ewma", "garch"):
            raise ConfigurationError("vol_model", self.vol_model, "must be 'ewma' or 'garch'")

    def generate(
        self, snapshot: MarketSnapshot, history: pd.DataFrame, factor_ids: Sequence[str]
    ) -> ScenarioSet:
        types = shock_types_for(factor_ids, self.shock_types)
        h = self.horizon_days if self.horizon_rule == "overlapping" else 1
        needed = self.window + h + 1
        if len(history) < needed:
            raise InsufficientHistoryError(
                f"history has {len(history)} days; filtered HS with window {self.window} needs at least {needed}"
            )
        span = min(len(history), needed + self.warmup)
        recent = history.iloc[-span:]
        levels = history_matrix(recent, factor_ids, snapshot.reporting_currency)
        daily = factor_changes(levels, types, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            cond, fcst = filter_volatility(daily, self.vol_model, self.lam, self.progress)
        if h == 1:
            changes = daily[-self.window :]
            sigma_t = cond[-self.window :]
        else:
            changes = factor_changes(levels, types, h)[-self.window :]
            # the h-day change ending at day i started at day i−h+1: rescale by the vol of that first day
            sigma_t = cond[len(cond) - self.window - h + 1 : len(cond) - h + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(sigma_t > 0, fcst / sigma_t, 1.0)
        if not np.all(np.isfinite(ratio)):
            raise ModelError("volatility filter produced a non-finite scaling ratio")
        scaled = changes * ratio
        if self.horizon_rule == "sqrt_time" and self.horizon_days > 1:
            scaled = scale_changes(scaled, types, math.sqrt(self.horizon_days))
        market = apply_shocks(snapshot, factor_ids, scaled, types)
        labels = labels_from_index(recent.index[-self.window :])
        return ScenarioSet(self.method, market, scaled, types, labels, self.horizon_days)
