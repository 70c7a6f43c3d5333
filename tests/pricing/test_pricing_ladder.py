"""The cash-flow ladder values bonds and swaps as their family pricers do (``value_instruments`` is the
reference), and its shifted form ``DF_0·G`` equals discounting at the shifted rates, to rounding."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from riskstream.domain import Instrument, MarketScenarios, MarketSnapshot
from riskstream.pricing import (
    CASHFLOW_SCHEDULES,
    CashflowLadder,
    factor_dependencies_exact,
    value_instruments,
)


def _local_market(snapshot: MarketSnapshot) -> MarketSnapshot:
    """The snapshot with every FX rate at 1: pricers then return values in the instruments' own currencies."""
    values = {f: (1.0 if f.startswith("FX.") else v) for f, v in snapshot.values.items()}
    return MarketSnapshot(snapshot.as_of, values, snapshot.reporting_currency)


def _assert_close(actual: np.ndarray, desired: np.ndarray, gross: np.ndarray) -> None:
    """Equal to rounding: 1e-13 of each instrument's gross cash flows (a swap's value is a small difference)."""
    tol = 1e-13 * gross[:, None]
    assert np.all(np.abs(actual - desired) <= tol), float(np.max(np.abs(actual - desired) - tol))


def _cash_flow_instruments(
    make: Callable[..., list[Instrument]], snapshot: MarketSnapshot
) -> list[Instrument]:
    insts = [i for i in make(180, seed=11) if getattr(i, "type", None) in CASHFLOW_SCHEDULES]
    live = [i for i in insts if i.maturity > snapshot.as_of]  # type: ignore[attr-defined]
    assert len(live) >= 40
    return live


def test_ladder_values_equal_the_family_pricers(
    snapshot: MarketSnapshot,
    make_instruments: Callable[..., list[Instrument]],
    make_scenarios: Callable[..., MarketScenarios],
) -> None:
    insts = _cash_flow_instruments(make_instruments, snapshot)
    local = _local_market(snapshot)
    ladder = CashflowLadder.build(insts, local)
    shocked = make_scenarios(local, 40, seed=2)
    levels = shocked.levels.copy()
    levels[:, [j for j, f in enumerate(shocked.factor_ids) if f.startswith("FX.")]] = 1.0  # local currency
    scen = MarketScenarios(shocked.as_of, shocked.factor_ids, levels, shocked.reporting_currency)
    rates = scen.columns(ladder.factor_ids)  # (points, scenarios)
    mine = ladder.values(ladder.discount_factors(rates))
    ref = value_instruments(insts, scen).values
    gross = np.asarray(abs(ladder.amounts).sum(axis=1)).ravel()
    _assert_close(mine, ref, gross)
    some = np.array([3, 0, 7])
    np.testing.assert_array_equal(ladder.values(ladder.discount_factors(rates), some), mine[some])


def test_shifted_values_equal_discounting_at_shifted_rates(
    snapshot: MarketSnapshot, make_instruments: Callable[..., list[Instrument]]
) -> None:
    insts = _cash_flow_instruments(make_instruments, snapshot)
    ladder = CashflowLadder.build(insts, _local_market(snapshot))
    rng = np.random.default_rng(4)
    today = np.array([snapshot[f] for f in ladder.factor_ids])
    shifts = 0.01 * rng.standard_normal((len(today), 30))
    df0 = ladder.discount_factors(today[:, None])[:, 0]
    shifted = ladder.shifted_values(df0, ladder.shock_factors(shifts))
    direct = ladder.values(ladder.discount_factors(today[:, None] + shifts))
    gross = np.asarray(abs(ladder.amounts).sum(axis=1)).ravel()
    _assert_close(shifted[:, :-1], direct, gross)
    _assert_close(shifted[:, -1:], ladder.values(df0[:, None]), gross)


def test_nodes_of_a_tenor_point_are_those_its_instruments_read(
    snapshot: MarketSnapshot, make_instruments: Callable[..., list[Instrument]]
) -> None:
    """An instrument owns a node reading tenor point k exactly when k is in its exact dependencies."""
    insts = _cash_flow_instruments(make_instruments, snapshot)
    ladder = CashflowLadder.build(insts, snapshot)
    deps = factor_dependencies_exact(insts, snapshot)
    amounts = ladder.amounts.tocsc()
    for k, fid in enumerate(ladder.factor_ids):
        nodes = ladder.nodes_of(np.array([k]))
        owners = set(amounts[:, nodes].tocoo().row.tolist()) if nodes.size else set()
        # a node's summed amount can be 0 only when every cash flow on it is 0: it is then not stored
        assert owners == {i for i, d in enumerate(deps) if fid in d}, fid


def test_shift_values_is_the_change_of_shifted_values(
    snapshot: MarketSnapshot, make_instruments: Callable[..., list[Instrument]]
) -> None:
    """Moving today's discount factors of a few nodes changes exactly the instruments paying on them, by the
    difference of the two full valuations (to rounding)."""
    insts = _cash_flow_instruments(make_instruments, snapshot)
    ladder = CashflowLadder.build(insts, _local_market(snapshot))
    rng = np.random.default_rng(6)
    today = np.array([snapshot[f] for f in ladder.factor_ids])
    shock = ladder.shock_factors(0.01 * rng.standard_normal((len(today), 20)))
    df0 = ladder.discount_factors(today[:, None])[:, 0]
    moved = today.copy()
    moved[ladder.factor_ids.index("IR.USD.5Y")] += 0.001
    nodes = ladder.nodes_of(np.array([ladder.factor_ids.index("IR.USD.5Y")]))
    df1 = df0.copy()
    df1[nodes] = ladder.discount_factors(moved[:, None], nodes)[:, 0]
    np.testing.assert_array_equal(df1, ladder.discount_factors(moved[:, None])[:, 0])
    owners, change = ladder.shift_values(nodes, df1[nodes] - df0[nodes], shock)
    full = ladder.shifted_values(df1, shock) - ladder.shifted_values(df0, shock)
    untouched = np.setdiff1d(np.arange(len(insts)), owners)
    assert owners.size and untouched.size
    assert np.all(full[untouched] == 0.0)
    gross = np.asarray(abs(ladder.amounts).sum(axis=1)).ravel()
    _assert_close(change, full[owners], gross[owners])
