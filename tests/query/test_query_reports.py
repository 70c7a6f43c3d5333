"""Reports against a brute-force Python evaluation: pivot, drill, diff, as-of, reference data, routing, entitlements.

The reference filters rows with ``Principal.admits``, masks columns, groups in plain Python and computes VaR/ES with
``riskstream.risk.var_es`` on the manually summed scenario vectors; values are whole numbers, so sums are exact and
the two sides must agree exactly (source of every expected figure: that brute-force evaluation, or a hand sum).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import D1, D2, Built, all_rows, audit_entries, results_path, visible
from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskstream.errors import AccessDeniedError, QueryError
from riskstream.query import Filter, Report, load_report, run_report
from riskstream.risk import var_es
from riskstream.store import Principal

USERS = ["trader_rates", "trader_eq_cash", "trader_prime", "head_trading", "middle_office", "pb_junior"]


def _passes(row: dict[str, Any], f: Filter) -> bool:
    v = row.get(f.dimension)
    if f.op == "eq":
        return v == f.values[0]
    if f.op == "in":
        return v in f.values
    if f.op == "ne":
        return v != f.values[0]
    if f.op == "not_in":
        return v not in f.values
    if v is None:
        return False
    return {"lt": v < f.values[0], "le": v <= f.values[0], "gt": v > f.values[0], "ge": v >= f.values[0]}[
        f.op
    ]


def _figure(agg: str, conf: float | None, rows: list[dict[str, Any]]) -> float | None:
    values = [r["value"] for r in rows]
    if agg == "count":
        return float(len(rows))
    if not rows:
        return None
    if agg == "sum":
        return sum(values)
    if agg == "avg":
        return sum(values) / len(values)
    if agg in ("min", "max"):
        return min(values) if agg == "min" else max(values)
    vectors = [r["pnl_vector"] for r in rows if r["pnl_vector"] is not None]
    if not vectors:
        return None
    summed = np.sum(np.asarray(vectors, dtype=float), axis=0)
    v, e = var_es(summed, conf or 0.99)
    return float(v if agg == "var" else e)


def reference(
    rows: Sequence[dict[str, Any]], p: Principal, report: Report, bd: date
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Brute-force wide result: row key -> {column name: figure}."""
    names = {m.measure for m in report.measures}
    keep = [
        r
        for r in visible(p, rows)
        if r["business_date"] == bd
        and r["namespace"] == report.namespace
        and r["measure"] in names
        and all(_passes(r, f) for f in report.all_filters)
    ]
    cells: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in keep:
        cells.setdefault(tuple(r.get(d) for d in report.dimensions), []).append(r)
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    nrow = len(report.row_dimensions)
    for key, members in cells.items():
        target = out.setdefault(key[:nrow], {})
        colkey = "/".join("" if v is None else str(v) for v in key[nrow:])
        for m in report.measures:
            name = m.label if not report.columns else f"{m.label}[{colkey}]"
            target[name] = _figure(m.agg, m.confidence, [r for r in members if r["measure"] == m.measure])
    return out


