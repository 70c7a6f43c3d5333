"""One-day VaR/ES forecast models: closed forms, fast paths against the reference loop, the rolling back-test."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from riskstream.errors import ConfigurationError, InsufficientHistoryError, InvalidFieldError, ModelError
from riskstream.risk import _forecast
from riskstream.risk._forecast import (
    FORECAST_MODELS,
    FilteredHistoricalSimulation,
    GarchModel,
    make_model,
    rolling_reference,
    run_backtest,
)
from riskstream.risk._parametric import student_t_unit_variance_var_es
from riskstream.scenarios import GarchParams, ewma_variance, garch_filter

# z = Phi^-1(0.99) = 2.3263479 and phi(z) / 0.01 = 2.6652142 (normal VaR / ES multipliers; Jorion, Value at Risk,
# 3rd ed., table 5-1; McNeil, Frey & Embrechts 2015, example 2.14)
Z99 = 2.3263479
ES99 = 2.6652142


@pytest.fixture(scope="module")
def sp500() -> pd.Series:
    """Real S&P 500 daily simple returns 1999-2018 (arch.data.sp500, adjusted close)."""
    import arch.data.sp500

    prices = arch.data.sp500.load()["Adj Close"]
    return prices.pct_change().dropna()


# --- single forecasts -----------------------------------------------------------------------------------------


def test_hs_by_hand() -> None:
    # 100 returns -0.01 .. -1.00 (shuffled): X_(1) = -1.00, X_(2) = -0.99, X_(3) = -0.98.
    # 99 %:   w = 1,   VaR = -X_(1) = 1.00, ES = 1.00
    # 97.5 %: w = 2.5, VaR = -X_(3) = 0.98, ES = (1.00 + 0.99 + 0.5 * 0.98) / 2.5 = 0.992 (Acerbi & Tasche 2002)
    window = np.random.default_rng(0).permutation(-np.arange(1, 101) / 100)
    hs = make_model("hs")
    assert hs.forecast(window, 0.99) == pytest.approx((1.00, 1.00))
    assert hs.forecast(window, 0.975) == pytest.approx((0.98, 0.992))


def test_hs_whole_tail_count_is_not_rounded_up() -> None:
    # 500 * (1 - 0.99) is 5.000000000000004 in binary: VaR must be the 5th worst return, not the 6th
    window = -np.arange(1, 501) / 1000
    var, es = make_model("hs").forecast(window, 0.99)
    assert var == pytest.approx(0.496)  # X_(5) = -0.496
    assert es == pytest.approx((0.500 + 0.499 + 0.498 + 0.497 + 0.496) / 5)


def test_parametric_normal_closed_form() -> None:
    window = np.random.default_rng(1).normal(0.0005, 0.012, 250)
    mu, sigma = window.mean(), window.std(ddof=1)
    var, es = make_model("parametric").forecast(window, 0.99)
    assert var == pytest.approx(Z99 * sigma - mu, rel=1e-7)
    assert es == pytest.approx(ES99 * sigma - mu, rel=1e-7)


def test_ewma_is_riskmetrics_normal() -> None:
    window = np.random.default_rng(2).normal(0.0, 0.01, 300)
    sigma = math.sqrt(ewma_variance(window, 0.94)[-1])
    var, es = make_model("ewma").forecast(window, 0.99)
    assert var == pytest.approx(Z99 * sigma, rel=1e-7)
    assert es == pytest.approx(ES99 * sigma, rel=1e-7)


def test_garch_t_quantile_matches_closed_form(sp500: pd.Series) -> None:
    window = sp500.to_numpy()[2000:2500]
    model = GarchModel(dist="t", mean="constant")
    fit_params = _forecast.fit_garch(window, model.spec()).params
    sigma = float(garch_filter(window, fit_params).forecast_vol)
    (nu,) = fit_params.dist_params
    # unit-variance Student-t VaR/ES: t_nu quantile scaled by sqrt((nu-2)/nu); ES = s (nu + t^2)/(nu - 1) f(t)/(1-a)
    var_cf, es_cf = student_t_unit_variance_var_es(0.99, nu, sigma, fit_params.mu)
    var, es = model.forecast(window, 0.99)
    assert var == pytest.approx(var_cf, rel=1e-6)
    assert es == pytest.approx(es_cf, rel=1e-6)


def test_skew_t_without_skew_is_student_t() -> None:
    # Hansen's skew-t with lambda = 0 is the unit-variance Student-t
    q_skew, tail_skew = _forecast._quantile_and_tail_mean(
        GarchParams(0.0, 1e-6, 0.05, 0.0, 0.9, dist_params=(7.0, 0.0), dist="skewt"), 0.99
    )
    q_t, tail_t = _forecast._quantile_and_tail_mean(
        GarchParams(0.0, 1e-6, 0.05, 0.0, 0.9, dist_params=(7.0,), dist="t"), 0.99
    )
    assert q_skew == pytest.approx(q_t, rel=1e-6)
    assert tail_skew == pytest.approx(tail_t, rel=1e-5)
    assert q_t == pytest.approx(stats.t.ppf(0.01, 7.0) * math.sqrt(5.0 / 7.0), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.integers(20, 300), elements=st.floats(-0.2, 0.2)),
    st.sampled_from(["hs", "parametric", "ewma"]),
)
def test_var_monotone_in_confidence_and_es_above_var(window: np.ndarray, method: str) -> None:
    model = make_model(method)
    v95, e95 = model.forecast(window, 0.95)
    v99, e99 = model.forecast(window, 0.99)
    assert v99 >= v95 - 1e-12
    assert e95 >= v95 - 1e-12 and e99 >= v99 - 1e-12


# --- fast paths against the reference loop --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["hs", "parametric", "ewma"])
@pytest.mark.parametrize("confidence", [0.99, 0.975])
def test_vectorised_rolling_matches_loop(sp500: pd.Series, method: str, confidence: float) -> None:
    returns = sp500.to_numpy()[:900]
    model = make_model(method)
    fast = model.rolling(returns, 250, confidence)
    ref = rolling_reference(model, returns, 250, confidence)
    assert fast.var.shape == (650,)
    np.testing.assert_allclose(fast.var, ref.var, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fast.es, ref.es, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("method", ["garch", "fhs"])
def test_garch_rolling_matches_loop_when_refitting_daily(sp500: pd.Series, method: str) -> None:
    returns = sp500.to_numpy()[2000:2305]
    model = make_model(method, refit_every=1, warm_start=False)
    fast = model.rolling(returns, 300, 0.99)
    ref = rolling_reference(model, returns, 300, 0.99)
    np.testing.assert_allclose(fast.var, ref.var, rtol=1e-12)
    np.testing.assert_allclose(fast.es, ref.es, rtol=1e-12)


def test_garch_refits_on_cadence_and_filters_in_between(sp500: pd.Series) -> None:
    returns = sp500.to_numpy()[2000:2307]
    model = FilteredHistoricalSimulation(refit_every=4, warm_start=False)
    fast = model.rolling(returns, 300, 0.99)
    # days 0 and 4 are refit days: identical to a fresh fit on that window
    for day in (0, 4):
        assert (fast.var[day], fast.es[day]) == pytest.approx(
            model.forecast(returns[day : day + 300], 0.99), rel=1e-12
        )
    # days 1-3 reuse day 0's parameters, filtered over their own window
    params = _forecast.fit_garch(returns[:300], model.spec()).params
    expected = model._from_filter(returns[2:302, np.newaxis], params, 0.99)
    assert fast.var[2] == pytest.approx(float(expected[0][0]), rel=1e-12)


def test_failed_refit_reuses_previous_parameters(monkeypatch: pytest.MonkeyPatch, sp500: pd.Series) -> None:
    real_fit = _forecast.fit_garch
    calls = {"n": 0}

    def flaky(returns: np.ndarray, spec: object, start: object = None) -> object:
        calls["n"] += 1
        if calls["n"] > 1:
            raise ModelError("did not converge")
        return real_fit(returns, spec, start=start)  # type: ignore[arg-type]

    monkeypatch.setattr(_forecast, "fit_garch", flaky)
    out = make_model("garch", refit_every=5).rolling(sp500.to_numpy()[:320], 300, 0.99)
    assert out.model_failures == 3  # refits at days 5, 10, 15 fail (warm and cold), day 0 succeeded
    assert np.all(np.isfinite(out.var))

    def broken(returns: np.ndarray, spec: object, start: object = None) -> object:
        raise ModelError("did not converge")

    monkeypatch.setattr(_forecast, "fit_garch", broken)
    with pytest.raises(ModelError, match="first window"):
        make_model("garch").rolling(sp500.to_numpy()[:320], 300, 0.99)


# --- run_backtest ---------------------------------------------------------------------------------------------


def test_run_backtest_alignment_and_progress(sp500: pd.Series) -> None:
    returns = sp500.iloc[:1000]
    seen: list[tuple[int, int]] = []
    result = run_backtest(
        returns, "hs", window=500, confidence=0.99, progress=lambda d, t: seen.append((d, t))
    )
    assert result.observations == 500
    assert result.dates[0] == returns.index[500] and result.dates[-1] == returns.index[-1]
    np.testing.assert_array_equal(result.returns, returns.to_numpy()[500:])
    assert seen[-1] == (500, 500) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    # the first forecast is the HS VaR of the 500 returns before it
    assert result.var[0] == pytest.approx(make_model("hs").forecast(returns.to_numpy()[:500], 0.99)[0])
    assert result.method == "hs" and result.window == 500


@pytest.mark.parametrize("method", sorted(FORECAST_MODELS))
def test_forecasts_do_not_look_ahead(sp500: pd.Series, method: str) -> None:
    returns = sp500.iloc[1500:1880].copy()
    options: dict[str, Any] = {"refit_every": 40} if method in ("garch", "fhs") else {}
    base = run_backtest(returns, method, window=300, **options)
    shocked = returns.copy()
    shocked.iloc[340:] *= 5.0  # change the future from forecast day 40 on
    after = run_backtest(shocked, method, window=300, **options)
    np.testing.assert_allclose(after.var[:41], base.var[:41], rtol=1e-12)
    assert not np.allclose(after.var[41:], base.var[41:])


def test_run_backtest_accepts_plain_arrays() -> None:
    returns = np.random.default_rng(3).normal(0.0, 0.01, 400)
    result = run_backtest(returns, "parametric", window=250, confidence=0.975)
    assert result.observations == 150 and result.dates[0] == pd.Timestamp("2000-01-03") + pd.offsets.BDay(250)


def test_run_backtest_errors(sp500: pd.Series) -> None:
    short = sp500.iloc[:600]
    with pytest.raises(ConfigurationError, match=r"'method'.*'var'.*known: hs"):
        run_backtest(short, "var")
    with pytest.raises(ConfigurationError, match=r"'lamda'.*unknown option.*lam"):
        run_backtest(short, "ewma", lamda=0.9)
    with pytest.raises(ConfigurationError, match=r"'window'.*10.*>= 50"):
        run_backtest(short, "garch", window=10)
    with pytest.raises(ConfigurationError, match=r"'confidence'.*1\.2"):
        run_backtest(short, "hs", confidence=1.2)
    with pytest.raises(ConfigurationError, match=r"'refit_every'.*0"):
        run_backtest(short, "fhs", refit_every=0)
    with pytest.raises(ConfigurationError, match=r"'dist'.*'cauchy'"):
        run_backtest(short, "fhs", dist="cauchy")
    with pytest.raises(InsufficientHistoryError, match=r"window=500.*got 500"):
        run_backtest(short.iloc[:-100], "hs")
    broken = short.copy()
    broken.iloc[7] = np.nan
    with pytest.raises(InvalidFieldError, match=r"'returns'.*nan.*1999-01-14"):
        run_backtest(broken, "hs")


@pytest.mark.slow
def test_fhs_passes_coverage_tests_on_sp500(sp500: pd.Series) -> None:
    # full 1999-2018 history (4530 forecasts): FHS with GJR skew-t passes Kupiec and Christoffersen at 5 %
    # (see docs/model_quality.md), plain HS does not
    assert run_backtest(sp500, "fhs", 500, 0.99).passes(0.05)
    assert not run_backtest(sp500, "hs", 500, 0.99).passes(0.05)
