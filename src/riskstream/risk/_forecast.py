"""One-day VaR/ES forecast models and the rolling back-test that drives them.

Every model implements one interface, :class:`ForecastModel`: ``forecast(window_returns, confidence)`` gives the
VaR and ES of the next day from the ``window`` returns before it; ``rolling(returns, window, confidence)`` does it
for every day of a history, vectorised where the model allows, and :func:`rolling_reference` is the plain loop
over ``forecast`` that the fast paths are tested against.

Conventions:

* Returns are simple daily returns (fraction of value), positive for a gain.
* VaR and ES are **positive losses** as a fraction of value (VaR 0.02 = 2 %), horizon one day, at ``confidence``
  (0.99 = 99 %); tail probability ``p = 1 - confidence``.
* The forecast for day ``t`` uses only ``returns[t - window : t]``.
* Empirical quantiles (``hs``, ``fhs``) follow the inverse empirical distribution function
  (:func:`riskstream.risk.var_es`, rule ``"empirical"``): with ``X_(1) <= ... <= X_(n)`` and ``w = n p``,
  ``VaR = -X_(k)``, ``k = ceil(w)``; ES is the Acerbi–Tasche (2002) estimator
  ``-(1/w) [sum_{i <= floor(w)} X_(i) + (w - floor(w)) X_(floor(w)+1)]``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

from ..errors import ConfigurationError, InsufficientHistoryError, InvalidFieldError, ModelError
from ..scenarios import (
    RISKMETRICS_LAMBDA,
    GarchParams,
    GarchSpec,
    ewma_variance,
    ewma_variance_reference,
    filtered_historical_returns,
    fit_garch,
    garch_filter,
)
from ..scenarios._volatility import Distribution, MeanModel
from ._backtest import BacktestResult, evaluate_backtest
from ._measures import var_es, var_es_reference
from ._parametric import normal_var_es

__all__ = [
    "FORECAST_MODELS",
    "EwmaModel",
    "FilteredHistoricalSimulation",
    "ForecastModel",
    "GarchModel",
    "HistoricalSimulation",
    "NormalModel",
    "Progress",
    "RollingForecast",
    "make_model",
    "rolling_reference",
    "run_backtest",
]

FloatArray = NDArray[np.float64]
#: Progress hook: called with (days done, days in total) as a rolling forecast advances.
Progress = Callable[[int, int], None]

# Days per vectorised block, so a progress bar moves and the (window x block) matrices stay small.
_BLOCK_DAYS = 250


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ConfigurationError("confidence", confidence, "must lie in (0, 1)")
    return float(confidence)


def _normal_var_es(
    mean: FloatArray | float, vol: FloatArray | float, confidence: float
) -> tuple[FloatArray, FloatArray]:
    """Return normal VaR ``vol z - mean`` and ES ``vol phi(z) / (1 - confidence) - mean``, z = Phi^-1(confidence)."""
    z = float(norm.ppf(confidence))
    return np.asarray(vol * z - mean), np.asarray(vol * float(norm.pdf(z)) / (1.0 - confidence) - mean)


@dataclass(frozen=True)
class RollingForecast:
    """VaR/ES forecasts for consecutive days.

    Attributes
    ----------
    var, es : ndarray, shape (days,)
        One-day VaR and ES (positive losses, fraction of value); entry ``i`` is for day ``window + i``.
    model_failures : int
        Refits that failed and reused the previous parameters (GARCH-based models).
    """

    var: FloatArray
    es: FloatArray
    model_failures: int = 0


def _windows(returns: FloatArray, window: int) -> FloatArray:
    """Return the (days x window) read-only view whose row ``i`` is ``returns[i : i + window]``, for day ``window + i``."""
    return sliding_window_view(returns, window)[:-1]


def _blocks(days: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, days, size):
        yield start, min(start + size, days)


class ForecastModel(ABC):
    """A one-day VaR/ES forecast model: past window of returns in, next day's VaR and ES out."""

    #: Name used by :func:`make_model`, the CLI and reports.
    name: ClassVar[str]
    #: Fewest returns a window may hold for this model.
    min_window: ClassVar[int] = 2

    @abstractmethod
    def forecast(self, window_returns: ArrayLike, confidence: float) -> tuple[float, float]:
        """Forecast the next day's VaR and ES.

        Parameters
        ----------
        window_returns : array_like, shape (window,)
            The daily returns before the forecast day (fraction, gain positive), oldest first.
        confidence : float
            Confidence level in (0, 1).

        Returns
        -------
        var, es : float
            One-day VaR and ES, positive losses (fraction of value).
        """

    def rolling(
        self, returns: ArrayLike, window: int, confidence: float, progress: Progress | None = None
    ) -> RollingForecast:
        """Forecast every day ``t >= window`` of ``returns`` from ``returns[t - window : t]``.

        Parameters and result as :func:`rolling_reference`, which is the default; models override it with a
        vectorised path that must agree with it.
        """
        return rolling_reference(self, returns, window, confidence, progress)

    def options(self) -> dict[str, Any]:
        """Return the model's options (for reports and JSON)."""
        return {f.name: getattr(self, f.name) for f in fields(self)} if is_dataclass(self) else {}


