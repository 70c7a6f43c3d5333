"""Volatility filters: EWMA (RiskMetrics), GARCH(1,1)/GJR fitted with ``arch``, and filtered historical simulation.

Conventions used throughout this module:

* Returns are simple daily returns as fractions (0.01 = 1 %), positive for a gain, shaped ``(T,)`` or ``(T, k)``
  (time down the rows, one risk factor per column).
* ``conditional_vol[t]`` is the one-day volatility of the return ``r[t]`` as known at the close of day ``t - 1``:
  it uses ``r[0], ..., r[t-1]`` only. ``forecast_vol`` is the volatility of the next, unseen day ``T``.
* Volatilities are daily (horizon one day), in the units of the returns; nothing is annualised.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import lfilter

from ..errors import (
    ConfigurationError,
    EmptyInputError,
    InsufficientHistoryError,
    InvalidFieldError,
    ModelError,
)

__all__ = [
    "RISKMETRICS_LAMBDA",
    "FilteredVolatility",
    "GarchFit",
    "GarchParams",
    "GarchSpec",
    "ewma_filter",
    "ewma_variance",
    "ewma_variance_reference",
    "filtered_historical_returns",
    "fit_garch",
    "garch_backcast",
    "garch_filter",
    "garch_variance_reference",
]

#: RiskMetrics decay factor for daily data (J.P. Morgan/Reuters, RiskMetrics Technical Document, 4th ed., 1996).
RISKMETRICS_LAMBDA = 0.94

# arch fits best when returns are of order 1: its DataScaleWarning asks for percent returns on daily data.
_FIT_SCALE = 100.0
# Backcast of the GARCH recursion exactly as arch computes it (arch.univariate.volatility.GARCH.backcast).
_BACKCAST_TAU = 75
_BACKCAST_DECAY = 0.94
_PERSISTENCE_TOLERANCE = 1e-6
# A warm start on the persistence boundary is moved this far inside it, where arch accepts starting values.
_START_PERSISTENCE = 0.999

Distribution = Literal["normal", "t", "skewt"]
MeanModel = Literal["zero", "constant"]
_DISTRIBUTIONS = ("normal", "t", "skewt")
_MEANS = ("zero", "constant")
# arch names the shape parameters of its standardized distributions this way.
_SHAPE_NAMES = {"normal": (), "t": ("nu",), "skewt": ("eta", "lambda")}

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class FilteredVolatility:
    """Output of a volatility filter run over a sample of returns.

    Attributes
    ----------
    conditional_vol : ndarray, shape (T,) or (T, k)
        Daily volatility of each in-sample return, known the day before (fraction of value).
    forecast_vol : float or ndarray, shape (k,)
        One-step-ahead daily volatility for the day after the sample (fraction of value).
    standardized_residuals : ndarray, shape (T,) or (T, k)
        ``(r[t] - mu) / conditional_vol[t]``; ``mu`` is 0 for EWMA and a zero-mean GARCH.
    mean : float
        Daily mean return ``mu`` used to centre the residuals (fraction).
    """

    conditional_vol: FloatArray
    forecast_vol: float | FloatArray
    standardized_residuals: FloatArray
    mean: float = 0.0


def _as_returns(returns: ArrayLike, *, field: str = "returns") -> FloatArray:
    """Validate returns: a finite float array of one or two dimensions with at least one row."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise InvalidFieldError(field, f"array of shape {arr.shape}", "must be 1-D (T,) or 2-D (T, k)")
    if arr.shape[0] == 0:
        raise EmptyInputError(field)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InvalidFieldError(
            field, float(arr[tuple(bad)]), f"must be finite (first at position {tuple(bad)})"
        )
    return arr


def _unwrap(value: FloatArray) -> float | FloatArray:
    """Return a 0-d result as a Python float, anything else unchanged."""
    return float(value) if np.ndim(value) == 0 else value


def _check_lambda(lam: float) -> None:
    if not 0.0 < lam < 1.0:
        raise ConfigurationError("lam", lam, "EWMA decay factor must lie in (0, 1)")


