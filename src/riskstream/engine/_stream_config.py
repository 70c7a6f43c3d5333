"""Configuration of the streaming VaR/ES engine."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..domain import DEFAULT_LEVELS
from ..errors import ConfigurationError
from ..risk import measure_name
from ._batch import RiskRequest

__all__ = ["StreamConfig"]


@dataclass(frozen=True)
class StreamConfig:
    """What the streaming engine computes, and how often.

    Parameters
    ----------
    method
        Scenario method of every micro-batch: ``hs`` (historical) or ``fhs`` (filtered historical, EWMA
        λ = 0.94 unless ``vol_model="garch"``). Scenario shocks are fixed at start of day from the last ``window``
        daily changes of the history; for ``fhs`` the volatility rescaling (σ_today / σ_t) is fixed at start of
        day too, so intraday ticks move the levels the shocks apply to, not the shocks.
    confidence
        α of VaR, reported as ``var_<α>_<h>d`` (``var_99_1d``).
    es_confidence
        α of Expected Shortfall, reported as ``es_<α>_<h>d`` (``es_975_1d``).
    horizon_days
        P&L horizon in business days (hs: overlapping h-day changes; fhs: √h scaling of 1-day changes).
    window
        Number of historical scenarios.
    levels
        Hierarchy levels below the firm, top-down; the last one is the leaf (default desk, book, trader).
    top_n
        Contributors returned per node by :meth:`StreamingEngine.contributors`.
    slow_every_s
        Cadence in seconds of the slow measures (Monte Carlo VaR/ES and the stress library) on a background
        thread; 0 turns the thread off (call :meth:`StreamingEngine.run_slow_measures` explicitly).
    mc_paths, mc_seed
        Monte Carlo paths (antithetic, so even) and the seed of their draw (fitted and drawn once per day).
    stress
        Names from :func:`riskstream.scenarios.stress_library` to run with the slow measures; ``None`` = all.
    exact_every
        Leaf vectors are updated incrementally (Δquantity × P&L, quantity × ΔP&L); every ``exact_every``
        micro-batches they are recomputed exactly from the positions so rounding cannot accumulate (0 = never).
    rule
        Quantile rule of VaR (see :func:`riskstream.risk.var_es`).
    vol_model
        Volatility filter of ``fhs``.
    threads
        Threads that value and re-translate the rows of one micro-batch at once, the calling thread included
        (0 = one per core, ``os.cpu_count()``; 1 = everything in the calling thread). Blocks too small to pay
        for a thread stay in the calling thread. Results are the same bits whatever the number, so it is not
        part of a checkpoint.
    """

    method: Literal["hs", "fhs"] = "hs"
    confidence: float = 0.99
    es_confidence: float = 0.975
    horizon_days: int = 1
    window: int = 500
    levels: tuple[str, ...] = DEFAULT_LEVELS
    top_n: int = 5
    slow_every_s: float = 5.0
    mc_paths: int = 2000
    mc_seed: int = 0
    stress: tuple[str, ...] | None = None
    exact_every: int = 100
    rule: Literal["empirical", "linear", "k_plus_1"] = "empirical"
    vol_model: Literal["ewma", "garch"] = "ewma"
    threads: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("hs", "fhs"):
            raise ConfigurationError("method", self.method, "must be 'hs' or 'fhs'")
        for name in ("confidence", "es_confidence"):
            value = getattr(self, name)
            if not 0.5 <= value < 1:
                raise ConfigurationError(name, value, "must lie in [0.5, 1)")
        for name in ("horizon_days", "window", "mc_paths"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(name, value, "must be a positive integer")
        if self.mc_paths % 2:
            raise ConfigurationError("mc_paths", self.mc_paths, "must be even (antithetic sampling)")
        for name in ("top_n", "exact_every", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(name, value, "must be a non-negative integer")
        if not (math.isfinite(self.slow_every_s) and self.slow_every_s >= 0):
            raise ConfigurationError("slow_every_s", self.slow_every_s, "must be a finite number ≥ 0")
        if not self.levels:
            raise ConfigurationError("levels", self.levels, "needs at least one level below the firm")
        object.__setattr__(self, "levels", tuple(self.levels))
        if self.stress is not None:
            object.__setattr__(self, "stress", tuple(self.stress))
        # the batch request validates the rest (rule, vol model) and is what the reference recomputation runs
        self.request()

    def request(self, confidence: float | None = None) -> RiskRequest:
        """The batch request with the same scenarios (for the scenario generator and the reference run)."""
        return RiskRequest(
            method=self.method,
            confidence=self.confidence if confidence is None else confidence,
            horizon_days=self.horizon_days,
            levels=self.levels,
            window=self.window,
            rule=self.rule,
            top_n=0,
            vol_model=self.vol_model,
            factor_attribution=False,
        )

    @property
    def n_threads(self) -> int:
        """Threads a micro-batch uses: ``threads``, or the number of cores when it is 0."""
        return self.threads or os.cpu_count() or 1

    @property
    def var_name(self) -> str:
        return measure_name("var", self.confidence, self.horizon_days)

    @property
    def es_name(self) -> str:
        return measure_name("es", self.es_confidence, self.horizon_days)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamConfig:
        fields = dict(data)
        fields["levels"] = tuple(fields["levels"])
        if fields.get("stress") is not None:
            fields["stress"] = tuple(fields["stress"])
        return cls(**fields)
