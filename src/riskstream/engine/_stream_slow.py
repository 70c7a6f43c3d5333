"""The slow measures of the streaming engine: Monte Carlo VaR/ES and the stress library, per node.

They revalue every held instrument under thousands of paths, so they run on their own cadence (a background
thread) over a copy of the engine's state taken under its lock, and never hold the lock while pricing.

- Monte Carlo: :class:`~riskstream.scenarios.MonteCarloScenarios` fitted once (covariance of the last ``window``
  daily changes, seeded antithetic normal draws); the same shocks are applied to the current levels on each run.
- Stress: each scenario of :func:`~riskstream.scenarios.stress_library` (or ``StreamConfig.stress``) applied to
  the current levels; the measure is the node's P&L (negative = loss). A historical period the history does not
  cover is skipped with its reason.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ..domain import MarketSnapshot
from ..errors import RiskstreamError
from ..pricing import instrument_pnl
from ..risk import var_and_es
from ..scenarios import HistoricalStress, MonteCarloScenarios, apply_shocks, stress_library

if TYPE_CHECKING:
    from ._stream import SlowMeasures, StreamingEngine

__all__ = ["compute_slow_measures"]

_FIT_LOCK = threading.Lock()


def _mc_shocks(engine: StreamingEngine) -> np.ndarray:
    """Monte Carlo shocks of every universe factor (paths × factors), fitted and drawn once per engine."""
    with _FIT_LOCK:
        if engine._mc_shocks is None:
            cfg = engine.config
            mc = MonteCarloScenarios(
                n_paths=cfg.mc_paths, window=cfg.window, horizon_days=cfg.horizon_days, seed=cfg.mc_seed
            )
            engine._mc_shocks = mc.draw(mc.fit(engine._snapshot0, engine._history, engine._fids))
        return engine._mc_shocks


def compute_slow_measures(engine: StreamingEngine, copy: dict[str, Any]) -> SlowMeasures:
    """Monte Carlo VaR/ES and stress P&L of every node of ``copy`` (a state copy from ``_slow_copy``)."""
    from ._stream import SlowMeasures

    start = time.perf_counter()
    cfg = engine.config
    node_ids: list[str] = copy["node_ids"]
    measures: dict[str, dict[str, float]] = {n: {} for n in node_ids}
    skipped: dict[str, str] = {}
    insts = copy["instruments"]
    if not insts:
        return SlowMeasures(copy["step"], measures, time.perf_counter() - start, skipped)
    cols: np.ndarray = copy["cols"]
    fids = tuple(engine._fids[c] for c in cols)
    snap = MarketSnapshot(
        engine._as_of, dict(zip(fids, copy["cur"][cols].tolist(), strict=True)), engine._ccy
    )
    types = tuple(engine._types[c] for c in cols)
    q = sp.csr_matrix((copy["qty"], (copy["leaf"], copy["inst"])), shape=(copy["n_leaves"], len(insts)))
    nol: sp.csr_matrix = copy["node_of_leaf"]

    def node_pnl(market_pnl: np.ndarray) -> np.ndarray:
        return np.asarray(nol @ (q @ np.nan_to_num(market_pnl)))

    shocks = _mc_shocks(engine)[:, cols]
    mc = node_pnl(instrument_pnl(insts, snap, apply_shocks(snap, fids, shocks, types)).values)
    var, es = var_and_es(mc, cfg.confidence, cfg.es_confidence, cfg.rule)
    for i, n in enumerate(node_ids):
        measures[n][f"{cfg.var_name}_mc"] = float(var[i])
        measures[n][f"{cfg.es_name}_mc"] = float(es[i])

    library = stress_library()
    for name in cfg.stress if cfg.stress is not None else tuple(library):
        spec = library.get(name)
        if spec is None:
            skipped[name] = "not a built-in stress scenario"
            continue
        try:
            if isinstance(spec, HistoricalStress):
                scen = spec.generate(snap, engine._history, fids)
            else:
                scen = spec.generate(snap, fids)
        except RiskstreamError as exc:
            skipped[name] = str(exc)
            continue
        pnl = node_pnl(instrument_pnl(insts, snap, scen.market).values[:, :1])
        for i, n in enumerate(node_ids):
            measures[n][f"stress_{name}"] = float(pnl[i, 0])
    return SlowMeasures(copy["step"], measures, time.perf_counter() - start, skipped)