def ewma_variance(
    returns: ArrayLike, lam: float = RISKMETRICS_LAMBDA, initial_variance: float | ArrayLike | None = None
) -> FloatArray:
    """Run the RiskMetrics EWMA variance recursion over every column at once.

    ``sigma2[t + 1] = lam * sigma2[t] + (1 - lam) * r[t] ** 2`` (RiskMetrics Technical Document, 1996, eq. 5.3),
    zero mean. Vectorised: the recursion is a first-order linear filter, run by ``scipy.signal.lfilter`` along
    the time axis for all columns together.

    Parameters
    ----------
    returns : array_like, shape (T,) or (T, k)
        Daily simple returns (fraction), oldest first.
    lam : float
        Decay factor in (0, 1); 0.94 is the RiskMetrics daily value.
    initial_variance : float or array_like of shape (k,), optional
        ``sigma2[0]``, the variance of the first return (fraction squared). Default: the mean of ``r ** 2`` over
        the whole sample given, so a window's filter uses that window's data only. Its weight in
        ``sigma2[T]`` is ``lam ** T`` (4e-14 after 500 days at 0.94).

    Returns
    -------
    ndarray, shape (T + 1,) or (T + 1, k)
        Daily variances (fraction squared): rows ``0 .. T-1`` are the conditional variances of ``r[0] .. r[T-1]``,
        row ``T`` is the one-step-ahead forecast.
    """
    _check_lambda(lam)
    r = _as_returns(returns)
    r2 = r * r
    s0 = (
        np.mean(r2, axis=0)
        if initial_variance is None
        else np.broadcast_to(np.asarray(initial_variance, dtype=np.float64), r.shape[1:])
    )
    # lfilter computes y[n] = (1 - lam) x[n] + lam y[n - 1]; the state zi = lam * s0 makes y[-1] = s0.
    zi = (lam * np.asarray(s0, dtype=np.float64))[np.newaxis, ...]
    tail, _ = lfilter([1.0 - lam], [1.0, -lam], r2, axis=0, zi=zi)
    return np.concatenate([np.asarray(s0, dtype=np.float64)[np.newaxis, ...], tail], axis=0)


def ewma_variance_reference(
    returns: ArrayLike, lam: float = RISKMETRICS_LAMBDA, initial_variance: float | None = None
) -> FloatArray:
    """Plain-loop reference of :func:`ewma_variance` for one series; slow, kept to check the fast path.

    Parameters
    ----------
    returns : array_like, shape (T,)
        Daily simple returns (fraction), oldest first.
    lam : float
        Decay factor in (0, 1).
    initial_variance : float, optional
        ``sigma2[0]`` (fraction squared); default the mean of ``r ** 2``.

    Returns
    -------
    ndarray, shape (T + 1,)
        Conditional variances then the one-step forecast, as :func:`ewma_variance`.
    """
    _check_lambda(lam)
    r = [float(x) for x in _as_returns(returns).ravel()]
    s = sum(x * x for x in r) / len(r) if initial_variance is None else float(initial_variance)
    out = [s]
    for x in r:
        s = lam * s + (1.0 - lam) * x * x
        out.append(s)
    return np.array(out)


def ewma_filter(
    returns: ArrayLike, lam: float = RISKMETRICS_LAMBDA, initial_variance: float | ArrayLike | None = None
) -> FilteredVolatility:
    """Filter returns with the RiskMetrics EWMA; see :func:`ewma_variance` for the recursion and initialisation.

    Parameters
    ----------
    returns : array_like, shape (T,) or (T, k)
        Daily simple returns (fraction), oldest first.
    lam : float
        Decay factor in (0, 1); default 0.94 (RiskMetrics 1996).
    initial_variance : float or array_like, optional
        ``sigma2[0]`` (fraction squared); default the sample mean of ``r ** 2``.

    Returns
    -------
    FilteredVolatility
        Conditional daily vols, the one-step forecast vol and the zero-mean standardized residuals.
    """
    r = _as_returns(returns)
    vol = np.sqrt(ewma_variance(r, lam, initial_variance))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(vol[:-1] > 0, r / vol[:-1], 0.0)
    return FilteredVolatility(vol[:-1], _unwrap(vol[-1]), z, 0.0)


