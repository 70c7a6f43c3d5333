"""EWMA and GARCH volatility filters and the filtered-historical-simulation rescaling."""

from __future__ import annotations

import math
import types

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from riskstream.errors import (
    ConfigurationError,
    EmptyInputError,
    InsufficientHistoryError,
    InvalidFieldError,
    ModelError,
)
from riskstream.scenarios import (
    RISKMETRICS_LAMBDA,
    GarchParams,
    GarchSpec,
    ewma_filter,
    ewma_variance,
    ewma_variance_reference,
    filtered_historical_returns,
    fit_garch,
    garch_backcast,
    garch_filter,
    garch_variance_reference,
)


@pytest.fixture(scope="module")
def sp500_returns() -> np.ndarray:
    """500 real S&P 500 daily simple returns (2003-2004), shipped by arch."""
    import arch.data.sp500

    prices = arch.data.sp500.load()["Adj Close"]
    return prices.pct_change().dropna().to_numpy()[1000:1500]


def _simulate_gjr_t(n: int, seed: int) -> np.ndarray:
    """Simulate a GJR-GARCH(1,1) with Student-t(6) unit-variance innovations, daily returns as fractions."""
    rng = np.random.default_rng(seed)
    omega, alpha, gamma, beta, nu = 2e-6, 0.05, 0.08, 0.88, 6.0
    z = rng.standard_t(nu, n) * math.sqrt((nu - 2) / nu)
    r = np.empty(n)
    s2 = omega / (1 - alpha - gamma / 2 - beta)
    for t in range(n):
        r[t] = math.sqrt(s2) * z[t]
        s2 = omega + (alpha + gamma * (r[t] < 0)) * r[t] ** 2 + beta * s2
    return r


# --- EWMA -----------------------------------------------------------------------------------------------------


def test_ewma_three_returns_by_hand() -> None:
    # RiskMetrics recursion sigma2[t+1] = 0.94 sigma2[t] + 0.06 r[t]^2 (RiskMetrics Technical Document 1996,
    # eq. 5.3) by hand, from sigma2[0] = 1e-4:
    #   sigma2[1] = 0.94 * 1e-4     + 0.06 * 0.01^2  = 1.0e-4
    #   sigma2[2] = 0.94 * 1.0e-4   + 0.06 * 0.02^2  = 0.94e-4 + 0.24e-4   = 1.18e-4
    #   sigma2[3] = 0.94 * 1.18e-4  + 0.06 * 0.015^2 = 1.1092e-4 + 0.135e-4 = 1.2442e-4
    expected = [1.0e-4, 1.0e-4, 1.18e-4, 1.2442e-4]
    r = [0.01, -0.02, 0.015]
    np.testing.assert_allclose(ewma_variance(r, 0.94, 1e-4), expected, rtol=1e-12)
    np.testing.assert_allclose(ewma_variance_reference(r, 0.94, 1e-4), expected, rtol=1e-12)


def test_ewma_default_initialisation_is_mean_square() -> None:
    # sigma2[0] = mean(r^2) = (1e-4 + 4e-4 + 2.25e-4) / 3 = 7.25e-4 / 3
    r = [0.01, -0.02, 0.015]
    assert ewma_variance(r)[0] == pytest.approx(7.25e-4 / 3, rel=1e-12)
    assert RISKMETRICS_LAMBDA == 0.94


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 60), st.integers(1, 4)), elements=st.floats(-0.2, 0.2)),
    st.floats(0.5, 0.99),
)
def test_ewma_vectorised_matches_loop_per_column(returns: np.ndarray, lam: float) -> None:
    fast = ewma_variance(returns, lam)
    assert fast.shape == (returns.shape[0] + 1, returns.shape[1])
    for j in range(returns.shape[1]):
        np.testing.assert_allclose(
            fast[:, j], ewma_variance_reference(returns[:, j], lam), rtol=1e-10, atol=1e-18
        )