def rolling_reference(
    model: ForecastModel, returns: ArrayLike, window: int, confidence: float, progress: Progress | None = None
) -> RollingForecast:
    """Plain loop of ``model.forecast`` over every day: the reference the vectorised ``rolling`` paths match.

    Parameters
    ----------
    model : ForecastModel
        Model to run.
    returns : array_like, shape (T,)
        Daily returns (fraction, gain positive), oldest first.
    window : int
        Number of past returns each forecast uses (days).
    confidence : float
        Confidence level in (0, 1).
    progress : callable(done, total), optional
        Called after each day.

    Returns
    -------
    RollingForecast
        ``T - window`` VaR and ES forecasts; forecast ``i`` is for day ``window + i``.
    """
    r = np.asarray(returns, dtype=np.float64)
    days = r.size - window
    var = np.empty(days)
    es = np.empty(days)
    for i in range(days):
        var[i], es[i] = model.forecast(r[i : i + window], confidence)
        if progress is not None:
            progress(i + 1, days)
    return RollingForecast(var, es)


def _by_blocks(
    windows: FloatArray,
    progress: Progress | None,
    block_fn: Callable[[FloatArray], tuple[FloatArray, FloatArray]],
) -> RollingForecast:
    """Apply ``block_fn`` to blocks of window rows, concatenating VaR and ES and reporting progress."""
    days = windows.shape[0]
    var = np.empty(days)
    es = np.empty(days)
    for start, stop in _blocks(days, _BLOCK_DAYS):
        var[start:stop], es[start:stop] = block_fn(windows[start:stop])
        if progress is not None:
            progress(stop, days)
    return RollingForecast(var, es)


class _Vectorised(ForecastModel):
    """A model whose forecast for many windows at once is plain array arithmetic.

    ``forecast`` is written for one window, plainly; ``_block`` computes a whole (days x window) matrix of windows
    and drives :meth:`rolling`. Tests check the two agree.
    """

    @abstractmethod
    def _block(self, windows: FloatArray, confidence: float) -> tuple[FloatArray, FloatArray]:
        """Return VaR and ES (shape (days,)) for each row of ``windows`` (days x window)."""

    def rolling(
        self, returns: ArrayLike, window: int, confidence: float, progress: Progress | None = None
    ) -> RollingForecast:
        """Vectorised :meth:`ForecastModel.rolling`, one block of days at a time."""
        windows = _windows(np.asarray(returns, dtype=np.float64), window)
        c = _check_confidence(confidence)
        return _by_blocks(windows, progress, lambda w: self._block(w, c))


@dataclass(frozen=True)
class HistoricalSimulation(_Vectorised):
    """Historical simulation: empirical VaR and Acerbi–Tasche ES of the window's returns, equally weighted."""

    name: ClassVar[str] = "hs"

    def forecast(self, window_returns: ArrayLike, confidence: float) -> tuple[float, float]:
        """Return VaR ``-X_(ceil(n p))`` and Acerbi–Tasche ES of the window (positive losses, fraction)."""
        return var_es_reference([float(x) for x in np.ravel(window_returns)], confidence, rule="empirical")

    def _block(self, windows: FloatArray, confidence: float) -> tuple[FloatArray, FloatArray]:
        return var_es(windows, confidence, rule="empirical")


