"""Decomposition of a node's VaR and ES over its rows: component (Euler), marginal and incremental figures.

The input is a P&L matrix of shape ``(m, n_scenarios)`` whose rows — positions, sub-nodes or risk factors — sum
to the node's P&L vector. Conventions as in ``riskstream.risk``: P&L positive for a gain, VaR/ES positive losses.

Component (Euler) figures apply the node's tail weights to each row (Tasche 2000, "Conditional expectation as
quantile derivative"): component_i = −Σ_s w_s · pnl_is. They sum exactly to the node's VaR and ES. For historical
VaR the weights sit on the single VaR scenario (and its ties), so component VaR is the rows' P&L in one scenario
and jumps from day to day; component ES averages each row over the whole tail and is far steadier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from riskstream.errors import ConfigurationError, InvalidFieldError
from riskstream.risk._measures import Estimator, as_pnl

__all__ = [
    "Contributor",
    "Decomposition",
    "component_var_es",
    "incremental_var_es",
    "marginal_var_es",
    "top_contributors",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Decomposition:
    """Per-row VaR and ES figures of one node, with the node's own VaR and ES.

    Parameters
    ----------
    kind : {"component", "marginal", "incremental"}
        Which figure the rows hold.
    var, es : ndarray
        One figure per row, shape ``(m,)``: currency units, except marginal figures, which are currency units per
        unit of exposure.
    total_var, total_es : float
        VaR and ES of the node (sum of the rows), positive losses in currency units.
    """

    kind: str
    var: FloatArray
    es: FloatArray
    total_var: float
    total_es: float


def _rows(pnl_rows: ArrayLike) -> FloatArray:
    x = as_pnl(pnl_rows, "pnl_rows")
    return x[None, :] if x.ndim == 1 else x


def component_var_es(pnl_rows: ArrayLike, estimator: Estimator) -> Decomposition:
    """Component (Euler) VaR and ES of each row; the rows' figures sum to the node's VaR and ES.

    Parameters
    ----------
    pnl_rows : array_like
        Scenario P&L of the rows in currency units, shape ``(m, n_scenarios)``; the node is their sum.
    estimator : Estimator
        VaR/ES method and confidence, e.g. ``HistoricalEstimator(0.99)``.
    """
    rows = _rows(pnl_rows)
    node = rows.sum(axis=0)
    w_var, w_es = estimator.tail_weights(node)
    total_var, total_es = estimator.var_es(node)
    return Decomposition("component", -(rows @ w_var), -(rows @ w_es), float(total_var), float(total_es))


def marginal_var_es(pnl_rows: ArrayLike, exposures: ArrayLike, estimator: Estimator) -> Decomposition:
    """Marginal VaR and ES per unit of exposure: component figure / exposure, NaN where the exposure is zero.

    Jorion (*Value at Risk*, 3rd ed., §7.2) defines marginal VaR as ∂VaR/∂x_i, the change in portfolio VaR per
    unit added to position i of exposure x_i, and component VaR as x_i·∂VaR/∂x_i. A row's P&L scales linearly with
    its exposure, and VaR/ES are homogeneous of degree 1, so ∂VaR/∂x_i = component_i / x_i.

    Parameters
    ----------
    pnl_rows : array_like
        Scenario P&L of the rows in currency units, shape ``(m, n_scenarios)``.
    exposures : array_like
        Exposure x_i of each row, shape ``(m,)``, in the unit the marginal figure is quoted per (notional in
        currency units, number of shares, ...).
    estimator : Estimator
        VaR/ES method and confidence.
    """
    component = component_var_es(pnl_rows, estimator)
    x = np.asarray(exposures, dtype=np.float64)
    if x.shape != component.var.shape or not np.isfinite(x).all():
        raise InvalidFieldError(
            "exposures", x.shape, f"must be {component.var.size} finite numbers, one per row"
        )
    nonzero = x != 0.0

    def per_unit(values: FloatArray) -> FloatArray:
        return np.divide(values, x, out=np.full_like(values, np.nan), where=nonzero)

    return Decomposition(
        "marginal", per_unit(component.var), per_unit(component.es), component.total_var, component.total_es
    )


def incremental_var_es(pnl_rows: ArrayLike, estimator: Estimator, *, chunk_rows: int = 2048) -> Decomposition:
    """Incremental VaR and ES of each row: VaR(node) − VaR(node without the row), recomputed exactly.

    No linear approximation: the node vector minus each row is revalued with the estimator, vectorised over rows in
    chunks of ``chunk_rows`` to bound memory to ``chunk_rows × n_scenarios`` floats. Incremental figures do not sum
    to the node's figure.

    Parameters
    ----------
    pnl_rows : array_like
        Scenario P&L of the rows in currency units, shape ``(m, n_scenarios)``.
    estimator : Estimator
        VaR/ES method and confidence.
    chunk_rows : int
        Rows revalued per vectorised call (memory bound, no effect on the result).
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigurationError("chunk_rows", chunk_rows, "must be a whole number >= 1")
    rows = _rows(pnl_rows)
    node = rows.sum(axis=0)
    total_var, total_es = (float(v) for v in estimator.var_es(node))
    var_without = np.empty(rows.shape[0])
    es_without = np.empty(rows.shape[0])
    for start in range(0, rows.shape[0], chunk_rows):
        stop = start + chunk_rows
        var_without[start:stop], es_without[start:stop] = estimator.var_es(node - rows[start:stop])
    return Decomposition("incremental", total_var - var_without, total_es - es_without, total_var, total_es)


@dataclass(frozen=True)
class Contributor:
    """One row's contribution and its share of the total.

    Parameters
    ----------
    label : str
        Name of the row (position id, book, risk factor).
    value : float
        Contribution, currency units.
    share : float
        ``value / total`` (NaN when the total is zero); negative for a diversifying row.
    """

    label: str
    value: float
    share: float


def top_contributors(
    values: ArrayLike,
    labels: Sequence[str],
    k: int = 10,
    *,
    total: float | None = None,
    by: Literal["value", "abs"] = "value",
) -> tuple[Contributor, ...]:
    """The ``k`` largest contributions, largest first, with their share of the total.

    Parameters
    ----------
    values : array_like
        Contribution of each row, shape ``(m,)``, currency units (e.g. ``Decomposition.es``).
    labels : sequence of str
        Name of each row, same length as ``values``.
    k : int
        How many to return (fewer if there are fewer rows).
    total : float, optional
        Denominator of the shares; default the sum of ``values`` (the node's figure for component VaR/ES).
    by : {"value", "abs"}
        Rank by signed value (largest risk adders) or by absolute value (largest movers, hedges included).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or not np.isfinite(v).all():
        raise InvalidFieldError("values", v.shape, "must be a finite vector")
    if len(labels) != v.size:
        raise InvalidFieldError("labels", len(labels), f"must name each of the {v.size} values")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigurationError("k", k, "must be a whole number >= 1")
    if by not in ("value", "abs"):
        raise ConfigurationError("by", by, "unknown ranking; known: value, abs")
    key = np.abs(v) if by == "abs" else v
    k = min(k, v.size)
    top = np.argpartition(-key, k - 1)[:k] if k < v.size else np.arange(v.size)
    # Stable order: larger key first, then original position, so equal contributions list deterministically.
    top = top[np.lexsort((top, -key[top]))]
    denominator = float(v.sum()) if total is None else float(total)
    return tuple(
        Contributor(
            str(labels[i]), float(v[i]), float(v[i]) / denominator if denominator != 0.0 else float("nan")
        )
        for i in top
    )
