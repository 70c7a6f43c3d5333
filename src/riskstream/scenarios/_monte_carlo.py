"""Monte Carlo scenarios: factor shocks drawn from a multivariate normal or Student-t fitted to history."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from ..domain import MarketSnapshot, ShockType
from ..errors import ConfigurationError, InsufficientHistoryError
from ._scenario_set import ScenarioSet, apply_shocks, factor_changes, history_matrix, shock_types_for
from ._volatility import RISKMETRICS_LAMBDA

__all__ = ["MonteCarloScenarios", "covariance_of_changes", "psd_factor"]

Covariance = Literal["sample", "ewma"]


def covariance_of_changes(
    changes: np.ndarray, method: Covariance = "sample", lam: float = RISKMETRICS_LAMBDA
) -> np.ndarray:
    """Covariance of daily factor changes (T × k → k × k).

    ``sample``: the unbiased sample covariance (mean removed). ``ewma``: RiskMetrics, zero mean, weights
    ``(1−λ)λ^i`` on the change ``i`` days before the last, renormalised to sum to one over the window.
    """
    if method == "sample":
        return np.atleast_2d(np.cov(changes, rowvar=False))
    if method == "ewma":
        if not 0 < lam < 1:
            raise ConfigurationError("lam", lam, "must lie in (0, 1)")
        t = len(changes)
        w = (1 - lam) * lam ** np.arange(t - 1, -1, -1, dtype=np.float64)
        w /= w.sum()
        return (changes * w[:, None]).T @ changes
    raise ConfigurationError("covariance", method, "must be 'sample' or 'ewma'")


def psd_factor(cov: np.ndarray) -> np.ndarray:
    """A matrix ``A`` with ``A Aᵀ = cov`` that works for singular covariances (more factors than days).

    Uses the symmetric eigen-decomposition and drops negative round-off eigenvalues; Cholesky would fail on a
    500-day sample covariance of 1,000 factors, which has rank ≤ 500.
    """
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


@dataclass(frozen=True)
class MonteCarloScenarios:
    """Monte Carlo simulation of factor shocks, then full revaluation under each path.

    Parameters
    ----------
    n_paths
        Number of scenarios (with ``antithetic``, half are drawn and half are their mirror images).
    distribution
        ``"normal"`` or ``"t"`` (multivariate Student-t with ``dof`` degrees of freedom, scaled so its
        covariance equals the fitted one: x = A·z·√((ν−2)/w), w ~ χ²_ν, shared by all factors of a path).
    covariance
        ``"sample"`` or ``"ewma"`` covariance of the last ``window`` daily changes.
    horizon_days
        Covariance scaled by h (square-root-of-time on vols); shocks are zero-mean.
    seed
        Seed of numpy's PCG64 generator; the same seed gives the same paths.
    """

    n_paths: int = 10_000
    distribution: Literal["normal", "t"] = "normal"
    dof: float = 5.0
    covariance: Covariance = "sample"
    lam: float = RISKMETRICS_LAMBDA
    window: int = 500
    horizon_days: int = 1
    antithetic: bool = True
    seed: int = 0
    shock_types: Mapping[str, ShockType | str] = field(default_factory=dict)

    method = "mc"

    def __post_init__(self) -> None:
        if not isinstance(self.n_paths, int) or self.n_paths < 2:
            raise ConfigurationError("n_paths", self.n_paths, "must be an integer ≥ 2")
        if self.antithetic and self.n_paths % 2:
            raise ConfigurationError("n_paths", self.n_paths, "must be even with antithetic sampling")
        if self.distribution not in ("normal", "t"):
            raise ConfigurationError("distribution", self.distribution, "must be 'normal' or 't'")
        if self.distribution == "t" and not self.dof > 2:
            raise ConfigurationError("dof", self.dof, "Student-t needs more than 2 degrees of freedom")
        if not isinstance(self.horizon_days, int) or self.horizon_days < 1:
            raise ConfigurationError("horizon_days", self.horizon_days, "must be a positive integer")
        if self.covariance not in ("sample", "ewma"):
            raise ConfigurationError("covariance", self.covariance, "must be 'sample' or 'ewma'")

    def fit(self, snapshot: MarketSnapshot, history: pd.DataFrame, factor_ids: Sequence[str]) -> np.ndarray:
        """Covariance (k × k) of ``horizon_days`` shocks estimated from the last ``window`` daily changes."""
        types = shock_types_for(factor_ids, self.shock_types)
        if len(history) < self.window + 1:
            raise InsufficientHistoryError(
                f"history has {len(history)} days; window {self.window} needs more"
            )
        levels = history_matrix(history.iloc[-(self.window + 1) :], factor_ids, snapshot.reporting_currency)
        return (
            covariance_of_changes(factor_changes(levels, types, 1), self.covariance, self.lam)
            * self.horizon_days
        )

    def draw(self, cov: np.ndarray) -> np.ndarray:
        """Shocks (n_paths × k) with covariance ``cov``."""
        rng = np.random.default_rng(self.seed)
        k = cov.shape[0]
        n = self.n_paths // 2 if self.antithetic else self.n_paths
        z = rng.standard_normal((n, k))
        if self.distribution == "t":
            w = rng.chisquare(self.dof, size=n)
            z *= np.sqrt((self.dof - 2.0) / w)[:, None]
        x = z @ psd_factor(cov).T
        return np.concatenate([x, -x]) if self.antithetic else x

    def generate(
        self, snapshot: MarketSnapshot, history: pd.DataFrame, factor_ids: Sequence[str]
    ) -> ScenarioSet:
        types = shock_types_for(factor_ids, self.shock_types)
        shocks = self.draw(self.fit(snapshot, history, factor_ids))
        market = apply_shocks(snapshot, factor_ids, shocks, types)
        width = int(math.log10(self.n_paths)) + 1
        labels = tuple(f"path-{i:0{width}d}" for i in range(self.n_paths))
        return ScenarioSet(self.method, market, shocks, types, labels, self.horizon_days)