@dataclass(frozen=True)
class NormalModel(_Vectorised):
    """Parametric normal: the window's sample mean and standard deviation (ddof 1), normal quantile.

    ``VaR = sigma z - mu``, ``ES = sigma phi(z) / (1 - confidence) - mu`` with ``z = Phi^-1(confidence)``
    (Jorion, *Value at Risk*, 3rd ed., ch. 5).
    """

    name: ClassVar[str] = "parametric"

    def forecast(self, window_returns: ArrayLike, confidence: float) -> tuple[float, float]:
        """Return normal VaR and ES from the window's mean and standard deviation (fraction of value)."""
        r = np.asarray(window_returns, dtype=np.float64)
        return normal_var_es(confidence, float(r.std(ddof=1)), float(r.mean()))

    def _block(self, windows: FloatArray, confidence: float) -> tuple[FloatArray, FloatArray]:
        return _normal_var_es(windows.mean(axis=1), windows.std(axis=1, ddof=1), confidence)


@dataclass(frozen=True)
class EwmaModel(_Vectorised):
    """RiskMetrics: zero-mean normal with EWMA volatility (RiskMetrics Technical Document, 1996).

    Attributes
    ----------
    lam : float
        Decay factor in (0, 1); 0.94 is the RiskMetrics daily value. The recursion starts each window from the
        window's mean squared return (see :func:`riskstream.scenarios.ewma_variance`).
    """

    name: ClassVar[str] = "ewma"
    lam: float = RISKMETRICS_LAMBDA

    def __post_init__(self) -> None:
        if not 0.0 < self.lam < 1.0:
            raise ConfigurationError("lam", self.lam, "EWMA decay factor must lie in (0, 1)")

    def forecast(self, window_returns: ArrayLike, confidence: float) -> tuple[float, float]:
        """Return normal VaR and ES with the EWMA one-step vol of the window (fraction of value)."""
        vol = math.sqrt(float(ewma_variance_reference(window_returns, self.lam)[-1]))
        return normal_var_es(confidence, vol)

    def _block(self, windows: FloatArray, confidence: float) -> tuple[FloatArray, FloatArray]:
        # each window is one column of the EWMA filter
        return _normal_var_es(0.0, np.sqrt(ewma_variance(windows.T, self.lam)[-1]), confidence)


@dataclass(frozen=True)
class _GarchBased(ForecastModel):
    """Shared part of the GARCH-filtered models: fit cadence, fallback on failed refits, block filtering."""

    min_window: ClassVar[int] = 50
    dist: Distribution = "t"
    mean: MeanModel = "constant"
    asymmetric: bool = False
    refit_every: int = 20
    warm_start: bool = True

    def __post_init__(self) -> None:
        if (
            isinstance(self.refit_every, bool)
            or not isinstance(self.refit_every, int)
            or self.refit_every < 1
        ):
            raise ConfigurationError("refit_every", self.refit_every, "must be a whole number of days >= 1")
        self.spec()  # validates dist and mean

    def spec(self) -> GarchSpec:
        """Return the GARCH specification this model fits."""
        return GarchSpec(dist=self.dist, mean=self.mean, asymmetric=self.asymmetric)

    @abstractmethod
    def _from_filter(
        self, windows: FloatArray, params: GarchParams, confidence: float
    ) -> tuple[FloatArray, FloatArray]:
        """Return VaR and ES for each column of ``windows`` (window x days), filtered with fixed ``params``."""

    def forecast(self, window_returns: ArrayLike, confidence: float) -> tuple[float, float]:
        """Fit the GARCH model to the window and return the next day's VaR and ES (fraction of value)."""
        r = np.asarray(window_returns, dtype=np.float64)
        params = fit_garch(r, self.spec()).params
        var, es = self._from_filter(r[:, np.newaxis], params, _check_confidence(confidence))
        return float(var[0]), float(es[0])

    def _refit(self, window_returns: FloatArray, previous: GarchParams | None) -> GarchParams | None:
        """Refit, warm-started from ``previous`` when allowed, then cold; ``None`` if both fail."""
        starts = [previous, None] if self.warm_start and previous is not None else [None]
        for start in starts:
            try:
                return fit_garch(window_returns, self.spec(), start=start).params
            except ModelError:
                continue
        return None

    def rolling(
        self, returns: ArrayLike, window: int, confidence: float, progress: Progress | None = None
    ) -> RollingForecast:
        """Refit every ``refit_every`` days on the current window; in between filter daily with fixed parameters.

        A refit that fails keeps the previous parameters (counted in ``model_failures``); if the very first fit
        fails, :class:`~riskstream.errors.ModelError` is raised.
        """
        r = np.asarray(returns, dtype=np.float64)
        c = _check_confidence(confidence)
        windows = _windows(r, window)
        days = windows.shape[0]
        var = np.empty(days)
        es = np.empty(days)
        params: GarchParams | None = None
        failures = 0
        for start, stop in _blocks(days, self.refit_every):
            fitted = self._refit(windows[start], params)
            if fitted is None:
                if params is None:
                    raise ModelError(
                        f"GARCH fit failed on the first window ({self.spec()}); no parameters to reuse"
                    )
                failures += 1
            else:
                params = fitted
            assert params is not None
            var[start:stop], es[start:stop] = self._from_filter(windows[start:stop].T, params, c)
            if progress is not None:
                progress(stop, days)
        return RollingForecast(var, es, failures)


