"""Parametric VaR and ES: normal, Student-t, delta-normal and delta-gamma (Cornish–Fisher) closed forms.

Same conventions as the rest of ``riskstream.risk``: P&L is positive for a gain, VaR and ES are positive losses,
``confidence`` is α ∈ (0, 1) and p = 1 − α is the tail probability. ``mu`` is always the **mean P&L** (a gain
lowers the loss figures) and ``sigma`` its standard deviation, both in currency units over the horizon of the
inputs; nothing here rescales horizons (see :func:`riskstream.risk.scale_horizon`).

With P&L = μ + σ·Z and L = −P&L the loss:

* normal:      VaR = σ·z_α − μ,  ES = σ·φ(z_α)/(1 − α) − μ, z_α = Φ⁻¹(α)
* Student-t:   VaR = s·t_ν(α) − μ, ES = s·(ν + t²)/(ν − 1)·f_ν(t)/(1 − α) − μ for the standard t with ν degrees
  of freedom and scale s (McNeil, Frey & Embrechts, *Quantitative Risk Management*, 2015, example 2.15).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from riskstream.errors import ConfigurationError, InvalidFieldError
from riskstream.risk._measures import Estimator, as_pnl, validate_confidence, validate_horizon_days

__all__ = [
    "CornishFisherRisk",
    "DeltaNormalRisk",
    "NormalEstimator",
    "cornish_fisher_var_es",
    "delta_gamma_cornish_fisher",
    "delta_normal",
    "normal_var_es",
    "student_t_unit_variance_var_es",
    "student_t_var_es",
]

FloatArray = NDArray[np.float64]


def _non_negative(value: float, field: str) -> float:
    number = float(value)
    if not (math.isfinite(number) and number >= 0.0):
        raise ConfigurationError(field, value, "must be a finite number >= 0")
    return number


def _finite(value: float, field: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ConfigurationError(field, value, "must be a finite number")
    return number


def normal_var_es(confidence: float, sigma: float = 1.0, mu: float = 0.0) -> tuple[float, float]:
    """VaR and ES (positive losses) of normally distributed P&L.

    VaR = σ·z_α − μ and ES = σ·φ(z_α)/(1 − α) − μ (Jorion, *Value at Risk*, 3rd ed., ch. 5; McNeil, Frey &
    Embrechts 2015, example 2.14).

    Parameters
    ----------
    confidence : float
        Confidence level α in (0, 1).
    sigma : float
        Standard deviation of P&L, currency units.
    mu : float
        Mean P&L (positive for an expected gain), currency units.
    """
    alpha = validate_confidence(confidence)
    sigma = _non_negative(sigma, "sigma")
    mu = _finite(mu, "mu")
    z = float(stats.norm.ppf(alpha))
    return sigma * z - mu, sigma * float(stats.norm.pdf(z)) / (1.0 - alpha) - mu


def student_t_var_es(
    confidence: float, dof: float, scale: float = 1.0, mu: float = 0.0
) -> tuple[float, float]:
    """VaR and ES of P&L = μ + s·T with T a **standard** Student-t variable with ν degrees of freedom.

    The standard t has variance ν/(ν − 2), not 1: ``scale`` is *not* the standard deviation of P&L (for that use
    :func:`student_t_unit_variance_var_es`). ES = s·(ν + t²)/(ν − 1)·f_ν(t)/(1 − α) − μ with t = t_ν(α).

    Parameters
    ----------
    confidence : float
        Confidence level α in (0, 1).
    dof : float
        Degrees of freedom ν > 1 (ES is infinite for ν <= 1).
    scale : float
        Scale s of the t variable, currency units.
    mu : float
        Mean (location) of P&L, currency units.
    """
    alpha = validate_confidence(confidence)
    nu = float(dof)
    if not (math.isfinite(nu) and nu > 1.0):
        raise ConfigurationError("dof", dof, "must be > 1 for the expected shortfall to be finite")
    scale = _non_negative(scale, "scale")
    mu = _finite(mu, "mu")
    t = float(stats.t.ppf(alpha, nu))
    es_standard = (nu + t * t) / (nu - 1.0) * float(stats.t.pdf(t, nu)) / (1.0 - alpha)
    return scale * t - mu, scale * es_standard - mu


def student_t_unit_variance_var_es(
    confidence: float, dof: float, sigma: float = 1.0, mu: float = 0.0
) -> tuple[float, float]:
    """VaR and ES of P&L = μ + σ·T̃ with T̃ a Student-t variable rescaled to **unit variance**.

    T̃ = T·sqrt((ν − 2)/ν), so ``sigma`` is the standard deviation of P&L: the form used when a t distribution
    is fitted to returns with a given volatility (e.g. GARCH innovations).

    Parameters
    ----------
    confidence : float
        Confidence level α in (0, 1).
    dof : float
        Degrees of freedom ν > 2 (the variance is infinite for ν <= 2).
    sigma : float
        Standard deviation of P&L, currency units.
    mu : float
        Mean P&L, currency units.
    """
    nu = float(dof)
    if not (math.isfinite(nu) and nu > 2.0):
        raise ConfigurationError("dof", dof, "must be > 2 for a unit-variance Student-t")
    sigma = _non_negative(sigma, "sigma")
    return student_t_var_es(confidence, nu, sigma * math.sqrt((nu - 2.0) / nu), mu)


def _vector_and_matrix(
    delta: ArrayLike, matrices: dict[str, ArrayLike]
) -> tuple[FloatArray, list[FloatArray]]:
    d = np.asarray(delta, dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or not np.isfinite(d).all():
        raise InvalidFieldError("delta", d.shape, "must be a non-empty finite vector of sensitivities")
    out = []
    for field, value in matrices.items():
        m = np.asarray(value, dtype=np.float64)
        if m.shape != (d.size, d.size) or not np.isfinite(m).all():
            raise InvalidFieldError(
                field, m.shape, f"must be a finite {d.size} x {d.size} matrix matching delta"
            )
        if not np.allclose(m, m.T, rtol=1e-10, atol=1e-14 * float(np.abs(m).max(initial=0.0))):
            raise InvalidFieldError(field, "asymmetric", "must be symmetric")
        out.append(m)
    return d, out


def _checked_variance(variance: float, scale: float) -> float:
    """``variance`` floored at 0 after rounding (``scale`` bounds its terms); clearly negative means Σ is not PSD."""
    if variance < -1e-12 * scale:
        raise InvalidFieldError("cov", variance, "gives a negative P&L variance: not positive semi-definite")
    return max(variance, 0.0)


def _delta_scale(d: FloatArray, sigma_matrix: FloatArray) -> float:
    return float(np.abs(d) @ np.abs(sigma_matrix) @ np.abs(d))


@dataclass(frozen=True)
class DeltaNormalRisk:
    """Delta-normal VaR and ES of P&L ≈ δ·x, x ~ N(0, Σ), with Euler contributions per factor.

    Parameters
    ----------
    var, es : float
        Portfolio VaR and ES, positive losses in currency units.
    sigma : float
        Standard deviation of P&L, sqrt(δᵀΣδ), currency units.
    component_var, component_es : ndarray
        Per-factor contributions δ_i (Σδ)_i / σ_p · m (m = z_α for VaR, φ(z_α)/(1 − α) for ES); they sum to
        ``var`` and ``es`` (Jorion, *Value at Risk*, 3rd ed., §7.2).
    confidence : float
        Confidence level α.
    """

    var: float
    es: float
    sigma: float
    component_var: FloatArray
    component_es: FloatArray
    confidence: float


def delta_normal(delta: ArrayLike, cov: ArrayLike, confidence: float) -> DeltaNormalRisk:
    """Delta-normal VaR and ES with component VaR/ES, from sensitivities and a factor-shock covariance.

    Parameters
    ----------
    delta : array_like
        Sensitivities δ, shape ``(k,)``: currency units of P&L per unit of each factor shock.
    cov : array_like
        Covariance Σ of the factor shocks over the horizon, shape ``(k, k)``, in squared shock units.
    confidence : float
        Confidence level α in (0, 1).
    """
    alpha = validate_confidence(confidence)
    d, (sigma_matrix,) = _vector_and_matrix(delta, {"cov": cov})
    cov_delta = sigma_matrix @ d
    sigma_p = math.sqrt(_checked_variance(float(d @ cov_delta), _delta_scale(d, sigma_matrix)))
    z, m = normal_var_es(alpha)
    # δ_i (Σδ)_i / σ_p = δ_i ∂σ_p/∂δ_i: the Euler split of σ_p, which is homogeneous of degree 1 in δ.
    share = d * cov_delta / sigma_p if sigma_p > 0.0 else np.zeros_like(d)
    return DeltaNormalRisk(z * sigma_p, m * sigma_p, sigma_p, share * z, share * m, alpha)


@dataclass(frozen=True)
class CornishFisherRisk:
    """VaR and ES from the Cornish–Fisher expansion of the P&L quantile, with the moments used.

    Parameters
    ----------
    var, es : float
        VaR and ES, positive losses in currency units.
    mean, std : float
        Mean and standard deviation of P&L, currency units.
    skewness, excess_kurtosis : float
        Standardised third cumulant κ₃/κ₂^1.5 and fourth cumulant κ₄/κ₂² of P&L (dimensionless).
    confidence : float
        Confidence level α.
    """

    var: float
    es: float
    mean: float
    std: float
    skewness: float
    excess_kurtosis: float
    confidence: float


def cornish_fisher_var_es(
    confidence: float, mean: float, std: float, skewness: float, excess_kurtosis: float
) -> CornishFisherRisk:
    """VaR and ES of P&L from its first four moments through the Cornish–Fisher expansion.

    The P&L quantile at p = 1 − α is μ + σ·w(z), z = Φ⁻¹(p) = −z_α, with (Cornish & Fisher 1937; Jorion,
    *Value at Risk*, 3rd ed., ch. 10)::

        w(z) = z + (z² − 1)·S/6 + (z³ − 3z)·K/24 − (2z³ − 5z)·S²/36

    S the skewness and K the excess kurtosis of **P&L** (not of the loss: a long-gamma book has S > 0 and a
    thinner loss tail). VaR = −(μ + σ·w(z)). ES = −(μ + σ·E[w(Z) | Z ≤ z]), integrated exactly with the
    truncated normal moments of Z. The expansion is only a monotone quantile function for moderate S and K
    (Maillard 2012, "A user's guide to the Cornish Fisher expansion"); beyond that it is not a distribution.

    Parameters
    ----------
    confidence : float
        Confidence level α in (0, 1).
    mean, std : float
        Mean and standard deviation of P&L, currency units.
    skewness, excess_kurtosis : float
        Skewness and excess kurtosis of P&L (dimensionless).
    """
    alpha = validate_confidence(confidence)
    mean = _finite(mean, "mean")
    std = _non_negative(std, "std")
    s = _finite(skewness, "skewness")
    k = _finite(excess_kurtosis, "excess_kurtosis")
    p = 1.0 - alpha
    z = float(stats.norm.ppf(p))
    w = z + (z * z - 1.0) * s / 6.0 + (z**3 - 3.0 * z) * k / 24.0 - (2.0 * z**3 - 5.0 * z) * s * s / 36.0
    # ∫_{−∞}^{z} zʲ φ dz for j = 0..3, so that E[w(Z); Z ≤ z] is exact.
    phi, cdf = float(stats.norm.pdf(z)), p
    m0, m1, m2, m3 = cdf, -phi, cdf - z * phi, -(z * z + 2.0) * phi
    tail_w = m1 + (m2 - m0) * s / 6.0 + (m3 - 3.0 * m1) * k / 24.0 - (2.0 * m3 - 5.0 * m1) * s * s / 36.0
    var = -(mean + std * w)
    es = -(mean + std * tail_w / p)
    return CornishFisherRisk(var, es, mean, std, s, k, alpha)


def delta_gamma_cornish_fisher(
    delta: ArrayLike, gamma: ArrayLike, cov: ArrayLike, confidence: float
) -> CornishFisherRisk:
    """Delta-gamma VaR and ES with the Cornish–Fisher expansion, for P&L ≈ δ·x + ½ xᵀΓx, x ~ N(0, Σ).

    Cumulants of that quadratic form (Britten-Jones & Schaefer 1999, "Non-linear value-at-risk", European
    Finance Review 2; Mina & Ulmer 1999, "Delta-gamma four ways", RiskMetrics Group; Jorion, *Value at Risk*,
    3rd ed., ch. 10), with A = ΓΣ::

        κ₁ = ½ tr(A)
        κ₂ = δᵀΣδ + ½ tr(A²)
        κ₃ = 3 δᵀΣΓΣδ + tr(A³)
        κ₄ = 12 δᵀΣ(ΓΣ)²δ + 3 tr(A⁴)

    then :func:`cornish_fisher_var_es` with S = κ₃/κ₂^1.5 and K = κ₄/κ₂². With Γ = 0 it is delta-normal.

    Parameters
    ----------
    delta : array_like
        First-order sensitivities δ, shape ``(k,)``, currency units per unit factor shock.
    gamma : array_like
        Second-order sensitivities Γ, symmetric ``(k, k)``, currency units per squared unit shock.
    cov : array_like
        Covariance Σ of the factor shocks over the horizon, ``(k, k)``.
    confidence : float
        Confidence level α in (0, 1).
    """
    d, (g, sigma_matrix) = _vector_and_matrix(delta, {"gamma": gamma, "cov": cov})
    a = g @ sigma_matrix
    a2 = a @ a
    b = sigma_matrix @ d  # Σδ
    k1 = 0.5 * float(np.trace(a))
    k2 = float(d @ b) + 0.5 * float(np.trace(a2))
    k3 = 3.0 * float(b @ g @ b) + float(np.trace(a2 @ a))
    k4 = 12.0 * float(b @ g @ sigma_matrix @ g @ b) + 3.0 * float(np.trace(a2 @ a2))
    k2 = _checked_variance(k2, _delta_scale(d, sigma_matrix) + 0.5 * float(np.abs(a).sum() ** 2))
    if k2 == 0.0:
        return cornish_fisher_var_es(confidence, k1, 0.0, 0.0, 0.0)
    return cornish_fisher_var_es(confidence, k1, math.sqrt(k2), k3 / k2**1.5, k4 / (k2 * k2))


@dataclass(frozen=True)
class NormalEstimator(Estimator):
    """Parametric-normal VaR and ES fitted to scenario P&L (sample mean and standard deviation, ddof = 1).

    Its tail weights make Euler contributions the covariance form −μ_i + m·cov(x_i, X)/σ_X
    (m = z_α for VaR, φ(z_α)/(1 − α) for ES), which sum to the node's figures.

    Parameters
    ----------
    confidence : float
        Confidence level α in (0, 1), default 0.99.
    horizon_days : int
        Horizon of the scenario P&L, in days (default 1).
    """

    confidence: float = 0.99
    horizon_days: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "confidence", validate_confidence(self.confidence))
        object.__setattr__(self, "horizon_days", validate_horizon_days(self.horizon_days))

    @property
    def method(self) -> str:
        return "normal"

    def _multipliers(self) -> tuple[float, float]:
        return normal_var_es(self.confidence)

    @staticmethod
    def _moments(pnl: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        x = as_pnl(pnl)
        if x.shape[-1] < 2:
            raise InvalidFieldError(
                "pnl", x.shape, "needs at least 2 scenarios to estimate a standard deviation"
            )
        mean = x.mean(axis=-1)
        return x, mean, x.std(axis=-1, ddof=1)

    def var_es(self, pnl: ArrayLike) -> tuple[FloatArray, FloatArray]:
        _, mean, std = self._moments(pnl)
        z, m = self._multipliers()
        return z * std - mean, m * std - mean

    def tail_weights(self, pnl: ArrayLike) -> tuple[FloatArray, FloatArray]:
        x, mean, std = self._moments(pnl)
        n = x.shape[-1]
        z, m = self._multipliers()
        # −Σ w·X = −μ + c·σ with w = 1/n − c·(X − μ)/((n − 1)σ); σ = 0 leaves only the mean term.
        scaled = np.divide(
            x - mean[..., None],
            (n - 1) * std[..., None],
            out=np.zeros_like(x),
            where=std[..., None] > 0.0,
        )
        return 1.0 / n - z * scaled, 1.0 / n - m * scaled
