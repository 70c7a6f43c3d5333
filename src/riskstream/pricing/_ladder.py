"""Fixed cash flows of many instruments laid out once on unique (currency, time) nodes, for repeated valuation.

A streaming engine values the same bonds and swaps again and again as rates tick. Their schedules, the merge of
cash flows on one (currency, time) node and the interpolation weights do not change during the day; only the
tenor rates do. A :class:`CashflowLadder` holds the fixed part, the same one ``_cashflows.present_values``
builds on every call:

- ``amounts`` (instruments × nodes): the amount each instrument receives at each node, in its own currency,
  static z-spread folded in (``exp(−s·t)``), cash flows on one node summed;
- per node, the (at most) two tenor points bracketing its time and ``−t·w`` for each (``w`` the linear
  interpolation weight, flat extrapolation), so ``log DF(t) = Σ (−t·w_k)·z_k``.

Values in the instruments' own currencies under rates ``R`` (tenor points × scenarios) are
``amounts @ exp(log_weights · R)``, which is what the family pricers compute; after a tick on tenor point ``k``
only the nodes bracketed by ``k`` need a new discount factor (:meth:`CashflowLadder.nodes_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..domain import Instrument, InstrumentType, MarketSnapshot
from ._cashflows import Cashflows
from ._curve import CurveSet
from ._fixed_rate_bond import bond_cashflows
from ._interest_rate_swap import swap_cashflows
from ._zero_coupon_bond import zero_cashflows

__all__ = ["CASHFLOW_SCHEDULES", "CashflowLadder"]

#: The families made of fixed cash flows in their own currency, and how each builds its schedule.
CASHFLOW_SCHEDULES: Mapping[InstrumentType, Callable[[Sequence[Any], date], Cashflows]] = MappingProxyType(
    {
        InstrumentType.FIXED_RATE_BOND: bond_cashflows,
        InstrumentType.ZERO_COUPON_BOND: zero_cashflows,
        InstrumentType.INTEREST_RATE_SWAP: swap_cashflows,
    }
)


@dataclass(frozen=True)
class CashflowLadder:
    """Cash flows of ``n`` instruments on unique (currency, time) nodes.

    Attributes
    ----------
    amounts
        (n_instruments, n_nodes) CSR: amount in the instrument's currency at each node.
    node_currency, node_time
        Currency and time in years (ACT/365F from the valuation date) of each node, sorted by currency, then time.
    pillars
        (n_nodes, 2) positions in ``factor_ids`` of the tenor points a node reads (a padding entry has weight 0).
    log_weights
        (n_nodes, 2): ``−t·w`` of each of those tenor points.
    factor_ids
        The rate factors (``IR.<ccy>.<tenor>``) the nodes read, curve by curve.
    """

    amounts: sp.csr_matrix
    node_currency: np.ndarray
    node_time: np.ndarray
    pillars: np.ndarray
    log_weights: np.ndarray
    factor_ids: tuple[str, ...]
    #: ``amounts`` by node (CSC), to find the instruments paying on given nodes.
    by_node: sp.csc_matrix

    @classmethod
    def build(cls, instruments: Sequence[Instrument], snapshot: MarketSnapshot) -> CashflowLadder:
        """The ladder of ``instruments`` (all of a family in :data:`CASHFLOW_SCHEDULES`, maturing after the
        snapshot's ``as_of``, in currencies with a curve in it); the curves are the snapshot's tenor points."""
        owners: list[np.ndarray] = []
        currency: list[np.ndarray] = []
        time: list[np.ndarray] = []
        amount: list[np.ndarray] = []
        kinds = np.array([getattr(inst, "type", None) for inst in instruments], dtype=object)
        for kind, schedule in CASHFLOW_SCHEDULES.items():
            idx = np.flatnonzero(kinds == kind)
            if idx.size == 0:
                continue
            cf = schedule([instruments[i] for i in idx.tolist()], snapshot.as_of)
            owners.append(idx[cf.owner])
            currency.append(np.asarray(cf.currency, dtype=object))
            time.append(cf.time)
            amount.append(cf.amount)
        flat = Cashflows(
            np.concatenate(owners) if owners else np.empty(0, dtype=np.intp),
            np.concatenate(currency) if currency else np.empty(0, dtype=object),
            np.concatenate(time) if time else np.empty(0),
            np.concatenate(amount) if amount else np.empty(0),
            len(instruments),
        )
        a, node_ccy, node_time = flat.grouped()
        curves = CurveSet(snapshot.to_scenarios(), node_ccy.tolist())
        # exactly the log discount factors of present_values: −t·w, explicit zeros dropped by the product
        log_df = sp.csr_matrix(sp.diags(-node_time) @ curves.weights(node_ccy, node_time))
        n = len(node_time)
        pillars = np.zeros((n, 2), dtype=np.intp)
        weights = np.zeros((n, 2))
        counts = np.diff(log_df.indptr)
        for k in range(2):
            has = np.flatnonzero(counts > k)
            pillars[has, k] = log_df.indices[log_df.indptr[has] + k]
            weights[has, k] = log_df.data[log_df.indptr[has] + k]
        return cls(a, node_ccy, node_time, pillars, weights, curves.factor_ids, a.tocsc())

    @property
    def n_nodes(self) -> int:
        return len(self.node_time)

    def discount_factors(self, rates: np.ndarray, nodes: np.ndarray | None = None) -> np.ndarray:
        """Discount factors ``exp(Σ (−t·w_k)·z_k)`` of ``nodes`` (all by default): (n_nodes, n_scenarios).

        Parameters
        ----------
        rates
            Zero rates of ``factor_ids`` under every scenario, shape (len(factor_ids), n_scenarios).
        nodes
            Node positions to compute.
        """
        p = self.pillars if nodes is None else self.pillars[nodes]
        lw = self.log_weights if nodes is None else self.log_weights[nodes]
        x = lw[:, 0:1] * rates[p[:, 0]]
        x += lw[:, 1:2] * rates[p[:, 1]]
        return np.exp(x, out=x)

    def shock_factors(self, shifts: np.ndarray, nodes: np.ndarray | None = None) -> np.ndarray:
        """``exp(Σ (−t·w_k)·d_k)``: the factor by which absolute rate shifts ``d`` multiply each node's discount
        factor, ``DF(z + d) = DF(z)·exp(Σ (−t·w_k)·d_k)``; shape (n_nodes, n_scenarios).

        With scenario shifts fixed for the day this is computed once, and a tick on today's rates costs one
        ``exp`` per node instead of one per node and scenario (equal to :meth:`discount_factors` of ``z + d``
        to rounding).

        Parameters
        ----------
        shifts
            Absolute shifts of ``factor_ids`` per scenario, shape (len(factor_ids), n_scenarios).
        """
        return self.discount_factors(shifts, nodes)

    def shifted_values(
        self, today: np.ndarray, shock: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Values under every shift scenario and today: ``[(amounts·diag(DF_0)) @ G | amounts @ DF_0]``.

        Parameters
        ----------
        today
            Discount factor of every node today, shape (n_nodes,).
        shock
            :meth:`shock_factors` ``G`` of the scenario shifts, shape (n_nodes, n_scenarios).
        rows
            Instruments to value (all by default).

        Returns
        -------
        (n_rows, n_scenarios + 1): values in the instruments' currencies, the last column today's.
        """
        a = self.amounts if rows is None else self.amounts[rows]
        out = np.empty((a.shape[0], shock.shape[1] + 1))
        out[:, :-1] = (a @ sp.diags(today)) @ shock
        out[:, -1] = a @ today
        return out

    def shift_values(
        self, nodes: np.ndarray, d_today: np.ndarray, shock: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Change of :meth:`shifted_values` when today's discount factors of ``nodes`` move by ``d_today``.

        Only the instruments paying on those nodes change, by ``(amounts[:, nodes]·diag(ΔDF_0)) @ G[nodes]``
        (and ``amounts[:, nodes] @ ΔDF_0`` today): the cost is that of the cash flows on the moved nodes, not of
        whole schedules. Equal to the difference of two :meth:`shifted_values` to rounding.

        Returns
        -------
        the instruments paying on ``nodes`` (sorted), and their value changes (n, n_scenarios + 1).
        """
        sub = sp.csr_matrix(self.by_node[:, nodes])
        owners = np.flatnonzero(np.diff(sub.indptr))
        sub = sub[owners]
        out = np.empty((len(owners), shock.shape[1] + 1))
        out[:, :-1] = (sub @ sp.diags(d_today)) @ shock[nodes]
        out[:, -1] = sub @ d_today
        return owners, out

    def values(self, discount: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Values in the instruments' own currencies: ``amounts[rows] @ discount``, (n_rows, n_scenarios)."""
        a = self.amounts if rows is None else self.amounts[rows]
        return np.asarray(a @ discount)

    def nodes_of(self, factor_positions: np.ndarray) -> np.ndarray:
        """Nodes that read any of the tenor points ``factor_positions`` (positions in ``factor_ids``)."""
        hit = np.isin(self.pillars, factor_positions) & (self.log_weights != 0.0)
        return np.flatnonzero(hit.any(axis=1))
