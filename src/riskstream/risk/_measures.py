"""Historical-simulation VaR and Expected Shortfall from scenario P&L vectors.

Conventions used throughout ``riskstream.risk``:

* P&L is positive for a gain and negative for a loss, in the reporting currency.
* VaR and ES are reported as **positive losses**: a portfolio that loses 3 in its 1 %-worst scenario has
  ``var_99 = 3``.
* ``confidence`` is α ∈ (0, 1), e.g. 0.99; the tail probability is p = 1 − α.
* Measure names carry confidence and horizon: ``var_99_1d``, ``es_975_10d`` (see :func:`measure_name`).
* P&L arrays are numpy arrays, either one vector of shape ``(n_scenarios,)`` or a matrix of shape
  ``(n_nodes_or_positions, n_scenarios)``: scenarios always lie along the **last** axis.
* Every estimator can express VaR and ES as linear functionals of the P&L vector through *tail weights*
  (:func:`tail_weights`): ``VaR = -Σ w_var·pnl`` and ``ES = -Σ w_es·pnl``. Applying the node's weights to the rows
  that sum to the node gives Euler contributions that add up exactly to the node's VaR and ES.

Quantile conventions (parameter ``rule``), with X_(1) ≤ … ≤ X_(n) the ordered P&L and t = n·p:

``"empirical"`` (default)
    Inverse of the empirical distribution function of P&L: VaR = −X_(k) with k = ⌈t⌉. For n = 250 at 99 %
    this is the 3rd-worst scenario; for n = 1000 at 99 % the 10th-worst.
``"linear"``
    numpy's default linear interpolation of the P&L quantile at p (``np.quantile(pnl, 1 - α)``, also what
    ``pandas.Series.quantile`` does): position h = (n − 1)·p + 1, VaR = −[X_(⌊h⌋) + (h − ⌊h⌋)(X_(⌊h⌋+1) − X_(⌊h⌋))].
``"k_plus_1"``
    The (⌊t⌋ + 1)-th worst scenario, so that exactly ⌊t⌋ scenarios are worse than VaR: VaR = −X_(⌊t⌋+1).
    It differs from ``"empirical"`` only when t is a whole number (n = 1000 at 99 % gives the 11th-worst).

ES is the Acerbi–Tasche discrete estimator whatever the rule (Acerbi & Tasche 2002, "On the coherence of
expected shortfall", J. Banking & Finance 26, eq. 3.14)::

    ES = −1/t · [ Σ_{i ≤ ⌊t⌋} X_(i) + (t − ⌊t⌋) · X_(⌊t⌋+1) ]

It is the mean of the worst p-fraction of scenarios, counting the boundary scenario fractionally; it is coherent,
hence sub-additive on a common set of scenarios, and it is never below VaR under any of the rules above.

t is computed robustly: n·p within 1e-9 (relative) of a whole number is taken as that number, so that
``1000 * (1 - 0.99) == 10.000000000000009`` counts as 10 scenarios, not 11.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from riskstream.errors import ConfigurationError, EmptyInputError, InvalidFieldError

__all__ = [
    "QUANTILE_RULES",
    "Estimator",
    "HistoricalEstimator",
    "QuantileRule",
    "RiskEstimate",
    "as_pnl",
    "measure_name",
    "scale_horizon",
    "tail_weights",
    "validate_confidence",
    "validate_horizon_days",
    "var_and_es",
    "var_es",
    "var_es_reference",
]

FloatArray = NDArray[np.float64]
QuantileRule = Literal["empirical", "linear", "k_plus_1"]
QUANTILE_RULES: tuple[str, ...] = get_args(QuantileRule)
MEASURE_KINDS = ("var", "es")

# n·p closer than this (relative) to a whole number is that number: 1 - 0.99 is not exactly 0.01 in binary.
_WHOLE_TOLERANCE = 1e-9


def validate_confidence(confidence: float, field: str = "confidence") -> float:
    """Return ``confidence`` as a float after checking it lies in the open interval (0, 1).

    Parameters
    ----------
    confidence : float
        Confidence level α, e.g. 0.99 (dimensionless).
    field : str
        Name reported in the error.
    """
    try:
        value = float(confidence)
    except (TypeError, ValueError):
        raise ConfigurationError(field, confidence, "must be a number in (0, 1), e.g. 0.99") from None
    if not 0.0 < value < 1.0:  # also rejects NaN
        raise ConfigurationError(field, confidence, "must lie strictly between 0 and 1, e.g. 0.99")
    return value


def _validate_rule(rule: str) -> None:
    if rule not in QUANTILE_RULES:
        raise ConfigurationError("rule", rule, f"unknown quantile rule; known: {', '.join(QUANTILE_RULES)}")


def validate_horizon_days(days: int, field: str = "horizon_days") -> int:
    """Return ``days`` as an int after checking it is a whole number of days >= 1."""
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 1:
        raise ConfigurationError(field, days, "must be a whole number of days >= 1")
    return int(days)


def measure_name(kind: str, confidence: float, horizon_days: int) -> str:
    """Name of a risk measure with its confidence and horizon, e.g. ``var_99_1d`` or ``es_975_10d``.

    Parameters
    ----------
    kind : str
        ``"var"`` or ``"es"``.
    confidence : float
        Confidence level α in (0, 1); written as percent without the decimal point (0.975 → ``975``).
    horizon_days : int
        Horizon in days (>= 1).
    """
    if kind not in MEASURE_KINDS:
        raise ConfigurationError("kind", kind, f"unknown measure; known: {', '.join(MEASURE_KINDS)}")
    alpha = validate_confidence(confidence)
    days = validate_horizon_days(horizon_days, "horizon_days")
    # 10 significant digits absorb binary noise (0.975 * 100 == 97.50000000000001).
    percent = f"{alpha * 100:.10g}".replace(".", "")
    return f"{kind}_{percent}_{days}d"


def scale_horizon(
    value: float | ArrayLike, from_days: int, to_days: int, method: Literal["sqrt_time"] = "sqrt_time"
) -> float | FloatArray:
    """Scale a VaR or ES from one horizon to another by the square root of time.

    ``value · sqrt(to_days / from_days)``: exact for i.i.d. normal P&L with zero mean, an approximation otherwise
    (it ignores drift, autocorrelation and fat tails). It is the only ``method`` offered so that the choice is
    always written at the call site.

    Parameters
    ----------
    value : float or array
        VaR or ES at ``from_days``, in currency units.
    from_days : int
        Horizon of ``value``, in days.
    to_days : int
        Target horizon, in days.
    method : {"sqrt_time"}
        Scaling rule.
    """
    if method != "sqrt_time":
        raise ConfigurationError("method", method, "unknown horizon scaling; known: sqrt_time")
    factor = math.sqrt(
        validate_horizon_days(to_days, "to_days") / validate_horizon_days(from_days, "from_days")
    )
    if np.ndim(value) == 0:
        return float(value) * factor  # type: ignore[arg-type]
    return np.asarray(value, dtype=np.float64) * factor


def as_pnl(pnl: ArrayLike, field: str = "pnl", *, max_ndim: int = 2) -> FloatArray:
    """Return ``pnl`` as a finite float64 array of 1 to ``max_ndim`` dimensions with scenarios on the last axis.

    Parameters
    ----------
    pnl : array_like
        Scenario P&L in currency units, shape ``(n_scenarios,)`` or ``(n_rows, n_scenarios)``.
    field : str
        Name reported in errors.
    max_ndim : int
        Highest number of dimensions accepted.
    """
    try:
        array = np.asarray(pnl, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidFieldError(field, type(pnl).__name__, f"is not numeric ({exc})") from None
    if not 1 <= array.ndim <= max_ndim:
        raise InvalidFieldError(
            field, array.shape, f"must have 1 to {max_ndim} dimensions with scenarios on the last axis"
        )
    if array.shape[-1] == 0:
        raise EmptyInputError(f"{field} (no scenarios)", array.shape)
    # A full isfinite pass costs as much as the estimate itself; a NaN or inf always makes the sum non-finite,
    # so only an overflowing sum of finite values needs the slow check.
    with np.errstate(over="ignore"):
        total = array.sum()
    if not np.isfinite(total) and not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise InvalidFieldError(
            field, float(array[tuple(bad)]), f"non-finite P&L at index {tuple(bad.tolist())}"
        )
    return array


@dataclass(frozen=True)
class _TailPlan:
    """Which order statistics (0-based, ascending P&L) VaR and ES need for n scenarios at one confidence."""

    n: int
    tail: float  # t = n·p, the number of tail scenarios, whole numbers snapped
    whole: int  # ⌊t⌋
    fraction: float  # t − ⌊t⌋
    var_terms: tuple[tuple[int, float], ...]  # VaR = −Σ coefficient · X_(index + 1)

    @classmethod
    def of(cls, n: int, confidence: float, rule: str) -> _TailPlan:
        p = 1.0 - confidence
        tail = n * p
        nearest = round(tail)
        if nearest >= 1 and abs(tail - nearest) <= _WHOLE_TOLERANCE * max(1.0, tail):
            tail = float(nearest)
        whole = min(math.floor(tail), n)
        fraction = tail - whole if whole < n else 0.0
        if rule == "empirical":
            terms: tuple[tuple[int, float], ...] = ((max(math.ceil(tail), 1) - 1, 1.0),)
        elif rule == "k_plus_1":
            terms = ((min(whole, n - 1), 1.0),)
        else:  # linear, numpy's method: virtual index (n − 1)·p, 0-based
            h = (n - 1) * p
            j = min(math.floor(h), n - 1)
            g = h - j
            terms = ((j, 1.0 - g), (j + 1, g)) if g > 0.0 and j + 1 < n else ((j, 1.0),)
        return cls(n, tail, whole, fraction, terms)

    @property
    def boundary(self) -> int:
        """0-based index of the last order statistic with positive ES weight, X_(⌈t⌉)."""
        return self.whole if self.fraction > 0.0 else self.whole - 1

    @property
    def kth(self) -> list[int]:
        return sorted({self.boundary, *(i for i, _ in self.var_terms)})


def _order_statistics(x: FloatArray, plan: _TailPlan) -> tuple[FloatArray, dict[int, FloatArray]]:
    """Worst scenarios first along the last axis, and the order statistics ``plan`` needs, by 0-based index.

    The first ``plan.whole`` entries of the returned array are the ⌊t⌋ lowest P&L of each row (in any order).
    """
    kth = plan.kth
    top = kth[-1]
    # One partition at the deepest index: numpy partitions at several kth one after another, which costs more
    # than sorting the few scenarios in front of it.
    part = np.partition(x, top, axis=-1)
    if len(kth) == 1:
        return part, {top: part[..., top]}
    head = np.sort(part[..., : top + 1], axis=-1)
    return head, {i: head[..., i] for i in kth}


def var_es(
    pnl: ArrayLike, confidence: float, rule: QuantileRule = "empirical"
) -> tuple[FloatArray, FloatArray]:
    """VaR and ES (positive losses) of each P&L vector along the last axis, by historical simulation.

    Vectorised with one ``np.partition`` per call (no full sort): the hot path for many nodes at once.

    Parameters
    ----------
    pnl : array_like
        Scenario P&L in currency units, shape ``(n_scenarios,)`` or ``(n_nodes, n_scenarios)``.
    confidence : float
        Confidence level α in (0, 1), e.g. 0.99.
    rule : {"empirical", "linear", "k_plus_1"}
        VaR quantile convention (see the module docstring); ES is Acerbi–Tasche under every rule.

    Returns
    -------
    var, es : ndarray
        Arrays of shape ``pnl.shape[:-1]`` (0-d for a vector), in currency units.
    """
    alpha = validate_confidence(confidence)
    _validate_rule(rule)
    x = as_pnl(pnl)
    plan = _TailPlan.of(x.shape[-1], alpha, rule)
    worst, order = _order_statistics(x, plan)
    var = -sum(c * order[i] for i, c in plan.var_terms)
    return np.asarray(var, dtype=np.float64), _tail_mean(worst, order, plan)


def _tail_mean(worst: FloatArray, order: dict[int, FloatArray], plan: _TailPlan) -> FloatArray:
    """Acerbi–Tasche ES (positive loss) from :func:`_order_statistics`' output."""
    head = worst[..., : plan.whole].sum(axis=-1)
    if plan.fraction > 0.0:
        head = head + plan.fraction * order[plan.whole]
    return np.asarray(-head / plan.tail, dtype=np.float64)


