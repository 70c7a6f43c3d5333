"""A prepared book values options, forwards, futures and shares as their family pricers do (``value_instruments``
is the reference): single-currency instruments in their own currency, currency pairs in the reporting currency."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
import pytest

from riskstream.domain import EquityOption, Instrument, MarketScenarios, MarketSnapshot, OptionType
from riskstream.pricing import PREPARED_FAMILIES, PreparedBook, single_currency, value_instruments


def _levels(scen: MarketScenarios) -> tuple[np.ndarray, np.ndarray]:
    """Factor rows × scenario columns with a row of ones appended, and the row of each factor (ones last)."""
    levels = np.vstack([scen.levels.T, np.ones((1, scen.n_scenarios))])
    return np.ascontiguousarray(levels), np.arange(len(scen.factor_ids) + 1)


def _local(scen: MarketScenarios) -> MarketScenarios:
    """The scenarios with every FX rate at 1: pricers then value single-currency instruments locally."""
    levels = scen.levels.copy()
    levels[:, [j for j, f in enumerate(scen.factor_ids) if f.startswith("FX.")]] = 1.0
    return MarketScenarios(scen.as_of, scen.factor_ids, levels, scen.reporting_currency)


def _book(
    snapshot: MarketSnapshot,
    make_instruments: Callable[..., list[Instrument]],
    make_scenarios: Callable[..., MarketScenarios],
) -> tuple[list[Instrument], MarketScenarios, list[str], PreparedBook]:
    """270 instruments of every family, 60 scenarios on their factors (without FX.USD), and their prepared book."""
    insts = make_instruments(270, seed=5)
    scen = make_scenarios(snapshot, 60, seed=3)
    ids = [f for f in scen.factor_ids if f != "FX.USD"]
    scen = MarketScenarios(scen.as_of, tuple(ids), scen.columns(ids).T, scen.reporting_currency)
    return insts, scen, ids, PreparedBook.build(insts, snapshot, ids)


def test_prepared_values_equal_the_family_pricers(
    snapshot: MarketSnapshot,
    make_instruments: Callable[..., list[Instrument]],
    make_scenarios: Callable[..., MarketScenarios],
) -> None:
    insts, scen, ids, book = _book(snapshot, make_instruments, make_scenarios)
    idx = np.flatnonzero(book.prepared)
    kinds = {getattr(insts[i], "type", None) for i in idx}
    assert kinds == set(PREPARED_FAMILIES)  # every closed-form family is prepared
    single = np.array([single_currency(insts[i]) for i in idx])
    # reference: the family pricers (local currency for single-currency instruments, as the engine uses them)
    ref = np.empty((len(idx), scen.n_scenarios))
    for mask, market in ((single, _local(scen)), (~single, scen)):
        sel = idx[mask]
        valuation = value_instruments([insts[i] for i in sel], market)
        assert not valuation.failed
        ref[mask] = valuation.values
    levels, position = _levels(scen)
    mine = book.values(idx, levels, position)
    # 1e-12 relative (the operations are the family pricers', in the same order)
    np.testing.assert_allclose(mine, ref, rtol=1e-12, atol=0.0)
    # any subset, in any order, gives the same rows
    some = idx[[7, 0, 31, 12, 12]]
    np.testing.assert_array_equal(book.values(some, levels, position), mine[[7, 0, 31, 12, 12]])
    # columns read: only universe factors
    cols = book.columns(idx)
    assert cols.max() < len(ids)


def test_expired_or_unknown_factor_instruments_are_left_to_the_pricers(snapshot: MarketSnapshot) -> None:
    as_of = snapshot.as_of
    live = EquityOption("A", "USD", underlying="AAPL", strike=180.0, maturity=as_of + timedelta(days=90))
    expired = EquityOption("B", "USD", underlying="AAPL", strike=180.0, maturity=as_of)
    unknown = EquityOption(
        "C",
        "USD",
        underlying="MSFT",
        strike=180.0,
        maturity=as_of + timedelta(days=90),
        option_type=OptionType.PUT,
    )
    ids = [f for f in snapshot.factor_ids if f != "FX.USD"]
    book = PreparedBook.build([live, expired, unknown], snapshot, ids)
    assert book.prepared.tolist() == [True, False, False]


def test_pieces_on_threads_give_the_same_bits(
    snapshot: MarketSnapshot,
    make_instruments: Callable[..., list[Instrument]],
    make_scenarios: Callable[..., MarketScenarios],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from riskstream.pricing import _prepared

    _, scen, _, book = _book(snapshot, make_instruments, make_scenarios)
    idx = np.flatnonzero(book.prepared)[::-1].copy()
    levels, position = _levels(scen)
    whole = book.values(idx, levels, position)
    # pieces of a few rows: every family is cut, and each piece runs on whichever thread is free
    monkeypatch.setattr(_prepared, "PARALLEL_OPTION_ELEMENTS", 3 * scen.n_scenarios)
    monkeypatch.setattr(_prepared, "PARALLEL_LINEAR_ELEMENTS", 3 * scen.n_scenarios)
    families = len(np.unique(book.kind[idx]))
    for parts in (2, 3, 7):
        out = np.full((len(idx) + 2, scen.n_scenarios), np.nan)
        at = np.arange(len(idx)) + 2  # written at other rows of a bigger buffer
        tasks = book.tasks(idx, levels, position, out, parts, at=at)
        assert len(tasks) > families
        with ThreadPoolExecutor(parts) as pool:
            list(pool.map(lambda task: task(), tasks[::-1]))
        np.testing.assert_array_equal(out[2:], whole)
        assert np.isnan(out[:2]).all()
