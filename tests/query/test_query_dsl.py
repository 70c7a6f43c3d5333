"""Report DSL validation: every bad field raises QueryError naming the field and the value."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from riskstream.errors import QueryError
from riskstream.query import Filter, MeasureSpec, load_report

YAML = """
kind: pivot
name: rates_by_book
business_date: 2024-03-15
rows: [book]
columns: [currency]
measures:
  - {measure: pv, agg: sum}
  - {measure: pnl, agg: var, confidence: 0.99}
filters: {desk: RATES, trader: [alice, bob], book: {ne: B9}}
"""


def test_yaml_text_and_files(tmp_path: Path) -> None:
    r = load_report(YAML)
    assert r.kind == "pivot" and r.rows == ("book",) and r.columns == ("currency",)
    assert r.measures == (MeasureSpec("pv", "sum"), MeasureSpec("pnl", "var", 0.99))
    assert [m.label for m in r.measures] == ["pv_sum", "pnl_var_99"]
    assert r.filters == (
        Filter("desk", "eq", ("RATES",)),
        Filter("trader", "in", ("alice", "bob")),
        Filter("book", "ne", ("B9",)),
    )
    assert r.business_date == date(2024, 3, 15) and r.namespace == "EOD"
    (tmp_path / "r.yaml").write_text(YAML)
    assert load_report(tmp_path / "r.yaml") == r
    (tmp_path / "r.json").write_text(
        json.dumps({"rows": ["desk"], "measures": ["pv"], "as_of": "2024-03-15T10:05"})
    )
    j = load_report(str(tmp_path / "r.json"))
    assert j.as_of == datetime(2024, 3, 15, 10, 5, tzinfo=UTC)  # naive timestamps are read as UTC
    assert j.measures == (MeasureSpec("pv", "sum"),)


def test_drill_and_diff_shapes() -> None:
    d = load_report({"kind": "drill", "path": ["RATES", "R1"], "measures": ["pv"]})
    assert d.row_dimensions == ("trader",)
    assert [(f.dimension, f.values) for f in d.all_filters] == [("desk", ("RATES",)), ("book", ("R1",))]
    top = load_report({"kind": "drill", "measures": ["pv"]})
    assert top.row_dimensions == ("desk",)
    diff = load_report(
        {
            "kind": "diff",
            "rows": ["desk"],
            "measures": ["pv"],
            "left": 3,
            "right": {"business_date": "2024-03-15"},
        }
    )
    assert diff.left is not None and diff.left.as_of == 3
    assert diff.right is not None and diff.right.business_date == date(2024, 3, 15)


@pytest.mark.parametrize(
    ("raw", "field", "value"),
    [
        ({"kind": "cube", "rows": ["desk"], "measures": ["pv"]}, "kind", "cube"),
        ({"rows": ["desk"], "measures": [{"measure": "pv", "agg": "median"}]}, "measures.agg", "median"),
        ({"rows": ["desk"], "measures": [{"measure": "pnl", "agg": "var"}]}, "measures.confidence", None),
        (
            {"rows": ["desk"], "measures": [{"measure": "pnl", "agg": "es", "confidence": 1.5}]},
            "measures.confidence",
            1.5,
        ),
        (
            {"rows": ["desk"], "measures": [{"measure": "pv", "agg": "sum", "confidence": 0.9}]},
            "measures.confidence",
            0.9,
        ),
        ({"rows": ["desk"], "measures": []}, "measures", []),
        (
            {"rows": ["desk"], "measures": ["pv"], "business_date": "2024-13-45"},
            "business_date",
            "2024-13-45",
        ),
        ({"rows": ["desk"], "measures": ["pv"], "business_date": "yesterday"}, "business_date", "yesterday"),
        ({"rows": ["value"], "measures": ["pv"]}, "rows", "value"),
        ({"rows": ["desk"], "columns": ["pnl_vector"], "measures": ["pv"]}, "columns", "pnl_vector"),
        ({"rows": ["desk"], "measures": ["pv"], "filters": {"desk": {"like": "R%"}}}, "filters.desk", "like"),
        ({"rows": ["desk"], "measures": ["pv"], "filters": {"desk": []}}, "filters.desk", []),
        ({"rows": ["desk"], "measures": ["pv"], "as_of": -1}, "as_of", -1),
        ({"rows": ["desk"], "measures": ["pv"], "as_of": "ten past ten"}, "as_of", "ten past ten"),
        ({"rows": ["desk"], "measures": ["pv"], "namespace": "eod"}, "namespace", "eod"),
        ({"rows": ["desk"], "measures": ["pv"], "sql": "DROP TABLE x"}, "sql", "DROP TABLE x"),
        ({"rows": [], "measures": ["pv"]}, "rows", []),
        ({"rows": ["desk", "desk"], "measures": ["pv"]}, "rows", ["desk", "desk"]),
        ({"kind": "diff", "rows": ["desk"], "measures": ["pv"], "left": 1}, "right", None),
        ({"kind": "drill", "measures": ["pv"], "path": {"book": "R1"}}, "path", {"book": "R1"}),
    ],
)
def test_invalid_fields_are_named(raw: dict[str, object], field: str, value: object) -> None:
    with pytest.raises(QueryError) as info:
        load_report(raw)
    assert info.value.field == field
    assert info.value.value == value
    assert repr(field) in str(info.value)


def test_unparseable_text() -> None:
    with pytest.raises(QueryError, match="not valid JSON or YAML"):
        load_report("{rows: [desk")
    with pytest.raises(QueryError, match="no such report file"):
        load_report("missing.yaml")
