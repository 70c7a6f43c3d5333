"""The synthetic factor history: real dates and indices, calibrated stylised facts, determinism, validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arch.data import nasdaq, sp500

from riskstream.domain import TENORS, parse_factor
from riskstream.errors import ConfigurationError
from riskstream.marketdata import EquitySpec, Universe, synthetic_history
from riskstream.marketdata._synthetic import _history

SMALL = Universe.default(n_equities=40, n_option_names=10)


@pytest.fixture(scope="module")
def universe() -> Universe:
    return Universe.default()


@pytest.fixture(scope="module")
def history(universe: Universe) -> pd.DataFrame:
    return synthetic_history(universe, seed=0)


def _returns(history: pd.DataFrame, ids: list[str]) -> np.ndarray:
    return history[ids].pct_change().iloc[1:].to_numpy()


def _acf1(x: np.ndarray) -> np.ndarray:
    """Lag-1 sample autocorrelation of each column."""
    x = x - x.mean(axis=0)
    return (x[1:] * x[:-1]).sum(axis=0) / (x * x).sum(axis=0)


def _us_non_tech(universe: Universe, n: int) -> list[EquitySpec]:
    names = [
        e
        for e in universe.equities
        if e.currency == "USD" and e.sector not in ("Information Technology", "Communication Services")
    ]
    return names[:n]


def test_default_universe_has_a_thousand_factors_of_every_kind(universe: Universe) -> None:
    ids = universe.factor_ids
    assert len(ids) == len(set(ids)) == universe.n_factors == 1000
    kinds = pd.Series([parse_factor(f).kind.value for f in ids]).value_counts().to_dict()
    assert kinds == {"EQ": 502, "VOL": 441, "IR": 48, "FX": 9}
    assert {f"IR.{c}.{t}" for c in ("USD", "EUR", "GBP", "JPY") for t in TENORS} <= set(ids)
    assert {"VOL.SPX", "VOL.NASDAQ", "VOL.EURUSD", "VOL.USDJPY"} <= set(ids)
    by_ccy = pd.Series([e.currency for e in universe.equities]).value_counts()
    assert set(by_ccy.index) == {"USD", "EUR", "GBP", "JPY"} and by_ccy["USD"] > 200


def test_history_covers_the_real_dates_with_valid_levels(universe: Universe, history: pd.DataFrame) -> None:
    real = sp500.load()
    assert list(history.columns) == list(universe.factor_ids)
    assert history.index.equals(pd.DatetimeIndex(real.index).normalize())
    assert history.index[0] == pd.Timestamp("1999-01-04") and history.index[-1] == pd.Timestamp("2018-12-31")
    values = history.to_numpy()
    assert np.isfinite(values).all()
    positive = ~history.columns.str.startswith("IR.")
    assert (values[:, positive] > 0).all()


def test_index_factors_are_the_real_adjusted_closes(history: pd.DataFrame) -> None:
    np.testing.assert_array_equal(history["EQ.SPX"].to_numpy(), sp500.load()["Adj Close"].to_numpy())
    np.testing.assert_array_equal(history["EQ.NASDAQ"].to_numpy(), nasdaq.load()["Adj Close"].to_numpy())
    assert history["EQ.SPX"].iloc[-1] == pytest.approx(2506.850098)  # S&P 500 close on 2018-12-31


def test_same_seed_same_history_other_seed_other_names() -> None:
    first = _history.__wrapped__(SMALL, 7)  # bypass the cache: regenerate from scratch
    again = _history.__wrapped__(SMALL, 7)
    pd.testing.assert_frame_equal(first, again)
    other = synthetic_history(SMALL, seed=8)
    name = f"EQ.{SMALL.equities[0].name}"
    assert not np.allclose(first[name], other[name])
    np.testing.assert_array_equal(first["EQ.SPX"], other["EQ.SPX"])


def test_callers_get_a_copy(history: pd.DataFrame, universe: Universe) -> None:
    mine = synthetic_history(universe, seed=0)
    mine.iloc[:, :] = 0.0
    assert synthetic_history(universe, seed=0).equals(history)


def test_single_names_have_fat_tails(universe: Universe, history: pd.DataFrame) -> None:
    """Residuals after the market have excess kurtosis well above a normal's 0 (Student-t(ν): 6/(ν−4))."""
    sample = _us_non_tech(universe, 20)
    r = _returns(history, [f"EQ.{e.name}" for e in sample])
    m = _returns(history, ["EQ.SPX"])
    beta = (r * m).mean(axis=0) / (m**2).mean()
    residual = r - beta * m
    x = residual - residual.mean(axis=0)
    excess_kurtosis = (x**4).mean(axis=0) / (x**2).mean(axis=0) ** 2 - 3.0
    assert (excess_kurtosis > 1.0).all(), excess_kurtosis


def test_single_names_show_volatility_clustering(universe: Universe, history: pd.DataFrame) -> None:
    """Lag-1 autocorrelation of squared returns: ≈ 0 ± 0.03 (2/√T) for i.i.d. returns, 0.20 for the real S&P 500."""
    sample = _us_non_tech(universe, 20)
    r = _returns(history, [f"EQ.{e.name}" for e in sample])
    acf = _acf1(r**2)
    assert np.median(acf) > 0.1, acf
    assert (acf > 0.05).all(), acf
    spx = _acf1(_returns(history, ["EQ.SPX"]) ** 2)[0]
    assert 0.15 < spx < 0.25


