"""A small multi-asset market and portfolio for engine tests (seeded, synthetic, not market data)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from riskstream.domain import (
    TENORS,
    Equity,
    EquityOption,
    FixedRateBond,
    FxForward,
    Instrument,
    MarketSnapshot,
)

AS_OF = date(2024, 6, 28)


def make_history(n_days: int = 800, seed: int = 11) -> pd.DataFrame:
    """Correlated fat-tailed random walks for EQ.A, EQ.B, EQ.C (EUR), FX.EUR, VOL.A and the USD curve."""
    rng = np.random.default_rng(seed)
    t = rng.standard_t(5, size=(n_days, 4)) * np.sqrt(3 / 5)
    mkt = t[:, 0]
    r_a = 0.012 * (0.8 * mkt + 0.6 * t[:, 1])
    r_b = 0.015 * (0.6 * mkt + 0.8 * t[:, 2])
    r_c = 0.013 * (0.5 * mkt + 0.866 * t[:, 3])
    r_fx = 0.006 * rng.standard_normal(n_days)
    r_vol = -2.0 * r_a + 0.03 * rng.standard_normal(n_days)
    d_rate = 0.0006 * rng.standard_normal(n_days)
    dates = pd.bdate_range(end=pd.Timestamp(AS_OF), periods=n_days + 1)
    data = {
        "EQ.A": 100 * np.cumprod(np.r_[1.0, 1 + r_a]),
        "EQ.B": 40 * np.cumprod(np.r_[1.0, 1 + r_b]),
        "EQ.C": 70 * np.cumprod(np.r_[1.0, 1 + r_c]),
        "FX.EUR": 1.1 * np.cumprod(np.r_[1.0, 1 + r_fx]),
        "VOL.A": 0.25 * np.cumprod(np.r_[1.0, 1 + r_vol]),
    }
    for i, tenor in enumerate(TENORS):
        data[f"IR.USD.{tenor}"] = 0.03 + 0.0005 * i + np.cumsum(np.r_[0.0, d_rate])
        data[f"IR.EUR.{tenor}"] = 0.02 + 0.0004 * i + np.cumsum(np.r_[0.0, 0.8 * d_rate])
    return pd.DataFrame(data, index=dates)


def snapshot_from(history: pd.DataFrame) -> MarketSnapshot:
    return MarketSnapshot(AS_OF, history.iloc[-1].to_dict())


def instruments() -> list[Instrument]:
    return [
        Equity("A", "USD", underlying="A"),
        Equity("B", "USD", underlying="B"),
        Equity("C", "EUR", underlying="C"),
        EquityOption(
            "A-C-105", "USD", underlying="A", strike=105.0, maturity=date(2025, 3, 21), option_type="call"
        ),  # type: ignore[arg-type]
        EquityOption(
            "A-P-95", "USD", underlying="A", strike=95.0, maturity=date(2024, 12, 20), option_type="put"
        ),  # type: ignore[arg-type]
        FixedRateBond("UST-5Y", "USD", maturity=date(2029, 6, 30), coupon_rate=0.04, frequency=2),
        FxForward("EURUSD-1Y", "USD", foreign_currency="EUR", strike=1.12, maturity=date(2025, 6, 30)),
    ]


def positions(n: int = 60, seed: int = 5) -> dict[str, list[object]]:
    rng = np.random.default_rng(seed)
    insts = [i.instrument_id for i in instruments()]
    size = {
        "A": 1_000,
        "B": 2_000,
        "C": 1_000,
        "A-C-105": 500,
        "A-P-95": 800,
        "UST-5Y": 3_000,
        "EURUSD-1Y": 100_000,
    }
    desks = ["EQ", "EQ", "RATES"]
    rows: dict[str, list[object]] = {
        k: []
        for k in (
            "position_id",
            "instrument_id",
            "quantity",
            "desk",
            "book",
            "trader",
            "counterparty",
            "sector",
            "region",
        )
    }
    for i in range(n):
        inst = insts[i % len(insts)]
        desk = "RATES" if inst in ("UST-5Y", "EURUSD-1Y") else desks[i % 2]
        book = f"{desk}-{i % 3}"
        rows["position_id"].append(f"P{i:03d}")
        rows["instrument_id"].append(inst)
        rows["quantity"].append(float(size[inst] * rng.choice([-1, 1]) * rng.uniform(0.5, 1.5)))
        rows["desk"].append(desk)
        rows["book"].append(book)
        rows["trader"].append(f"{book}-t{i % 2}")
        rows["counterparty"].append("")
        rows["sector"].append("")
        rows["region"].append("US")
    return rows
