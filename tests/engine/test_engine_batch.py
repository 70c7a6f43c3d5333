"""The batch risk run against a brute-force position-level reference, and its reporting of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from engine_market import AS_OF, instruments, positions
from hypothesis import given, settings
from hypothesis import strategies as st

from riskstream.domain import Equity, Hierarchy, MarketSnapshot, Portfolio
from riskstream.engine import RiskRequest, run_risk
from riskstream.pricing import instrument_pnl
from riskstream.risk import normal_var_es, var_es_reference
from riskstream.scenarios import HistoricalScenarios, MonteCarloScenarios


def brute_force_node_pnl(portfolio: Portfolio, snapshot: MarketSnapshot, history, levels, window=500):
    """Reference: each position valued on its own (no instrument sharing), summed into nodes one by one."""
    from riskstream.engine import required_factors

    insts = list(portfolio.instruments)
    factors, failed = required_factors(insts, snapshot, history)
    assert not failed
    scen = HistoricalScenarios(window).generate(snapshot, history, factors)
    pos = portfolio.positions
    h = Hierarchy.build(dict(pos.attributes), levels)
    node_pnl = np.zeros((h.n_nodes, scen.n_scenarios))
    for p in range(len(pos)):
        inst = insts[pos.instrument[p]]
        pnl = pos.quantity[p] * instrument_pnl([inst], snapshot, scen.market).values[0]
        for level in range(h.depth + 1):
            node_pnl[h.position_node[level, p]] += pnl
    return h, node_pnl


def test_hs_matches_brute_force_reference_at_every_node(market, portfolio) -> None:
    history, snapshot = market
    levels = ("desk", "book", "trader")
    report = run_risk(portfolio, snapshot, history, RiskRequest("hs", 0.99, levels=levels), keep_pnl=True)
    h, ref = brute_force_node_pnl(portfolio, snapshot, history, levels)
    assert [n.node for n in report.nodes] == list(h.node_ids)
    np.testing.assert_allclose(report.node_pnl, ref, rtol=1e-9, atol=1e-6)
    for n, node in enumerate(report.nodes):
        var, es = var_es_reference(ref[n].tolist(), 0.99)
        assert node.var == pytest.approx(var, rel=1e-9, abs=1e-6)
        assert node.es == pytest.approx(es, rel=1e-9, abs=1e-6)


def test_component_contributions_sum_to_node_var_and_es(market, portfolio) -> None:
    history, snapshot = market
    report = run_risk(
        portfolio, snapshot, history, RiskRequest("hs", 0.975, top_n=10_000, levels=("desk", "book"))
    )
    for node in report.nodes:
        assert len(node.top_positions) == node.positions
        # Euler: components sum to the total (Tasche 1999; exact for the scenario tail weights)
        assert sum(c.es for c in node.top_positions) == pytest.approx(node.es, rel=1e-9)
        assert sum(c.var for c in node.top_positions) == pytest.approx(node.var, rel=1e-9)
        ranked = [c.es for c in node.top_positions]
        assert ranked == sorted(ranked, reverse=True)
        assert node.unexplained is not None
        total_factor = sum(c.es for c in node.top_factors) + node.unexplained.es
        assert total_factor <= node.es + 1e-6 or len(node.top_factors) == 5


def test_factor_attribution_is_exact_for_usd_equities(market) -> None:
    history, snapshot = market
    insts = [Equity("A", "USD", underlying="A"), Equity("B", "USD", underlying="B")]
    pf = Portfolio.from_records(
        insts,
        {
            "position_id": ["x", "y"],
            "instrument_id": ["A", "B"],
            "quantity": [1000.0, -500.0],
            "desk": ["D", "D"],
            "book": ["b", "b"],
            "trader": ["t", "t"],
        },
    )
    report = run_risk(pf, snapshot, history, RiskRequest("hs", 0.99, levels=("desk",)))
    firm = report.node("FIRM")
    # P&L of a USD share is quantity·S·r: linear in the factor shock, so delta attribution leaves nothing over
    assert firm.unexplained is not None
    assert abs(firm.unexplained.es) < 1e-6 * firm.es
    assert sum(c.es for c in firm.top_factors) == pytest.approx(firm.es, rel=1e-9)


def test_sub_portfolio_recomputation_equals_aggregated_node(market, portfolio) -> None:
    history, snapshot = market
    full = run_risk(portfolio, snapshot, history, RiskRequest("hs", 0.99, levels=("desk", "book")))
    keep = portfolio.positions.attribute("desk") == "RATES"
    sub = Portfolio(portfolio.instruments, portfolio.positions.take(keep))
    alone = run_risk(sub, snapshot, history, RiskRequest("hs", 0.99, levels=("desk", "book")))
    # the desk's VaR from the firm-wide run equals the desk computed from scratch
    assert full.node("FIRM/RATES").var == pytest.approx(alone.node("FIRM/RATES").var, rel=1e-12)
    assert full.node("FIRM/RATES").es == pytest.approx(alone.node("FIRM/RATES").es, rel=1e-12)
    # ES is sub-additive (Acerbi & Tasche 2002): the firm's ES never exceeds the sum of its desks'
    desks = [n for n in full.nodes if n.level == "desk"]
    assert full.node("FIRM").es <= sum(d.es for d in desks) + 1e-6


def test_bad_positions_and_instruments_are_reported_and_the_rest_computed(market, portfolio) -> None:
    history, snapshot = market
    rows = positions()
    good = run_risk(portfolio, snapshot, history, RiskRequest("hs", 0.99, levels=("desk",)))
    insts = [*instruments(), Equity("NOHIST", "USD", underlying="ZZZ")]
    rows = {k: [*v] for k, v in rows.items()}
    for k, extra in (
        ("position_id", ["BAD1", "BAD2", "BAD3"]),
        ("instrument_id", ["A", "MISSING", "NOHIST"]),
        ("quantity", [float("nan"), 1.0, 5.0]),
    ):
        rows[k] += extra
    for k in ("desk", "book", "trader", "counterparty", "sector", "region"):
        rows[k] += [rows[k][0]] * 3
    snap = MarketSnapshot(AS_OF, {**snapshot.values, "EQ.ZZZ": 10.0})  # a value today, but no history
    pf = Portfolio.from_records(insts, rows)
    report = run_risk(pf, snap, history, RiskRequest("hs", 0.99, levels=("desk",)))
    reasons = {b.record_id: b.reason for b in report.rejected}
    assert "quantity" in reasons["BAD1"] and "nan" in reasons["BAD1"]
    assert "MISSING" in reasons["BAD2"]
    assert "EQ.ZZZ" in reasons["NOHIST"] and "history" in reasons["NOHIST"]
    assert "BAD3" in reasons
    assert report.node("FIRM").var == pytest.approx(good.node("FIRM").var, rel=1e-12)


def test_monte_carlo_on_a_linear_portfolio_converges_to_delta_normal(market) -> None:
    history, snapshot = market
    insts = [Equity("A", "USD", underlying="A"), Equity("B", "USD", underlying="B")]
    qty = np.array([1000.0, 2500.0])
    pf = Portfolio.from_records(
        insts,
        {
            "position_id": ["x", "y"],
            "instrument_id": ["A", "B"],
            "quantity": qty,
            "desk": ["D", "D"],
            "book": ["b", "b"],
            "trader": ["t", "t"],
        },
    )
    mc = run_risk(pf, snapshot, history, RiskRequest("mc", 0.99, levels=("desk",), mc_paths=400_000, top_n=0))
    dn = run_risk(pf, snapshot, history, RiskRequest("parametric", 0.99, levels=("desk",)))
    # closed form: delta-normal VaR = z_0.99·sqrt(δᵀΣδ), δ = quantity·spot for shares (Jorion, VaR, ch. 7)
    cov = MonteCarloScenarios(window=500).fit(snapshot, history, ("EQ.A", "EQ.B"))
    delta = qty * np.array([snapshot["EQ.A"], snapshot["EQ.B"]])
    sigma = float(np.sqrt(delta @ cov @ delta))
    z_var, z_es = normal_var_es(0.99)
    assert dn.node("FIRM").var == pytest.approx(z_var * sigma, rel=1e-10)
    assert dn.node("FIRM").es == pytest.approx(z_es * sigma, rel=1e-10)
    # Monte Carlo with 400k normal paths: standard error of the 1 % quantile ≈ 0.6 %; allow 2 %
    assert mc.node("FIRM").var == pytest.approx(z_var * sigma, rel=0.02)
    assert mc.node("FIRM").es == pytest.approx(z_es * sigma, rel=0.02)


@settings(max_examples=15, deadline=None)
@given(st.floats(0.9, 0.995), st.floats(0.9, 0.995))
def test_var_and_es_monotone_in_confidence_and_es_above_var(market, portfolio, a: float, b: float) -> None:
    history, snapshot = market
    lo, hi = sorted((a, b))
    r_lo = run_risk(portfolio, snapshot, history, RiskRequest("hs", lo, levels=("desk",), top_n=0))
    r_hi = run_risk(portfolio, snapshot, history, RiskRequest("hs", hi, levels=("desk",), top_n=0))
    for n_lo, n_hi in zip(r_lo.nodes, r_hi.nodes, strict=True):
        assert n_lo.var <= n_hi.var + 1e-9
        assert n_lo.es <= n_hi.es + 1e-9
        assert n_hi.es >= n_hi.var - 1e-9


@pytest.mark.parametrize("method", ["hs", "fhs", "parametric", "mc"])
def test_every_method_reports_every_node_with_measure_names(market, portfolio, method) -> None:
    history, snapshot = market
    req = RiskRequest(method, 0.975, horizon_days=10, levels=("desk", "book"), mc_paths=2000)
    d = run_risk(portfolio, snapshot, history, req).to_dict()
    assert d["var_measure"] == "var_975_10d" and d["es_measure"] == "es_975_10d"
    firm = d["nodes"][0]
    assert firm["node"] == "FIRM" and firm["es"] >= firm["var"] > 0
    assert firm["var_975_10d"] == firm["var"]
    assert {n["level"] for n in d["nodes"]} == {"firm", "desk", "book"}


def test_ten_day_overlapping_exceeds_one_day(market, portfolio) -> None:
    history, snapshot = market
    one = run_risk(portfolio, snapshot, history, RiskRequest("hs", 0.99, levels=("desk",), top_n=0))
    ten = run_risk(portfolio, snapshot, history, RiskRequest("hs", 0.99, 10, levels=("desk",), top_n=0))
    sqrt = run_risk(
        portfolio, snapshot, history, RiskRequest("hs", 0.99, 10, "sqrt_time", levels=("desk",), top_n=0)
    )
    assert ten.node("FIRM").var > one.node("FIRM").var
    # √10 scaling of mostly-linear P&L lands near √10 × the 1-day figure (not exactly: options, compounding)
    assert sqrt.node("FIRM").var == pytest.approx(np.sqrt(10) * one.node("FIRM").var, rel=0.15)


@pytest.mark.parametrize("method", ["hs", "parametric"])
def test_incremental_and_marginal_match_recomputation_without_the_position(market, portfolio, method) -> None:
    history, snapshot = market
    req = RiskRequest(method, 0.99, levels=("desk",), top_n=3)
    full = run_risk(portfolio, snapshot, history, req)
    firm = full.node("FIRM")
    for c in firm.top_positions:
        keep = portfolio.positions.position_id != c.label
        without = run_risk(
            Portfolio(portfolio.instruments, portfolio.positions.take(keep)), snapshot, history, req
        )
        # incremental VaR/ES: the definition, VaR(P) − VaR(P without the position) (Jorion, VaR, §7.2)
        assert c.incremental_var == pytest.approx(firm.var - without.node("FIRM").var, rel=1e-9, abs=1e-6)
        assert c.incremental_es == pytest.approx(firm.es - without.node("FIRM").es, rel=1e-9, abs=1e-6)
        assert c.exposure is not None and c.marginal_var is not None
        assert c.marginal_var == pytest.approx(c.var / c.exposure, rel=1e-12)