@dataclass(frozen=True)
class GarchSpec:
    """Specification of a GARCH(1,1) model: mean, optional GJR asymmetry, innovation distribution.

    Attributes
    ----------
    dist : {"normal", "t", "skewt"}
        Standardized innovation distribution (unit variance): normal, Student-t, or Hansen's (1994) skew-t.
    mean : {"zero", "constant"}
        Mean model of the daily return.
    asymmetric : bool
        Add the GJR term ``gamma * 1[eps < 0] * eps ** 2`` (Glosten, Jagannathan & Runkle, 1993).
    """

    dist: Distribution = "t"
    mean: MeanModel = "constant"
    asymmetric: bool = False

    def __post_init__(self) -> None:
        if self.dist not in _DISTRIBUTIONS:
            raise ConfigurationError("dist", self.dist, f"must be one of {', '.join(_DISTRIBUTIONS)}")
        if self.mean not in _MEANS:
            raise ConfigurationError("mean", self.mean, f"must be one of {', '.join(_MEANS)}")


@dataclass(frozen=True)
class GarchParams:
    """Parameters of a GARCH(1,1)/GJR model in the units of the returns (fractions, not percent).

    ``sigma2[t] = omega + (alpha + gamma * 1[eps[t-1] < 0]) * eps[t-1] ** 2 + beta * sigma2[t-1]``,
    ``eps[t] = r[t] - mu``.

    Attributes
    ----------
    mu : float
        Daily mean return (fraction); 0 for a zero-mean model.
    omega : float
        Variance intercept (fraction squared per day).
    alpha, gamma, beta : float
        ARCH, GJR asymmetry (0 when symmetric) and GARCH coefficients (dimensionless).
    dist_params : tuple of float
        Shape parameters of the standardized distribution, in arch's order: ``()`` for normal, ``(nu,)`` for
        Student-t, ``(eta, lambda)`` for skew-t.
    dist : {"normal", "t", "skewt"}
        Innovation distribution the shape parameters belong to.
    mean : {"zero", "constant"}
        Mean model. With a constant mean, the pre-sample variance is backcast from returns less their sample
        mean, as arch does, so a filter with fitted parameters reproduces arch's conditional vols exactly.
    """

    mu: float
    omega: float
    alpha: float
    gamma: float
    beta: float
    dist_params: tuple[float, ...] = ()
    dist: Distribution = "normal"
    mean: MeanModel = "constant"

    def persistence(self) -> float:
        """Return ``alpha + gamma / 2 + beta``, the persistence of variance shocks for a symmetric innovation."""
        return self.alpha + 0.5 * self.gamma + self.beta

    def to_dict(self) -> dict[str, float | str]:
        """Return the parameters as a JSON-ready mapping (shape parameters under arch's names)."""
        out: dict[str, float | str] = {
            "mu": self.mu,
            "omega": self.omega,
            "alpha": self.alpha,
            "gamma": self.gamma,
            "beta": self.beta,
            "dist": self.dist,
            "mean": self.mean,
        }
        out.update(dict(zip(_SHAPE_NAMES[self.dist], self.dist_params, strict=True)))
        return out


@dataclass(frozen=True)
class GarchFit:
    """A GARCH model fitted by maximum likelihood, with its filtered path.

    Attributes
    ----------
    spec : GarchSpec
        The model that was fitted.
    params : GarchParams
        Fitted parameters, in return units (fractions).
    conditional_vol : ndarray, shape (T,)
        In-sample conditional daily vols (fraction).
    standardized_residuals : ndarray, shape (T,)
        ``(r[t] - mu) / conditional_vol[t]``.
    forecast_vol : float
        One-step-ahead daily vol (fraction).
    loglikelihood : float
        Maximised log-likelihood of the percent-scaled returns (as arch reports it).
    """

    spec: GarchSpec
    params: GarchParams
    conditional_vol: FloatArray
    standardized_residuals: FloatArray
    forecast_vol: float
    loglikelihood: float


