"""VaR back-tests: Kupiec coverage, Christoffersen independence and conditional coverage, Basel traffic light.

Conventions: a day's return (or P&L) is positive for a gain; VaR is a positive loss, the same units as the return.
An **exception** is a day whose return is below ``-VaR``. Coverage ``p = 1 - confidence`` is the expected
exception probability (0.01 for 99 % VaR). Likelihood ratios use ``0 * log 0 = 0`` (``scipy.special.xlogy``), so
zero counts (no exception, no exception pairs) give finite statistics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import xlogy
from scipy.stats import binom, chi2

from ..errors import ConfigurationError, EmptyInputError, InvalidFieldError

__all__ = [
    "BASEL_PLUS_FACTORS",
    "BacktestResult",
    "LikelihoodRatio",
    "TrafficLight",
    "christoffersen_independence",
    "conditional_coverage",
    "evaluate_backtest",
    "kupiec_pof",
    "traffic_light",
]

Zone = Literal["green", "yellow", "red"]

#: Plus factor by number of exceptions in 250 days at 99 % (BCBS 1996, "Supervisory framework for the use of
#: "backtesting" in conjunction with the internal models approach to market risk capital requirements", Table 2).
#: 0-4 exceptions: green; 5-9: yellow; 10 or more: red, plus factor 1.00.
BASEL_PLUS_FACTORS: Mapping[int, float] = {
    0: 0.0,
    1: 0.0,
    2: 0.0,
    3: 0.0,
    4: 0.0,
    5: 0.40,
    6: 0.50,
    7: 0.65,
    8: 0.75,
    9: 0.85,
}
_BASEL_OBSERVATIONS = 250
_BASEL_COVERAGE = 0.01
_RED_PLUS_FACTOR = 1.0
# BCBS 1996: yellow begins where the binomial probability of that many exceptions or fewer reaches 95 %, red where
# it reaches 99.99 %.
_GREEN_BELOW = 0.95
_YELLOW_BELOW = 0.9999
# The window the Basel zone is read over.
TRAFFIC_LIGHT_DAYS = 250


def _check_coverage(coverage: float) -> None:
    if not 0.0 < coverage < 1.0:
        raise ConfigurationError("coverage", coverage, "expected exception probability must lie in (0, 1)")


def _check_counts(exceptions: int, observations: int) -> None:
    if observations <= 0:
        raise EmptyInputError("observations", observations)
    if not 0 <= exceptions <= observations:
        raise InvalidFieldError("exceptions", exceptions, f"must lie in [0, observations={observations}]")


@dataclass(frozen=True)
class LikelihoodRatio:
    """A likelihood-ratio statistic and its asymptotic chi-squared p-value.

    Attributes
    ----------
    statistic : float
        ``-2 log(L0 / L1)``, non-negative.
    pvalue : float
        ``P(chi2(dof) > statistic)``; reject the null at level a when ``pvalue < a``.
    dof : int
        Degrees of freedom of the chi-squared limit.
    """

    statistic: float
    pvalue: float
    dof: int


def _lr(log_l0: float, log_l1: float, dof: int) -> LikelihoodRatio:
    # Rounding can make L0 exceed L1 by an ulp when the two coincide; the statistic is non-negative by construction.
    stat = max(0.0, -2.0 * (log_l0 - log_l1))
    return LikelihoodRatio(stat, float(chi2.sf(stat, dof)), dof)


def kupiec_pof(exceptions: int, observations: int, coverage: float) -> LikelihoodRatio:
    """Kupiec (1995) proportion-of-failures test of unconditional coverage.

    ``LR_pof = -2 log[(1-p)^(T-x) p^x / ((1-x/T)^(T-x) (x/T)^x)] ~ chi2(1)`` (Kupiec, 1995, "Techniques for
    verifying the accuracy of risk measurement models", J. Derivatives 3(2)).

    Parameters
    ----------
    exceptions : int
        Number of exceptions ``x``.
    observations : int
        Number of back-test days ``T``.
    coverage : float
        Expected exception probability ``p`` (``1 - confidence``).

    Returns
    -------
    LikelihoodRatio
        Statistic and p-value with 1 degree of freedom.
    """
    _check_coverage(coverage)
    _check_counts(exceptions, observations)
    x, n = exceptions, observations
    phat = x / n
    log_l0 = float(xlogy(n - x, 1.0 - coverage) + xlogy(x, coverage))
    log_l1 = float(xlogy(n - x, 1.0 - phat) + xlogy(x, phat))
    return _lr(log_l0, log_l1, 1)


def _transition_counts(flags: NDArray[np.bool_]) -> tuple[int, int, int, int]:
    """Return ``(n00, n01, n10, n11)``: counts of day pairs going from state i to state j (1 = exception)."""
    prev, curr = flags[:-1], flags[1:]
    n11 = int(np.sum(prev & curr))
    n10 = int(np.sum(prev & ~curr))
    n01 = int(np.sum(~prev & curr))
    n00 = int(np.sum(~prev & ~curr))
    return n00, n01, n10, n11


def christoffersen_independence(exception_flags: ArrayLike) -> LikelihoodRatio:
    """Christoffersen (1998) test that exceptions are independent (first-order Markov alternative).

    With transition counts ``n_ij`` (day ``t-1`` in state i, day ``t`` in state j), ``pi01 = n01 / (n00 + n01)``,
    ``pi11 = n11 / (n10 + n11)`` and ``pi = (n01 + n11) / (n00 + n01 + n10 + n11)``:
    ``LR_ind = -2 log[(1-pi)^(n00+n10) pi^(n01+n11) / ((1-pi01)^n00 pi01^n01 (1-pi11)^n10 pi11^n11)] ~ chi2(1)``
    (Christoffersen, 1998, "Evaluating interval forecasts", Int. Econ. Review 39(4)). A row with no
    transitions (e.g. no exception before the last day) contributes nothing.

    Parameters
    ----------
    exception_flags : array_like of bool, shape (T,)
        ``True`` on exception days, in date order.

    Returns
    -------
    LikelihoodRatio
        Statistic and p-value with 1 degree of freedom.
    """
    flags = np.asarray(exception_flags, dtype=bool)
    if flags.ndim != 1 or flags.size < 2:
        raise InvalidFieldError(
            "exception_flags", f"{flags.size} values", "need a 1-D series of at least 2 days"
        )
    n00, n01, n10, n11 = _transition_counts(flags)
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    log_l0 = float(xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi))
    log_l1 = float(xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11))
    return _lr(log_l0, log_l1, 1)


def conditional_coverage(exception_flags: ArrayLike, coverage: float) -> LikelihoodRatio:
    """Christoffersen (1998) conditional coverage test: ``LR_cc = LR_pof + LR_ind ~ chi2(2)``.

    Parameters
    ----------
    exception_flags : array_like of bool, shape (T,)
        ``True`` on exception days, in date order.
    coverage : float
        Expected exception probability (``1 - confidence``).

    Returns
    -------
    LikelihoodRatio
        Statistic and p-value with 2 degrees of freedom.
    """
    flags = np.asarray(exception_flags, dtype=bool)
    return _combine(
        kupiec_pof(int(flags.sum()), int(flags.size), coverage), christoffersen_independence(flags)
    )


def _combine(pof: LikelihoodRatio, ind: LikelihoodRatio) -> LikelihoodRatio:
    stat = pof.statistic + ind.statistic
    return LikelihoodRatio(stat, float(chi2.sf(stat, 2)), 2)


@dataclass(frozen=True)
class TrafficLight:
    """Basel traffic-light verdict on a count of exceptions.

    Attributes
    ----------
    zone : {"green", "yellow", "red"}
        Zone of the count.
    plus_factor : float
        Addition to the capital multiplier of 3 (BCBS 1996, Table 2).
    cumulative_probability : float
        Binomial probability of this many exceptions or fewer if the model's coverage is right.
    """

    zone: Zone
    plus_factor: float
    cumulative_probability: float


def traffic_light(exceptions: int, observations: int = 250, coverage: float = 0.01) -> TrafficLight:
    """Classify an exception count into the Basel traffic-light zones.

    The zone rule is the BCBS (1996) one for any sample: green while the binomial probability of
    ``exceptions`` or fewer is below 95 %, yellow while below 99.99 %, red beyond. For 250 days at 99 % this
    reproduces Table 2 (green 0-4, yellow 5-9, red 10+) and the plus factor is read from it. Elsewhere the
    plus factor is that of the Table 2 count with the same cumulative probability (the largest count whose
    probability does not exceed this one's; at least 0.40 in yellow, 1.00 in red) — an equivalence, not a
    regulatory figure.

    Parameters
    ----------
    exceptions : int
        Number of exceptions in the sample.
    observations : int
        Number of days in the sample (250 for the regulatory test).
    coverage : float
        Expected exception probability (0.01 for 99 % VaR).

    Returns
    -------
    TrafficLight
        Zone, plus factor and cumulative binomial probability.
    """
    _check_coverage(coverage)
    _check_counts(exceptions, observations)
    cum = float(binom.cdf(exceptions, observations, coverage))
    zone: Zone = "green" if cum < _GREEN_BELOW else "yellow" if cum < _YELLOW_BELOW else "red"
    if zone == "red":
        return TrafficLight(zone, _RED_PLUS_FACTOR, cum)
    if observations == _BASEL_OBSERVATIONS and math.isclose(coverage, _BASEL_COVERAGE):
        return TrafficLight(zone, BASEL_PLUS_FACTORS[exceptions], cum)
    table_cum = binom.cdf(np.arange(len(BASEL_PLUS_FACTORS)), _BASEL_OBSERVATIONS, _BASEL_COVERAGE)
    k = int(np.searchsorted(table_cum, cum, side="right")) - 1
    plus = BASEL_PLUS_FACTORS[max(k, 0)]
    if zone == "yellow":
        plus = max(plus, BASEL_PLUS_FACTORS[5])
    return TrafficLight(zone, plus, cum)


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Outcome of a VaR back-test: counts, test statistics, traffic light and the aligned daily series.

    Attributes
    ----------
    method : str
        Forecast model that produced the VaR (e.g. ``"fhs"``).
    confidence : float
        VaR confidence level (0.99 = 99 %); horizon one day.
    window : int
        Number of past returns each day's forecast used (0 when not applicable).
    observations, exceptions : int
        Back-test days and days with ``return < -VaR``.
    expected_exceptions, exception_rate : float
        ``observations * (1 - confidence)`` and ``exceptions / observations``.
    kupiec_lr, kupiec_pvalue : float
        Kupiec (1995) proportion-of-failures statistic and p-value (chi2(1)).
    christoffersen_lr, christoffersen_pvalue : float
        Christoffersen (1998) independence statistic and p-value (chi2(1)).
    conditional_coverage_lr, conditional_coverage_pvalue : float
        ``LR_pof + LR_ind`` and its p-value (chi2(2)).
    traffic_light : {"green", "yellow", "red"}
        Basel zone of the exceptions over the last 250 days (all days if fewer).
    plus_factor : float
        Basel plus factor of that zone (see :func:`traffic_light`).
    exceptions_last_250, traffic_light_observations : int
        Exceptions and days in the traffic-light sample.
    dates : pandas.DatetimeIndex
        Forecast days.
    returns, var, es : ndarray, shape (observations,)
        Realised daily return (fraction, gain positive), VaR and ES forecasts (positive losses, fraction).
    exception_flags : ndarray of bool, shape (observations,)
        ``returns < -var``.
    options : mapping
        Model options the forecasts were made with (for reports).
    model_failures : int
        Refits that failed and fell back to the previous parameters.
    """

    method: str
    confidence: float
    window: int
    observations: int
    exceptions: int
    expected_exceptions: float
    exception_rate: float
    kupiec_lr: float
    kupiec_pvalue: float
    christoffersen_lr: float
    christoffersen_pvalue: float
    conditional_coverage_lr: float
    conditional_coverage_pvalue: float
    traffic_light: Zone
    plus_factor: float
    exceptions_last_250: int
    traffic_light_observations: int
    dates: pd.DatetimeIndex
    returns: NDArray[np.float64]
    var: NDArray[np.float64]
    es: NDArray[np.float64]
    exception_flags: NDArray[np.bool_]
    options: Mapping[str, Any] = field(default_factory=dict)
    model_failures: int = 0

    def passes(self, level: float = 0.05) -> bool:
        """Return whether neither the Kupiec nor the Christoffersen independence test rejects at ``level``."""
        return self.kupiec_pvalue >= level and self.christoffersen_pvalue >= level

    def to_dict(self, *, include_series: bool = False) -> dict[str, Any]:
        """Return a JSON-ready mapping (Python scalars and strings only; dates as ISO ``YYYY-MM-DD``).

        Parameters
        ----------
        include_series : bool
            Also return the daily series (``dates``, ``returns``, ``var``, ``es``, ``exception_flags``) as lists;
            a missing ES is ``None``.
        """
        out: dict[str, Any] = {
            "method": self.method,
            "confidence": float(self.confidence),
            "window": int(self.window),
            "first_date": self.dates[0].strftime("%Y-%m-%d"),
            "last_date": self.dates[-1].strftime("%Y-%m-%d"),
            "observations": int(self.observations),
            "exceptions": int(self.exceptions),
            "expected_exceptions": float(self.expected_exceptions),
            "exception_rate": float(self.exception_rate),
            "kupiec_lr": float(self.kupiec_lr),
            "kupiec_pvalue": float(self.kupiec_pvalue),
            "christoffersen_lr": float(self.christoffersen_lr),
            "christoffersen_pvalue": float(self.christoffersen_pvalue),
            "conditional_coverage_lr": float(self.conditional_coverage_lr),
            "conditional_coverage_pvalue": float(self.conditional_coverage_pvalue),
            "traffic_light": self.traffic_light,
            "plus_factor": float(self.plus_factor),
            "exceptions_last_250": int(self.exceptions_last_250),
            "traffic_light_observations": int(self.traffic_light_observations),
            "options": {str(k): _plain(v) for k, v in self.options.items()},
            "model_failures": int(self.model_failures),
        }
        if include_series:
            out["dates"] = [d.strftime("%Y-%m-%d") for d in self.dates]
            out["returns"] = [float(v) for v in self.returns]
            out["var"] = [float(v) for v in self.var]
            out["es"] = [float(v) if math.isfinite(v) else None for v in self.es]  # strict JSON has no NaN
            out["exception_flags"] = [bool(v) for v in self.exception_flags]
        return out


def _plain(value: Any) -> Any:
    """Convert numpy scalars to Python ones so ``json.dumps`` accepts them."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def evaluate_backtest(
    returns: ArrayLike,
    var: ArrayLike,
    es: ArrayLike | None = None,
    *,
    confidence: float,
    dates: pd.Index | NDArray[Any] | list[Any] | None = None,
    method: str = "",
    window: int = 0,
    options: Mapping[str, Any] | None = None,
    model_failures: int = 0,
) -> BacktestResult:
    """Back-test aligned VaR forecasts against realised returns.

    Parameters
    ----------
    returns : array_like, shape (T,)
        Realised daily returns (fraction, gain positive).
    var : array_like, shape (T,)
        VaR forecast for each day, a positive loss (fraction), made before the day.
    es : array_like, shape (T,), optional
        ES forecast for each day (fraction); kept for plotting and reports, NaN when absent.
    confidence : float
        VaR confidence level in (0, 1).
    dates : array_like of dates, shape (T,), optional
        Day of each return; default consecutive business days from 2000-01-03 (for synthetic tests).
    method, window, options, model_failures
        Descriptions of the forecasts, carried to the result.

    Returns
    -------
    BacktestResult
        Counts, Kupiec / Christoffersen / conditional coverage tests, Basel traffic light over the last 250 days.
    """
    if not 0.0 < confidence < 1.0:
        raise ConfigurationError("confidence", confidence, "must lie in (0, 1)")
    r = np.asarray(returns, dtype=np.float64)
    v = np.asarray(var, dtype=np.float64)
    e = np.full_like(r, np.nan) if es is None else np.asarray(es, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise EmptyInputError("returns", f"{r.size} values")
    if r.size < 2:
        raise InvalidFieldError("returns", f"{r.size} values", "a back-test needs at least 2 days")
    for name, arr in (("var", v), ("es", e)):
        if arr.shape != r.shape:
            raise InvalidFieldError(name, f"{arr.size} values", f"must align with {r.size} returns")
    for name, arr in (("returns", r), ("var", v)):
        if not np.all(np.isfinite(arr)):
            i = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise InvalidFieldError(name, float(arr[i]), f"must be finite (position {i})")
    idx = pd.bdate_range("2000-01-03", periods=r.size) if dates is None else pd.DatetimeIndex(dates)
    if len(idx) != r.size:
        raise InvalidFieldError("dates", f"{len(idx)} values", f"must align with {r.size} returns")
    coverage = 1.0 - confidence
    flags = r < -v
    n, x = int(r.size), int(flags.sum())
    pof = kupiec_pof(x, n, coverage)
    ind = christoffersen_independence(flags)
    cc = _combine(pof, ind)
    recent = flags[-TRAFFIC_LIGHT_DAYS:]
    light = traffic_light(int(recent.sum()), int(recent.size), coverage)
    return BacktestResult(
        method=method,
        confidence=confidence,
        window=window,
        observations=n,
        exceptions=x,
        expected_exceptions=n * coverage,
        exception_rate=x / n,
        kupiec_lr=pof.statistic,
        kupiec_pvalue=pof.pvalue,
        christoffersen_lr=ind.statistic,
        christoffersen_pvalue=ind.pvalue,
        conditional_coverage_lr=cc.statistic,
        conditional_coverage_pvalue=cc.pvalue,
        traffic_light=light.zone,
        plus_factor=light.plus_factor,
        exceptions_last_250=int(recent.sum()),
        traffic_light_observations=int(recent.size),
        dates=idx,
        returns=r,
        var=v,
        es=e,
        exception_flags=flags,
        options=dict(options or {}),
        model_failures=model_failures,
    )