def var_and_es(
    pnl: ArrayLike, var_confidence: float, es_confidence: float, rule: QuantileRule = "empirical"
) -> tuple[FloatArray, FloatArray]:
    """VaR at ``var_confidence`` and ES at ``es_confidence`` (positive losses) of each P&L vector, from one pass.

    Equal bit for bit to ``var_es(pnl, var_confidence, rule)[0]`` and ``var_es(pnl, es_confidence, rule)[1]``
    (the regulatory pair: 99 % VaR, 97.5 % ES), with one ``np.partition`` instead of two when the VaR order
    statistics lie inside the ES tail (always the case when ``var_confidence ≥ es_confidence``).

    Parameters
    ----------
    pnl : array_like
        Scenario P&L in currency units, shape ``(n_scenarios,)`` or ``(n_nodes, n_scenarios)``.
    var_confidence, es_confidence : float
        Confidence levels α in (0, 1) of VaR and of ES.
    rule : {"empirical", "linear", "k_plus_1"}
        VaR quantile convention (see the module docstring).

    Returns
    -------
    var, es : ndarray
        Arrays of shape ``pnl.shape[:-1]``, in currency units.
    """
    a_var = validate_confidence(var_confidence, "var_confidence")
    a_es = validate_confidence(es_confidence, "es_confidence")
    _validate_rule(rule)
    x = as_pnl(pnl)
    plan_var = _TailPlan.of(x.shape[-1], a_var, rule)
    plan_es = _TailPlan.of(x.shape[-1], a_es, rule)
    top = plan_es.kth[-1]
    need = [i for i, _ in plan_var.var_terms]
    if max(need) > top:
        return var_es(x, a_var, rule)[0], var_es(x, a_es, rule)[1]
    # the partition of var_es at the ES confidence, so ES is summed in the same order
    worst, order = _order_statistics(x, plan_es)
    missing = [i for i in need if i not in order]
    if missing:
        # the VaR order statistics are among the top + 1 lowest: a partition of that head finds them
        head = np.partition(worst[..., : top + 1], missing, axis=-1)
        order = {**order, **{i: head[..., i] for i in missing}}
    var = -sum(c * order[i] for i, c in plan_var.var_terms)
    return np.asarray(var, dtype=np.float64), _tail_mean(worst, order, plan_es)


