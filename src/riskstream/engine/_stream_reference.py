"""Full recomputation of a streaming engine's figures with the batch engine: the reference it is tested against."""

from __future__ import annotations

import numpy as np

from ..domain import Hierarchy, RiskSnapshot
from ..pricing import value_instruments
from ..risk import var_es
from ._batch import run_risk
from ._stream import StreamingEngine

__all__ = ["reference_snapshots"]


def reference_snapshots(engine: StreamingEngine, as_of_us: int = 0) -> list[RiskSnapshot]:
    """Every node's VaR/ES, pv and position count recomputed from scratch by :func:`run_risk`.

    The live positions and the current market of ``engine`` go through the batch engine (scenario generation
    from the history, full revaluation of every instrument, aggregation); VaR is read at ``confidence`` and ES at
    ``es_confidence`` from the same node vectors. Pending ticks are not included (as in the engine until its
    next step). Nodes without positions are absent (the batch hierarchy is built from positions).
    """
    cfg = engine.config
    portfolio = engine.current_portfolio()
    snapshot = engine.current_snapshot()
    report = run_risk(portfolio, snapshot, engine._history, cfg.request(), keep_pnl=True)
    assert report.node_pnl is not None
    var, _ = var_es(report.node_pnl, cfg.confidence, cfg.rule)
    _, es = var_es(report.node_pnl, cfg.es_confidence, cfg.rule)
    pos = portfolio.positions
    used = np.unique(pos.instrument)
    values = np.zeros(len(portfolio.instruments))
    valuation = value_instruments([portfolio.instruments[i] for i in used], snapshot.to_scenarios())
    values[used] = np.nan_to_num(np.asarray(valuation.values)[:, 0])
    pv_pos = pos.quantity * values[pos.instrument]
    hierarchy = Hierarchy.build(pos.attributes, cfg.levels)
    out = []
    for i, node in enumerate(report.nodes):
        under = hierarchy.positions_under(hierarchy.index(node.node))
        measures = {
            cfg.var_name: float(var[i]),
            cfg.es_name: float(es[i]),
            "pv": float(pv_pos[under].sum()),
            "n_positions": float(np.count_nonzero(pos.quantity[under])),
        }
        out.append(RiskSnapshot(node.node, int(as_of_us), measures, {}, cfg.method, 0))
    return out