def _params_from_arch(values: Mapping[str, float], spec: GarchSpec) -> GarchParams:
    """Convert arch's percent-scale parameter vector to return units."""
    scale2 = _FIT_SCALE * _FIT_SCALE
    return GarchParams(
        mu=float(values.get("mu", 0.0)) / _FIT_SCALE,
        omega=float(values["omega"]) / scale2,
        alpha=float(values["alpha[1]"]),
        gamma=float(values.get("gamma[1]", 0.0)),
        beta=float(values["beta[1]"]),
        dist_params=tuple(float(values[n]) for n in _SHAPE_NAMES[spec.dist]),
        dist=spec.dist,
        mean=spec.mean,
    )


def _arch_vector(params: GarchParams, spec: GarchSpec) -> FloatArray:
    """Convert parameters to arch's percent-scale vector (order: mean, omega, alpha, [gamma], beta, shape)."""
    out = [params.mu * _FIT_SCALE] if spec.mean == "constant" else []
    out += [params.omega * _FIT_SCALE * _FIT_SCALE, params.alpha]
    out += [params.gamma] if spec.asymmetric else []
    out += [params.beta, *params.dist_params]
    return np.array(out, dtype=np.float64)


def _inside_constraints(params: GarchParams) -> GarchParams:
    """Shrink a boundary fit's dynamics so it is a strictly feasible starting point (persistence < 1)."""
    persistence = params.persistence()
    if persistence < _START_PERSISTENCE:
        return params
    shrink = _START_PERSISTENCE / persistence
    return replace(
        params, alpha=params.alpha * shrink, gamma=params.gamma * shrink, beta=params.beta * shrink
    )


