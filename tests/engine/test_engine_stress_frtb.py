"""Stress runs and FRTB liquidity-adjusted ES through the engine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from riskstream.domain import Equity, EquityOption, Portfolio
from riskstream.engine import run_frtb_es, run_stress
from riskstream.errors import ConfigurationError


def one_desk(insts, qty):
    n = len(insts)
    return Portfolio.from_records(
        insts,
        {
            "position_id": [f"p{i}" for i in range(n)],
            "instrument_id": [i.instrument_id for i in insts],
            "quantity": qty,
            "desk": ["D"] * n,
            "book": ["b"] * n,
            "trader": ["t"] * n,
        },
    )


def test_equity_crash_on_a_share_is_minus_twenty_percent(market) -> None:
    history, snapshot = market
    pf = one_desk([Equity("A", "USD", underlying="A")], [10.0])
    r = run_stress(pf, snapshot, history, "equity-crash", ("desk",))
    # closed form: 10 shares × S × (−20 %)
    assert r.nodes[0].pnl == pytest.approx(-0.2 * 10 * snapshot["EQ.A"], rel=1e-12)
    assert r.nodes[0].top_losers[0][0] == "p0"


def test_user_file_and_worst_window(market, tmp_path) -> None:
    history, snapshot = market
    pf = one_desk([Equity("A", "USD", underlying="A"), Equity("C", "EUR", underlying="C")], [10.0, 5.0])
    f = tmp_path / "eur.csv"
    f.write_text("factor,shift\nFX.EUR,-0.1\n")
    r = run_stress(pf, snapshot, history, str(f), ("desk",))
    # only the EUR share moves: 5 × S_C × FX × (−10 %)
    assert r.nodes[0].pnl == pytest.approx(-0.1 * 5 * snapshot["EQ.C"] * snapshot["FX.EUR"], rel=1e-12)
    worst = run_stress(pf, snapshot, history, "worst-10d", ("desk",))
    assert worst.period is not None and "→" in worst.period
    assert worst.nodes[0].pnl < 0
    with pytest.raises(ConfigurationError, match="no-such-scenario"):
        run_stress(pf, snapshot, history, "no-such-scenario", ("desk",))


def test_frtb_equals_ten_day_es_when_every_factor_has_a_ten_day_horizon(market) -> None:
    history, snapshot = market
    pf = one_desk([Equity("A", "USD", underlying="A"), Equity("B", "USD", underlying="B")], [100.0, -50.0])
    r = run_frtb_es(pf, snapshot, history, ("desk",), window=250)
    firm = r.nodes[0]
    # large-cap equity spot: LH 10 (MAR33.12), so the cascade has one term
    assert firm.liquidity_adjusted_es == pytest.approx(firm.es_10d, rel=1e-12)
    assert firm.es_by_horizon[20] == 0.0


def test_frtb_cascade_with_an_equity_vol_factor(market) -> None:
    history, snapshot = market
    from datetime import date

    opt = EquityOption(
        "A-C", "USD", underlying="A", strike=100.0, maturity=date(2025, 3, 21), option_type="call"
    )  # type: ignore[arg-type]
    pf = one_desk([opt], [1000.0])
    firm = run_frtb_es(pf, snapshot, history, ("desk",), window=250).nodes[0]
    # equity vol is LH 20 (MAR33.12): ES = sqrt(ES10² + (ES20·sqrt((20−10)/10))²) (MAR33.4)
    expected = math.sqrt(firm.es_10d**2 + firm.es_by_horizon[20] ** 2)
    assert firm.es_by_horizon[20] > 0
    assert firm.liquidity_adjusted_es == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(firm.liquidity_adjusted_es)
