"""Limits and the limit monitor: every hysteresis transition, no alert storm, config loading with bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskstream.domain import AlertState
from riskstream.engine._limits import (
    Limit,
    LimitLevel,
    LimitMonitor,
    limits_from_dict,
    limits_from_values,
    load_limits,
)
from riskstream.errors import ConfigurationError, InvalidFieldError

NODE = "FIRM/RATES"
M = "var_99_1d"


def _monitor(limit: float = 100.0, **kw: float) -> LimitMonitor:
    return LimitMonitor([Limit(NODE, M, limit, **kw)])


def _run(mon: LimitMonitor, values: list[float]) -> list[tuple[int, str]]:
    """(index of the update, alert state) for every alert a sequence raises."""
    out = []
    for i, v in enumerate(values):
        for a in mon.update(NODE, M, v, as_of_us=1_000 + i):
            out.append((i, a.state.value))
    return out


# Defaults: warn at u ≥ 0.8, breach at u ≥ 1.0; a breach clears below 0.75·1.0, a warning below 0.75·0.8 = 0.6
# (the module docstring's table). With limit 100, value v has utilisation v/100.
@pytest.mark.parametrize(
    ("values", "expected", "final"),
    [
        ([50, 79.9], [], LimitLevel.OK),  # below warn: nothing
        ([80], [(0, "warning")], LimitLevel.WARNING),  # OK → WARNING at exactly 0.8
        ([100], [(0, "breach")], LimitLevel.BREACH),  # OK → BREACH directly at exactly 1.0
        ([85, 100], [(0, "warning"), (1, "breach")], LimitLevel.BREACH),  # WARNING → BREACH
        ([85, 70, 60], [(0, "warning")], LimitLevel.WARNING),  # inside the band [0.6, 0.8): holds
        ([85, 59.9], [(0, "warning"), (1, "clear")], LimitLevel.OK),  # WARNING → OK below 0.6
        ([120, 90, 75], [(0, "breach")], LimitLevel.BREACH),  # BREACH holds down to 0.75 inclusive
        ([120, 74.9], [(0, "breach"), (1, "warning")], LimitLevel.WARNING),  # BREACH → WARNING
        ([120, 10], [(0, "breach"), (1, "clear")], LimitLevel.OK),  # BREACH → OK in one step
        (
            [120, 70, 59, 81],
            [(0, "breach"), (1, "warning"), (2, "clear"), (3, "warning")],
            LimitLevel.WARNING,
        ),
    ],
)
def test_every_transition_of_the_hysteresis_state_machine(
    values: list[float], expected: list[tuple[int, str]], final: LimitLevel
) -> None:
    mon = _monitor()
    assert _run(mon, values) == expected
    assert mon.level(NODE, M) is final


def test_oscillation_around_thresholds_raises_no_alert_storm() -> None:
    mon = _monitor()
    # 1,000 updates swinging ±2 % around the breach line: one BREACH, then it holds (never below 0.75)
    swing = [100 + (2 if i % 2 else -2) for i in range(1_000)]
    assert _run(mon, swing) == [(0, "warning"), (1, "breach")]
    mon = _monitor()
    around_warn = [80 + (1 if i % 2 else -1) for i in range(1_000)]  # 0.79 / 0.81 around the warning line
    assert _run(mon, around_warn) == [(1, "warning")]


def test_alert_carries_value_limit_utilisation_and_time() -> None:
    mon = _monitor(limit=2_000_000.0)
    (alert,) = mon.update(NODE, M, 2_500_000.0, as_of_us=42)
    assert alert.state is AlertState.BREACH
    assert (alert.node, alert.measure, alert.value, alert.limit, alert.as_of_us) == (NODE, M, 2.5e6, 2e6, 42)
    assert alert.utilisation == pytest.approx(1.25)  # 2.5M / 2M
    assert "125.0%" in alert.message and "breach" in alert.message


def test_custom_fractions_move_the_thresholds() -> None:
    mon = _monitor(warn_fraction=0.5, clear_fraction=0.9)
    # warn at 0.5; breach clears below 0.9, warning below 0.45
    assert _run(mon, [50, 101, 95, 89, 46, 44]) == [
        (0, "warning"),
        (1, "breach"),
        (3, "warning"),
        (5, "clear"),
    ]


def test_unlimited_measures_are_ignored_and_bad_values_named() -> None:
    mon = _monitor()
    assert mon.update("FIRM/EQUITIES", M, 1e12, 0) == []
    assert mon.update(NODE, "es_975_1d", 1e12, 0) == []
    with pytest.raises(InvalidFieldError, match=r"'value'.*nan"):
        mon.update(NODE, M, float("nan"), 0)


def test_state_restores_into_a_new_monitor() -> None:
    mon = _monitor()
    _run(mon, [120])
    state = mon.state()
    assert state == {"levels": [[NODE, M, "BREACH"]]}
    again = _monitor()
    again.restore(state)
    assert _run(again, [90]) == []  # still in breach: no repeated alert after a restart
    assert _run(again, [10]) == [(0, "clear")]


def test_limit_validation_names_field_and_value() -> None:
    with pytest.raises(InvalidFieldError, match=r"'limit'.*-5"):
        Limit(NODE, M, -5.0)
    with pytest.raises(InvalidFieldError, match=r"'warn_fraction'.*1.2"):
        Limit(NODE, M, 5.0, warn_fraction=1.2)
    with pytest.raises(InvalidFieldError, match=r"'node'.*RATES"):
        Limit("RATES", M, 5.0)


def test_yaml_and_csv_configs_load_good_rows_and_report_bad_ones(tmp_path: Path) -> None:
    yml = tmp_path / "limits.yaml"
    yml.write_text(
        "limits:\n"
        "  - {node: FIRM, measure: var_99_1d, limit: 50_000_000}\n"
        "  - {node: FIRM/RATES, measure: var_99_1d, limit: 20000000, warn_fraction: 0.9}\n"
        "  - {node: FIRM/FX, measure: var_99_1d, limit: lots}\n"
        "  - {node: FIRM/FX, measure: var_99_1d, limit: 1000, clear_fraction: 1.5}\n"
        "  - {node: FIRM, measure: var_99_1d, limit: 1}\n"
        "  - {node: FIRM/EQ, limit: 1}\n",
        encoding="utf-8",
    )
    got = load_limits(yml)
    assert sorted(got.limits) == [("FIRM", M), ("FIRM/RATES", M)]
    assert got.get("FIRM", M) == Limit("FIRM", M, 50_000_000.0)
    assert got.get("FIRM/RATES", M) == Limit("FIRM/RATES", M, 20_000_000.0, warn_fraction=0.9)
    assert [(p.row, p.field, p.value) for p in got.problems] == [
        ("3", "limit", "lots"),
        ("4", "clear_fraction", 1.5),
        ("5", "node", "FIRM"),  # a second limit for the same node and measure
        ("6", "measure", None),
    ]
    assert "row 3: field 'limit' has invalid value 'lots'" in str(got.problems[0])

    csv_path = tmp_path / "limits.csv"
    csv_path.write_text(
        "node,measure,limit,warn_fraction\nFIRM,var_99_1d,1000,\nFIRM/FX,es_975_1d,-3,0.7\n", encoding="utf-8"
    )
    got = load_limits(csv_path)
    assert list(got) == [Limit("FIRM", M, 1000.0)]
    assert [(p.row, p.field, p.value) for p in got.problems] == [("3", "limit", -3.0)]  # header is row 1


def test_dict_config_reports_unknown_fields_and_non_rows() -> None:
    got = limits_from_dict([{"node": "FIRM", "measure": M, "limit": 1.0, "colour": "red"}, "FIRM,1"])
    assert len(got) == 0
    assert [(p.field, p.value) for p in got.problems] == [("colour", "red"), ("row", "FIRM,1")]
    with pytest.raises(ConfigurationError, match="path"):
        load_limits(Path("limits.json"))


def test_default_rule_is_a_multiple_of_the_starting_var_down_to_books() -> None:
    start = {
        "FIRM": 1_000.0,
        "FIRM/RATES": 600.0,
        "FIRM/RATES/USD-GOVT": 400.0,
        "FIRM/RATES/USD-GOVT/jdoe": 300.0,
    }
    got = limits_from_values(start)
    # 1.25 × the VaR at start (DEFAULT_LIMIT_MULTIPLE), firm/desk/book only (max_depth 2)
    assert {k[0]: lim.limit for k, lim in got.limits.items()} == {
        "FIRM": 1_250.0,
        "FIRM/RATES": 750.0,
        "FIRM/RATES/USD-GOVT": 500.0,
    }
    mon = LimitMonitor(got)
    # at start every node sits at 1/1.25 = 80 % utilisation: exactly on the warning line
    assert [a.state for a in mon.update("FIRM", M, 1_000.0, 0)] == [AlertState.WARNING]
    bad = limits_from_values({"FIRM": 0.0}, max_depth=None)
    assert [(p.field, p.value) for p in bad.problems] == [("limit", 0.0)]