def _same(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return (
        b is not None
        and not (isinstance(b, float) and math.isnan(b))
        and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
    )


def assert_matches(
    result_rows: list[dict[str, Any]], expected: dict[tuple[Any, ...], dict[str, Any]], dims: Sequence[str]
) -> None:
    got = {tuple(r[d] for d in dims): r for r in result_rows}
    assert set(got) == set(expected)
    for key, figures in expected.items():
        for name, value in figures.items():
            assert _same(value, got[key][name]), (key, name, value, got[key][name])
        # columns absent from this row's cells must be empty in the result
        for name, value in got[key].items():
            if name not in dims and name not in figures:
                assert _same(None, value), (key, name, value)


def test_pivot_hand_sums_and_var_cells(built: Built) -> None:
    store = built.store
    report = load_report(
        {
            "rows": ["desk"],
            "measures": [
                "pv",
                {"measure": "pnl", "agg": "var", "confidence": 0.9},
                {"measure": "pnl", "agg": "es", "confidence": 0.9},
                {"measure": "pv", "agg": "count"},
            ],
            "business_date": "2024-03-14",
        }
    )
    res = run_report(store, report, "head_trading")
    rows = res.to_arrow().to_pylist()
    d1 = [r for r in all_rows(store) if r["business_date"] == D1]
    rates = [r for r in d1 if r["desk"] == "RATES"]
    by_desk = {r["desk"]: r for r in rows}
    # hand sum over the RATES rows of measure pv
    assert by_desk["RATES"]["pv_sum"] == sum(r["value"] for r in rates if r["measure"] == "pv")
    assert (
        by_desk["RATES"]["pv_count"] == 10
    )  # trades i = 0..23 go to book i mod 5; R1 (i mod 5 = 0) and R2 (= 1) hold 5 each
    vec = np.sum([r["pnl_vector"] for r in rates if r["measure"] == "pnl"], axis=0)
    v, e = var_es(vec, 0.9)  # VaR/ES of the desk's summed vector, not a sum of VaRs
    assert by_desk["RATES"]["pnl_var_90"] == float(v) and by_desk["RATES"]["pnl_es_90"] == float(e)
    assert res.route == "preagg:desk_measure" and res.version == built.versions["rerun"]
    assert res.business_date == D1


def test_pivot_with_columns_sparse_dimension_and_filters(built: Built) -> None:
    store = built.store
    report = load_report(
        {
            "rows": ["rating", "book"],
            "columns": ["currency"],
            "measures": [
                "pv",
                {"measure": "pv", "agg": "min"},
                {"measure": "pnl", "agg": "es", "confidence": 0.8},
            ],
            "filters": {"desk": ["RATES", "PRIME"], "book": {"ne": "R2"}, "trader": {"not_in": ["P1-t0"]}},
        }
    )
    for user in ("head_trading", "trader_rates"):
        res = run_report(store, report, user)
        assert res.route == "raw" and res.business_date == D2
        p = store.catalog.principal(user)
        assert_matches(
            res.to_arrow().to_pylist(), reference(all_rows(store), p, report, D2), ["rating", "book"]
        )


def test_drill_as_of_version_and_timestamp(built: Built) -> None:
    store = built.store
    report = load_report(
        {
            "kind": "drill",
            "path": {"desk": "RATES"},
            "measures": ["pv", {"measure": "pnl", "agg": "var", "confidence": 0.95}],
        }
    )
    p = store.catalog.principal("trader_rates")
    v0 = all_rows(store, built.versions["d1"])
    by_version = run_report(store, report, "trader_rates", as_of=built.versions["d1"])
    by_time = run_report(
        store, report, "trader_rates", as_of=built.stamps["d1"]
    )  # "what did risk say at 10:05"
    for res in (by_version, by_time):
        assert res.version == built.versions["d1"] and res.business_date == D1 and res.route == "raw"
        assert_matches(res.to_arrow().to_pylist(), reference(v0, p, report, D1), ["book"])
    deeper = load_report(
        {"kind": "drill", "path": ["RATES", "R1", "R1-t0"], "measures": ["pv"], "business_date": "2024-03-15"}
    )
    res = run_report(store, deeper, "trader_rates")
    assert res.to_pandas().columns.tolist() == ["trade_id", "pv_sum"]
    assert_matches(res.to_arrow().to_pylist(), reference(all_rows(store), p, deeper, D2), ["trade_id"])


def test_diff_dates_and_versions(built: Built) -> None:
    store = built.store
    p = store.catalog.principal("trader_eq_cash")
    dates = load_report(
        {
            "kind": "diff",
            "rows": ["book"],
            "measures": ["pv"],
            "left": {"business_date": "2024-03-14"},
            "right": {"business_date": "2024-03-15"},
        }
    )
    res = run_report(store, dates, "trader_eq_cash")
    left = reference(all_rows(store), p, dates, D1)
    right = reference(all_rows(store), p, dates, D2)
    rows = {r["book"]: r for r in res.to_arrow().to_pylist()}
    assert {(b,) for b in rows} == set(left) | set(right) == {("E1",), ("E2",)}
    for book, r in rows.items():
        lv, rv = left[(book,)]["pv_sum"], right[(book,)]["pv_sum"]
        assert (r["pv_sum_left"], r["pv_sum_right"], r["pv_sum_change"]) == (lv, rv, rv - lv)
        assert math.isclose(r["pv_sum_pct_change"], (rv - lv) / abs(lv) * 100)
    versions = load_report(
        {
            "kind": "diff",
            "rows": ["trade_id"],
            "measures": ["pv"],
            "business_date": "2024-03-15",
            "filters": {"book": "E1"},
            "left": {"as_of": built.versions["d2"]},
            "right": {"as_of": built.versions["rerun"]},
        }
    )
    res = run_report(store, versions, "trader_eq_cash")
    before = reference(all_rows(store, built.versions["d2"]), p, versions, D2)
    after = reference(all_rows(store), p, versions, D2)
    got = {r["trade_id"]: r for r in res.to_arrow().to_pylist()}
    assert {(t,) for t in got} == set(before) | set(after)
    for (trade,), fig in after.items():
        assert got[trade]["pv_sum_right"] == fig["pv_sum"]
        assert got[trade]["pv_sum_left"] == before[(trade,)]["pv_sum"]
        assert got[trade]["side"] == "both"


def _kinds(built: Built) -> list[tuple[str, dict[str, Any], Any]]:
    """(label, report, as_of) covering every report kind and route."""
    return [
        (
            "pivot preagg",
            {
                "rows": ["desk", "book"],
                "measures": ["pv", {"measure": "pnl", "agg": "es", "confidence": 0.9}],
            },
            None,
        ),
        (
            "pivot raw",
            {"rows": ["book"], "columns": ["currency"], "measures": [{"measure": "pv", "agg": "max"}]},
            None,
        ),
        (
            "drill",
            {
                "kind": "drill",
                "path": {"desk": "PRIME"},
                "measures": ["pv", {"measure": "pnl", "agg": "var", "confidence": 0.9}],
            },
            None,
        ),
        (
            "drill rates",
            {"kind": "drill", "path": {"desk": "RATES", "book": "R2"}, "measures": ["delta"]},
            None,
        ),
        (
            "as-of",
            {
                "rows": ["desk", "trader"],
                "measures": [{"measure": "pv", "agg": "avg"}],
                "business_date": "latest",
            },
            built.versions["d2"],
        ),
        (
            "diff",
            {
                "kind": "diff",
                "rows": ["desk"],
                "measures": ["pv"],
                "left": {"business_date": "2024-03-14"},
                "right": {"business_date": "2024-03-15"},
            },
            None,
        ),
        ("federated", {"rows": ["desk", "instrument.type", "market.EQ.SPX"], "measures": ["pv"]}, None),
    ]


@pytest.mark.parametrize("user", USERS)
def test_entitlement_matrix_no_leaks(built: Built, user: str) -> None:
    store = built.store
    p = store.catalog.principal(user)
    allowed = None if p.row_filter is None else p.row_filter["desk"]
    for label, raw, as_of in _kinds(built):
        report = load_report(raw)
        res = run_report(store, report, user, as_of=as_of)
        rows = all_rows(store, as_of)
        got = res.to_arrow().to_pylist()
        if allowed is not None and "desk" in res.to_arrow().column_names:
            assert {r["desk"] for r in got} <= allowed, label
        if report.kind == "diff":
            for side, bd in (("left", D1), ("right", D2)):
                exp = reference(rows, p, report, bd)
                assert {
                    (r["desk"],)
                    for r in got
                    if r[f"pv_sum_{side}"] is not None and not math.isnan(r[f"pv_sum_{side}"])
                } == set(exp), label
                for r in got:
                    if (r["desk"],) in exp:
                        assert r[f"pv_sum_{side}"] == exp[(r["desk"],)]["pv_sum"], label
        elif label == "federated":
            total = sum(r["pv_sum"] for r in got)
            exp = reference(rows, p, load_report({"rows": ["business_date"], "measures": ["pv"]}), D2)
            assert total == exp[(D2,)]["pv_sum"], label  # the join neither adds nor drops admitted rows
        else:
            bd = res.business_date
            assert bd is not None
            assert_matches(got, reference(rows, p, report, bd), list(report.row_dimensions)), label
        if label == "pivot preagg":
            assert res.route == "preagg:desk_book_measure"
    logged = [e for e in audit_entries(store, user) if e["action"] == "query"]
    assert {e["detail"]["report"] for e in logged} >= {"report"}
    assert any(
        e["detail"].get("route") == "preagg:desk_book_measure" and e["rows"] is not None for e in logged
    )


@pytest.mark.parametrize(
    "raw",
    [
        {"rows": ["counterparty"], "measures": ["pv"]},
        {"rows": ["desk"], "measures": ["pv"], "filters": {"sector": "fin"}},
        {"kind": "drill", "hierarchy": ["desk", "region"], "path": {"desk": "PRIME"}, "measures": ["pv"]},
        {"rows": ["desk", "trade.counterparty"], "measures": ["pv"]},
        {"kind": "diff", "rows": ["region"], "measures": ["pv"], "left": 0, "right": 2},
    ],
)
def test_masked_column_as_dimension_or_filter_is_refused(built: Built, raw: dict[str, Any]) -> None:
    store = built.store
    with pytest.raises(AccessDeniedError, match="pb_junior"):
        run_report(store, load_report(raw), "pb_junior")
    newest = audit_entries(store, "pb_junior")[0]
    assert "masked" in newest["detail"]["error"]  # refusals are audited too
    run_report(store, load_report(raw), "middle_office")  # the same report is fine unmasked


def test_unknown_user_and_dimension(built: Built) -> None:
    with pytest.raises(AccessDeniedError, match="mallory"):
        run_report(built.store, load_report({"rows": ["desk"], "measures": ["pv"]}), "mallory")
    with pytest.raises(QueryError, match="'colour'") as info:
        run_report(built.store, load_report({"rows": ["colour"], "measures": ["pv"]}), "head_trading")
    assert info.value.field == "rows"
    with pytest.raises(QueryError) as info:
        run_report(
            built.store,
            load_report({"rows": ["desk"], "measures": ["pv"], "filters": {"shoe": 1}}),
            "head_trading",
        )
    assert info.value.field == "filters.shoe"


def test_stale_preaggregation_is_not_used(built: Built) -> None:
    report = load_report({"rows": ["desk"], "measures": ["pv"]})
    res = run_report(built.store, report, "head_trading", as_of=built.versions["d2"])
    assert res.route == "raw"  # the pre-aggregations were built from a later version
    assert run_report(built.store, report, "head_trading").route == "preagg:desk_measure"


measure_st = st.sampled_from(
    [{"measure": "pv", "agg": a} for a in ("sum", "count", "avg")]
    + [{"measure": "delta", "agg": "sum"}]
    + [{"measure": "pnl", "agg": a, "confidence": c} for a in ("var", "es") for c in (0.8, 0.95)]
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.sampled_from([["desk"], ["book"], ["desk", "book"], ["book", "desk"]]),
    measures=st.lists(
        measure_st, min_size=1, max_size=3, unique_by=lambda m: (m["measure"], m["agg"], m.get("confidence"))
    ),
    desk_filter=st.sampled_from([None, "RATES", ["PRIME", "EQ_CASH"], {"ne": "RATES"}]),
    user=st.sampled_from(USERS),
    day=st.sampled_from(["2024-03-14", "2024-03-15"]),
)
def test_preagg_route_equals_raw(
    built: Built, rows: list[str], measures: list[dict[str, Any]], desk_filter: Any, user: str, day: str
) -> None:
    raw: dict[str, Any] = {"rows": rows, "measures": measures, "business_date": day}
    if desk_filter is not None:
        raw["filters"] = {"desk": desk_filter}
    report = load_report(raw)
    fast = run_report(built.store, report, user)
    slow = run_report(built.store, report, user, route="raw")
    assert fast.route.startswith("preagg:") and slow.route == "raw"
    assert fast.to_arrow().equals(slow.to_arrow())


def test_results_serialise(built: Built) -> None:
    res = run_report(built.store, load_report({"rows": ["desk"], "measures": ["pv"]}), "trader_prime")
    doc = res.to_dict()
    assert (
        doc["route"] == res.route
        and doc["columns"] == ["desk", "pv_sum"]
        and doc["rows"][0]["desk"] == "PRIME"
    )
    assert res.to_json().startswith("{") and "SELECT" in res.sql and "?" in res.sql
    assert "PRIME" not in res.sql  # values are bound parameters, never pasted into SQL


def test_tables_read_directly_by_pyarrow_polars_duckdb(built: Built) -> None:
    path = results_path(built.store)
    arrow = DeltaTable(path).to_pyarrow_table()
    frame = pl.read_delta(path)
    assert frame.height == arrow.num_rows == len(all_rows(built.store))
    assert frame.filter(pl.col("measure") == "pv")["value"].sum() == sum(
        r["value"] for r in all_rows(built.store) if r["measure"] == "pv"
    )
    old = pl.read_delta(path, version=built.versions["d1"])
    assert set(old["business_date"].unique().to_list()) == {D1}


def test_previous_and_latest_give_the_day_over_day_diff(built: Built) -> None:
    """``previous`` is the newest date before ``latest`` the user can see: here D1 and D2 (2024-03-14, -15)."""
    store = built.store
    relative = load_report(
        {
            "kind": "diff",
            "rows": ["book"],
            "measures": ["pv"],
            "left": {"business_date": "previous"},
            "right": {"business_date": "latest"},
        }
    )
    fixed = load_report(
        {
            "kind": "diff",
            "rows": ["book"],
            "measures": ["pv"],
            "left": {"business_date": D1.isoformat()},
            "right": {"business_date": D2.isoformat()},
        }
    )
    for user in ("trader_eq_cash", "head_trading"):
        assert (
            run_report(store, relative, user).to_arrow().to_pylist()
            == run_report(store, fixed, user).to_arrow().to_pylist()
        )