def test_high_beta_name_is_strongly_but_not_perfectly_correlated_with_the_market(
    universe: Universe, history: pd.DataFrame
) -> None:
    name = max(_us_non_tech(universe, 1000), key=lambda e: e.beta)
    assert name.beta >= 1.4
    r = _returns(history, [f"EQ.{name.name}", "EQ.SPX"])
    corr = np.corrcoef(r.T)[0, 1]
    assert 0.5 < corr < 0.9  # large-cap US stocks: 0.4–0.8 against the S&P 500
    realised_beta = np.cov(r.T)[0, 1] / r[:, 1].var()
    assert realised_beta == pytest.approx(name.beta, abs=0.2)


def test_foreign_names_follow_their_own_market(universe: Universe, history: pd.DataFrame) -> None:
    us = [f"EQ.{e.name}" for e in _us_non_tech(universe, 30)]
    jp = [f"EQ.{e.name}" for e in universe.equities if e.currency == "JPY"][:30]
    m = _returns(history, ["EQ.SPX"])[:, 0]
    corr_us = np.median([np.corrcoef(_returns(history, [f])[:, 0], m)[0, 1] for f in us])
    corr_jp = np.median([np.corrcoef(_returns(history, [f])[:, 0], m)[0, 1] for f in jp])
    assert corr_jp < corr_us - 0.2  # Tokyo closes before New York opens: low same-day correlation


def test_fx_volatilities_are_g10_like(history: pd.DataFrame) -> None:
    vols = history.filter(like="FX.").pct_change().std() * np.sqrt(252)
    assert vols.between(0.06, 0.13).all(), vols.to_dict()
    corr = history[["FX.EUR", "FX.CHF", "FX.AUD", "FX.NZD"]].pct_change().corr()
    assert corr.loc["FX.EUR", "FX.CHF"] > 0.6 and corr.loc["FX.AUD", "FX.NZD"] > 0.6


def test_rates_move_a_few_basis_points_a_day_and_stay_plausible(history: pd.DataFrame) -> None:
    daily_bp = history.filter(like="IR.").diff().std() * 1e4
    for ccy in ("USD", "EUR", "GBP"):
        assert daily_bp[f"IR.{ccy}.10Y"] == pytest.approx(6.0, abs=1.0)
    assert daily_bp["IR.JPY.10Y"] < daily_bp["IR.USD.10Y"]
    rates = history.filter(like="IR.")
    assert rates.to_numpy().min() > -0.03 and rates.to_numpy().max() < 0.12
    usd = history[[f"IR.USD.{t}" for t in TENORS]]
    assert (usd["IR.USD.30Y"] - usd["IR.USD.3M"]).mean() > 0  # upward sloping on average


def test_implied_vol_tracks_realised_vol_with_the_leverage_effect(history: pd.DataFrame) -> None:
    spx = history["EQ.SPX"].pct_change()
    vol = history["VOL.SPX"]
    realised = spx.rolling(21).std() * np.sqrt(252)
    assert np.corrcoef(vol.iloc[21:], realised.iloc[21:])[0, 1] > 0.8
    assert np.corrcoef(np.log(vol).diff().iloc[1:], spx.iloc[1:])[0, 1] < -0.3  # vol up when price down
    assert vol["2008"].mean() > 2 * vol["2017"].mean()  # the crisis against the calmest year on record
    assert (history.filter(like="VOL.") > 0.01).all().all()


def test_universe_rejects_inconsistent_descriptions() -> None:
    good = EquitySpec("ABC", "USD", "Financials", "AMER", 1.0)
    with pytest.raises(ConfigurationError, match="sector"):
        Universe((EquitySpec("ABC", "USD", "Shipping", "AMER", 1.0),))
    with pytest.raises(ConfigurationError, match="vol_underlyings"):
        Universe((good,), vol_underlyings=("XYZ",))
    with pytest.raises(ConfigurationError, match="indices"):
        Universe((good,), indices=("DAX",))
    with pytest.raises(ConfigurationError, match="currency"):
        Universe((EquitySpec("ABC", "BRL", "Financials", "AMER", 1.0),))
    with pytest.raises(ConfigurationError, match="unique"):
        Universe((good, good))


def test_a_custom_universe_gets_exactly_its_factors() -> None:
    names = (
        EquitySpec("XYZ-LN", "GBP", "Utilities", "EMEA", 0.6),
        EquitySpec("QRS-JT", "JPY", "Materials", "APAC", 1.1),
    )
    u = Universe(
        names, indices=("NASDAQ",), fx_currencies=("GBP", "JPY"), curves=("JPY",), vol_underlyings=("GBPJPY",)
    )
    h = synthetic_history(u, seed=3)
    assert list(h.columns) == list(u.factor_ids)
    assert h.shape == (5031, 1 + 2 + 2 + 12 + 1)
    assert np.isfinite(h.to_numpy()).all() and (h["VOL.GBPJPY"] > 0).all()