def _share_among_ties(x: FloatArray, values: FloatArray) -> FloatArray:
    """Indicator of ``x == values`` (per row) divided by the number of such scenarios in the row."""
    hit = x == values[..., None]
    return hit / hit.sum(axis=-1, keepdims=True)


def tail_weights(
    pnl: ArrayLike, confidence: float, rule: QuantileRule = "empirical"
) -> tuple[FloatArray, FloatArray]:
    """Scenario weights ``(w_var, w_es)`` with ``VaR = -Σ w_var·pnl`` and ``ES = -Σ w_es·pnl`` along the last axis.

    Scenarios tied with an order statistic share its weight equally, so the weights do not depend on the order of
    the scenarios. ``w_var`` sits on the VaR scenario alone (one or two scenarios and their ties), so Euler
    contributions to historical VaR rest on a single scenario and are noisy; ``w_es`` spreads 1/t over the
    t = n·p worst scenarios (the boundary one fractionally) and gives steadier contributions.

    Parameters
    ----------
    pnl : array_like
        Scenario P&L in currency units, shape ``(n_scenarios,)`` or ``(n_nodes, n_scenarios)``.
    confidence : float
        Confidence level α in (0, 1).
    rule : {"empirical", "linear", "k_plus_1"}
        VaR quantile convention.

    Returns
    -------
    w_var, w_es : ndarray
        Non-negative weights of the same shape as ``pnl``; each row of ``w_var`` and of ``w_es`` sums to 1.
    """
    alpha = validate_confidence(confidence)
    _validate_rule(rule)
    x = as_pnl(pnl)
    plan = _TailPlan.of(x.shape[-1], alpha, rule)
    _, order = _order_statistics(x, plan)
    w_var = np.zeros_like(x)
    for i, c in plan.var_terms:
        if c > 0.0:
            w_var += c * _share_among_ties(x, order[i])
    boundary = order[plan.boundary][..., None]
    below = x < boundary
    at = x == boundary
    # The tied boundary scenarios share the tail mass left after the strictly worse ones.
    left = plan.tail - below.sum(axis=-1, keepdims=True)
    w_es = (below + at * (left / at.sum(axis=-1, keepdims=True))) / plan.tail
    return w_var, w_es


