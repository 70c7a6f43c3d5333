"""Fixed cashflows discounted on zero curves: what bonds and swaps are made of.

All instruments' cashflows live in one flat table (owner row, currency, time, amount). Cashflows that fall on
the same time in the same currency share one discount factor, computed once per scenario; the present values
are then one sparse product ``A @ DF`` with ``A[owner, unique time] = Σ amount``: the sum by owner that
``np.add.reduceat`` over the flat table would give, without a (cashflows × scenarios) array in memory (and, on
10,000 bonds × 1,000 scenarios, several times faster). Amounts are fixed in the instrument's currency; a static
z-spread ``s`` is folded into them (``exp(−(z+s)·t) = exp(−s·t)·DF(t)``), since it does not move with the
scenarios.

Coupon schedules (:func:`coupon_times`) roll back from maturity: ``t_i = T − i/frequency`` for ``i ≥ 0`` while
``t_i > 0``, ``T`` the ACT/365F year fraction from the valuation date to maturity. The earliest coupon may thus
fall within days of the valuation date: prices are dirty (they include it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..domain import MarketScenarios, fx_factor, year_fraction
from ._curve import CurveSet
from ._family import BLOCK_ELEMENTS, Checks, Exposures, FactorColumns, Family, Sink, fx_ids
from ._translation import add_fx_exposure

__all__ = ["Cashflows", "cashflow_family", "coupon_schedule", "coupon_times", "present_values"]

#: Coupon times closer to the valuation date than this (years; ~0.1 s) are taken as paid.
_PAID = 1e-9


@lru_cache(maxsize=1 << 16)
def coupon_times(as_of: date, maturity: date, frequency: int) -> np.ndarray:
    """Payment times in years ``T − i/frequency`` (``i = 0, 1, ...`` while > 0), latest first; read-only.

    Parameters
    ----------
    as_of
        Valuation date.
    maturity
        Final payment date; ``T = year_fraction(as_of, maturity)`` (ACT/365F).
    frequency
        Payments per year.
    """
    years = year_fraction(as_of, maturity)
    times = years - np.arange(max(0, int(np.ceil(years * frequency)))) / frequency
    times = times[times > _PAID]
    times.flags.writeable = False
    return times


def coupon_schedule(instruments: Sequence[Any], as_of: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coupon times of many instruments (with ``maturity`` and ``frequency``) in one flat array.

    Returns
    -------
    owner row of each time (n_cf,), the times in years (n_cf,), and the position of each instrument's first
    (= maturity) entry (n,); an instrument's times are contiguous, latest first.
    """
    schedules = [coupon_times(as_of, inst.maturity, inst.frequency) for inst in instruments]
    counts = np.fromiter((len(t) for t in schedules), dtype=np.intp, count=len(schedules))
    owner = np.repeat(np.arange(len(schedules)), counts)
    time = np.concatenate(schedules) if schedules else np.empty(0)
    return owner, time, np.cumsum(counts) - counts