def fit_garch(
    returns: ArrayLike, spec: GarchSpec | None = None, *, start: GarchParams | None = None
) -> GarchFit:
    """Fit a GARCH(1,1) (optionally GJR) by maximum likelihood with ``arch.arch_model``.

    Returns are multiplied by 100 for the fit, as arch recommends for daily data, and every output is converted
    back to return units.

    Parameters
    ----------
    returns : array_like, shape (T,)
        Daily simple returns (fraction), oldest first; at least 50 observations.
    spec : GarchSpec, optional
        Model to fit; default Student-t innovations, constant mean, symmetric.
    start : GarchParams, optional
        Starting values (e.g. the previous fit in a rolling back-test), which cuts fitting time several-fold.
        Ignored if its distribution differs from ``spec.dist``.

    Returns
    -------
    GarchFit
        Parameters, in-sample conditional vols, standardized residuals and the one-step-ahead vol forecast.

    Raises
    ------
    InsufficientHistoryError
        Fewer than 50 returns.
    ModelError
        The optimiser did not converge, or returned non-finite or explosive (persistence > 1) parameters.
    """
    from arch import arch_model
    from arch.utility.exceptions import ConvergenceWarning, DataScaleWarning, StartingValueWarning

    spec = spec or GarchSpec()
    r = _as_returns(returns)
    if r.ndim != 1:
        raise InvalidFieldError("returns", f"array of shape {r.shape}", "GARCH is fitted to one series (T,)")
    if r.size < 50:
        raise InsufficientHistoryError(f"GARCH fit needs at least 50 returns, got {r.size}")
    model = arch_model(
        r * _FIT_SCALE,
        mean=spec.mean,
        vol="GARCH",
        p=1,
        o=1 if spec.asymmetric else 0,
        q=1,
        dist=spec.dist,
        rescale=False,
    )
    starting = (
        _arch_vector(_inside_constraints(start), spec)
        if start is not None and start.dist == spec.dist
        else None
    )
    with warnings.catch_warnings():
        # Non-convergence is read from convergence_flag below and raised as ModelError, so arch's warning would
        # only duplicate it; the returns are already rescaled to percent, so DataScaleWarning would be noise;
        # the optimiser's trial points can overflow exp/log, which it handles by rejecting the step.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DataScaleWarning)
        # Starting values outside arch's bounds are replaced by arch's own: the fit is still well defined.
        warnings.simplefilter("ignore", StartingValueWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            res = model.fit(disp="off", show_warning=False, starting_values=starting)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise ModelError(f"GARCH fit failed ({spec}): {exc}") from exc
    values = {str(k): float(v) for k, v in res.params.items()}
    if res.convergence_flag != 0 or not all(math.isfinite(v) for v in values.values()):
        raise ModelError(
            f"GARCH fit did not converge ({spec}): optimiser flag {res.convergence_flag}, parameters {values}"
        )
    params = _params_from_arch(values, spec)
    # arch constrains persistence <= 1; a fit on that boundary (integrated GARCH) still gives a valid one-step
    # forecast, so only a breach beyond the optimiser's tolerance is an error.
    if params.persistence() > 1.0 + _PERSISTENCE_TOLERANCE:
        raise ModelError(
            f"GARCH fit is explosive: persistence alpha + gamma/2 + beta = {params.persistence():.8f} > 1"
        )
    filtered = garch_filter(r, params)
    return GarchFit(
        spec=spec,
        params=params,
        conditional_vol=filtered.conditional_vol,
        standardized_residuals=filtered.standardized_residuals,
        forecast_vol=float(filtered.forecast_vol),
        loglikelihood=float(res.loglikelihood),
    )


def garch_backcast(residuals: ArrayLike) -> float | FloatArray:
    """Return the pre-sample variance ``sigma2[-1] = eps[-1] ** 2`` arch uses to start the recursion.

    An exponentially weighted mean of the first ``min(75, T)`` squared residuals with weights ``0.94 ** i``,
    normalised (``arch.univariate.volatility.GARCH.backcast``), computed per column.

    Parameters
    ----------
    residuals : array_like, shape (T,) or (T, k)
        Daily returns less their sample mean (constant-mean model) or raw returns (zero mean), fraction.

    Returns
    -------
    float or ndarray, shape (k,)
        Backcast variance (fraction squared).
    """
    e = np.asarray(residuals, dtype=np.float64)
    tau = min(_BACKCAST_TAU, e.shape[0])
    w = _BACKCAST_DECAY ** np.arange(tau)
    w = w / w.sum()
    return _unwrap(np.tensordot(w, e[:tau] ** 2, axes=(0, 0)))


def _garch_inputs(r: FloatArray, params: GarchParams) -> tuple[FloatArray, FloatArray, FloatArray | float]:
    """Return residuals, the per-day news term ``omega + a[t] * eps[t] ** 2`` and the backcast."""
    # The optimiser meets arch's inequality constraints to within its tolerance, not exactly.
    tol = -_PERSISTENCE_TOLERANCE
    if not params.omega > 0 or min(params.alpha, params.beta, params.alpha + params.gamma) < tol:
        raise ConfigurationError(
            "params", params, "GARCH needs omega > 0, alpha >= 0, beta >= 0, alpha+gamma >= 0"
        )
    eps = r - params.mu
    a = params.alpha + params.gamma * (eps < 0)
    backcast = garch_backcast(r - np.mean(r, axis=0) if params.mean == "constant" else r)
    return eps, params.omega + a * eps * eps, backcast


def garch_filter(returns: ArrayLike, params: GarchParams) -> FilteredVolatility:
    """Run the GARCH(1,1)/GJR variance recursion with fixed parameters over every column at once.

    Cheap (no optimisation): a rolling back-test refits every N days and filters daily with this. The
    recursion and its start match arch's: ``sigma2[0] = omega + (alpha + gamma / 2 + beta) * backcast``, see
    :func:`garch_backcast` and ``GarchParams.mean``; it is linear in ``sigma2`` given the data, so ``scipy.signal.lfilter`` runs it.

    Parameters
    ----------
    returns : array_like, shape (T,) or (T, k)
        Daily simple returns (fraction), oldest first; each column is filtered independently with ``params``.
    params : GarchParams
        Fixed parameters in return units.

    Returns
    -------
    FilteredVolatility
        Conditional daily vols, one-step-ahead vol, standardized residuals ``(r - mu) / sigma`` and ``mu``.
    """
    r = _as_returns(returns)
    eps, news, backcast = _garch_inputs(r, params)
    b = params.beta
    s0 = np.asarray(params.omega + (params.alpha + 0.5 * params.gamma + b) * np.asarray(backcast))
    # sigma2[t] = b * sigma2[t-1] + news[t-1] for t >= 1; y[n] = news[n] + b * y[n-1] gives y[n] = sigma2[n+1].
    tail, _ = lfilter([1.0], [1.0, -b], news, axis=0, zi=(b * s0)[np.newaxis, ...])
    sigma2 = np.concatenate([s0[np.newaxis, ...], tail], axis=0)
    vol = np.sqrt(sigma2)
    return FilteredVolatility(vol[:-1], _unwrap(vol[-1]), eps / vol[:-1], params.mu)


def garch_variance_reference(returns: ArrayLike, params: GarchParams) -> FloatArray:
    """Plain-loop reference of :func:`garch_filter` for one series; slow, kept to check the fast path.

    Parameters
    ----------
    returns : array_like, shape (T,)
        Daily simple returns (fraction), oldest first.
    params : GarchParams
        Fixed parameters in return units.

    Returns
    -------
    ndarray, shape (T + 1,)
        Conditional variances of ``r[0] .. r[T-1]`` then the one-step-ahead forecast (fraction squared).
    """
    r = [float(x) for x in _as_returns(returns).ravel()]
    eps = [x - params.mu for x in r]
    centre = sum(r) / len(r) if params.mean == "constant" else 0.0
    tau = min(_BACKCAST_TAU, len(r))
    weights = [_BACKCAST_DECAY**i for i in range(tau)]
    backcast = sum(w * (x - centre) ** 2 for w, x in zip(weights, r, strict=False)) / sum(weights)
    s = params.omega + (params.alpha + 0.5 * params.gamma + params.beta) * backcast
    out = [s]
    for e in eps:
        a = params.alpha + (params.gamma if e < 0 else 0.0)
        s = params.omega + a * e * e + params.beta * s
        out.append(s)
    return np.array(out)


def filtered_historical_returns(
    returns: ArrayLike,
    conditional_vol: ArrayLike,
    forecast_vol: float | ArrayLike,
    mean: float | ArrayLike = 0.0,
) -> FloatArray:
    """Rescale historical returns to today's volatility: filtered historical simulation scenarios.

    ``r_scenario[t] = mean + (r[t] - mean) * forecast_vol / conditional_vol[t]`` (Hull & White, 1998,
    "Incorporating volatility updating into the historical simulation method for value-at-risk"; Barone-Adesi,
    Giannopoulos & Vosper, 1999, "VaR without correlations for portfolios of derivative securities"). Each
    column of a (T x k) matrix is rescaled by its own vols; rows keep their dates, so cross-factor dependence
    of the historical days is preserved for multi-factor scenarios.

    Parameters
    ----------
    returns : array_like, shape (T,) or (T, k)
        Historical daily returns (fraction).
    conditional_vol : array_like, shape (T,) or (T, k)
        Conditional daily vol of each historical return (fraction), e.g. ``FilteredVolatility.conditional_vol``.
    forecast_vol : float or array_like, shape (k,)
        One-day-ahead vol to rescale to (fraction).
    mean : float or array_like, shape (k,)
        Daily mean removed before and added back after rescaling (fraction); default 0.

    Returns
    -------
    ndarray, shape (T,) or (T, k)
        Volatility-adjusted one-day return scenarios (fraction).
    """
    r = _as_returns(returns)
    vol = _as_returns(conditional_vol, field="conditional_vol")
    if vol.shape != r.shape:
        raise InvalidFieldError(
            "conditional_vol", f"shape {vol.shape}", f"must match returns shape {r.shape}"
        )
    if np.any(vol <= 0):
        raise InvalidFieldError("conditional_vol", float(vol.min()), "volatilities must be positive")
    target = np.asarray(forecast_vol, dtype=np.float64)
    if np.any(target < 0) or not np.all(np.isfinite(target)):
        raise InvalidFieldError("forecast_vol", _unwrap(target), "must be finite and non-negative")
    mu = np.asarray(mean, dtype=np.float64)
    return mu + (r - mu) * (target / vol)
