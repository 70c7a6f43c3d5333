"""Exact factor dependencies: a factor outside an instrument's set never moves its value (bit for bit), every
factor inside it does; the FX translation of single-currency instruments is an exact rescale.

The reference is the pricers themselves (``value_instruments``): each factor is bumped in its own scenario of one
pricing call and the values are compared with the unbumped scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

import numpy as np
import pytest

from riskstream import marketdata
from riskstream.domain import (
    FixedRateBond,
    Instrument,
    InterestRateSwap,
    MarketScenarios,
    MarketSnapshot,
    ZeroCouponBond,
)
from riskstream.pricing import factor_dependencies_exact, translation_currency, value_instruments
from riskstream.refdata import sample_bank


def _bumped_values(
    instruments: Sequence[Instrument], snap: MarketSnapshot
) -> tuple[tuple[str, ...], np.ndarray]:
    """Factor ids, and values (instruments × (1 + factors)): column 0 unbumped, column 1 + j with factor j moved
    (+1 bp on rates, +0.1 % relative otherwise)."""
    fids = snap.factor_ids
    base = snap.to_scenarios(fids)
    levels = np.repeat(base.levels, 1 + len(fids), axis=0)
    for j, f in enumerate(fids):
        levels[1 + j, j] = levels[0, j] + 1e-4 if f.startswith("IR.") else levels[0, j] * 1.001
    market = MarketScenarios(snap.as_of, fids, levels, snap.reporting_currency)
    return fids, value_instruments(instruments, market).values


def _check_exact(instruments: Sequence[Instrument], snap: MarketSnapshot) -> int:
    deps = factor_dependencies_exact(instruments, snap)
    fids, values = _bumped_values(instruments, snap)
    checked = 0
    for i, inst in enumerate(instruments):
        if not np.isfinite(values[i, 0]):
            continue  # not priceable in this market (the pricer reports why)
        moved = {fids[j] for j in np.flatnonzero(values[i, 1:] != values[i, 0])}
        assert set(deps[i]) == moved, (inst, sorted(set(deps[i]) ^ moved))
        checked += 1
    return checked


def test_exact_dependencies_of_the_sample_bank() -> None:
    universe = marketdata.Universe.default(n_equities=30, n_option_names=10)
    history = marketdata.synthetic_history(universe, 0).iloc[-800:]
    bank = sample_bank(300, seed=1, universe=universe, history=history)
    portfolio = bank.portfolio()
    instruments = [portfolio.instruments[i] for i in np.unique(portfolio.positions.instrument)]
    assert _check_exact(instruments, bank.snapshot) == len(instruments)
    # the point of it: a curve instrument reads a few tenors, not the whole curve
    deps = factor_dependencies_exact(instruments, bank.snapshot)
    n_tenors = len(bank.snapshot.curve_tenors("USD"))
    short = [d for d, inst in zip(deps, instruments, strict=True) if isinstance(inst, ZeroCouponBond)]
    assert short and all(sum(f.startswith("IR.") for f in d) <= 2 for d in short)
    assert n_tenors > 2


def test_exact_dependencies_of_every_family(
    snapshot: MarketSnapshot, make_instruments: Callable[..., list[Instrument]]
) -> None:
    # nine families, EUR/GBP/JPY (partial curve) and USD, expiries inside, on and beyond the tenor points
    instruments = make_instruments(90, seed=3)
    assert _check_exact(instruments, snapshot) >= 80


def test_cash_flows_on_a_tenor_point_and_beyond_the_curve(snapshot: MarketSnapshot, as_of: date) -> None:
    """A cash flow on a tenor point reads that point alone; beyond the last point, the last point alone; a swap's
    notional paid now reads nothing."""
    one_year = as_of + timedelta(days=365)  # 1Y tenor point: t = 1.0 exactly (ACT/365F)
    zero = ZeroCouponBond(instrument_id="Z1", currency="USD", maturity=one_year)
    far = ZeroCouponBond(instrument_id="Z40", currency="USD", maturity=as_of + timedelta(days=365 * 40))
    bond = FixedRateBond(  # coupons of 0
        instrument_id="B", currency="EUR", maturity=as_of + timedelta(days=365 * 2), coupon_rate=0.0
    )
    swap = InterestRateSwap(
        instrument_id="S", currency="GBP", maturity=one_year, fixed_rate=0.03, pay_fixed=False
    )
    deps = factor_dependencies_exact([zero, far, bond, swap], snapshot)
    assert deps[0] == ("IR.USD.1Y",)
    assert deps[1] == ("IR.USD.30Y",)
    assert deps[2] == ("FX.EUR", "IR.EUR.2Y")  # coupons of 0 read nothing
    assert deps[3] == ("FX.GBP", "IR.GBP.1Y")
    assert _check_exact([zero, far, bond, swap], snapshot) == 4


def test_translation_is_an_exact_rescale(
    snapshot: MarketSnapshot, make_instruments: Callable[..., list[Instrument]]
) -> None:
    """V(FX = x) = x · V(FX = 1) for single-currency instruments, to rounding (1e-14 relative)."""
    instruments = make_instruments(90, seed=5)
    ccys = [translation_currency(inst, "USD") for inst in instruments]
    assert any(c is not None for c in ccys) and any(c is None for c in ccys)
    values = value_instruments(instruments, snapshot.to_scenarios()).values[:, 0]
    unit = dict(snapshot.values)
    unit.update({f: 1.0 for f in unit if f.startswith("FX.")})
    local = value_instruments(instruments, MarketSnapshot(snapshot.as_of, unit, "USD").to_scenarios()).values
    for i, ccy in enumerate(ccys):
        if ccy is None or not np.isfinite(values[i]):
            continue
        assert snapshot[f"FX.{ccy}"] * local[i, 0] == pytest.approx(values[i], rel=1e-14, abs=1e-300)
    # pair instruments and reporting-currency ones are not translated
    for inst, ccy in zip(instruments, ccys, strict=True):
        if getattr(inst, "foreign_currency", None) is not None or inst.currency == "USD":  # type: ignore[attr-defined]
            assert ccy is None