@dataclass(frozen=True)
class Cashflows:
    """Fixed cashflows of ``n_owners`` instruments, flattened.

    Attributes
    ----------
    owner
        Row of the instrument paying each cashflow, shape (n_cf,).
    currency
        Currency of each cashflow, shape (n_cf,).
    time
        Payment time in years from the valuation date, shape (n_cf,); 0 for an amount paid now.
    amount
        Amount in the currency, fixed (spread discounting included), shape (n_cf,).
    n_owners
        Number of instruments.
    """

    owner: np.ndarray
    currency: np.ndarray
    time: np.ndarray
    amount: np.ndarray
    n_owners: int

    def grouped(self) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """Cashflows on one (currency, time) merged: ``A`` (n_owners, n_unique), their currencies and times.

        The unique pairs are sorted by currency, then time, so each currency's times are contiguous.
        """
        ccy_code = np.unique(self.currency.astype(str), return_inverse=True)[1]
        order = np.lexsort((self.time, ccy_code))
        code_s, time_s = ccy_code[order], self.time[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (code_s[1:] != code_s[:-1]) | (time_s[1:] != time_s[:-1])
        inverse = np.empty(len(order), dtype=np.intp)
        inverse[order] = np.cumsum(new) - 1
        first = order[new]
        a = sp.csr_matrix(
            (self.amount, (self.owner, inverse)), shape=(self.n_owners, len(first)), dtype=np.float64
        )
        return a, self.currency[first], self.time[first]


def present_values(
    cashflows: Cashflows, curves: CurveSet, fx: Mapping[str, np.ndarray] | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """Present value of each owner's cashflows, by blocks of scenarios: (columns, (n_owners, n_columns)).

    Per block, ``−t·z(t)`` of every unique (currency, time) is one sparse product of the tenor rates with the
    interpolation weights scaled by ``−t``; then one ``exp``, the FX translation of each currency's rows, and
    one sparse product with the amounts. (Sparse products run single-threaded in scipy: no BLAS threads to
    contend for.)

    Parameters
    ----------
    cashflows
        The cashflows; each currency needs a curve in ``curves``.
    curves
        Zero curves under the scenarios.
    fx
        Currency → its FX level in every scenario (n_scenarios,): values come out in the reporting currency.
        Without it they are in the cashflows' own currencies.
    """
    a, currency, times = cashflows.grouped()
    log_df = sp.csr_matrix(sp.diags(-times) @ curves.weights(currency, times))
    # a currency translated at 1 in every scenario (values wanted in local currency) needs no rescale
    fx = {c: x for c, x in (fx or {}).items() if not np.all(x == 1.0)}
    spans = [(c, rows) for c, rows in _spans(currency) if c in fx] if fx else []
    n_scen = curves.rates.shape[1]
    # narrow blocks keep the (unique times × block) discount factors in cache for the product with the amounts
    step = min(n_scen, max(8, 8 * BLOCK_ELEMENTS // max(1, len(times))))
    for start in range(0, n_scen, step):
        cols = slice(start, min(start + step, n_scen))
        df = np.asarray(log_df @ curves.rates[:, cols])
        np.exp(df, out=df)
        for ccy, rows in spans:
            df[rows] *= fx[ccy][cols]
        yield cols, np.asarray(a @ df)


def _spans(currency: np.ndarray) -> list[tuple[str, slice]]:
    """The contiguous run of each currency in an array sorted by currency."""
    names, first = np.unique(currency.astype(str), return_index=True)
    ends = [*first[1:], len(currency)]
    return [(str(c), slice(int(b), int(e))) for c, b, e in zip(names, first, ends, strict=True)]


def cashflow_family(schedule: Callable[[Sequence[Any], date], Cashflows]) -> Family[Any]:
    """A family pricer for instruments with a maturity made of fixed cashflows in their own currency.

    Parameters
    ----------
    schedule
        Builds the cashflows of the given instruments (all checked) at a valuation date.
    """

    def checked(instruments: Sequence[Any], market: MarketScenarios) -> tuple[Checks, np.ndarray, np.ndarray]:
        checks = Checks(instruments, market)
        checks.maturity()
        ccys = checks.currencies([inst.currency for inst in instruments])
        return checks, ccys, np.asarray(fx_ids(ccys), dtype=object)

    def value(instruments: Sequence[Any], market: MarketScenarios, sink: Sink) -> dict[int, str]:
        checks, ccys, _ = checked(instruments, market)
        ok = checks.ok
        fx = {str(c): market.column(fx_factor(str(c))) for c in set(ccys[ok])}
        cashflows = schedule([instruments[i] for i in ok], market.as_of)
        for cols, values in present_values(cashflows, CurveSet(market, ccys[ok]), fx):
            sink.put(ok, values, cols)
        return checks.failed

    def exposures(instruments: Sequence[Any], market: MarketScenarios) -> Exposures:
        checks, ccys, fx = checked(instruments, market)
        ok = checks.ok
        out = Exposures(failed=checks.failed)
        curves = CurveSet(market, ccys[ok])
        a, currency, times = schedule([instruments[i] for i in ok], market.as_of).grouped()
        w = curves.weights(currency, times)
        df = np.exp(-(w @ curves.rates[:, 0]) * times)
        x = FactorColumns(market, fx[ok]).rows(slice(None))[:, 0]
        xa = sp.diags(x) @ a
        # ∂PV/∂z_k = −Σ a·t·DF·w_k and ∂²PV/∂z_k² = Σ a·t²·DF·w_k² (the weights do not depend on the rates)
        delta = -(xa @ sp.diags(times * df) @ w).tocoo()
        gamma = (xa @ sp.diags(times * times * df) @ w.multiply(w)).tocoo()
        ids = np.asarray(curves.factor_ids, dtype=object)
        out.add(ok[delta.row], ids[delta.col], delta.data)
        out.add(ok[gamma.row], ids[gamma.col], 0.0 * gamma.data, gamma.data)
        add_fx_exposure(out, ok, ccys[ok], market.reporting_currency, xa @ df)
        return out

    return Family(value, exposures)