def test_ewma_filter_outputs(sp500_returns: np.ndarray) -> None:
    f = ewma_filter(sp500_returns)
    var = ewma_variance(sp500_returns)
    np.testing.assert_allclose(f.conditional_vol, np.sqrt(var[:-1]))
    assert isinstance(f.forecast_vol, float)
    assert f.forecast_vol == pytest.approx(math.sqrt(var[-1]))
    np.testing.assert_allclose(f.standardized_residuals, sp500_returns / f.conditional_vol)
    # a column with no moves keeps vol 0 and residual 0 instead of 0/0
    flat = ewma_filter(np.column_stack([sp500_returns, np.zeros_like(sp500_returns)]))
    assert np.all(flat.conditional_vol[:, 1] == 0) and np.all(flat.standardized_residuals[:, 1] == 0)


def test_ewma_rejects_bad_input() -> None:
    with pytest.raises(ConfigurationError, match=r"'lam'.*1.5"):
        ewma_variance([0.01], lam=1.5)
    with pytest.raises(InvalidFieldError, match=r"'returns'.*nan"):
        ewma_variance([0.01, float("nan")])
    with pytest.raises(EmptyInputError, match="returns"):
        ewma_variance([])


# --- GARCH ----------------------------------------------------------------------------------------------------

SPECS = [
    GarchSpec("normal", "zero", False),
    GarchSpec("t", "constant", False),
    GarchSpec("skewt", "constant", True),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.dist}-{s.mean}-{'gjr' if s.asymmetric else 'sym'}")
def test_fit_garch_matches_arch(sp500_returns: np.ndarray, spec: GarchSpec) -> None:
    fit = fit_garch(sp500_returns, spec)
    # arch itself on percent returns: our outputs are its outputs divided by 100
    res = arch_model(
        sp500_returns * 100, mean=spec.mean, p=1, o=int(spec.asymmetric), q=1, dist=spec.dist
    ).fit(disp="off")
    np.testing.assert_allclose(fit.conditional_vol * 100, res.conditional_volatility, rtol=1e-8)
    np.testing.assert_allclose(fit.standardized_residuals, res.std_resid, rtol=1e-8, atol=1e-10)
    arch_forecast = math.sqrt(float(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0])) / 100
    # arch's forecast restarts the recursion from a backcast of the fitted-mean residuals, its fit from the
    # sample-mean ones (which our filter follows): the two differ by ~1e-6 relative after 500 days.
    assert fit.forecast_vol == pytest.approx(arch_forecast, rel=1e-5)
    assert fit.forecast_vol == pytest.approx(
        float(garch_filter(sp500_returns, fit.params).forecast_vol), rel=1e-14
    )
    assert fit.params.omega == pytest.approx(res.params["omega"] / 1e4, rel=1e-8)
    assert len(fit.params.dist_params) == {"normal": 0, "t": 1, "skewt": 2}[spec.dist]
    assert fit.params.to_dict()["dist"] == spec.dist


def test_fit_garch_recovers_simulated_parameters() -> None:
    r = _simulate_gjr_t(3000, seed=7)
    p = fit_garch(r, GarchSpec("t", "zero", True)).params
    # true values 0.05, 0.08, 0.88, nu 6; standard errors at T = 3000 are of order 0.01-0.03 and ~1 for nu
    assert p.alpha == pytest.approx(0.05, abs=0.04)
    assert p.gamma == pytest.approx(0.08, abs=0.06)
    assert p.beta == pytest.approx(0.88, abs=0.05)
    assert p.dist_params[0] == pytest.approx(6.0, abs=2.5)


def test_fit_garch_warm_start_agrees(sp500_returns: np.ndarray) -> None:
    spec = GarchSpec("t", "constant", True)
    cold = fit_garch(sp500_returns, spec)
    warm = fit_garch(sp500_returns, spec, start=cold.params)
    # the likelihood is flat near its maximum: a warm start climbs at least as high, parameters within ~1 %
    assert warm.loglikelihood >= cold.loglikelihood - 1e-3
    assert warm.forecast_vol == pytest.approx(cold.forecast_vol, rel=1e-2)


def test_garch_filter_vectorised_matches_loop(sp500_returns: np.ndarray) -> None:
    params = GarchParams(mu=3e-4, omega=2e-6, alpha=0.04, gamma=0.1, beta=0.9, mean="constant")
    fast = garch_filter(sp500_returns, params)
    ref = garch_variance_reference(sp500_returns, params)
    np.testing.assert_allclose(fast.conditional_vol, np.sqrt(ref[:-1]), rtol=1e-12)
    assert fast.forecast_vol == pytest.approx(math.sqrt(ref[-1]), rel=1e-12)
    matrix = np.column_stack([sp500_returns, -sp500_returns, 2 * sp500_returns])
    wide = garch_filter(matrix, params)
    for j in range(matrix.shape[1]):
        np.testing.assert_allclose(
            wide.conditional_vol[:, j], garch_filter(matrix[:, j], params).conditional_vol
        )
    assert np.shape(wide.forecast_vol) == (3,)