def _quantile_and_tail_mean(params: GarchParams, confidence: float) -> tuple[float, float]:
    """Return ``q``, the (1 - confidence)-quantile of the standardized innovation, and ``E[Z | Z <= q]``."""
    from arch.univariate import Normal, SkewStudent, StudentsT

    dist = Normal() if params.dist == "normal" else StudentsT() if params.dist == "t" else SkewStudent()
    shape = np.asarray(params.dist_params, dtype=np.float64) if params.dist_params else None
    p = 1.0 - confidence
    with np.errstate(over="ignore", invalid="ignore"):
        q = float(np.asarray(dist.ppf(p, shape)))
        tail = float(dist.partial_moment(1, q, shape)) / p
    if not (np.isfinite(q) and np.isfinite(tail)) and params.dist == "t":
        # arch's t partial moment evaluates Gamma((nu+1)/2) directly, which overflows once the fitted nu is in
        # the hundreds; the t is then normal to many digits, so take the normal's quantile and tail mean.
        normal = Normal()
        q = float(np.asarray(normal.ppf(p, None)))
        tail = float(normal.partial_moment(1, q, None)) / p
    return q, tail


@dataclass(frozen=True)
class GarchModel(_GarchBased):
    """GARCH(1,1) (optionally GJR) with a parametric quantile of the fitted innovation distribution.

    ``VaR = -(mu + sigma q)`` and ``ES = -(mu + sigma E[Z | Z <= q])``, with ``sigma`` the one-step GARCH vol,
    ``q`` the ``(1 - confidence)``-quantile of the unit-variance innovation (normal, Student-t or Hansen skew-t,
    from ``arch``) and the tail mean from its first lower partial moment.

    Attributes
    ----------
    dist : {"normal", "t", "skewt"}
        Innovation distribution; default Student-t.
    mean : {"zero", "constant"}
        Mean model; default constant.
    asymmetric : bool
        Add the GJR leverage term.
    refit_every : int
        Days between refits in :meth:`rolling` (parameters fixed in between, volatility filtered daily).
    warm_start : bool
        Start each refit from the previous parameters (faster; the optimum may differ within tolerance).
    """

    name: ClassVar[str] = "garch"

    def _from_filter(
        self, windows: FloatArray, params: GarchParams, confidence: float
    ) -> tuple[FloatArray, FloatArray]:
        vol = np.asarray(garch_filter(windows, params).forecast_vol)
        q, tail_mean = _quantile_and_tail_mean(params, confidence)
        return -(params.mu + vol * q), -(params.mu + vol * tail_mean)


@dataclass(frozen=True)
class FilteredHistoricalSimulation(_GarchBased):
    """Filtered historical simulation (Barone-Adesi et al., 1999; Hull & White, 1998) on a GARCH filter.

    The window's standardized residuals ``z_s = (r_s - mu) / sigma_s`` are rescaled to the one-step vol:
    scenarios ``mu + sigma_{t} z_s``; VaR and ES are their empirical quantile and Acerbi–Tasche tail mean.
    The innovation distribution only shapes the quasi-likelihood of the fit.

    Attributes
    ----------
    dist : {"normal", "t", "skewt"}
        Distribution used to fit the GARCH parameters; default skew-t.
    mean : {"zero", "constant"}
        Mean model; default constant.
    asymmetric : bool
        Add the GJR leverage term; default on.
    refit_every : int
        Days between refits in :meth:`rolling`.
    warm_start : bool
        Start each refit from the previous parameters.
    """

    name: ClassVar[str] = "fhs"
    dist: Distribution = "skewt"
    asymmetric: bool = True

    def _from_filter(
        self, windows: FloatArray, params: GarchParams, confidence: float
    ) -> tuple[FloatArray, FloatArray]:
        filtered = garch_filter(windows, params)
        scenarios = filtered_historical_returns(
            windows, filtered.conditional_vol, filtered.forecast_vol, params.mu
        )
        return var_es(scenarios.T, confidence, rule="empirical")


