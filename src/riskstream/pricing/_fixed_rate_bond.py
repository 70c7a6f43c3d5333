"""Fixed-rate bullet bonds: coupons ``face·coupon_rate/frequency`` and the face at maturity, discounted.

Dirty price per bond, in the bond's currency: ``Σ_i c_i·exp(−(z(t_i) + spread)·t_i)`` over the cashflow times
``t_i = T − i/frequency`` (``i ≥ 0`` while ``t_i > 0``, ``T`` the ACT/365F year fraction to maturity), ``c_i``
the coupon plus, at ``t_0 = T``, the face; ``z`` the currency's zero curve (see ``_curve``), ``spread`` the static
z-spread. No accrued interest is subtracted and no day-count adjusts the coupons.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

from ..domain import FixedRateBond
from ._cashflows import Cashflows, cashflow_family, coupon_schedule

__all__ = ["FIXED_RATE_BOND", "bond_cashflows"]


def bond_cashflows(bonds: Sequence[FixedRateBond], as_of: date) -> Cashflows:
    """Cashflows of bonds maturing after ``as_of`` in one flat table, spread discounting in the amounts."""
    owner, time, first = coupon_schedule(bonds, as_of)
    coupon = np.array([b.face * b.coupon_rate / b.frequency for b in bonds])[owner]
    coupon[first] += np.array([b.face for b in bonds])
    spread = np.array([b.spread for b in bonds])[owner]
    currency = np.array([b.currency for b in bonds], dtype=object)[owner]
    return Cashflows(owner, currency, time, coupon * np.exp(-spread * time), len(bonds))


FIXED_RATE_BOND = cashflow_family(bond_cashflows)