def var_es_reference(
    pnl: list[float] | tuple[float, ...], confidence: float, rule: str = "empirical"
) -> tuple[float, float]:
    """Slow, plain-Python VaR and ES of one P&L vector, kept beside :func:`var_es` to check it.

    It reads the confidence as the decimal it prints as (``Fraction(repr(α))``) and works in exact rational
    arithmetic, so it needs no tolerance to count tail scenarios.

    Parameters
    ----------
    pnl : sequence of float
        Scenario P&L in currency units.
    confidence : float
        Confidence level α in (0, 1).
    rule : {"empirical", "linear", "k_plus_1"}
        VaR quantile convention.
    """
    alpha = validate_confidence(confidence)
    _validate_rule(rule)
    xs = sorted(float(v) for v in pnl)
    n = len(xs)
    if n == 0:
        raise EmptyInputError("pnl (no scenarios)", list(pnl))
    p = 1 - Fraction(repr(alpha))
    tail = n * p
    # ES: give each ordered scenario the part of the tail mass t it covers, worst first.
    mass_left = tail
    total = Fraction(0)
    for x in xs:
        take = min(Fraction(1), max(Fraction(0), mass_left))
        total += take * Fraction(x)
        mass_left -= take
    es = -float(total / tail)
    if rule == "empirical":
        # smallest i (1-based) with empirical CDF i/n >= p
        var = -next(x for i, x in enumerate(xs, start=1) if i >= tail)
    elif rule == "k_plus_1":
        var = -xs[min(math.floor(tail), n - 1)]
    else:
        h = (n - 1) * p
        j = math.floor(h)
        below, above = xs[j], xs[min(j + 1, n - 1)]
        var = -(below + float(h - j) * (above - below))
    return var, es


