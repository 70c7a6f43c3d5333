"""Hierarchy reports: every node from the path's node down to the leaves, in one report.

Expected figures come from a brute-force evaluation: the principal's visible rows grouped in plain Python, VaR/ES
by ``riskstream.risk.var_es`` on the hand-summed scenario vectors of each node (values are whole numbers, so the
sums are exact and both sides must agree exactly).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from conftest import D1, D2, Built, all_rows, visible

from riskstream.errors import QueryError
from riskstream.query import load_report, run_report
from riskstream.risk import var_es

MEASURES = [
    "pv",
    {"measure": "pv", "agg": "count"},
    {"measure": "delta", "agg": "avg"},
    {"measure": "pnl", "agg": "var", "confidence": 0.9},
    {"measure": "pnl", "agg": "es", "confidence": 0.95},
]


def expected_nodes(
    rows: list[dict[str, Any]], levels: list[str], path: dict[str, str], with_extremes: bool = False
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Node key (values of levels down to the node; None below) -> figures, by brute force."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    rows = [r for r in rows if all(r[k] == v for k, v in path.items())]
    for depth in range(len(levels) + 1):
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for r in rows:
            key = tuple(r[lv] for lv in levels[:depth]) + (None,) * (len(levels) - depth)
            groups.setdefault(key, []).append(r)
        for key, members in groups.items():
            pv = [r["value"] for r in members if r["measure"] == "pv"]
            delta = [r["value"] for r in members if r["measure"] == "delta"]
            vectors = [r["pnl_vector"] for r in members if r["measure"] == "pnl"]
            summed = np.sum(np.asarray(vectors, dtype=float), axis=0)  # the node's P&L: sum of its trades'
            figures = {
                "pv_sum": sum(pv) if pv else None,
                "pv_count": len(pv),
                "delta_avg": sum(delta) / len(delta) if delta else None,
                "pnl_var_90": float(var_es(summed, 0.9)[0]),
                "pnl_es_95": float(var_es(summed, 0.95)[1]),
            }
            if with_extremes:
                figures["pv_min"], figures["pv_max"] = min(pv), max(pv)
            out[key] = figures
    return out


def _check(
    result_rows: list[dict[str, Any]], expected: dict[tuple[Any, ...], dict[str, Any]], levels: list[str]
):
    got = {tuple(r[lv] for lv in levels): r for r in result_rows}
    assert len(got) == len(result_rows) == len(expected)
    assert set(got) == set(expected)
    for key, figures in expected.items():
        for name, value in figures.items():
            have = got[key][name]
            if value is None:
                assert have is None or math.isnan(have), (key, name, have)
            else:
                assert have == pytest.approx(value, rel=1e-12, abs=1e-9), (key, name, value, have)


@pytest.mark.parametrize("user", ["head_trading", "trader_rates", "pb_junior"])
def test_every_node_down_to_trades(built: Built, user: str) -> None:
    store = built.store
    levels = ["desk", "book", "trader", "trade_id"]
    report = load_report({"kind": "hierarchy", "measures": MEASURES, "business_date": "2024-03-15"})
    res = run_report(store, report, user)
    p = store.catalog.principal(user)
    rows = [r for r in visible(p, all_rows(store)) if r["business_date"] == D2]
    got = res.to_arrow().to_pylist()
    _check(got, expected_nodes(rows, levels, {}), levels)
    assert res.route == "raw"  # trade_id is in no pre-aggregation's grain
    # depth-first: the total first, each desk before its books, each book before its traders
    assert got[0]["level"] == "total" and got[0]["desk"] is None
    order = [tuple("" if r[lv] is None else r[lv] for lv in levels) for r in got]
    assert order == sorted(order)
    assert {r["level"] for r in got} == {"total", *levels}
    assert res.to_arrow().column_names == ["level", *levels, *(m.label for m in report.measures)]


def test_path_root_and_preaggregated_route_equal_raw(built: Built) -> None:
    store = built.store
    report = load_report(
        {
            "kind": "hierarchy",
            "hierarchy": ["desk", "book"],
            "path": {"desk": "RATES"},
            "measures": MEASURES,
            "business_date": "2024-03-14",
        }
    )
    fast = run_report(store, report, "head_trading")
    slow = run_report(store, report, "head_trading", route="raw")
    assert fast.route == "preagg:desk_book_measure" and slow.route == "raw"
    assert fast.to_arrow().equals(slow.to_arrow())
    rows = [r for r in all_rows(store) if r["business_date"] == D1]
    got = fast.to_arrow().to_pylist()
    # the RATES desk is the root here (level 'desk'), then its books R1, R2 (source: the conftest's books)
    assert [(r["level"], r["desk"], r["book"]) for r in got] == [
        ("desk", "RATES", None),
        ("book", "RATES", "R1"),
        ("book", "RATES", "R2"),
    ]
    expected = expected_nodes(rows, ["book"], {"desk": "RATES"})
    _check([{**r, "book": r["book"]} for r in got], expected, ["book"])


@pytest.mark.parametrize("user", ["head_trading", "trader_rates", "pb_junior"])
def test_firm_desk_book_trader_is_read_from_the_trader_grain(built: Built, user: str) -> None:
    store = built.store
    levels = ["desk", "book", "trader"]
    report = load_report(
        {"kind": "hierarchy", "hierarchy": levels, "measures": MEASURES, "business_date": "2024-03-15"}
    )
    fast = run_report(store, report, user)
    slow = run_report(store, report, user, route="raw")
    assert fast.route == "preagg:desk_book_trader_measure" and slow.route == "raw"
    assert fast.to_arrow().equals(slow.to_arrow())
    # and both equal var_es on the hand-summed vectors of the firm, every desk, book and trader
    rows = [r for r in visible(store.catalog.principal(user), all_rows(store)) if r["business_date"] == D2]
    got = fast.to_arrow().to_pylist()
    assert got[0]["level"] == "total" and {r["level"] for r in got} == {"total", *levels}
    _check(got, expected_nodes(rows, levels, {}), levels)


def test_min_max_roll_up_on_the_raw_route(built: Built) -> None:
    store = built.store
    report = load_report(
        {
            "kind": "hierarchy",
            "hierarchy": ["desk", "book"],
            "measures": [*MEASURES, {"measure": "pv", "agg": "min"}, {"measure": "pv", "agg": "max"}],
        }
    )
    res = run_report(store, report, "middle_office")
    assert res.route == "raw" and res.business_date == D2  # min/max never come from a pre-aggregation
    rows = [r for r in all_rows(store) if r["business_date"] == D2]
    _check(res.to_arrow().to_pylist(), expected_nodes(rows, ["desk", "book"], {}, True), ["desk", "book"])


def test_hierarchy_fields_are_checked() -> None:
    with pytest.raises(QueryError) as info:
        load_report({"kind": "hierarchy", "hierarchy": ["desk", "desk"], "measures": ["pv"]})
    assert info.value.field == "hierarchy"
    with pytest.raises(QueryError) as info:
        load_report({"kind": "hierarchy", "rows": ["desk"], "measures": ["pv"]})
    assert info.value.field == "rows"
    with pytest.raises(QueryError) as info:
        load_report({"kind": "hierarchy", "hierarchy": ["desk"], "path": ["RATES"], "measures": ["pv"]})
    assert info.value.field == "path"


def test_blocked_var_es_equals_one_call() -> None:
    from riskstream.query._run import _row_var_es

    pnl = np.random.default_rng(5).standard_t(3, size=(9000, 40))  # 3 blocks of rows, the last one short
    for conf in (0.9, 0.975):
        got, want = _row_var_es(pnl, conf), var_es(pnl, conf)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
