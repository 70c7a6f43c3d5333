"""The batch risk run: VaR and ES at every node of the hierarchy, with top contributors.

Pipeline (one pass, vectorised):

1. Find the risk factors the positions' instruments depend on; instruments missing a factor or its history
   are reported, not fatal.
2. Build scenarios (historical, filtered historical, Monte Carlo) for those factors.
3. Value each *unique* instrument under every scenario (full revaluation of options and bonds): the P&L
   matrix ``P`` is instruments × scenarios. Positions share instruments, so this is the only revaluation.
4. Aggregate: leaf-node P&L = ``Q @ P`` with ``Q`` the sparse leaf × instrument quantity matrix, then every
   node's vector is the sum of its leaves'. VaR/ES of each node come from its summed vector — never from
   summing VaRs.
5. Euler contributions: with scenario tail weights ``w`` (``VaR = −w·pnl``), a position's component is
   ``−quantity · (P[instrument] · w)``; only the few tail scenarios of each node are touched. Risk-factor
   contributions use the positions' sensitivities at the tail scenarios (delta-gamma), with the remainder
   reported as ``unexplained`` so the factor contributions sum to the node's figure.

The parametric method replaces steps 2–3 by sensitivities and a covariance of factor shocks (delta-normal or
delta-gamma Cornish-Fisher).

Conventions: P&L positive is a gain; VaR and ES are positive losses in the reporting currency over
``horizon_days``; confidence α applies to both (``var_99_1d``, ``es_99_1d``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..domain import BadRecord, Hierarchy, Instrument, MarketScenarios, MarketSnapshot, Portfolio
from ..errors import ConfigurationError, EmptyInputError
from ..pricing import instrument_pnl, sensitivities, value_instruments
from ..risk import delta_gamma_cornish_fisher, measure_name, normal_var_es, tail_weights, var_es
from ..scenarios import (
    FilteredHistoricalScenarios,
    HistoricalScenarios,
    MonteCarloScenarios,
    ScenarioSet,
    covariance_of_changes,
    factor_changes,
    history_matrix,
    shock_types_for,
)
from ._factors import required_factors

__all__ = ["Contribution", "NodeRisk", "RiskReport", "RiskRequest", "run_risk"]

Method = Literal["hs", "fhs", "parametric", "mc"]
METHODS: tuple[str, ...] = ("hs", "fhs", "parametric", "mc")
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class RiskRequest:
    """What to compute.

    Parameters
    ----------
    method
        ``hs`` historical, ``fhs`` filtered historical (EWMA λ=0.94 unless ``vol_model="garch"``),
        ``parametric`` (delta-normal, or delta-gamma Cornish-Fisher with ``parametric="delta_gamma"``),
        ``mc`` Monte Carlo with full revaluation.
    confidence
        α for VaR and ES, e.g. 0.99.
    horizon_days
        P&L horizon in business days. ``horizon_rule`` says how: ``overlapping`` h-day historical changes
        (hs default) or ``sqrt_time`` scaling of 1-day shocks (fhs default; parametric and mc scale the
        covariance by h, which is the same rule).
    levels
        Hierarchy levels below the firm (default desk, book, trader).
    window
        Days of history used: the scenarios of hs/fhs, the covariance of parametric/mc.
    rule
        Quantile convention of scenario methods (``empirical`` = inverse ECDF, see ``riskstream.risk``).
    top_n
        Contributors reported per node, by position and by risk factor (ranked by component ES).
    """

    method: Method = "hs"
    confidence: float = 0.99
    horizon_days: int = 1
    horizon_rule: Literal["overlapping", "sqrt_time"] | None = None
    levels: tuple[str, ...] = ("desk", "book", "trader")
    window: int = 500
    rule: Literal["empirical", "linear", "k_plus_1"] = "empirical"
    top_n: int = 5
    mc_paths: int = 10_000
    mc_distribution: Literal["normal", "t"] = "normal"
    mc_dof: float = 5.0
    antithetic: bool = True
    covariance: Literal["sample", "ewma"] = "sample"
    vol_model: Literal["ewma", "garch"] = "ewma"
    parametric: Literal["delta_normal", "delta_gamma"] = "delta_normal"
    seed: int = 0
    factor_attribution: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigurationError("method", self.method, f"must be one of {', '.join(METHODS)}")
        if not 0.5 <= self.confidence < 1:
            raise ConfigurationError("confidence", self.confidence, "must lie in [0.5, 1)")
        if not isinstance(self.horizon_days, int) or self.horizon_days < 1:
            raise ConfigurationError("horizon_days", self.horizon_days, "must be a positive integer")
        if not isinstance(self.top_n, int) or self.top_n < 0:
            raise ConfigurationError("top_n", self.top_n, "must be a non-negative integer")
        choices = {
            "horizon_rule": (self.horizon_rule, (None, "overlapping", "sqrt_time")),
            "rule": (self.rule, ("empirical", "linear", "k_plus_1")),
            "covariance": (self.covariance, ("sample", "ewma")),
            "vol_model": (self.vol_model, ("ewma", "garch")),
            "parametric": (self.parametric, ("delta_normal", "delta_gamma")),
            "distribution": (self.mc_distribution, ("normal", "t")),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                shown = ", ".join(str(a) for a in allowed if a is not None)
                raise ConfigurationError(name, value, f"must be one of {shown}")

    @property
    def var_name(self) -> str:
        return measure_name("var", self.confidence, self.horizon_days)

    @property
    def es_name(self) -> str:
        return measure_name("es", self.confidence, self.horizon_days)

    def scenario_generator(self) -> HistoricalScenarios | FilteredHistoricalScenarios | MonteCarloScenarios:
        if self.method == "hs":
            return HistoricalScenarios(self.window, self.horizon_days, self.horizon_rule or "overlapping")
        if self.method == "fhs":
            return FilteredHistoricalScenarios(
                self.window, self.horizon_days, self.horizon_rule or "sqrt_time", vol_model=self.vol_model
            )
        return MonteCarloScenarios(
            n_paths=self.mc_paths,
            distribution=self.mc_distribution,
            dof=self.mc_dof,
            covariance=self.covariance,
            window=self.window,
            horizon_days=self.horizon_days,
            antithetic=self.antithetic,
            seed=self.seed,
        )


@dataclass(frozen=True, slots=True)
class Contribution:
    """One contributor to a node's risk.

    ``var`` and ``es`` are Euler components (they sum to the node's figures over all contributors). For a
    position, also: ``exposure`` (its market value in the reporting currency), ``marginal_var``/``marginal_es``
    (component ÷ exposure: the change of the node's VaR/ES per unit of currency added to the position, Jorion,
    *Value at Risk*, §7.2; None when the exposure is zero, e.g. an at-market swap) and ``incremental_var``/
    ``incremental_es`` (the node's figure minus the figure without the position, by full recomputation).
    """

    label: str
    var: float
    es: float
    share_es: float  # component ES / node ES
    exposure: float | None = None
    marginal_var: float | None = None
    marginal_es: float | None = None
    incremental_var: float | None = None
    incremental_es: float | None = None


@dataclass(frozen=True)
class NodeRisk:
    """VaR and ES of one hierarchy node with its top contributors."""

    node: str
    level: str
    parent: str | None
    positions: int
    var: float
    es: float
    top_positions: tuple[Contribution, ...] = ()
    top_factors: tuple[Contribution, ...] = ()
    unexplained: Contribution | None = None


@dataclass(frozen=True)
class RiskReport:
    """Result of a risk run: one :class:`NodeRisk` per node, parents first, and what was left out."""

    request: RiskRequest
    as_of: str
    reporting_currency: str
    nodes: tuple[NodeRisk, ...]
    rejected: tuple[BadRecord, ...]
    n_positions: int
    n_instruments: int
    n_factors: int
    n_scenarios: int
    timings: dict[str, float] = field(default_factory=dict)
    node_pnl: np.ndarray | None = field(default=None, repr=False)
    scenario_labels: tuple[str, ...] = field(default=(), repr=False)

    def node(self, node_id: str) -> NodeRisk:
        for n in self.nodes:
            if n.node == node_id:
                return n
        raise ConfigurationError("node", node_id, "no such node in the report")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: request, counts, and per node ``var``/``es`` (also under their measure names)."""
        r = self.request

        def contrib(c: Contribution) -> dict[str, Any]:
            out: dict[str, Any] = {"label": c.label, "var": c.var, "es": c.es, "share_es": c.share_es}
            if c.exposure is not None:
                out.update(
                    exposure=c.exposure,
                    marginal_var=c.marginal_var,
                    marginal_es=c.marginal_es,
                    incremental_var=c.incremental_var,
                    incremental_es=c.incremental_es,
                )
            return out

        return {
            "as_of": self.as_of,
            "reporting_currency": self.reporting_currency,
            "method": r.method,
            "confidence": r.confidence,
            "horizon_days": r.horizon_days,
            "var_measure": r.var_name,
            "es_measure": r.es_name,
            "positions": self.n_positions,
            "instruments": self.n_instruments,
            "factors": self.n_factors,
            "scenarios": self.n_scenarios,
            "nodes": [
                {
                    "node": n.node,
                    "level": n.level,
                    "parent": n.parent,
                    "positions": n.positions,
                    "var": n.var,
                    "es": n.es,
                    r.var_name: n.var,
                    r.es_name: n.es,
                    "top_positions": [contrib(c) for c in n.top_positions],
                    "top_factors": [contrib(c) for c in n.top_factors],
                    "unexplained": contrib(n.unexplained) if n.unexplained else None,
                }
                for n in self.nodes
            ],
            "rejected": [{"kind": b.kind, "id": b.record_id, "reason": b.reason} for b in self.rejected],
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }


class _Timer:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()
        self._stage = ""

    def stage(self, name: str, done_fraction: float) -> None:
        now = time.perf_counter()
        if self._stage:
            self.timings[self._stage] = now - self._t
        self._stage, self._t = name, now
        if self.progress is not None:
            self.progress(name, done_fraction)

    def finish(self) -> dict[str, float]:
        self.stage("", 1.0)
        self.timings["total"] = sum(self.timings.values())
        return self.timings


@dataclass
class _Book:
    """Valid positions mapped onto the instruments actually priced and onto the hierarchy's nodes."""

    hierarchy: Hierarchy
    inst: np.ndarray  # local instrument index per position
    qty: np.ndarray
    position_ids: np.ndarray
    leaf_matrix: sp.csr_matrix  # leaf nodes × local instruments, summed quantities
    node_of_leaf: sp.csr_matrix  # nodes × leaf nodes, 1 where the leaf lies under the node
    leaf_level: int
    dropped: int = 0  # positions whose instrument the pricer refused

    def node_pnl(self, pnl: np.ndarray) -> np.ndarray:
        """Node P&L vectors (nodes × scenarios) from instrument P&L per unit (instruments × scenarios)."""
        return np.asarray(self.node_of_leaf @ (self.leaf_matrix @ pnl))

    @property
    def n_positions(self) -> int:
        return len(self.qty) - self.dropped


def _revalue(
    instruments: Sequence[Instrument],
    snapshot: MarketSnapshot,
    market: MarketScenarios,
    book: _Book,
    rejected: list[BadRecord],
) -> np.ndarray:
    """Instrument P&L per unit under ``market``; instruments the pricer refuses are reported with their
    positions, and count as zero P&L (their quantities are zeroed, so they drop out of contributions too)."""
    valuation = instrument_pnl(instruments, snapshot, market)
    pnl = np.asarray(valuation.values)
    if not valuation.failed:
        return pnl
    failed = np.array(sorted(valuation.failed))
    rejected.extend(
        BadRecord("instrument", instruments[i].instrument_id, valuation.failed[i]) for i in failed
    )
    hit = np.isin(book.inst, failed) & (book.qty != 0)
    rejected.extend(
        BadRecord("position", str(p), "instrument cannot be valued") for p in book.position_ids[hit]
    )
    book.qty = np.where(hit, 0.0, book.qty)
    book.dropped += int(hit.sum())
    pnl = pnl.copy()
    pnl[failed] = 0.0
    return pnl


def _prepare(
    portfolio: Portfolio, snapshot: MarketSnapshot, history: pd.DataFrame | None
) -> tuple[list[Instrument], np.ndarray, tuple[str, ...], list[BadRecord]]:
    """Instruments in use (local list), local index of each used global instrument, factors, rejections."""
    if len(portfolio.positions) == 0:
        raise EmptyInputError("positions")
    used = np.unique(portfolio.positions.instrument)
    instruments = [portfolio.instruments[i] for i in used]
    factors, failed = required_factors(instruments, snapshot, history)
    rejected = [BadRecord("instrument", instruments[i].instrument_id, r) for i, r in sorted(failed.items())]
    keep = np.array([i not in failed for i in range(len(instruments))], dtype=bool)
    local = np.full(len(portfolio.instruments), -1, dtype=np.int64)
    local[used[keep]] = np.arange(int(keep.sum()))
    return [inst for inst, k in zip(instruments, keep, strict=True) if k], local, factors, rejected


def _book(
    portfolio: Portfolio, local: np.ndarray, n_inst: int, levels: Sequence[str]
) -> tuple[_Book, list[BadRecord]]:
    pos = portfolio.positions
    inst = local[pos.instrument]
    ok = inst >= 0
    rejected = [
        BadRecord(
            "position",
            str(pos.position_id[i]),
            f"instrument {portfolio.instruments[pos.instrument[i]].instrument_id!r} cannot be valued",
        )
        for i in np.flatnonzero(~ok)
    ]
    if not ok.any():
        raise EmptyInputError("valuable positions", "every position's instrument failed; see the rejections")
    pos = pos.take(ok) if not ok.all() else pos
    inst = inst[ok]
    hierarchy = Hierarchy.build(dict(pos.attributes), levels)
    leaf_level = hierarchy.depth
    leaf_nodes = np.flatnonzero(hierarchy.node_level == leaf_level)
    leaf_pos = np.searchsorted(leaf_nodes, hierarchy.position_node[leaf_level])
    leaf_matrix = sp.csr_matrix(
        (pos.quantity, (leaf_pos, inst)), shape=(len(leaf_nodes), n_inst), dtype=np.float64
    )
    leaf_matrix.sum_duplicates()
    # ancestor of each leaf at each level: read off any position of that leaf
    first = np.zeros(len(leaf_nodes), dtype=np.int64)
    first[leaf_pos[::-1]] = np.arange(len(leaf_pos))[::-1]
    rows = hierarchy.position_node[:, first].ravel()
    cols = np.tile(np.arange(len(leaf_nodes)), hierarchy.depth + 1)
    node_of_leaf = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(hierarchy.n_nodes, len(leaf_nodes))
    )
    return _Book(
        hierarchy, inst, pos.quantity, pos.position_id, leaf_matrix, node_of_leaf, leaf_level
    ), rejected


def _top_positions(book: _Book, unit: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Top ``k`` positions of every node by ``−quantity·unit[node, instrument]``; (position row, value) pairs."""
    h = book.hierarchy
    out: list[list[tuple[int, float]]] = [[] for _ in range(h.n_nodes)]
    if k == 0:
        return out
    for level in range(h.depth + 1):
        nodes = h.position_node[level]
        contrib = -book.qty * unit[nodes, book.inst]
        order = np.lexsort((-contrib, nodes))
        sorted_nodes = nodes[order]
        starts = np.flatnonzero(np.r_[True, sorted_nodes[1:] != sorted_nodes[:-1]])
        for s in starts:
            node = int(sorted_nodes[s])
            picks = order[s : s + k]
            picks = picks[nodes[picks] == node]
            out[node] = [(int(p), float(contrib[p])) for p in picks]
    return out


def _factor_attribution(
    node_delta: np.ndarray, node_gamma: np.ndarray, w: sp.csr_matrix, shocks: np.ndarray
) -> np.ndarray:
    """Delta-gamma estimate of each factor's component: −Σ_s w[n,s]·(δ[n,f]·x[s,f] + ½Γ[n,f]·x[s,f]²)."""
    wx = np.asarray(w @ shocks)
    wx2 = np.asarray(w @ (shocks * shocks))
    return -(node_delta * wx + 0.5 * node_gamma * wx2)


def _node_sensitivities(
    instruments: Sequence[Instrument],
    snapshot: MarketSnapshot,
    factors: tuple[str, ...],
    book: _Book,
    instrument_deltas: bool = False,
) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix | None]:
    """Node delta and gamma (nodes × factors) in the shock convention, and instrument deltas (sparse)."""
    sens = sensitivities(instruments, snapshot)
    col = {f: j for j, f in enumerate(sens.factor_ids)}
    idx = np.array([col.get(f, -1) for f in factors], dtype=np.int64)
    present = idx >= 0
    node_q = sp.csr_matrix(book.node_of_leaf @ book.leaf_matrix)  # nodes × instruments
    delta = np.asarray(sens.delta)
    gamma = np.asarray(sens.gamma)
    bad = np.flatnonzero(np.isnan(delta.sum(axis=1)) | np.isnan(gamma.sum(axis=1)))
    if bad.size:  # failed instruments carry NaN rows; they hold no quantity, so drop them from the product
        keep = np.ones(len(instruments))
        keep[bad] = 0.0
        node_q = sp.csr_matrix(node_q @ sp.diags(keep))
        delta = np.where(np.isnan(delta), 0.0, delta)
        gamma = np.where(np.isnan(gamma), 0.0, gamma)
    # aggregate over instruments first (nodes × sensitivity factors), then align to the requested factor order
    node_delta = np.zeros((node_q.shape[0], len(factors)))
    node_gamma = np.zeros_like(node_delta)
    node_delta[:, present] = np.asarray(node_q @ delta)[:, idx[present]]
    node_gamma[:, present] = np.asarray(node_q @ gamma)[:, idx[present]]
    d_inst = sp.csr_matrix(_aligned(delta, idx, present)) if instrument_deltas else None
    return node_delta, node_gamma, d_inst


def _aligned(matrix: np.ndarray, idx: np.ndarray, present: np.ndarray) -> np.ndarray:
    out = np.zeros((matrix.shape[0], len(idx)))
    out[:, present] = matrix[:, idx[present]]
    return out


def run_risk(
    portfolio: Portfolio,
    snapshot: MarketSnapshot,
    history: pd.DataFrame,
    request: RiskRequest | None = None,
    progress: Progress | None = None,
    *,
    keep_pnl: bool = False,
) -> RiskReport:
    """VaR and ES at every node of the hierarchy, with top contributors by position and by risk factor.

    Bad instruments and positions are reported in ``RiskReport.rejected`` and the rest is computed.

    Parameters
    ----------
    portfolio, snapshot, history
        Positions and instruments; today's market; factor level history (dates × factor ids).
    request
        Method and parameters (see :class:`RiskRequest`); default 1-day 99 % historical simulation.
    progress
        Called with (stage name, fraction done) as the run advances, for progress bars.
    keep_pnl
        Keep the node P&L vectors (nodes × scenarios) in the report (scenario methods only).
    """
    request = request or RiskRequest()
    timer = _Timer(progress)
    timer.stage("factors", 0.0)
    instruments, local, factors, rejected = _prepare(portfolio, snapshot, history)
    book, bad_positions = _book(portfolio, local, len(instruments), request.levels)
    rejected = list(portfolio.rejected) + rejected + bad_positions
    h = book.hierarchy

    if request.method == "parametric":
        return _run_parametric(
            portfolio, snapshot, history, request, instruments, factors, book, rejected, timer
        )

    timer.stage("scenarios", 0.1)
    scenarios: ScenarioSet = request.scenario_generator().generate(snapshot, history, factors)
    timer.stage("valuation", 0.3)
    pnl = _revalue(instruments, snapshot, scenarios.market, book, rejected)
    timer.stage("aggregation", 0.6)
    node_pnl = book.node_pnl(pnl)
    timer.stage("measures", 0.7)
    var, es = var_es(node_pnl, request.confidence, request.rule)
    timer.stage("contributions", 0.75)
    w_var, w_es = tail_weights(node_pnl, request.confidence, request.rule)
    w_var_s, w_es_s = sp.csr_matrix(w_var), sp.csr_matrix(w_es)
    # unit contributions: instrument P&L at each node's tail, per unit of quantity (nodes × instruments)
    unit_es = np.asarray(w_es_s @ pnl.T)
    unit_var = np.asarray(w_var_s @ pnl.T)
    top = _top_positions(book, unit_es, request.top_n)
    factor_es = factor_var = None
    if request.factor_attribution and request.top_n:
        timer.stage("attribution", 0.85)
        node_delta, node_gamma, _ = _node_sensitivities(instruments, snapshot, factors, book)
        factor_es = _factor_attribution(node_delta, node_gamma, w_es_s, scenarios.changes)
        factor_var = _factor_attribution(node_delta, node_gamma, w_var_s, scenarios.changes)
    timer.stage("incremental", 0.92)
    exposure = book.qty * _base_values(instruments, snapshot, factors)[book.inst]
    extras = _incremental_scenario(top, book, node_pnl, pnl, var, es, exposure, request)
    timer.stage("report", 0.95)
    nodes = _node_results(
        h, book, var, es, top, unit_var, factor_var, factor_es, factors, request.top_n, extras
    )
    return RiskReport(
        request,
        snapshot.as_of.isoformat(),
        snapshot.reporting_currency,
        nodes,
        tuple(rejected),
        book.n_positions,
        len(instruments),
        len(factors),
        scenarios.n_scenarios,
        timer.finish(),
        node_pnl if keep_pnl else None,
        scenarios.labels if keep_pnl else (),
    )


Extras = dict[tuple[int, int], tuple[float, float, float]]  # (node, position) → exposure, incremental VaR, ES


def _top_rows(top: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray]:
    nodes = np.array([n for n, picks in enumerate(top) for _ in picks], dtype=np.int64)
    rows = np.array([p for picks in top for p, _ in picks], dtype=np.int64)
    return nodes, rows


def _incremental_scenario(
    top: list[list[tuple[int, float]]],
    book: _Book,
    node_pnl: np.ndarray,
    pnl: np.ndarray,
    var: np.ndarray,
    es: np.ndarray,
    exposure: np.ndarray,
    request: RiskRequest,
) -> Extras:
    """Incremental VaR/ES of each top position: the node recomputed without the position's P&L vector."""
    nodes, rows = _top_rows(top)
    if rows.size == 0:
        return {}
    without = node_pnl[nodes] - book.qty[rows, None] * pnl[book.inst[rows]]
    v, e = var_es(without, request.confidence, request.rule)
    return {
        (int(n), int(p)): (float(exposure[p]), float(var[n] - vi), float(es[n] - ei))
        for n, p, vi, ei in zip(nodes, rows, v, e, strict=True)
    }


def _node_results(
    h: Hierarchy,
    book: _Book,
    var: np.ndarray,
    es: np.ndarray,
    top: list[list[tuple[int, float]]],
    unit_var: np.ndarray,
    factor_var: np.ndarray | None,
    factor_es: np.ndarray | None,
    factors: tuple[str, ...],
    k: int,
    extras: Extras | None = None,
) -> tuple[NodeRisk, ...]:
    counts = np.zeros(h.n_nodes, dtype=np.int64)
    for level in range(h.depth + 1):
        counts += np.bincount(h.position_node[level], minlength=h.n_nodes)
    out = []
    for n in range(h.n_nodes):
        node_es = float(es[n])

        def share(v: float, node_es: float = node_es) -> float:
            return v / node_es if node_es else 0.0

        positions = tuple(
            _position_contribution(
                book, n, p, float(-book.qty[p] * unit_var[n, book.inst[p]]), c, share(c), extras
            )
            for p, c in top[n]
        )
        top_factors: tuple[Contribution, ...] = ()
        unexplained = None
        if factor_es is not None and factor_var is not None:
            order = np.argsort(-factor_es[n])[:k]
            top_factors = tuple(
                Contribution(
                    factors[j], float(factor_var[n, j]), float(factor_es[n, j]), share(float(factor_es[n, j]))
                )
                for j in order
            )
            rest_es = node_es - float(factor_es[n].sum())
            rest_var = float(var[n]) - float(factor_var[n].sum())
            unexplained = Contribution(
                "unexplained (higher order and cross terms)", rest_var, rest_es, share(rest_es)
            )
        parent = int(h.parent[n])
        out.append(
            NodeRisk(
                h.node_ids[n],
                h.level_name(int(h.node_level[n])),
                h.node_ids[parent] if parent >= 0 else None,
                int(counts[n]),
                float(var[n]),
                node_es,
                positions,
                top_factors,
                unexplained,
            )
        )
    return tuple(out)


def _position_contribution(
    book: _Book, n: int, p: int, var: float, es: float, share: float, extras: Extras | None
) -> Contribution:
    label = str(book.position_ids[p])
    if not extras or (n, p) not in extras:
        return Contribution(label, var, es, share)
    exposure, inc_var, inc_es = extras[(n, p)]
    has = abs(exposure) > 1e-9
    return Contribution(
        label,
        var,
        es,
        share,
        exposure,
        var / exposure if has else None,
        es / exposure if has else None,
        inc_var,
        inc_es,
    )


def _base_values(
    instruments: Sequence[Instrument], snapshot: MarketSnapshot, factors: tuple[str, ...]
) -> np.ndarray:
    """Value per unit of each instrument today, reporting currency (NaN-free: failures count as 0)."""
    return np.nan_to_num(
        np.asarray(value_instruments(instruments, snapshot.to_scenarios(factors)).values)[:, 0]
    )


def _run_parametric(
    portfolio: Portfolio,
    snapshot: MarketSnapshot,
    history: pd.DataFrame,
    request: RiskRequest,
    instruments: list[Instrument],
    factors: tuple[str, ...],
    book: _Book,
    rejected: list[BadRecord],
    timer: _Timer,
) -> RiskReport:
    """Delta-normal (or delta-gamma Cornish-Fisher) VaR/ES per node from sensitivities and a covariance."""
    del portfolio
    timer.stage("covariance", 0.1)
    types = shock_types_for(factors)
    if len(history) < request.window + 1:
        raise ConfigurationError("window", request.window, f"history has only {len(history)} days")
    levels = history_matrix(history.iloc[-(request.window + 1) :], factors, snapshot.reporting_currency)
    cov = covariance_of_changes(factor_changes(levels, types, 1), request.covariance) * request.horizon_days
    timer.stage("sensitivities", 0.3)
    node_delta, node_gamma, d_inst = _node_sensitivities(instruments, snapshot, factors, book, True)
    assert d_inst is not None
    timer.stage("measures", 0.7)
    z, m = normal_var_es(request.confidence)
    cov_d = node_delta @ cov  # nodes × factors
    sigma = np.sqrt(np.maximum(np.einsum("nf,nf->n", cov_d, node_delta), 0.0))
    var = z * sigma
    es = m * sigma
    if request.parametric == "delta_gamma":
        for n in range(len(var)):
            active = np.flatnonzero((node_delta[n] != 0) | (node_gamma[n] != 0))
            if active.size == 0:
                continue
            cf = delta_gamma_cornish_fisher(
                node_delta[n, active],
                np.diag(node_gamma[n, active]),
                cov[np.ix_(active, active)],
                request.confidence,
            )
            var[n], es[n] = cf.var, cf.es
    timer.stage("contributions", 0.8)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = np.where(sigma[:, None] > 0, cov_d / sigma[:, None], 0.0)  # ∂σ_n/∂δ, nodes × factors
    # Euler split of σ (degree-1 homogeneous in the deltas); scaled to the node's VaR/ES (exact for
    # delta-normal, proportional allocation of the Cornish-Fisher figure for delta-gamma)
    scale_var = np.where(sigma > 0, var / np.where(sigma > 0, sigma, 1), 0.0)
    scale_es = np.where(sigma > 0, es / np.where(sigma > 0, sigma, 1), 0.0)
    unit_sigma = np.asarray(d_inst @ grad.T).T  # nodes × instruments: ∂σ_n per unit quantity
    top = _top_positions(book, -unit_sigma * scale_es[:, None], request.top_n)
    unit_var = -unit_sigma * scale_var[:, None]
    factor_sigma = node_delta * grad
    # incremental: σ of the node without the position, σ² − 2·q·δ_p·ΣD_n + q²·δ_pᵀΣδ_p (exact for delta-normal)
    t_nodes, t_rows = _top_rows(top)
    exposure = book.qty * _base_values(instruments, snapshot, factors)[book.inst]
    extras: Extras = {}
    if t_rows.size:
        dp = book.qty[t_rows, None] * d_inst[book.inst[t_rows]].toarray()
        var_wo = np.maximum(
            sigma[t_nodes] ** 2
            - 2 * np.einsum("rf,rf->r", dp, cov_d[t_nodes])
            + np.einsum("rf,fg,rg->r", dp, cov, dp),
            0.0,
        )
        s_wo = np.sqrt(var_wo)
        extras = {
            (int(n), int(p)): (
                float(exposure[p]),
                float(var[n] - scale_var[n] * sw),
                float(es[n] - scale_es[n] * sw),
            )
            for n, p, sw in zip(t_nodes, t_rows, s_wo, strict=True)
        }
    nodes = _node_results(
        book.hierarchy,
        book,
        var,
        es,
        top,
        unit_var,
        factor_sigma * scale_var[:, None],
        factor_sigma * scale_es[:, None],
        factors,
        request.top_n,
        extras,
    )
    timer.stage("report", 0.95)
    return RiskReport(
        request,
        snapshot.as_of.isoformat(),
        snapshot.reporting_currency,
        nodes,
        tuple(rejected),
        book.n_positions,
        len(instruments),
        len(factors),
        0,
        timer.finish(),
    )