@dataclass(frozen=True)
class RiskEstimate:
    """VaR and ES of one P&L vector, as positive losses in currency units.

    Parameters
    ----------
    var, es : float
        Value at Risk and Expected Shortfall, positive for a loss, in currency units.
    confidence : float
        Confidence level α in (0, 1).
    horizon_days : int
        Horizon of the scenario P&L the figures were computed from, in days.
    method : str
        Estimator that produced them, e.g. ``"historical/empirical"``.
    """

    var: float
    es: float
    confidence: float
    horizon_days: int
    method: str

    @property
    def var_name(self) -> str:
        """Name of the VaR figure, e.g. ``var_99_1d``."""
        return measure_name("var", self.confidence, self.horizon_days)

    @property
    def es_name(self) -> str:
        """Name of the ES figure, e.g. ``es_99_1d``."""
        return measure_name("es", self.confidence, self.horizon_days)

    @property
    def names(self) -> tuple[str, str]:
        """``(var_name, es_name)``."""
        return self.var_name, self.es_name

    def as_dict(self) -> dict[str, float]:
        """``{var_name: var, es_name: es}``, e.g. ``{"var_99_1d": 3.1, "es_99_1d": 4.0}``."""
        return {self.var_name: self.var, self.es_name: self.es}


class Estimator(ABC):
    """Interface of a VaR/ES method on scenario P&L: vectorised ``var_es`` and linear ``tail_weights``.

    ``confidence`` is α in (0, 1) and ``horizon_days`` the horizon of the P&L it is given (used in measure
    names; no scaling is applied — see :func:`scale_horizon`). Decomposition works with any implementation.
    """

    confidence: float
    horizon_days: int

    @property
    @abstractmethod
    def method(self) -> str:
        """Short name of the method, recorded with each estimate."""

    @abstractmethod
    def var_es(self, pnl: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """VaR and ES along the last axis of ``pnl`` (currency units), shape ``pnl.shape[:-1]``."""

    @abstractmethod
    def tail_weights(self, pnl: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Weights ``(w_var, w_es)`` shaped like ``pnl`` with ``VaR = -Σ w_var·pnl``, ``ES = -Σ w_es·pnl``."""

    def estimate(self, pnl: ArrayLike) -> RiskEstimate:
        """VaR and ES of one P&L vector of shape ``(n_scenarios,)`` in currency units."""
        x = as_pnl(pnl, max_ndim=1)
        var, es = self.var_es(x)
        return RiskEstimate(float(var), float(es), self.confidence, self.horizon_days, self.method)


@dataclass(frozen=True)
class HistoricalEstimator(Estimator):
    """Historical-simulation VaR and ES: empirical quantile and Acerbi–Tasche ES of the scenario P&L.

    Parameters
    ----------
    confidence : float
        Confidence level α in (0, 1), default 0.99.
    rule : {"empirical", "linear", "k_plus_1"}
        VaR quantile convention, default ``"empirical"`` (see the module docstring).
    horizon_days : int
        Horizon of the scenario P&L, in days (default 1).
    """

    confidence: float = 0.99
    rule: QuantileRule = "empirical"
    horizon_days: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "confidence", validate_confidence(self.confidence))
        _validate_rule(self.rule)
        object.__setattr__(self, "horizon_days", validate_horizon_days(self.horizon_days, "horizon_days"))

    @property
    def method(self) -> str:
        return f"historical/{self.rule}"

    def var_es(self, pnl: ArrayLike) -> tuple[FloatArray, FloatArray]:
        return var_es(pnl, self.confidence, self.rule)

    def tail_weights(self, pnl: ArrayLike) -> tuple[FloatArray, FloatArray]:
        return tail_weights(pnl, self.confidence, self.rule)
