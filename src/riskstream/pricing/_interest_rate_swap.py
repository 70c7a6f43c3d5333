"""Plain fixed-for-floating interest-rate swaps, single-curve, per unit of notional.

Receiver value ``fixed_rate·Σ_i τ_i·DF(t_i) − (1 − DF(T))``: the floating leg is worth par today. Fixed payments
fall on ``t_i = T − i/frequency`` (``i ≥ 0`` while ``t_i > 0``, ``T`` ACT/365F to maturity); each accrues over the
period before it, ``τ_i = t_i − t_{i+1}`` = 1/frequency, except the earliest, which accrues from the valuation
date (``τ = t_last``), as the floating leg does. A payer swap (``pay_fixed``) is worth the negative.

As cashflows: ``fixed_rate·τ_i`` at each ``t_i``, 1 at ``T`` and −1 now (receiver; signs flipped for a payer).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

from ..domain import InterestRateSwap
from ._cashflows import Cashflows, cashflow_family, coupon_schedule

__all__ = ["INTEREST_RATE_SWAP", "swap_cashflows"]


def swap_cashflows(swaps: Sequence[InterestRateSwap], as_of: date) -> Cashflows:
    """Cashflows of swaps maturing after ``as_of`` in one flat table: fixed leg, floating leg as +1 at T, −1 now."""
    n = len(swaps)
    owner, time, first = coupon_schedule(swaps, as_of)
    following = np.append(time[1:], 0.0)
    following[first[1:] - 1] = 0.0  # an instrument's earliest coupon accrues from now
    fixed = np.array([s.fixed_rate for s in swaps])[owner] * (time - following)
    sign = np.array([-1.0 if s.pay_fixed else 1.0 for s in swaps])
    rows = np.arange(n)
    currency = np.array([s.currency for s in swaps], dtype=object)
    owners = np.concatenate([owner, rows, rows])
    return Cashflows(
        owners,
        currency[owners],
        np.concatenate([time, time[first], np.zeros(n)]),
        sign[owners] * np.concatenate([fixed, np.ones(n), -np.ones(n)]),
        n,
    )


INTEREST_RATE_SWAP = cashflow_family(swap_cashflows)
