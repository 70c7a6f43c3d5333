"""Scenario generators: historical, filtered historical, Monte Carlo, stress."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from riskstream.domain import MarketSnapshot, ShockType
from riskstream.errors import (
    ConfigurationError,
    EmptyInputError,
    InsufficientHistoryError,
    InvalidFieldError,
    MissingFactorError,
    MissingFieldError,
)
from riskstream.scenarios import (
    FilteredHistoricalScenarios,
    HistoricalScenarios,
    HistoricalStress,
    MonteCarloScenarios,
    apply_shocks,
    covariance_of_changes,
    load_stress_file,
    psd_factor,
    stress_library,
    worst_window_scenarios,
)

FACTORS = ("EQ.A", "IR.USD.1Y")


def small_history() -> pd.DataFrame:
    dates = pd.bdate_range("2020-01-01", periods=5)
    return pd.DataFrame(
        {"EQ.A": [100.0, 110.0, 99.0, 99.0, 108.9], "IR.USD.1Y": [0.01, 0.012, 0.011, 0.015, 0.015]},
        index=dates,
    )


def snapshot() -> MarketSnapshot:
    return MarketSnapshot(date(2020, 1, 8), {"EQ.A": 50.0, "IR.USD.1Y": 0.02})


def test_historical_one_day_by_hand() -> None:
    # Hand computation: EQ.A relative changes 110/100−1 = 0.10, 99/110−1 = −0.10, 0, 108.9/99−1 = 0.10;
    # IR absolute changes +0.002, −0.001, +0.004, 0. Applied to today's 50 and 2 %.
    s = HistoricalScenarios(window=4).generate(snapshot(), small_history(), FACTORS)
    np.testing.assert_allclose(s.changes[:, 0], [0.10, -0.10, 0.0, 0.10], atol=1e-12)
    np.testing.assert_allclose(s.changes[:, 1], [0.002, -0.001, 0.004, 0.0], atol=1e-12)
    np.testing.assert_allclose(s.market.levels[:, 0], [55.0, 45.0, 50.0, 55.0])
    np.testing.assert_allclose(s.market.levels[:, 1], [0.022, 0.019, 0.024, 0.02])
    assert s.labels == ("2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07")
    assert s.shock_types == (ShockType.RELATIVE, ShockType.ABSOLUTE)


def test_historical_overlapping_two_day_by_hand() -> None:
    # 2-day overlapping changes of EQ.A: 99/100−1 = −0.01, 99/110−1 = −0.1, 108.9/99−1 = 0.1
    s = HistoricalScenarios(window=3, horizon_days=2).generate(snapshot(), small_history(), FACTORS)
    np.testing.assert_allclose(s.changes[:, 0], [-0.01, 99 / 110 - 1, 0.1], atol=1e-12)
    assert s.horizon_days == 2


def test_sqrt_time_scales_relative_multiplicatively_and_absolute_linearly() -> None:
    s = HistoricalScenarios(window=4, horizon_days=10, horizon_rule="sqrt_time").generate(
        snapshot(), small_history(), FACTORS
    )
    root = math.sqrt(10)
    np.testing.assert_allclose(s.changes[0, 0], 1.1**root - 1)  # (1+r)^√h − 1
    np.testing.assert_allclose(s.changes[0, 1], 0.002 * root)  # √h·d
    assert np.all(s.market.levels[:, 0] > 0)


def test_historical_errors_name_the_problem() -> None:
    with pytest.raises(InsufficientHistoryError, match="needs 6"):
        HistoricalScenarios(window=5).generate(snapshot(), small_history(), FACTORS)
    with pytest.raises(MissingFactorError, match=r"EQ\.B"):
        HistoricalScenarios(window=2).generate(snapshot(), small_history(), ("EQ.B",))
    with pytest.raises(ConfigurationError, match="horizon_rule"):
        HistoricalScenarios(horizon_rule="cubic")  # type: ignore[arg-type]
    bad = small_history()
    bad.iloc[2, 0] = np.nan
    with pytest.raises(InvalidFieldError, match=r"EQ\.A"):
        HistoricalScenarios(window=4).generate(snapshot(), bad, FACTORS)


def garch_like_history(n: int = 1500, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vol = np.where(np.arange(n) < n - 100, 0.01, 0.03)  # a calm regime, then a volatile last 100 days
    r = vol * rng.standard_normal(n)
    dates = pd.bdate_range("2010-01-01", periods=n + 1)
    return pd.DataFrame({"EQ.A": 100 * np.cumprod(np.r_[1.0, 1 + r])}, index=dates)


def test_filtered_hs_rescales_calm_history_to_todays_volatility() -> None:
    hist = garch_like_history()
    snap = MarketSnapshot(date(2016, 1, 1), {"EQ.A": 100.0})
    plain = HistoricalScenarios(window=500).generate(snap, hist, ("EQ.A",))
    fhs = FilteredHistoricalScenarios(window=500).generate(snap, hist, ("EQ.A",))
    # the window is 80 % calm days: plain HS understates today's 3 % vol, FHS rescales towards it
    assert plain.changes.std() < 0.02
    assert 0.022 < fhs.changes.std() < 0.04
    assert fhs.labels == plain.labels


def test_filtered_hs_ratio_equals_ewma_forecast_over_conditional_vol() -> None:
    # Reference: RiskMetrics EWMA by hand, scenario = r_t · σ_{T+1} / σ_t
    hist = garch_like_history(700, seed=3)
    snap = MarketSnapshot(date(2016, 1, 1), {"EQ.A": 100.0})
    gen = FilteredHistoricalScenarios(window=300, warmup=100)
    out = gen.generate(snap, hist, ("EQ.A",))
    levels = hist["EQ.A"].to_numpy()[-(300 + 1 + 1 + 100) :]
    r = levels[1:] / levels[:-1] - 1
    s2 = [float(np.mean(r**2))]
    for x in r:
        s2.append(0.94 * s2[-1] + 0.06 * x * x)
    sig = np.sqrt(s2)
    expected = r[-300:] * sig[-1] / sig[-301:-1]
    np.testing.assert_allclose(out.changes[:, 0], expected, rtol=1e-10)


def test_monte_carlo_recovers_covariance_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    true_cov = np.array([[1e-4, 0.5e-4], [0.5e-4, 4e-4]])
    x = rng.multivariate_normal([0, 0], true_cov, size=501)
    dates = pd.bdate_range("2015-01-01", periods=502)
    hist = pd.DataFrame(
        {"EQ.A": 100 * np.cumprod(np.r_[1.0, 1 + x[:, 0]]), "EQ.B": 50 * np.cumprod(np.r_[1.0, 1 + x[:, 1]])},
        index=dates,
    )
    snap = MarketSnapshot(date(2017, 1, 1), {"EQ.A": 100.0, "EQ.B": 50.0})
    gen = MonteCarloScenarios(n_paths=200_000, window=500, seed=7)
    fitted = gen.fit(snap, hist, ("EQ.A", "EQ.B"))
    s = gen.generate(snap, hist, ("EQ.A", "EQ.B"))
    # antithetic pairs: the sample mean is exactly zero; the sample covariance matches the fitted one (2 %)
    np.testing.assert_allclose(s.changes.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(np.cov(s.changes, rowvar=False), fitted, rtol=0.02)
    again = MonteCarloScenarios(n_paths=200_000, window=500, seed=7).generate(snap, hist, ("EQ.A", "EQ.B"))
    np.testing.assert_array_equal(s.changes, again.changes)
    t = MonteCarloScenarios(n_paths=200_000, window=500, seed=7, distribution="t", dof=5).generate(
        snap, hist, ("EQ.A", "EQ.B")
    )
    # scaled Student-t keeps the covariance; excess kurtosis of t(5) is 6/(ν−4) = 6 (closed form)
    np.testing.assert_allclose(np.cov(t.changes, rowvar=False), fitted, rtol=0.05)
    z = t.changes[:, 0] / t.changes[:, 0].std()
    assert np.mean(z**4) - 3 > 2.0


def test_ewma_covariance_weights_recent_days() -> None:
    x = np.array([[0.0], [0.0], [1.0]])
    # weights (1−λ)λ^i normalised: last day's weight 0.06/(0.06(1+0.94+0.94²)) = 1/2.8236
    assert covariance_of_changes(x, "ewma")[0, 0] == pytest.approx(1 / (1 + 0.94 + 0.94**2))


def test_psd_factor_handles_rank_deficient_covariance() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 20))  # 5 days, 20 factors: rank ≤ 4
    cov = np.cov(x, rowvar=False)
    a = psd_factor(cov)
    np.testing.assert_allclose(a @ a.T, cov, atol=1e-12)


def test_stress_file_csv_patterns_and_types(tmp_path) -> None:
    f = tmp_path / "my.csv"
    f.write_text("factor,shift,type\nEQ.*,-0.25,\nIR.USD.1Y,0.01,absolute\n")
    sc = load_stress_file(f)
    s = sc.generate(snapshot(), FACTORS)
    np.testing.assert_allclose(s.market.levels[0], [37.5, 0.03])


def test_stress_file_json_and_errors(tmp_path) -> None:
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"name": "mine", "shocks": [{"factor": "EQ.A", "shift": -0.5}]}))
    assert load_stress_file(f).name == "mine"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(EmptyInputError, match=r"empty\.csv"):
        load_stress_file(empty)
    bad = tmp_path / "bad.csv"
    bad.write_text("factor,shift\nEQ.A,minus ten\n")
    with pytest.raises(InvalidFieldError, match="'shift' has invalid value 'minus ten'"):
        load_stress_file(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("factor\nEQ.A\n")
    with pytest.raises(MissingFieldError, match="shift"):
        load_stress_file(missing)
    crash = tmp_path / "crash.csv"
    crash.write_text("factor,shift,type\nEQ.A,-1.5,relative\n")
    with pytest.raises(InvalidFieldError, match="−1"):
        load_stress_file(crash)


def test_historical_stress_period_replays_the_move() -> None:
    hist = small_history()
    s = HistoricalStress("x", date(2020, 1, 1), date(2020, 1, 3)).generate(snapshot(), hist, FACTORS)
    np.testing.assert_allclose(s.changes[0], [99 / 100 - 1, 0.001], atol=1e-12)
    assert s.horizon_days == 2


def test_worst_window_scenarios_cover_every_window() -> None:
    s = worst_window_scenarios(snapshot(), small_history(), FACTORS, horizon_days=2)
    assert s.n_scenarios == 3
    assert s.labels[0] == "2020-01-01→2020-01-03"


def test_library_contains_crises_in_the_shipped_history() -> None:
    lib = stress_library()
    assert {"gfc-2008", "equity-crash", "rates-up-200bp"} <= set(lib)


def test_apply_shocks_floors_relative_moves() -> None:
    m = apply_shocks(snapshot(), FACTORS, np.array([[-2.0, 0.0]]), (ShockType.RELATIVE, ShockType.ABSOLUTE))
    assert m.levels[0, 0] > 0