def test_garch_backcast_is_arch_weighting() -> None:
    # arch's GARCH.backcast: weights 0.94^i over the first min(75, T) squared residuals, normalised;
    # for two residuals 0.01 and 0.02: (1 * 1e-4 + 0.94 * 4e-4) / 1.94 = 4.76e-4 / 1.94
    assert garch_backcast([0.01, 0.02]) == pytest.approx(4.76e-4 / 1.94, rel=1e-12)


def test_fit_garch_errors(monkeypatch: pytest.MonkeyPatch, sp500_returns: np.ndarray) -> None:
    with pytest.raises(InsufficientHistoryError, match="49"):
        fit_garch(sp500_returns[:49])
    import arch.univariate.base as base

    def not_converged(self: object, **kwargs: object) -> types.SimpleNamespace:
        params = pd.Series({"mu": 0.0, "omega": 0.1, "alpha[1]": 0.1, "beta[1]": 0.8, "nu": 8.0})
        return types.SimpleNamespace(params=params, convergence_flag=9, loglikelihood=0.0)

    monkeypatch.setattr(base.ARCHModel, "fit", not_converged)
    with pytest.raises(ModelError, match=r"did not converge.*flag 9"):
        fit_garch(sp500_returns)

    def explodes(self: object, **kwargs: object) -> None:
        raise ValueError("array must not contain infs or NaNs")

    monkeypatch.setattr(base.ARCHModel, "fit", explodes)
    with pytest.raises(ModelError, match="GARCH fit failed"):
        fit_garch(sp500_returns)


def test_fit_garch_on_badly_scaled_data_emits_no_warning(sp500_returns: np.ndarray) -> None:
    # pytest turns warnings into errors: arch's DataScaleWarning / ConvergenceWarning must not escape
    try:
        fit_garch(sp500_returns * 1e-4)
    except ModelError:
        pass


def test_garch_spec_validation() -> None:
    with pytest.raises(ConfigurationError, match=r"'dist'.*'cauchy'"):
        GarchSpec(dist="cauchy")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'params'"):
        garch_filter([0.01, 0.02], GarchParams(mu=0.0, omega=-1.0, alpha=0.1, gamma=0.0, beta=0.8))


# --- filtered historical simulation ---------------------------------------------------------------------------


def test_filtered_historical_returns_by_hand() -> None:
    # Hull & White (1998): r * sigma_forecast / sigma_t: 0.02 * 0.015 / 0.01 = 0.03; -0.01 * 0.015 / 0.02 = -0.0075
    out = filtered_historical_returns([0.02, -0.01], [0.01, 0.02], 0.015)
    np.testing.assert_allclose(out, [0.03, -0.0075])
    # with a mean: 0.001 + (0.021 - 0.001) * 1.5 = 0.031
    assert filtered_historical_returns([0.021], [0.01], 0.015, mean=0.001)[0] == pytest.approx(0.031)


def test_filtered_historical_returns_matrix(sp500_returns: np.ndarray) -> None:
    matrix = np.column_stack([sp500_returns, 0.5 * sp500_returns])
    f = ewma_filter(matrix)
    scen = filtered_historical_returns(matrix, f.conditional_vol, f.forecast_vol)
    assert scen.shape == matrix.shape
    # each column is rescaled by its own vols: residual times forecast vol
    np.testing.assert_allclose(scen, f.standardized_residuals * f.forecast_vol)
    # each column alone gives the same scenarios as in the matrix
    forecast = np.asarray(f.forecast_vol)
    alone = filtered_historical_returns(matrix[:, 1], f.conditional_vol[:, 1], float(forecast[1]))
    np.testing.assert_allclose(scen[:, 1], alone)
    with pytest.raises(InvalidFieldError, match="'conditional_vol'"):
        filtered_historical_returns(matrix, f.conditional_vol[:, 0], 0.01)
