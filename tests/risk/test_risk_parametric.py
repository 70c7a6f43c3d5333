"""Parametric VaR/ES: closed forms against published values, delta-normal, delta-gamma Cornish–Fisher."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from riskstream.errors import ConfigurationError, InvalidFieldError
from riskstream.risk import (
    NormalEstimator,
    cornish_fisher_var_es,
    delta_gamma_cornish_fisher,
    delta_normal,
    normal_var_es,
    student_t_unit_variance_var_es,
    student_t_var_es,
)


def test_standard_normal_var_and_es_at_99() -> None:
    var, es = normal_var_es(0.99)
    # N(0,1) quantile z(0.99) = 2.326348 (closed form, scipy.stats.norm.ppf; any normal table)
    assert var == pytest.approx(2.326348, abs=1e-6)
    # ES multiplier φ(z)/(1 − α) at 0.99 = 2.665214 (closed form φ(2.326348)/0.01; McNeil-Frey-Embrechts ex. 2.14)
    assert es == pytest.approx(2.665214, abs=1e-6)


def test_normal_var_and_es_at_975() -> None:
    # z(0.975) = 1.959964 and φ(z)/0.025 = 2.337803 (closed form; normal table); σ = 2, mean gain μ = 0.5
    var, es = normal_var_es(0.975, sigma=2.0, mu=0.5)
    assert var == pytest.approx(2 * 1.959964 - 0.5, abs=1e-5)
    assert es == pytest.approx(2 * 2.337803 - 0.5, abs=1e-5)


def test_student_t_var_and_es() -> None:
    var, es = student_t_var_es(0.975, dof=4)
    # t_4(0.975) = 2.776445 (Student-t table, 4 d.o.f., two-sided 5 %)
    assert var == pytest.approx(2.776445, abs=1e-6)
    # standard t: ES = (ν + t²)/(ν − 1) · f_ν(t)/(1 − α) = 3.993557 for ν = 4, α = 0.975 (closed form,
    # McNeil-Frey-Embrechts 2015 ex. 2.15, evaluated with scipy.stats.t)
    assert es == pytest.approx(3.993557, abs=1e-6)
    scaled = student_t_var_es(0.975, dof=4, scale=3.0, mu=1.0)
    assert scaled == pytest.approx((3 * 2.776445 - 1.0, 3 * 3.993557 - 1.0), abs=1e-5)


def test_unit_variance_student_t() -> None:
    # unit-variance t = standard t · sqrt((ν − 2)/ν): for ν = 4 the factor is sqrt(1/2)
    var, es = student_t_unit_variance_var_es(0.975, dof=4, sigma=2.0)
    assert var == pytest.approx(2.0 * math.sqrt(0.5) * 2.776445, abs=1e-5)
    assert es == pytest.approx(2.0 * math.sqrt(0.5) * 3.993557, abs=1e-5)
    # the rescaling gives unit variance: Var[T·sqrt(1/2)] = ν/(ν − 2)/2 = 1 for ν = 4 (closed form)
    assert stats.t.var(4, scale=math.sqrt(0.5)) == pytest.approx(1.0)
    # and with many degrees of freedom it tends to the normal closed form
    assert student_t_unit_variance_var_es(0.99, dof=1e7) == pytest.approx(normal_var_es(0.99), rel=1e-6)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: student_t_var_es(0.99, dof=1.0), "dof"),
        (lambda: student_t_unit_variance_var_es(0.99, dof=2.0), "dof"),
        (lambda: normal_var_es(0.99, sigma=-1.0), "sigma"),
        (lambda: normal_var_es(1.5), "confidence"),
        (lambda: cornish_fisher_var_es(0.99, 0.0, 1.0, float("nan"), 0.0), "skewness"),
    ],
)
def test_bad_parameters_are_rejected(call: object, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        call()  # type: ignore[operator]
    assert info.value.field == field


COV = np.array([[1.0, 0.3], [0.3, 2.0]])
DELTA = np.array([1.0, 2.0])


def test_delta_normal_by_hand() -> None:
    risk = delta_normal(DELTA, COV, 0.99)
    # δᵀΣδ = 1 + 2·(1·2·0.3) + 4·2 = 10.2, σ_p = sqrt(10.2) = 3.193744 (hand computation)
    assert risk.sigma == pytest.approx(3.193744, abs=1e-6)
    assert risk.var == pytest.approx(2.326348 * 3.193744, abs=1e-5)
    # Σδ = (1.6, 4.3); components δ_i(Σδ)_i/σ_p·z = (1.6, 8.6)/3.193744·2.326348 = (1.165452, 6.264307)
    np.testing.assert_allclose(risk.component_var, [1.165452, 6.264307], atol=1e-6)
    assert risk.component_var.sum() == pytest.approx(risk.var, rel=1e-12)
    assert risk.component_es.sum() == pytest.approx(risk.es, rel=1e-12)
    assert risk.es == pytest.approx(2.665214 * 3.193744, abs=1e-5)


def test_delta_normal_rejects_bad_covariance() -> None:
    with pytest.raises(InvalidFieldError):
        delta_normal(DELTA, [[1.0, 0.5], [0.3, 2.0]], 0.99)  # asymmetric
    with pytest.raises(InvalidFieldError):
        delta_normal(DELTA, np.eye(3), 0.99)  # wrong shape
    with pytest.raises(InvalidFieldError):
        delta_normal(np.array([1.0, 1.0]), [[1.0, -2.0], [-2.0, 1.0]], 0.99)  # δᵀΣδ = −2


def test_delta_gamma_without_gamma_is_delta_normal() -> None:
    dg = delta_gamma_cornish_fisher(DELTA, np.zeros((2, 2)), COV, 0.99)
    dn = delta_normal(DELTA, COV, 0.99)
    assert (dg.skewness, dg.excess_kurtosis, dg.mean) == (0.0, 0.0, 0.0)
    assert dg.var == pytest.approx(dn.var, rel=1e-12)
    assert dg.es == pytest.approx(dn.es, rel=1e-12)


def test_cornish_fisher_moments_of_the_chi_square_case() -> None:
    # one factor, δ = 0: P&L = ½γσ²·χ²₁, whose cumulants are ½γσ²·(1, 2, 8, 48)·(½γσ²)^(r−1) (χ²₁ cumulants
    # κ_r = 2^(r−1)(r − 1)!): mean ½γσ², std γσ²/√2, skewness √8 = 2.828427, excess kurtosis 12
    gamma, sigma = 3.0, 0.2
    risk = delta_gamma_cornish_fisher([0.0], [[gamma]], [[sigma**2]], 0.99)
    assert risk.mean == pytest.approx(0.5 * gamma * sigma**2, rel=1e-12)
    assert risk.std == pytest.approx(gamma * sigma**2 / math.sqrt(2), rel=1e-12)
    assert risk.skewness == pytest.approx(math.sqrt(8), rel=1e-12)
    assert risk.excess_kurtosis == pytest.approx(12.0, rel=1e-12)
    short = delta_gamma_cornish_fisher([0.0], [[-gamma]], [[sigma**2]], 0.99)
    assert short.skewness == pytest.approx(-math.sqrt(8), rel=1e-12)


@pytest.mark.parametrize(("k", "tolerance"), [(20, 2e-3), (50, 5e-4)])
def test_cornish_fisher_quantile_of_a_short_gamma_book(k: int, tolerance: float) -> None:
    # Γ = −I, Σ = I over k factors: P&L = −½χ²_k exactly, so VaR = ½·χ²_k(0.99) and ES = ½·k·P(χ²_{k+2} > q)/0.01
    # (closed form: E[χ²_k; χ²_k > q] = k·P(χ²_{k+2} > q)). CF is an approximation, close when skewness is small.
    risk = delta_gamma_cornish_fisher(np.zeros(k), -np.eye(k), np.eye(k), 0.99)
    q = stats.chi2.ppf(0.99, k)
    assert risk.var == pytest.approx(0.5 * q, rel=tolerance)
    assert risk.es == pytest.approx(0.5 * k * stats.chi2.sf(q, k + 2) / 0.01, rel=5 * tolerance)


def _random_book(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3, 3))
    b = rng.normal(size=(3, 3))
    return np.array([1.0, -0.5, 0.8]), (a + a.T) / 2, b @ b.T / 3 + 0.1 * np.eye(3)


def _simulate(delta: np.ndarray, gamma: np.ndarray, cov: np.ndarray, size: int = 400_000) -> np.ndarray:
    x = np.random.default_rng(99).multivariate_normal(np.zeros(len(delta)), cov, size=size)
    return x @ delta + 0.5 * np.einsum("si,ij,sj->s", x, gamma, x)


def test_delta_gamma_moments_match_monte_carlo() -> None:
    delta, gamma, cov = _random_book(2024)
    risk = delta_gamma_cornish_fisher(delta, gamma, cov, 0.99)
    pnl = _simulate(delta, gamma, cov)
    # sample moments of 400k seeded draws; tolerances cover the sampling error of the higher moments
    assert pnl.mean() == pytest.approx(risk.mean, abs=0.02 * risk.std)
    assert pnl.std() == pytest.approx(risk.std, rel=0.01)
    assert stats.skew(pnl) == pytest.approx(risk.skewness, abs=0.05)
    assert stats.kurtosis(pnl) == pytest.approx(risk.excess_kurtosis, abs=0.3)


def test_delta_gamma_cornish_fisher_is_close_to_monte_carlo_for_mild_gamma() -> None:
    # with skewness ≈ 0.2 and excess kurtosis ≈ 0.6 the expansion is accurate; with kurtosis ≈ 3.7 (full gamma
    # of the book above) it overstates the 99 % loss quantile by ~8 %, a known limit of Cornish–Fisher
    delta, gamma, cov = _random_book(2024)
    risk = delta_gamma_cornish_fisher(delta, 0.3 * gamma, cov, 0.99)
    pnl = _simulate(delta, 0.3 * gamma, cov)
    q = np.quantile(pnl, 0.01)
    assert -q == pytest.approx(risk.var, rel=0.02)
    assert -pnl[pnl <= q].mean() == pytest.approx(risk.es, rel=0.02)


def test_cornish_fisher_without_skew_or_kurtosis_is_normal() -> None:
    risk = cornish_fisher_var_es(0.975, mean=0.3, std=2.0, skewness=0.0, excess_kurtosis=0.0)
    assert (risk.var, risk.es) == pytest.approx(normal_var_es(0.975, sigma=2.0, mu=0.3), rel=1e-12)


def test_normal_estimator_fits_moments_and_decomposes() -> None:
    rng = np.random.default_rng(11)
    rows = rng.normal(0.1, 1.0, size=(4, 500))
    node = rows.sum(axis=0)
    estimator = NormalEstimator(0.99, horizon_days=1)
    estimate = estimator.estimate(node)
    z, m = normal_var_es(0.99)
    assert estimate.var == pytest.approx(z * node.std(ddof=1) - node.mean(), rel=1e-12)
    assert estimate.es == pytest.approx(m * node.std(ddof=1) - node.mean(), rel=1e-12)
    assert estimate.names == ("var_99_1d", "es_99_1d")
    w_var, w_es = estimator.tail_weights(node)
    # Euler components −μ_i + z·cov(x_i, X)/σ_X sum to the node's VaR
    component = -(rows @ w_var)
    expected = -rows.mean(axis=1) + z * np.array([np.cov(r, node)[0, 1] for r in rows]) / node.std(ddof=1)
    np.testing.assert_allclose(component, expected, rtol=1e-10)
    assert component.sum() == pytest.approx(estimate.var, rel=1e-12)
    assert -(rows @ w_es).sum() == pytest.approx(estimate.es, rel=1e-12)
    with pytest.raises(InvalidFieldError):
        estimator.var_es([1.0])
