"""Zero-coupon bonds: ``face·exp(−(z(T) + spread)·T)`` in the bond's currency, ``T`` ACT/365F to maturity."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

from ..domain import ZeroCouponBond, year_fraction
from ._cashflows import Cashflows, cashflow_family

__all__ = ["ZERO_COUPON_BOND", "zero_cashflows"]


def zero_cashflows(bonds: Sequence[ZeroCouponBond], as_of: date) -> Cashflows:
    """One cashflow per bond maturing after ``as_of``: the face at maturity, spread discounting folded in."""
    time = np.array([year_fraction(as_of, b.maturity) for b in bonds], dtype=np.float64)
    face = np.array([b.face for b in bonds], dtype=np.float64)
    spread = np.array([b.spread for b in bonds], dtype=np.float64)
    currency = np.array([b.currency for b in bonds], dtype=object)
    return Cashflows(np.arange(len(bonds)), currency, time, face * np.exp(-spread * time), len(bonds))


ZERO_COUPON_BOND = cashflow_family(zero_cashflows)
