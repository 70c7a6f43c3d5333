"""The sample bank: desks and books, the product mix, shared priceable instruments, sizes, determinism."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from riskstream.domain import (
    ATTRIBUTES,
    EquityIndexFuture,
    EquityOption,
    FixedRateBond,
    FxForward,
    FxOption,
    Instrument,
    InterestRateSwap,
    MarketSnapshot,
    ZeroCouponBond,
)
from riskstream.errors import ConfigurationError
from riskstream.marketdata import EquitySpec, Universe, synthetic_history
from riskstream.refdata import BOOKS, DESKS, SampleBank, load_portfolio, sample_bank, write_portfolio

N = 20_000


@pytest.fixture(scope="module")
def bank() -> SampleBank:
    universe = Universe.default()
    return sample_bank(N, seed=0, universe=universe, history=synthetic_history(universe, seed=0))


def _types(bank: SampleBank) -> pd.Series:
    kind = {inst.instrument_id: inst.type.value for inst in bank.instruments}
    return pd.Series(bank.positions["instrument_id"]).map(kind)


def _priceable(inst: Instrument, snapshot: MarketSnapshot) -> list[str]:
    """Factor ids of ``inst`` missing from the snapshot (``IR.<ccy>.*``: the whole curve must be there)."""
    missing = []
    for f in inst.factors(snapshot.reporting_currency):
        if f.endswith(".*"):
            if len(snapshot.curve_tenors(f.split(".")[1])) != 12:
                missing.append(f)
        elif f not in snapshot:
            missing.append(f)
    return missing


def test_positions_are_columns_ready_for_a_portfolio(bank: SampleBank) -> None:
    cols = bank.positions
    assert set(cols) == {"position_id", "instrument_id", "quantity", *ATTRIBUTES}
    assert all(len(v) == N for v in cols.values())
    assert len(set(cols["position_id"].tolist())) == N
    portfolio = bank.portfolio()
    assert len(portfolio) == N and portfolio.rejected == ()
    assert np.isfinite(cols["quantity"]).all() and (cols["quantity"] != 0).all()
    for name in ATTRIBUTES:
        assert (cols[name] != "").all(), name


def test_desks_books_and_traders_look_like_a_bank(bank: SampleBank) -> None:
    frame = pd.DataFrame({k: bank.positions[k] for k in ("desk", "book", "trader")})
    shares = frame["desk"].value_counts(normalize=True)
    for desk, share in DESKS.items():
        assert shares[desk] == pytest.approx(share, abs=0.005)
    books = frame.groupby("desk")["book"].unique()
    for desk, names in books.items():
        assert 3 <= len(names) <= 6 and set(names) <= set(BOOKS[str(desk)])
    traders = frame.groupby("book")["trader"].nunique()
    assert traders.between(2, 4).all()
    # a trader sits on one book
    assert frame.groupby("trader")["book"].nunique().max() == 1


def test_product_mix_by_desk(bank: SampleBank) -> None:
    types = _types(bank)
    desk = pd.Series(bank.positions["desk"])
    mix = pd.crosstab(desk, types)
    assert set(mix.columns[mix.loc["EQ-CASH"] > 0]) == {"equity", "index_future"}
    assert {"equity_option", "equity", "index_future"} == set(mix.columns[mix.loc["EQ-DERIV"] > 0])
    assert {"fixed_rate_bond", "zero_coupon_bond", "interest_rate_swap"} == set(
        mix.columns[mix.loc["RATES"] > 0]
    )
    assert {"fx_spot", "fx_forward", "fx_option"} == set(mix.columns[mix.loc["FX"] > 0])
    assert {"fixed_rate_bond", "zero_coupon_bond"} == set(mix.columns[mix.loc["CREDIT"] > 0])
    assert set(mix.columns[mix.loc["PRIME"] > 0]) == {"equity"}
    options = types.isin(["equity_option", "fx_option"]).mean()
    assert options == pytest.approx(0.10, abs=0.015)
    prime = pd.Series(bank.positions["quantity"])[desk == "PRIME"]
    assert 0.5 < (prime > 0).mean() < 0.7  # long/short books, net long


def test_every_instrument_is_priceable_on_the_snapshot(bank: SampleBank) -> None:
    missing = {inst.instrument_id: m for inst in bank.instruments if (m := _priceable(inst, bank.snapshot))}
    assert not missing, list(missing.items())[:5]


def test_maturities_are_after_the_valuation_date_and_strikes_near_spot(bank: SampleBank) -> None:
    snap, as_of = bank.snapshot, bank.as_of
    assert as_of == pd.Timestamp("2018-12-31").date() == snap.as_of
    kinds = (
        EquityIndexFuture,
        EquityOption,
        FixedRateBond,
        ZeroCouponBond,
        InterestRateSwap,
        FxForward,
        FxOption,
    )
    for inst in bank.instruments:
        if isinstance(inst, kinds):
            assert inst.maturity > as_of, inst
            assert inst.maturity.year <= as_of.year + 31, inst
        if isinstance(inst, EquityOption):
            assert 0.65 <= inst.strike / snap[f"EQ.{inst.underlying}"] <= 1.35, inst
        if isinstance(inst, FxOption | FxForward):
            spot = snap[f"FX.{inst.foreign_currency}"] / snap[f"FX.{inst.currency}"]
            assert 0.85 <= inst.strike / spot <= 1.15, inst
        if isinstance(inst, EquityIndexFuture):
            assert inst.trade_price / snap[f"EQ.{inst.underlying}"] == pytest.approx(1.0, abs=0.05)
        if isinstance(inst, InterestRateSwap | FixedRateBond):
            rate = inst.fixed_rate if isinstance(inst, InterestRateSwap) else inst.coupon_rate
            assert 0.0 <= rate < 0.15, inst


def test_instruments_are_shared_like_listed_contracts(bank: SampleBank) -> None:
    ids = [inst.instrument_id for inst in bank.instruments]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(bank.positions["instrument_id"].tolist())  # only instruments that are held
    assert len(ids) < N / 4
    per_instrument = Counter(bank.positions["instrument_id"].tolist())
    assert per_instrument.most_common(1)[0][1] > 20


def test_positions_are_sized_in_dollars_of_notional(bank: SampleBank) -> None:
    """Cash equities: |quantity| × price × FX lies in $0.1–10M (rounding to whole shares aside)."""
    snap = bank.snapshot
    spot = {
        inst.instrument_id: snap[f"EQ.{inst.underlying}"] * snap[f"FX.{inst.currency}"]  # type: ignore[attr-defined]
        for inst in bank.instruments
        if inst.type.value == "equity"
    }
    ids = bank.positions["instrument_id"]
    mask = np.isin(ids, list(spot))
    notional = np.abs(bank.positions["quantity"][mask]) * np.array([spot[i] for i in ids[mask]])
    assert notional.min() > 0.9e5 and notional.max() < 1.02e7
    assert 5e5 < np.median(notional) < 3e6


def test_counterparties_are_clients_exchanges_or_dealers(bank: SampleBank) -> None:
    frame = pd.DataFrame({k: bank.positions[k] for k in ("desk", "counterparty", "instrument_id")})
    frame["type"] = _types(bank).to_numpy()
    exchanges = {"NYSE", "NASDAQ", "XETRA", "LSE", "TSE", "CME", "CBOE", "EUREX", "ICE", "OSE"}
    prime = set(frame.loc[frame["desk"] == "PRIME", "counterparty"])
    assert len(prime) >= 10 and not prime & exchanges
    listed = set(frame.loc[frame["type"].isin(["equity_option", "index_future"]), "counterparty"])
    assert listed <= exchanges
    otc = set(
        frame.loc[frame["type"].isin(["interest_rate_swap", "fx_forward", "fx_option"]), "counterparty"]
    )
    assert len(otc) >= 10 and not otc & exchanges and not otc & prime


def test_same_seed_same_bank_other_seed_other_bank(bank: SampleBank) -> None:
    universe, history = bank.universe, bank.history
    a = sample_bank(2_000, seed=5, universe=universe, history=history)
    b = sample_bank(2_000, seed=5, universe=universe, history=history)
    c = sample_bank(2_000, seed=6, universe=universe, history=history)
    assert a.instruments == b.instruments
    for k in a.positions:
        np.testing.assert_array_equal(a.positions[k], b.positions[k])
    assert not np.array_equal(a.positions["instrument_id"], c.positions["instrument_id"])


def test_a_small_universe_still_gives_a_priceable_bank() -> None:
    u = Universe(
        (
            EquitySpec("ABC", "USD", "Financials", "AMER", 1.2),
            EquitySpec("DEF-GY", "EUR", "Energy", "EMEA", 0.9),
        ),
        indices=("SPX",),
        fx_currencies=("EUR",),
        curves=("USD",),
        vol_underlyings=("SPX", "ABC", "EURUSD"),
    )
    bank = sample_bank(500, seed=1, universe=u, history=synthetic_history(u, seed=1))
    assert bank.n_positions == 500 and bank.portfolio().rejected == ()
    assert all(not _priceable(inst, bank.snapshot) for inst in bank.instruments)
    assert "FX" in set(bank.positions["desk"].tolist())  # spot only: no EUR curve for forwards or options


def test_bad_arguments_are_refused(bank: SampleBank) -> None:
    universe, history = bank.universe, bank.history
    with pytest.raises(ConfigurationError, match="n_positions"):
        sample_bank(0, universe=universe, history=history)
    with pytest.raises(ConfigurationError, match="history"):
        sample_bank(10, universe=universe, history=history.drop(columns=["VOL.SPX"]))
    with pytest.raises(ConfigurationError, match="history"):
        sample_bank(10, universe=universe, history=history.iloc[:0])


@pytest.mark.slow
def test_a_million_positions_generate_write_and_load_in_seconds(
    bank: SampleBank, tmp_path_factory: pytest.TempPathFactory
) -> None:
    started = time.perf_counter()
    big = sample_bank(1_000_000, seed=0, universe=bank.universe, history=bank.history)
    generated = time.perf_counter()
    out = write_portfolio(tmp_path_factory.mktemp("million"), big)
    written = time.perf_counter()
    loaded = load_portfolio(out)
    done = time.perf_counter()
    assert len(loaded.portfolio) == 1_000_000 and loaded.rejected == ()
    assert 10_000 < len(big.instruments) < 60_000  # shared contracts: bounded whatever the position count
    # 30 s on a quiet 2-core machine; the bound leaves room for a test suite running beside it
    assert done - started < 60, (generated - started, written - generated, done - written)
