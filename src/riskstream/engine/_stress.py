"""Stress tests: full revaluation of the portfolio under one stress scenario, P&L at every node."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..domain import BadRecord, MarketSnapshot, Portfolio
from ..errors import ConfigurationError
from ..scenarios import (
    HistoricalStress,
    StressScenario,
    load_stress_file,
    stress_library,
    worst_window_scenarios,
)
from ._batch import Progress, _book, _prepare, _revalue, _Timer, _top_positions

__all__ = ["NodeStress", "StressReport", "resolve_scenario", "run_stress"]

_WORST = re.compile(r"^worst-(\d+)d$")


@dataclass(frozen=True)
class NodeStress:
    """Stress P&L of one node (negative = loss) and its biggest losers by position."""

    node: str
    level: str
    parent: str | None
    pnl: float
    top_losers: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class StressReport:
    scenario: str
    description: str
    period: str | None
    as_of: str
    reporting_currency: str
    nodes: tuple[NodeStress, ...]
    rejected: tuple[BadRecord, ...]
    timings: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "description": self.description,
            "period": self.period,
            "as_of": self.as_of,
            "reporting_currency": self.reporting_currency,
            "nodes": [
                {
                    "node": n.node,
                    "level": n.level,
                    "parent": n.parent,
                    "pnl": n.pnl,
                    "top_losers": [{"position": p, "pnl": v} for p, v in n.top_losers],
                }
                for n in self.nodes
            ],
            "rejected": [{"kind": b.kind, "id": b.record_id, "reason": b.reason} for b in self.rejected],
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }


def resolve_scenario(name_or_file: str) -> StressScenario | HistoricalStress | int:
    """A built-in scenario by name, ``worst-<h>d`` (returns h), or a scenario file (CSV, JSON, YAML)."""
    library = stress_library()
    if name_or_file in library:
        return library[name_or_file]
    m = _WORST.match(name_or_file)
    if m:
        return int(m.group(1))
    path = Path(name_or_file)
    if path.suffix.lower() in (".csv", ".json", ".yaml", ".yml") or path.exists():
        return load_stress_file(path)
    raise ConfigurationError(
        "scenario", name_or_file, f"not a file and not a built-in scenario ({', '.join(library)}, worst-10d)"
    )


def run_stress(
    portfolio: Portfolio,
    snapshot: MarketSnapshot,
    history: pd.DataFrame,
    scenario: str,
    levels: tuple[str, ...] = ("desk", "book", "trader"),
    top_n: int = 5,
    progress: Progress | None = None,
) -> StressReport:
    """Revalue every position under the scenario and report P&L per node (worst losers per node).

    ``worst-<h>d`` scans every overlapping h-day move of the history and reports the one that hurts the firm
    most: the historical stress window for this portfolio.
    """
    timer = _Timer(progress)
    timer.stage("factors", 0.0)
    spec = resolve_scenario(scenario)
    instruments, local, factors, rejected = _prepare(portfolio, snapshot, history)
    book, bad_positions = _book(portfolio, local, len(instruments), levels)
    rejected = list(portfolio.rejected) + rejected + bad_positions
    timer.stage("scenario", 0.1)
    if isinstance(spec, int):
        scen = worst_window_scenarios(snapshot, history, factors, spec)
        name, description = scenario, f"worst {spec}-day move of the history for this portfolio"
    elif isinstance(spec, HistoricalStress):
        scen = spec.generate(snapshot, history, factors)
        name, description = spec.name, spec.description
    else:
        scen = spec.generate(snapshot, factors)
        name, description = spec.name, spec.description
    timer.stage("valuation", 0.3)
    pnl = _revalue(instruments, snapshot, scen.market, book, rejected)
    timer.stage("aggregation", 0.8)
    node_pnl = book.node_pnl(pnl)
    worst = int(np.argmin(node_pnl[0]))  # one scenario, or the window that hurts the firm most
    if isinstance(spec, HistoricalStress):
        period: str | None = f"{spec.start}→{spec.end}"
    else:
        period = scen.labels[worst] if isinstance(spec, int) else None
    h = book.hierarchy
    # the worst losers rank by −P&L: the same top-k per node as component risk, with unit −P&L per instrument
    unit = np.broadcast_to(pnl[:, worst], (h.n_nodes, len(instruments)))
    losers = _top_positions(book, unit, top_n)
    nodes = []
    for n in range(h.n_nodes):
        parent = int(h.parent[n])
        nodes.append(
            NodeStress(
                h.node_ids[n],
                h.level_name(int(h.node_level[n])),
                h.node_ids[parent] if parent >= 0 else None,
                float(node_pnl[n, worst]),
                tuple((str(book.position_ids[p]), -loss) for p, loss in losers[n] if loss > 0),
            )
        )
    timer.stage("report", 0.95)
    return StressReport(
        name,
        description,
        period,
        snapshot.as_of.isoformat(),
        snapshot.reporting_currency,
        tuple(nodes),
        tuple(rejected),
        timer.finish(),
    )
