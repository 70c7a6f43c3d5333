"""Portfolio valuation: vectorised pricers against the scalar reference, failures, P&L."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import ClassVar

import numpy as np
import pytest

import riskstream.pricing._cashflows as cashflows_module
import riskstream.pricing._family as family_module
from riskstream.domain import (
    EquityOption,
    FixedRateBond,
    FxForward,
    Instrument,
    InstrumentType,
    MarketScenarios,
    MarketSnapshot,
)
from riskstream.errors import ConfigurationError
from riskstream.pricing import instrument_pnl, reference_values, value_instruments


def test_vectorised_equals_the_scalar_reference(
    snapshot: MarketSnapshot,
    make_instruments: Callable[..., list[Instrument]],
    make_scenarios: Callable[..., MarketScenarios],
) -> None:
    instruments = make_instruments(9 * 15, 3)
    scenarios = make_scenarios(snapshot, 20, seed=4)
    fast = value_instruments(instruments, scenarios)
    slow = reference_values(instruments, scenarios)
    assert not fast.failed
    assert fast.values.shape == (len(instruments), 20)
    # same formulas, different summation order: agreement to a few ulps of the gross size
    np.testing.assert_allclose(fast.values, slow, rtol=1e-12, atol=1e-12 * np.abs(slow).max())


def test_blocks_do_not_change_values(
    monkeypatch: pytest.MonkeyPatch,
    snapshot: MarketSnapshot,
    make_instruments: Callable[..., list[Instrument]],
    make_scenarios: Callable[..., MarketScenarios],
) -> None:
    instruments = make_instruments(9 * 10, 8)
    scenarios = make_scenarios(snapshot, 30, seed=1)
    whole = value_instruments(instruments, scenarios).values
    # tiny blocks: many row blocks for options, narrow scenario blocks for cashflows
    monkeypatch.setattr(family_module, "BLOCK_ELEMENTS", 7)
    monkeypatch.setattr(cashflows_module, "BLOCK_ELEMENTS", 1)
    np.testing.assert_array_equal(value_instruments(instruments, scenarios).values, whole)


def test_order_of_instruments_does_not_matter(
    snapshot: MarketSnapshot,
    make_instruments: Callable[..., list[Instrument]],
    make_scenarios: Callable[..., MarketScenarios],
) -> None:
    instruments = make_instruments(60, 9)
    scenarios = make_scenarios(snapshot, 5)
    order = np.random.default_rng(0).permutation(len(instruments))
    shuffled = value_instruments([instruments[i] for i in order], scenarios).values
    np.testing.assert_allclose(shuffled, value_instruments(instruments, scenarios).values[order], rtol=1e-14)


@dataclass(frozen=True, slots=True)
class _Exotic(Instrument):
    type: ClassVar[InstrumentType] = "exotic"  # type: ignore[assignment]


def test_bad_instruments_fail_alone(
    as_of: date,
    snapshot: MarketSnapshot,
    make_instruments: Callable[..., list[Instrument]],
    make_scenarios: Callable[..., MarketScenarios],
) -> None:
    good = make_instruments(27, 6)
    bad = [
        EquityOption("NO-EQ", "USD", underlying="NOPE", strike=10.0, maturity=as_of + timedelta(days=90)),
        FixedRateBond("NO-CURVE", "CHF", maturity=as_of + timedelta(days=900), coupon_rate=0.01),
        FxForward("NO-FX", "USD", foreign_currency="NZD", strike=0.6, maturity=as_of + timedelta(days=90)),
        FixedRateBond("MATURED", "USD", maturity=as_of, coupon_rate=0.01),
        _Exotic("EXOTIC", "USD"),
    ]
    instruments = good[:10] + bad + good[10:]
    scenarios = make_scenarios(snapshot, 6)
    valuation = value_instruments(instruments, scenarios)
    reasons = {instruments[i].instrument_id: reason for i, reason in valuation.failed.items()}
    assert set(reasons) == {b.instrument_id for b in bad}
    assert "EQ.NOPE" in reasons["NO-EQ"]
    assert "IR.CHF.*" in reasons["NO-CURVE"]
    assert "IR.NZD.*" in reasons["NO-FX"] or "FX.NZD" in reasons["NO-FX"]
    assert "maturity 2024-01-02" in reasons["MATURED"] and "valuation date 2024-01-02" in reasons["MATURED"]
    assert "no pricer" in reasons["EXOTIC"]
    assert np.all(np.isnan(valuation.values[10:15]))
    assert not valuation.priced[10:15].any() and valuation.priced[:10].all()
    # the rest is priced exactly as without the bad ones
    np.testing.assert_array_equal(
        np.delete(valuation.values, np.s_[10:15], axis=0), value_instruments(good, scenarios).values
    )


def test_instrument_pnl_is_value_minus_base(
    snapshot: MarketSnapshot,
    make_instruments: Callable[..., list[Instrument]],
    make_scenarios: Callable[..., MarketScenarios],
) -> None:
    instruments = make_instruments(45, 12)
    scenarios = make_scenarios(snapshot, 8)
    pnl = instrument_pnl(instruments, snapshot, scenarios)
    base = value_instruments(instruments, snapshot.to_scenarios()).values
    np.testing.assert_allclose(
        pnl.values, value_instruments(instruments, scenarios).values - base, rtol=1e-15
    )
    # the base market as a scenario: no P&L at all
    unchanged = instrument_pnl(instruments, snapshot, snapshot.to_scenarios())
    np.testing.assert_array_equal(unchanged.values, 0.0)


def test_instrument_pnl_reports_failures_of_either_market(
    as_of: date, snapshot: MarketSnapshot, make_scenarios: Callable[..., MarketScenarios]
) -> None:
    option = EquityOption("O", "USD", underlying="AAPL", strike=180.0, maturity=as_of + timedelta(days=60))
    scenarios = make_scenarios(snapshot, 4)
    without_vol = MarketScenarios(
        scenarios.as_of,
        tuple(f for f in scenarios.factor_ids if f != "VOL.AAPL"),
        scenarios.levels[:, [f != "VOL.AAPL" for f in scenarios.factor_ids]],
    )
    pnl = instrument_pnl([option], snapshot, without_vol)
    assert "VOL.AAPL" in pnl.failed[0] and np.all(np.isnan(pnl.values))
    other = MarketScenarios(scenarios.as_of, scenarios.factor_ids, scenarios.levels, "EUR")
    with pytest.raises(ConfigurationError, match="reporting_currency"):
        instrument_pnl([option], snapshot, other)


def test_empty_portfolio(snapshot: MarketSnapshot, make_scenarios: Callable[..., MarketScenarios]) -> None:
    valuation = value_instruments([], make_scenarios(snapshot, 3))
    assert valuation.values.shape == (0, 3) and not valuation.failed
