"""Zero curves: linear interpolation in zero rate between tenor points, flat extrapolation, continuous compounding.

Conventions
-----------
- A curve of currency ``ccy`` is the rate factors ``IR.<ccy>.<tenor>`` present in the market, shortest tenor
  first; rates are continuously compounded, as decimals (0.05 = 5 %), per year.
- Between two tenor points the zero rate is linear in time; before the first and after the last it is flat.
- Discount factor ``DF(t) = exp(−z(t)·t)``, ``t`` in years (ACT/365F from the valuation date).

Because the interpolated rate is linear in the tenor rates, ``z(t) = Σ_k w_k(t)·z_k`` with weights that depend
on ``t`` only; the weights are what key-rate (per tenor) sensitivities are made of:
``∂DF(t)/∂z_k = −t·w_k(t)·DF(t)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from ..domain import TENORS, MarketScenarios, rate_factor
from ..errors import MissingFactorError

__all__ = ["CurveSet", "discount_factors", "interpolation_weights", "zero_rates"]


def _bracket(tenor_times: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left tenor index and the weight of the right tenor point for each time (flat outside the curve)."""
    k = len(tenor_times)
    if k == 1:
        return np.zeros(len(times), dtype=np.intp), np.zeros(len(times))
    t = np.clip(times, tenor_times[0], tenor_times[-1])
    lo = np.clip(np.searchsorted(tenor_times, t, side="right") - 1, 0, k - 2)
    frac = (t - tenor_times[lo]) / (tenor_times[lo + 1] - tenor_times[lo])
    return lo, frac


def interpolation_weights(tenor_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Weights ``W`` (m, k) with ``z(times[i]) = Σ_k W[i, k]·z_k``; every row sums to 1.

    Parameters
    ----------
    tenor_times
        Curve tenor points in years, shape (k,), strictly increasing.
    times
        Times to interpolate at in years, shape (m,).
    """
    tenor_times = np.asarray(tenor_times, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    lo, frac = _bracket(tenor_times, times)
    w = np.zeros((len(times), len(tenor_times)))
    rows = np.arange(len(times))
    w[rows, lo] = 1.0 - frac
    if len(tenor_times) > 1:
        w[rows, lo + 1] = frac
    return w


def zero_rates(times: np.ndarray, tenor_times: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Zero rates at ``times`` (m,) under every scenario: shape (m, n_scenarios), decimals per year.

    Parameters
    ----------
    times
        Times in years, shape (m,).
    tenor_times
        Curve tenor points in years, shape (k,).
    rates
        Continuously-compounded zero rates at the tenor points, shape (k, n_scenarios).
    """
    return interpolation_weights(tenor_times, times) @ np.asarray(rates, dtype=np.float64)


def discount_factors(
    times: np.ndarray, tenor_times: np.ndarray, rates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Discount factors ``exp(−z(t)·t)`` at ``times`` (m,) under every scenario, and the interpolation weights.

    Parameters are those of :func:`zero_rates` (times and tenor times in years, rates (k, n_scenarios)).

    Returns
    -------
    discount factors, shape (m, n_scenarios), and weights ``W`` (m, k) with ``z(t_i) = Σ_k W[i, k]·z_k``.
    """
    times = np.asarray(times, dtype=np.float64)
    w = interpolation_weights(tenor_times, times)
    z = w @ np.asarray(rates, dtype=np.float64)
    z *= -times[:, None]
    return np.exp(z, out=z), w


class CurveSet:
    """The zero curves of several currencies in one market, stacked so that many curves interpolate in one product.

    Column ``j`` of the stacked curve is the rate factor ``factor_ids[j]``; :meth:`weights` gives a sparse
    (m, n_points) matrix whose rows interpolate each time on its own currency's curve, so that
    ``weights(ccys, times) @ rates`` is the zero rate of every (currency, time) pair under every scenario.
    """

    def __init__(self, market: MarketScenarios, currencies: Iterable[str]):
        self.currencies: tuple[str, ...] = tuple(sorted(set(currencies)))
        ids: list[str] = []
        times: list[float] = []
        self._span: dict[str, tuple[int, int]] = {}
        for ccy in self.currencies:
            tenors = [t for t in TENORS if rate_factor(ccy, t) in market]
            if not tenors:
                raise MissingFactorError(rate_factor(ccy, "*"))
            self._span[ccy] = (len(ids), len(ids) + len(tenors))
            ids.extend(rate_factor(ccy, t) for t in tenors)
            times.extend(TENORS[t] for t in tenors)
        self.factor_ids: tuple[str, ...] = tuple(ids)
        self.tenor_times = np.array(times, dtype=np.float64)
        #: Zero rates of every curve point under every scenario, shape (n_points, n_scenarios).
        self.rates = np.ascontiguousarray(market.columns(ids))

    def weights(self, currencies: np.ndarray, times: np.ndarray) -> sp.csr_matrix:
        """Sparse interpolation weights (m, n_points): row ``i`` interpolates ``times[i]`` on ``currencies[i]``.

        Parameters
        ----------
        currencies
            Currency of each time, shape (m,); each must be one of this set's currencies.
        times
            Times in years, shape (m,).
        """
        currencies = np.asarray(currencies)
        times = np.asarray(times, dtype=np.float64)
        m = len(times)
        cols = np.zeros((m, 2), dtype=np.intp)
        vals = np.zeros((m, 2))
        for ccy in np.unique(currencies):
            rows = np.flatnonzero(currencies == ccy)
            start, stop = self._span[str(ccy)]
            lo, frac = _bracket(self.tenor_times[start:stop], times[rows])
            cols[rows, 0] = start + lo
            cols[rows, 1] = start + np.minimum(lo + 1, stop - start - 1)
            vals[rows, 0] = 1.0 - frac
            vals[rows, 1] = frac
        indptr = np.arange(0, 2 * m + 1, 2)
        w = sp.csr_matrix((vals.ravel(), cols.ravel(), indptr), shape=(m, len(self.factor_ids)))
        w.sum_duplicates()
        return w

    def zero_rates(self, weights: sp.csr_matrix) -> np.ndarray:
        """Interpolated zero rates for the rows of ``weights``: shape (m, n_scenarios)."""
        return np.asarray(weights @ self.rates)