#: Forecast models by name.
FORECAST_MODELS: dict[str, type[ForecastModel]] = {
    m.name: m
    for m in (HistoricalSimulation, NormalModel, EwmaModel, GarchModel, FilteredHistoricalSimulation)
}


def make_model(method: str, **options: Any) -> ForecastModel:
    """Build a forecast model by name.

    Parameters
    ----------
    method : {"hs", "parametric", "ewma", "garch", "fhs"}
        Model name.
    **options
        Model options (e.g. ``lam`` for ewma; ``dist``, ``asymmetric``, ``mean``, ``refit_every`` for garch/fhs).

    Returns
    -------
    ForecastModel
        The configured model.
    """
    cls = FORECAST_MODELS.get(method)
    if cls is None:
        raise ConfigurationError(
            "method", method, f"unknown forecast model; known: {', '.join(FORECAST_MODELS)}"
        )
    known: set[str] = {f.name for f in fields(cls)} if is_dataclass(cls) else set()
    for key, value in options.items():
        if key not in known:
            hint = (
                f"options of {method!r}: {', '.join(sorted(known))}"
                if known
                else f"{method!r} takes no options"
            )
            raise ConfigurationError(key, value, f"unknown option; {hint}")
    return cls(**options)


def _as_series(returns: pd.Series | ArrayLike) -> pd.Series:
    if isinstance(returns, pd.Series):
        series = returns.astype(np.float64)
    else:
        values = np.asarray(returns, dtype=np.float64)
        series = pd.Series(values, index=pd.bdate_range("2000-01-03", periods=values.size))
    missing = ~np.isfinite(series.to_numpy())
    if missing.any():
        where = series.index[int(np.flatnonzero(missing)[0])]
        raise InvalidFieldError(
            "returns", float(series.iloc[int(np.flatnonzero(missing)[0])]), f"not finite on {where}"
        )
    return series


def run_backtest(
    returns: pd.Series | ArrayLike,
    method: str,
    window: int = 500,
    confidence: float = 0.99,
    *,
    progress: Progress | None = None,
    **options: Any,
) -> BacktestResult:
    """Forecast one-day VaR/ES for every day after the first ``window`` and back-test them.

    Parameters
    ----------
    returns : pandas.Series or array_like, shape (T,)
        Daily simple returns (fraction, gain positive) indexed by date, oldest first.
    method : {"hs", "parametric", "ewma", "garch", "fhs"}
        Forecast model (see :data:`FORECAST_MODELS`).
    window : int
        Past returns each day's forecast uses (days); the first forecast is for day ``window``.
    confidence : float
        VaR/ES confidence level in (0, 1).
    progress : callable(done, total), optional
        Called as forecast days are completed (e.g. to drive a progress bar).
    **options
        Model options, passed to :func:`make_model`.

    Returns
    -------
    BacktestResult
        ``T - window`` days of forecasts with Kupiec, Christoffersen, conditional coverage and traffic light.
    """
    c = _check_confidence(confidence)
    model = make_model(method, **options)
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < model.min_window:
        raise ConfigurationError(
            "window", window, f"must be a whole number of days >= {model.min_window} for {method!r}"
        )
    series = _as_series(returns)
    if len(series) < window + 2:
        raise InsufficientHistoryError(
            f"back-test with window={window} needs at least {window + 2} returns, got {len(series)}"
        )
    values = series.to_numpy()
    forecast = model.rolling(values, int(window), c, progress)
    return evaluate_backtest(
        values[window:],
        forecast.var,
        forecast.es,
        confidence=c,
        dates=series.index[window:],
        method=method,
        window=int(window),
        options=model.options(),
        model_failures=forecast.model_failures,
    )
