"""The streaming VaR/ES engine: incremental, bus-free, checkpointable.

State (all numpy arrays in the hot path):

- **market**: the current level of every factor the portfolio's instruments can depend on (``cur``), and the
  scenario shocks fixed at start of day (``window`` historical changes, FHS-rescaled for ``fhs``). Scenario
  levels are ``apply_shocks(cur, changes)``: ``x·(1+r)`` for prices, FX and vols, ``x+d`` for rates.
- **instruments**: one row per instrument some position uses — its value per unit under every scenario and at
  the current levels, in its own currency when it is a single-currency instrument (``L``, rows × (scenarios+1)),
  its P&L per unit ``P[row] = X_s·L_s − X_0·L_0`` in the reporting currency (``X`` its ``FX.<ccy>`` level, 1
  for the reporting currency and for currency pairs, whose ``L`` is already in the reporting currency) and its
  value ``X_0·L_0``; an exact index factor → instruments
  (:func:`~riskstream.pricing.factor_dependencies_exact`: a cash flow reads only the curve tenors around its
  time) and ``FX.<ccy>`` → the instruments it only translates.
- **positions**: instrument row, quantity and leaf of each position slot (a cancelled slot keeps its place
  with quantity 0, so slot order — and with it every floating-point sum — depends only on the input).
- **hierarchy**: nodes ``FIRM/<desk>/<book>/<trader>`` (ids as :class:`~riskstream.domain.Hierarchy` names them),
  created on first sight of a new book or trader; leaf P&L vectors ``leaf_pnl`` (leaves × scenarios).

A micro-batch (:meth:`StreamingEngine.step`): conflate pending ticks (latest level per factor wins), find the
instruments whose factors moved, revalue only those (full revaluation, in local currency), re-translate those and
the ones whose FX rate alone moved (a rescale of ``L``), add ``quantity × ΔP`` to the leaves holding them (a
sparse product over the touched instruments), then recompute VaR/ES of every touched node from its summed
vector.
Position events add ``Δquantity × P[row]`` to their leaf when they are applied. Every ``exact_every``
micro-batches the leaves are recomputed exactly from the positions, so incremental rounding never accumulates.

Conventions: P&L positive is a gain; VaR and ES are positive losses in the reporting currency over
``horizon_days`` (``var_99_1d``, ``es_975_1d``); ``pv`` is the sum of quantity × value per unit.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..domain import (
    ATTRIBUTES,
    FIRM,
    BadRecord,
    Instrument,
    MarketScenarios,
    MarketSnapshot,
    Portfolio,
    PositionEvent,
    PositionEventKind,
    RiskSnapshot,
    ShockType,
    Tick,
    parse_factor,
)
from ..errors import ConfigurationError, InvalidFieldError, RiskstreamError
from ..pricing import (
    CASHFLOW_SCHEDULES,
    CashflowLadder,
    PreparedBook,
    factor_dependencies_exact,
    sensitivities,
    single_currency,
    translation_currency,
    value_instruments,
)
from ..risk import tail_weights, var_and_es
from ..scenarios import RELATIVE_FLOOR
from ._batch import Contribution, NodeRisk
from ._factors import _expand
from ._stream_config import StreamConfig
from ._stream_state import pack_state, unpack_state
from ._stream_threads import StepPool

__all__ = ["SlowMeasures", "StreamingEngine"]

#: Smallest piece of a step's row-wise memory work (re-translation, leaf updates: elements = rows × scenarios)
#: worth handing to another thread; waking one costs ~0.15 ms on a 2-core machine, ~50,000 elements of copies.
PARALLEL_COPY_ELEMENTS = 1 << 16


def _pieces(n: int, elements_per_row: int, parts: int, smallest: int) -> list[slice]:
    """Up to ``parts`` contiguous slices of ``range(n)`` of at least ``smallest`` elements each (one when small)."""
    k = max(1, min(parts, n * elements_per_row // max(1, smallest)))
    bounds = np.linspace(0, n, k + 1).astype(np.int64).tolist()
    return [slice(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _gather(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Concatenation of the CSR rows ``rows`` (``indices[indptr[r]:indptr[r+1]]`` for each r), vectorised."""
    starts = indptr[rows]
    lens = indptr[rows + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, dtype=indices.dtype)
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
    return indices[shift + np.arange(total)]


def _csr(groups: np.ndarray, members: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, indices) listing ``members`` by group, members kept in their given order."""
    order = np.argsort(groups, kind="stable")
    indptr = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(groups, minlength=n_groups), out=indptr[1:])
    return indptr, members[order].astype(np.int64)


@dataclass(frozen=True)
class SlowMeasures:
    """Latest Monte Carlo VaR/ES and stress P&L per node, from one consistent copy of the engine's state.

    ``measures`` maps node id → measure name → value (``var_99_1d_mc``, ``es_975_1d_mc``: positive losses;
    ``stress_<name>``: the node's P&L under the scenario, negative = loss). ``step`` is the micro-batch count of
    the state it was computed from; ``skipped`` names stress scenarios that could not run, with the reason.
    """

    step: int
    measures: Mapping[str, Mapping[str, float]]
    elapsed_s: float
    skipped: Mapping[str, str]


class StreamingEngine:
    """Incremental VaR/ES of a portfolio (or a partition of its books) under a stream of ticks and trades.

    Parameters
    ----------
    portfolio
        Instruments (the universe new positions may reference) and start-of-day positions.
    snapshot
        Start-of-day market; its ``as_of`` stays the valuation date all day.
    history
        Factor level history (dates × factor ids); the scenarios are its last ``window`` changes.
    config
        See :class:`StreamConfig`.
    books
        Only the positions of these books (a worker owns a partition of books); ``None`` = every book.
    """

    def __init__(
        self,
        portfolio: Portfolio,
        snapshot: MarketSnapshot,
        history: pd.DataFrame,
        config: StreamConfig | None = None,
        *,
        books: Collection[str] | None = None,
        _restore: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None,
    ) -> None:
        self.config = config or StreamConfig()
        self._history = history
        self._snapshot0 = snapshot
        self._as_of = snapshot.as_of
        self._ccy = snapshot.reporting_currency
        self._instruments: tuple[Instrument, ...] = portfolio.instruments
        self._inst_index = {inst.instrument_id: i for i, inst in enumerate(self._instruments)}
        self._lock = threading.RLock()
        self._slow: SlowMeasures | None = None
        self._slow_fresh = False
        self._mc_shocks: np.ndarray | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pool = StepPool(self.config.n_threads)
        self._buffers: dict[str, np.ndarray] = {}
        self.rejected: list[BadRecord] = list(portfolio.rejected)
        self._build_market(snapshot, history)
        self._init_empty()
        if _restore is not None:
            self._restore(*_restore)
        else:
            self._books = frozenset(books) if books is not None else None
            self._load_positions(portfolio)

    # ----------------------------------------------------------------------------------------------------------
    # set-up

    def _build_market(self, snapshot: MarketSnapshot, history: pd.DataFrame) -> None:
        """Factor universe, current levels and the start-of-day scenario shocks."""
        from ._factors import required_factors

        fids, failed = required_factors(self._instruments, snapshot, history)
        self._inst_failed: dict[int, str] = dict(failed)
        self._fids: tuple[str, ...] = fids
        self._fidx = {f: j for j, f in enumerate(fids)}
        self._cur = np.array([snapshot[f] for f in fids], dtype=np.float64)
        # levels of factors outside the universe (ticks on them change nothing priced, but the market keeps them)
        self._other: dict[str, float] = {f: v for f, v in snapshot.values.items() if f not in self._fidx}
        scen = self.config.request().scenario_generator().generate(snapshot, history, fids)
        self._changes = np.asarray(scen.changes, dtype=np.float64)
        self._types = scen.shock_types
        self._rel = np.array([t is ShockType.RELATIVE for t in self._types], dtype=bool)
        self._positive = np.array([parse_factor(f).positive for f in fids], dtype=bool)
        # the factor applied to (relative) or added to (absolute) the current level, as apply_shocks does it
        self._mult = np.where(self._rel, np.maximum(1.0 + self._changes, 1.0 + RELATIVE_FLOOR), self._changes)
        self._mult_rows = np.ascontiguousarray(
            self._mult.T
        )  # factors × scenarios: a factor's row is contiguous
        self._labels = scen.labels
        # options, forwards, futures and shares laid out once: a step values any subset without set-up
        self._book = PreparedBook.build(self._instruments, snapshot, fids)
        self._book_pos = np.zeros(len(fids) + 1, dtype=np.int64)
        self._fingerprint = hashlib.sha256(self._changes.tobytes() + "\n".join(fids).encode()).hexdigest()
        self._pending: dict[int, float] = {}
        self._pending_other: dict[str, float] = {}

    def _init_empty(self) -> None:
        s = self.n_scenarios
        depth = len(self.config.levels)
        # instrument rows
        self._row_of = np.full(len(self._instruments), -1, dtype=np.int64)
        self._row_inst = np.empty(0, dtype=np.int64)
        self._P = np.empty((0, s))
        self._L = np.empty((0, s + 1))
        self._base = np.empty(0)
        self._row_fx = np.empty(0, dtype=np.int64)
        self._row_failed: dict[int, str] = {}
        self._stale = np.empty(0, dtype=bool)
        self._row_deps: list[np.ndarray] = []
        self._deps_dirty = True
        self._lad_dirty = True
        self._lad_of_row = np.empty(0, dtype=np.int64)
        # positions
        self._pid: list[str] = []
        self._slot: dict[str, int] = {}
        self._prow = np.empty(0, dtype=np.int64)
        self._qty = np.empty(0)
        self._leaf = np.empty(0, dtype=np.int64)
        self._attrs: dict[str, list[str]] = {a: [] for a in ATTRIBUTES}
        self._pos_dirty = True
        # hierarchy
        self._node_ids: list[str] = [FIRM]
        self._node_index: dict[str, int] = {FIRM: 0}
        self._parent: list[int] = [-1]
        self._node_level: list[int] = [0]
        self._leaf_key: dict[tuple[str, ...], int] = {}
        self._leaf_anc = np.empty((0, depth + 1), dtype=np.int64)
        self._leaf_pnl = np.empty((0, s))
        self._tree_dirty = True
        # stream counters
        self._steps = 0
        self._since_exact = 0
        self._touched: set[int] = set()

    def _load_positions(self, portfolio: Portfolio) -> None:
        pos = portfolio.positions
        keep = np.ones(len(pos), dtype=bool)
        if self._books is not None and len(pos):
            keep = np.isin(pos.attribute("book"), np.array(sorted(self._books), dtype=str))
        rows = np.flatnonzero(keep)
        inst = pos.instrument[rows]
        bad = self._ensure_rows(np.unique(inst))
        ok = np.array([int(g) not in bad for g in inst], dtype=bool) if len(inst) else np.empty(0, dtype=bool)
        for r in rows[~ok]:
            self.rejected.append(BadRecord("position", str(pos.position_id[r]), bad[int(pos.instrument[r])]))
        rows = rows[ok]
        cols = {a: pos.attributes[a][rows].tolist() for a in ATTRIBUTES if a in pos.attributes}
        keys = list(zip(*(cols[lv] for lv in self.config.levels), strict=True)) if len(rows) else []
        # leaves in sorted order of their path, as the batch hierarchy orders them
        for key in sorted(set(keys)):
            self._leaf_for(key)
        self._pid = pos.position_id[rows].astype(str).tolist()
        self._slot = {p: i for i, p in enumerate(self._pid)}
        if len(self._slot) != len(self._pid):
            raise InvalidFieldError("position_id", "duplicate", "position ids must be unique")
        self._prow = self._row_of[pos.instrument[rows]]
        self._qty = pos.quantity[rows].astype(np.float64)
        self._leaf = np.array([self._leaf_key[k] for k in keys], dtype=np.int64)
        n = len(rows)
        self._attrs = {a: cols.get(a, [""] * n) for a in ATTRIBUTES}
        self._pos_dirty = True
        self._recompute_leaves()
        self._touched = set(range(len(self._node_ids)))

    # ----------------------------------------------------------------------------------------------------------
    # instruments

    def _coarse_reason(self, g: int) -> str | None:
        """Why instrument ``g`` cannot be valued (a factor it may read has no scenarios), or None."""
        if g in self._inst_failed:
            return self._inst_failed[g]
        one = f"FX.{self._ccy}"
        for d in self._instruments[g].factors(self._ccy):
            for f in _expand(d, self._snapshot0):
                if f != one and f not in self._fidx:
                    return f"risk factor {f!r} has no scenarios"
        return None

    def _deps(self, globals_: Sequence[int]) -> dict[int, tuple[np.ndarray, int] | str]:
        """Per instrument: (universe columns a repricing reads, column of the FX rate that only translates it
        or −1), or the reason it cannot be valued."""
        out: dict[int, tuple[np.ndarray, int] | str] = {}
        ok: list[int] = []
        for g in globals_:
            reason = self._coarse_reason(g)
            if reason is not None:
                out[g] = reason
            else:
                ok.append(g)
        exact = factor_dependencies_exact([self._instruments[g] for g in ok], self._snapshot0)
        for g, ids in zip(ok, exact, strict=True):
            ccy = translation_currency(self._instruments[g], self._ccy)
            fx = self._fidx[f"FX.{ccy}"] if ccy is not None else -1
            cols = np.array([self._fidx[f] for f in ids], dtype=np.int64)
            out[g] = (np.sort(cols[cols != fx]), fx)
        return out

    def _ensure_rows(self, globals_: np.ndarray) -> dict[int, str]:
        """Give every instrument in ``globals_`` a valued, current row; return the ones that cannot be valued."""
        bad: dict[int, str] = {}
        new: list[int] = []
        fresh: list[int] = []
        for g in (int(x) for x in globals_):
            r = int(self._row_of[g])
            if r >= 0:
                if r in self._row_failed:
                    bad[g] = self._row_failed[r]
                continue
            fresh.append(g)
        fx_new: list[int] = []
        for g, deps in self._deps(fresh).items():
            if isinstance(deps, str):
                bad[g] = deps
                continue
            new.append(g)
            self._row_deps.append(deps[0])
            fx_new.append(deps[1])
        if new:
            start = len(self._row_inst)
            self._row_of[new] = np.arange(start, start + len(new))
            self._row_inst = np.concatenate([self._row_inst, np.array(new, dtype=np.int64)])
            self._P = np.concatenate([self._P, np.zeros((len(new), self.n_scenarios))])
            self._L = np.concatenate([self._L, np.zeros((len(new), self.n_scenarios + 1))])
            self._base = np.concatenate([self._base, np.zeros(len(new))])
            self._row_fx = np.concatenate([self._row_fx, np.array(fx_new, dtype=np.int64)])
            self._stale = np.concatenate([self._stale, np.ones(len(new), dtype=bool)])
            self._deps_dirty = self._lad_dirty = True
        stale_rows = np.array([self._row_of[g] for g in globals_ if int(g) not in bad], dtype=np.int64)
        stale_rows = stale_rows[self._stale[stale_rows]] if stale_rows.size else stale_rows
        if stale_rows.size:
            self._revalue(stale_rows, incremental=False)
            for r in stale_rows:
                if int(r) in self._row_failed:
                    bad[int(self._row_inst[r])] = self._row_failed[int(r)]
        return bad

    def _dep_index(self) -> None:
        """Factor → instrument rows to reprice, instrument row → factor columns, and FX factor → instrument
        rows it translates, as CSR arrays."""
        if not self._deps_dirty:
            return
        n_rows = len(self._row_deps)
        lens = np.array([len(d) for d in self._row_deps], dtype=np.int64)
        cols = np.concatenate(self._row_deps) if n_rows else np.empty(0, dtype=np.int64)
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), lens)
        self._rc_ptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(lens, out=self._rc_ptr[1:])
        self._rc_idx = cols
        self._fr_ptr, self._fr_idx = _csr(cols, rows, len(self._fids))
        translated = np.flatnonzero(self._row_fx >= 0)
        self._xr_ptr, self._xr_idx = _csr(self._row_fx[translated], translated, len(self._fids))
        self._row_single = np.array(
            [single_currency(self._instruments[g]) for g in self._row_inst.tolist()], bool
        )
        self._deps_dirty = False

    def _scenario_levels(self, cols: np.ndarray) -> np.ndarray:
        """Levels of ``cols`` under every scenario (scenarios × cols): ``x·m`` relative, ``x + d`` absolute."""
        out = self._mult[:, cols]
        rel = self._rel[cols]
        if rel.all():
            out *= self._cur[cols]
        elif not rel.any():
            out += self._cur[cols]
        else:
            return np.where(rel, self._cur[cols] * out, self._cur[cols] + out)
        return out

    def _scenario_rows(self, cols: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Levels of ``cols`` under every scenario, one row per factor (cols × scenarios); the same numbers as
        :meth:`_scenario_levels` transposed."""
        # mode="clip" (the columns are valid): with the default "raise" numpy buffers ``out`` and copies twice
        out = np.take(self._mult_rows, cols, axis=0, out=out, mode="clip")
        cur = self._cur[cols, None]
        rel = self._rel[cols]
        if rel.all():
            out *= cur
        elif not rel.any():
            out += cur
        else:
            np.copyto(out, np.where(rel[:, None], cur * out, cur + out))
        return out

    def _ladder_sync(self, moved: np.ndarray | None = None) -> None:
        """Bring the cash-flow ladder and its discount factors ``_D`` (nodes × (scenarios + 1)) to the current
        levels: rebuilt when rows were added, else only the nodes that read a moved tenor point."""
        if self._lad_dirty:
            as_of = self._as_of
            rows = [
                r
                for r, g in enumerate(self._row_inst.tolist())
                if getattr(self._instruments[g], "type", None) in CASHFLOW_SCHEDULES
                and self._instruments[g].maturity > as_of  # type: ignore[attr-defined]
                and r not in self._row_failed
            ]
            insts = [self._instruments[g] for g in self._row_inst[rows]]
            self._lad = CashflowLadder.build(insts, self._snapshot0)
            self._lad_rows = np.array(rows, dtype=np.int64)
            self._lad_of_row = np.full(len(self._row_inst), -1, dtype=np.int64)
            self._lad_of_row[rows] = np.arange(len(rows))
            self._lad_cols = np.array([self._fidx[f] for f in self._lad.factor_ids], dtype=np.int64)
            self._lad_pos = np.full(len(self._fids), -1, dtype=np.int64)
            self._lad_pos[self._lad_cols] = np.arange(len(self._lad_cols))
            # zero rates shift by absolute amounts fixed for the day: DF_s = DF_0 · G_s with G fixed
            self._G = None
            if not self._rel[self._lad_cols].any():
                self._G = self._lad.shock_factors(self._mult[:, self._lad_cols].T)
            self._df0 = self._lad.discount_factors(self._cur[self._lad_cols][:, None])[:, 0]
            self._lad_dirty = False
            return
        if moved is None or self._lad.n_nodes == 0:
            return
        pos = self._lad_pos[moved]
        nodes = self._lad.nodes_of(pos[pos >= 0])
        if nodes.size:
            self._df0[nodes] = self._lad.discount_factors(self._cur[self._lad_cols][:, None], nodes)[:, 0]

    def _ladder_shift(self, moved: np.ndarray) -> np.ndarray | None:
        """Move today's discount factors of the nodes reading a moved tenor point and shift the local values of
        the instruments paying on them (``ΔL = (A·diag(ΔDF_0))@G`` over those nodes only); return their rows.

        None when the shocks are not absolute shifts (then the ladder is valued in full, see ``_ladder_values``).
        Rounding of the shifts is reset every ``exact_every`` steps by :meth:`_resync_ladder`.
        """
        if self._G is None:
            self._ladder_sync(moved)
            return None
        pos = self._lad_pos[moved]
        nodes = self._lad.nodes_of(pos[pos >= 0])
        if nodes.size == 0:
            return np.empty(0, dtype=np.int64)
        new = self._lad.discount_factors(self._cur[self._lad_cols][:, None], nodes)[:, 0]
        d_today = new - self._df0[nodes]
        self._df0[nodes] = new
        if 2 * nodes.size > self._lad.n_nodes:
            # most of the curve moved: revalue every ladder row in full (same cost, and exact)
            self._L[self._lad_rows] = self._lad.shifted_values(self._df0, self._G)
            return self._lad_rows
        owners, d_local = self._lad.shift_values(nodes, d_today, self._G)
        rows = self._lad_rows[owners]
        self._L[rows] += d_local
        return rows

    def _resync_ladder(self) -> None:
        """Local values of every current ladder row recomputed in full from today's discount factors."""
        if self._lad_dirty or self._G is None or not len(self._lad_rows):
            return
        rows = self._lad_rows[~self._stale[self._lad_rows]]
        self._L[rows] = self._lad.shifted_values(self._df0, self._G, self._lad_of_row[rows])
        self._translate(rows, incremental=False)

    def _ladder_values(self, lad_rows: np.ndarray) -> np.ndarray:
        """Values of ladder instruments (local currency) under every scenario and today."""
        if self._G is not None:
            return self._lad.shifted_values(self._df0, self._G, lad_rows)
        return self._lad.values(self._lad.discount_factors(self._levels_of(self._lad_cols)), lad_rows)

    def _ladder_fill(self, out: np.ndarray, at: np.ndarray, lad_rows: np.ndarray) -> None:
        out[at] = self._ladder_values(lad_rows)

    def _levels_of(self, cols: np.ndarray) -> np.ndarray:
        """Levels of ``cols`` under every scenario, then at the current market: (len(cols), scenarios + 1)."""
        return np.vstack([self._scenario_levels(cols), self._cur[cols][None, :]]).T

    def _value(self, rows: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
        """Values per unit (rows × (scenarios + 1), the last column at the current levels) and failures (by
        position in ``rows``): in local currency for translated rows, in the reporting currency for the others.
        """
        self._dep_index()
        out = np.empty((len(rows), self.n_scenarios + 1))
        failed: dict[int, str] = {}
        self._ladder_sync()
        # fixed cash flows: ladder amounts @ its discount factors (what their pricer computes, minus the set-up)
        lad = self._lad_of_row[rows]
        on = np.flatnonzero(lad >= 0)
        tasks: list[Callable[[], None]] = []
        if on.size:
            # instruments are independent rows of the ladder's product: pieces of them can run on other threads
            for piece in _pieces(len(on), self.n_scenarios + 1, self._pool.threads, PARALLEL_COPY_ELEMENTS):
                tasks.append(functools.partial(self._ladder_fill, out, on[piece], lad[on[piece]]))
        # prepared closed-form instruments in one call: single-currency ones in local currency, pairs in the
        # reporting currency, the current market riding along as one more scenario
        single = self._row_single[rows]
        off = lad < 0
        glob = self._row_inst[rows]
        prep = off & (self._book.kind[glob] >= 0)
        p = np.flatnonzero(prep)
        if p.size:
            g = glob[p]
            cols = self._book.columns(g)
            lv = np.empty((len(cols) + 1, self.n_scenarios + 1))
            self._scenario_rows(cols, out=lv[:-1, :-1])
            lv[:-1, -1] = self._cur[cols]
            lv[-1] = 1.0
            pos = self._book_pos
            pos[cols] = np.arange(len(cols))
            pos[-1] = len(cols)
            # options first, cut in pieces big enough to pay for a thread, written straight into their rows
            tasks = self._book.tasks(g, lv, pos, out, self._pool.threads, at=p) + tasks
        self._pool.run(tasks)
        # the rest through the family pricers: single-currency instruments in one call with every FX at 1
        # (local values), currency pairs in another
        off &= ~prep
        for part in (np.flatnonzero(single & off), np.flatnonzero(~single & off)):
            if part.size == 0:
                continue
            sub = rows[part]
            cols = np.unique(_gather(self._rc_ptr, self._rc_idx, sub))
            fids = tuple(self._fids[c] for c in cols)
            # the current market rides along as one more scenario: one pricing call values both
            levels = np.vstack([self._scenario_levels(cols), self._cur[cols][None, :]])
            if single[part[0]]:
                # FX.<ccy> at 1 in every scenario: the pricers then return the value in the local currency
                units = tuple(sorted({self._fids[c] for c in self._row_fx[sub].tolist() if c >= 0}))
                fids += units
                levels = np.hstack([levels, np.ones((levels.shape[0], len(units)))])
            insts = [self._instruments[g] for g in self._row_inst[sub]]
            valuation = value_instruments(insts, MarketScenarios(self._as_of, fids, levels, self._ccy))
            out[part] = valuation.values
            failed.update({int(part[i]): reason for i, reason in valuation.failed.items()})
        return out, failed

    def _revalue(self, rows: np.ndarray, *, incremental: bool, rescale: np.ndarray | None = None) -> None:
        """Full revaluation of ``rows`` at the current levels, then :meth:`_translate` of them and of the rows
        ``rescale`` (whose FX rate alone moved)."""
        local, failed = self._value(rows)
        for i, reason in failed.items():
            r = int(rows[i])
            self._row_failed[r] = reason
            self.rejected.append(
                BadRecord("instrument", self._instruments[self._row_inst[r]].instrument_id, reason)
            )
        if failed:
            local[np.fromiter(failed, dtype=np.int64)] = 0.0
        self._L[rows] = local
        self._stale[rows] = False
        if rescale is not None and rescale.size:
            rows = np.union1d(rows, rescale)
        self._translate(rows, incremental=incremental)

    def _translate(self, rows: np.ndarray, *, incremental: bool) -> None:
        """``P = X_s·L_s − X_0·L_0`` and value ``X_0·L_0`` of ``rows`` at the current FX levels (``X = 1`` for
        rows valued in the reporting currency); leaves holding them move by quantity × ΔP when incremental."""
        if rows.size == 0:
            return
        n, s = len(rows), self.n_scenarios
        fx = self._row_fx[rows]
        # rows grouped by FX rate (stable: reporting-currency rows first, then each currency in row order), so
        # each group is rescaled in place by its rate's scenario levels, without an (n × scenarios) gather
        order = np.argsort(fx, kind="stable")
        fx_sorted = fx[order]
        sorted_rows = rows[order]
        bounds = np.flatnonzero(np.diff(fx_sorted)) + 1
        starts = np.concatenate(([0], bounds))
        stops = np.concatenate((bounds, [n]))
        groups = [(int(a), int(b)) for a, b in zip(starts, stops, strict=True) if fx_sorted[a] >= 0]
        uniq = fx_sorted[[a for a, _ in groups]]
        scen = self._scenario_rows(uniq)  # rates × scenarios
        # X_0 per row (1 for rows in the reporting currency: L_0·1 is L_0 exactly)
        x0 = np.where(fx_sorted >= 0, self._cur[np.maximum(fx_sorted, 0)], 1.0)
        local = self._buffer("local", n, s + 1)
        old = self._buffer("old", n, s) if incremental else None
        # the leaves take the changes in the order of ``rows``: their sums do not depend on the grouping
        delta = self._buffer("delta", n, s) if incremental else None
        value = np.empty(n)

        def piece(sl: slice) -> None:
            r = sorted_rows[sl]
            loc = np.take(self._L, r, axis=0, out=local[sl], mode="clip")
            v = np.multiply(loc[:, -1], x0[sl])
            pnl = loc[:, :-1]
            for k, (a, b) in enumerate(groups):
                a, b = max(a, sl.start), min(b, sl.stop)
                if a < b:
                    pnl[a - sl.start : b - sl.start] *= scen[k]
            pnl -= v[:, None]
            if old is not None and delta is not None:
                prev = np.take(self._P, r, axis=0, out=old[sl], mode="clip")
                np.subtract(pnl, prev, out=prev)
                delta[order[sl]] = prev
            self._P[r] = pnl
            value[order[sl]] = v

        self._pool.run(
            [
                functools.partial(piece, sl)
                for sl in _pieces(n, s + 1, self._pool.threads, PARALLEL_COPY_ELEMENTS)
            ]
        )
        self._base[rows] = value
        if delta is not None:
            self._add_to_leaves(rows, delta)

    def _buffer(self, name: str, n: int, width: int) -> np.ndarray:
        """Scratch (n × width) rows a step reuses (kept between steps: no fresh pages for every micro-batch)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < n or buf.shape[1] != width:
            buf = self._buffers[name] = np.empty(
                (max(n, 2 * (buf.shape[0] if buf is not None else 0)), width)
            )
        return buf[:n]

    # ----------------------------------------------------------------------------------------------------------
    # positions and hierarchy

    def _pos_index(self) -> None:
        """Instrument row → position slots (CSR) and the number of live positions per row."""
        if not self._pos_dirty:
            return
        n_rows = len(self._row_inst)
        live = np.flatnonzero(self._qty != 0)
        self._rp_ptr, self._rp_idx = _csr(self._prow[live], live, n_rows)
        self._row_npos = np.diff(self._rp_ptr)
        self._pos_dirty = False

    def _add_to_leaves(self, rows: np.ndarray, delta: np.ndarray) -> None:
        """``leaf_pnl += Q[:, rows] @ delta`` over the positions on ``rows`` only (sparse)."""
        self._pos_index()
        slots = _gather(self._rp_ptr, self._rp_idx, rows)
        if slots.size == 0:
            return
        local = np.full(len(self._row_inst), -1, dtype=np.int64)
        local[rows] = np.arange(len(rows))
        leaves, inverse = np.unique(self._leaf[slots], return_inverse=True)
        m = sp.csr_matrix(
            (self._qty[slots], (inverse.ravel(), local[self._prow[slots]])), shape=(len(leaves), len(rows))
        )
        per_leaf = max(1, m.nnz // len(leaves)) * self.n_scenarios

        def piece(sl: slice) -> None:
            # leaves are independent rows of the product: a block of them gives the same bits as the whole
            a, b = m.indptr[sl.start], m.indptr[sl.stop]
            block = sp.csr_matrix(
                (m.data[a:b], m.indices[a:b], m.indptr[sl.start : sl.stop + 1] - a),
                shape=(sl.stop - sl.start, m.shape[1]),
            )
            self._leaf_pnl[leaves[sl]] += block @ delta

        pieces = _pieces(len(leaves), per_leaf, self._pool.threads, PARALLEL_COPY_ELEMENTS)
        if len(pieces) == 1:
            self._leaf_pnl[leaves] += m @ delta
        else:
            self._pool.run([functools.partial(piece, sl) for sl in pieces])
        self._touch_leaves(leaves)

    def _recompute_leaves(self) -> None:
        """Exact leaf vectors from the positions: ``leaf_pnl = Q @ P``."""
        q = sp.csr_matrix(
            (self._qty, (self._leaf, self._prow)), shape=(len(self._leaf_anc), len(self._row_inst))
        )
        self._leaf_pnl = np.asarray(q @ self._P) if q.shape[1] else np.zeros((q.shape[0], self.n_scenarios))
        self._since_exact = 0

    def _leaf_for(self, key: tuple[str, ...]) -> int:
        leaf = self._leaf_key.get(key)
        if leaf is not None:
            return leaf
        anc = [0]
        path = FIRM
        for depth, name in enumerate(key, start=1):
            path = f"{path}/{name}"
            node = self._node_index.get(path)
            if node is None:
                node = len(self._node_ids)
                self._node_ids.append(path)
                self._node_index[path] = node
                self._parent.append(anc[-1])
                self._node_level.append(depth)
            anc.append(node)
        leaf = len(self._leaf_anc)
        self._leaf_key[key] = leaf
        self._leaf_anc = np.vstack([self._leaf_anc, np.array(anc, dtype=np.int64)])
        self._leaf_pnl = np.vstack([self._leaf_pnl, np.zeros((1, self.n_scenarios))])
        self._tree_dirty = True
        return leaf

    def _node_of_leaf(self) -> sp.csr_matrix:
        if self._tree_dirty:
            n_leaves, width = self._leaf_anc.shape
            self._nol = sp.csr_matrix(
                (
                    np.ones(n_leaves * width),
                    (self._leaf_anc.ravel(), np.repeat(np.arange(n_leaves), width)),
                ),
                shape=(len(self._node_ids), n_leaves),
            )
            self._tree_dirty = False
        return self._nol

    def _touch_leaves(self, leaves: np.ndarray) -> None:
        self._touched.update(np.unique(self._leaf_anc[leaves]).tolist())

    # ----------------------------------------------------------------------------------------------------------
    # inputs

    @property
    def n_scenarios(self) -> int:
        return int(self._changes.shape[0])

    @property
    def factor_ids(self) -> tuple[str, ...]:
        """Factors with scenarios (every factor some instrument of the portfolio depends on), sorted."""
        return self._fids

    def apply_ticks(self, ticks: Sequence[Tick]) -> list[BadRecord]:
        """Record new factor levels; they take effect at the next :meth:`step` (latest tick per factor wins).

        A tick with a malformed factor id, a non-finite value or a non-positive price/FX/vol is returned as a
        BadRecord (kind ``tick``, id ``source:sequence``) and ignored.
        """
        bad: list[BadRecord] = []
        with self._lock:
            pending, fidx, positive = self._pending, self._fidx, self._positive
            for t in ticks:
                j = fidx.get(t.factor_id)
                value = t.value
                if (
                    j is not None
                    and type(value) is float
                    and math.isfinite(value)
                    and (value > 0 or not positive[j])
                ):
                    pending[j] = value
                    continue
                reason = self._tick_reason(t)
                if reason is not None:
                    bad.append(BadRecord("tick", f"{t.source}:{t.sequence}", reason))
                elif j is not None:
                    pending[j] = float(value)
                else:
                    self._pending_other[t.factor_id] = float(value)
        return bad

    @staticmethod
    def _tick_reason(t: Tick) -> str | None:
        try:
            factor = parse_factor(t.factor_id)
        except RiskstreamError as exc:
            return str(exc)
        v = t.value
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            return f"field 'value' has invalid value {v!r}: must be a finite number"
        if factor.positive and v <= 0:
            return f"field 'value' has invalid value {v!r}: {factor.kind.value} levels must be > 0"
        return None

    def apply_levels(self, factor_ids: Sequence[str] | np.ndarray, values: np.ndarray) -> None:
        """Vectorised :meth:`apply_ticks` for already-validated levels of universe factors (feeds, benchmarks).

        ``factor_ids`` are ids or integer positions in :attr:`factor_ids`; later entries win.
        """
        values = np.asarray(values, dtype=np.float64)
        ids = np.asarray(factor_ids)
        cols = (
            ids.astype(np.int64)
            if ids.dtype.kind in "iu"
            else np.array([self._fidx[f] for f in ids.tolist()])
        )
        if cols.size and (cols.min() < 0 or cols.max() >= len(self._fids)):
            raise InvalidFieldError("factor_ids", int(cols.max()), "outside the factor universe")
        if not np.all(np.isfinite(values)) or np.any((values <= 0) & self._positive[cols]):
            raise InvalidFieldError(
                "values", "non-finite or non-positive", "levels must be finite, prices > 0"
            )
        with self._lock:
            self._pending.update(zip(cols.tolist(), values.tolist(), strict=True))

    def apply_position_events(self, events: Sequence[PositionEvent]) -> list[BadRecord]:
        """Apply new/amend/cancel events in order; bad events are returned with a reason and change nothing.

        ``new`` adds a position (an instrument never valued is valued at the current levels; a new book or
        trader creates its nodes); ``amend`` replaces the quantity (and any attribute the event carries);
        ``cancel`` removes the position. Leaf vectors move at once by Δquantity × P&L per unit.
        """
        bad: list[BadRecord] = []
        with self._lock:
            for ev in events:
                reason = self._apply_event(ev)
                if reason is not None:
                    bad.append(BadRecord("position", str(ev.position_id), reason))
        return bad

    def _apply_event(self, ev: PositionEvent) -> str | None:
        if self._books is not None and ev.book not in self._books:
            return f"field 'book' has value {ev.book!r}: not a book of this engine"
        slot = self._slot.get(ev.position_id)
        kind = ev.kind
        if kind == PositionEventKind.CANCEL:
            if slot is None:
                return "cancel of unknown position"
            self._set_quantity(slot, 0.0)
            del self._slot[ev.position_id]
            return None
        if kind not in (PositionEventKind.NEW, PositionEventKind.AMEND):
            return f"field 'kind' has invalid value {kind!r}"
        q = ev.quantity
        if isinstance(q, bool) or not isinstance(q, int | float) or not math.isfinite(q):
            return f"field 'quantity' has invalid value {q!r}: must be a finite number"
        if kind == PositionEventKind.NEW and slot is not None:
            return "new position with an id already live"
        if kind == PositionEventKind.AMEND and slot is None:
            return "amend of unknown position"
        old = {a: self._attrs[a][slot] for a in ATTRIBUTES} if slot is not None else {}
        attrs = {a: (getattr(ev, a) or old.get(a, "")) for a in ATTRIBUTES}
        for lv in self.config.levels:
            if not attrs[lv]:
                return f"mandatory field {lv!r} is missing"
        iid = ev.instrument_id or (
            self._instruments[self._row_inst[self._prow[slot]]].instrument_id if slot is not None else ""
        )
        g = self._inst_index.get(iid)
        if g is None:
            return f"field 'instrument_id' has unknown instrument {iid!r}"
        bad = self._ensure_rows(np.array([g]))
        if g in bad:
            return f"instrument {iid!r} cannot be valued: {bad[g]}"
        row = int(self._row_of[g])
        key = tuple(attrs[lv] for lv in self.config.levels)
        if slot is not None and row == self._prow[slot] and key == self._leaf_key_of(slot):
            self._set_quantity(slot, float(q))
            for a in ATTRIBUTES:
                self._attrs[a][slot] = attrs[a]
            return None
        if slot is not None:  # moved to another instrument or leaf: close the old slot, open a new one
            self._set_quantity(slot, 0.0)
        leaf = self._leaf_for(key)
        new = len(self._pid)
        self._pid.append(ev.position_id)
        self._slot[ev.position_id] = new
        self._prow = np.append(self._prow, row)
        self._qty = np.append(self._qty, 0.0)
        self._leaf = np.append(self._leaf, leaf)
        for a in ATTRIBUTES:
            self._attrs[a].append(attrs[a])
        self._set_quantity(new, float(q))
        return None

    def _leaf_key_of(self, slot: int) -> tuple[str, ...]:
        return tuple(self._attrs[lv][slot] for lv in self.config.levels)

    def _set_quantity(self, slot: int, q: float) -> None:
        dq = q - self._qty[slot]
        self._qty[slot] = q
        self._pos_dirty = True
        leaf = int(self._leaf[slot])
        if dq != 0.0:
            self._leaf_pnl[leaf] += dq * self._P[self._prow[slot]]
        self._touch_leaves(np.array([leaf]))

    # ----------------------------------------------------------------------------------------------------------
    # the micro-batch

    def step(self, as_of_us: int, input_offsets: Mapping[str, int] | None = None) -> list[RiskSnapshot]:
        """One micro-batch: apply pending ticks, revalue what they touched, refresh every touched node.

        Returns one RiskSnapshot per touched node (parents before children), with measures ``var_<α>_<h>d``,
        ``es_<α>_<h>d``, ``pv`` and ``n_positions``, and the latest slow measures when there are any; when new
        slow measures arrived since the last step, every node is returned.
        """
        with self._lock:
            self._apply_pending()
            self._steps += 1
            self._since_exact += 1
            if self.config.exact_every and self._since_exact >= self.config.exact_every:
                self._resync_ladder()
                self._recompute_leaves()
            if self._slow_fresh:
                self._touched = set(range(len(self._node_ids)))
                self._slow_fresh = False
            nodes = np.array(sorted(self._touched), dtype=np.int64)
            self._touched = set()
            return self._snapshots(nodes, as_of_us, input_offsets)

    def _apply_pending(self) -> None:
        for f, v in self._pending_other.items():
            self._other[f] = v
        self._pending_other = {}
        if not self._pending:
            return
        cols = np.fromiter(self._pending.keys(), dtype=np.int64, count=len(self._pending))
        vals = np.fromiter(self._pending.values(), dtype=np.float64, count=len(self._pending))
        self._pending = {}
        moved = vals != self._cur[cols]
        cols, vals = cols[moved], vals[moved]
        if cols.size == 0:
            return
        # the ladder at the levels before the move (rebuilt after new rows or a restore), then shifted
        self._ladder_sync()
        self._cur[cols] = vals
        shifted = self._ladder_shift(cols)
        self._dep_index()
        rows = np.unique(_gather(self._fr_ptr, self._fr_idx, cols))
        rescale = np.unique(_gather(self._xr_ptr, self._xr_idx, cols))
        if shifted is not None:
            # bonds and swaps moved by their ladder shift: only re-translate them
            rows = rows[self._lad_of_row[rows] < 0]
            rescale = np.union1d(rescale, shifted)
        if rows.size == 0 and rescale.size == 0:
            return
        self._pos_index()
        # rows nobody holds are revalued when a position next needs them
        self._stale[rows[self._row_npos[rows] == 0]] = True
        self._stale[rescale[self._row_npos[rescale] == 0]] = True
        rows = rows[self._row_npos[rows] > 0]
        rescale = rescale[(self._row_npos[rescale] > 0) & ~self._stale[rescale]]
        if rows.size:
            self._revalue(rows, incremental=True, rescale=rescale)
        else:
            self._translate(rescale, incremental=True)

    def _snapshots(
        self, nodes: np.ndarray, as_of_us: int, input_offsets: Mapping[str, int] | None
    ) -> list[RiskSnapshot]:
        if nodes.size == 0:
            return []
        cfg = self.config
        vectors = np.asarray(self._node_of_leaf()[nodes] @ self._leaf_pnl)
        var, es = var_and_es(vectors, cfg.confidence, cfg.es_confidence, cfg.rule)
        pv, count = self._node_pv_counts()
        slow = self._slow.measures if self._slow is not None else {}
        offsets = dict(input_offsets or {})
        var_name, es_name = cfg.var_name, cfg.es_name
        var_l, es_l, pv_l, count_l = var.tolist(), es.tolist(), pv.tolist(), count.tolist()
        out = []
        for i, n in enumerate(nodes.tolist()):
            node = self._node_ids[n]
            measures = {var_name: var_l[i], es_name: es_l[i], "pv": pv_l[n], "n_positions": count_l[n]}
            measures.update(slow.get(node, {}))
            out.append(RiskSnapshot(node, int(as_of_us), measures, offsets, cfg.method, self._steps))
        return out

    def _node_pv_counts(self) -> tuple[np.ndarray, np.ndarray]:
        n_leaves = len(self._leaf_anc)
        leaf_pv = np.bincount(self._leaf, weights=self._qty * self._base[self._prow], minlength=n_leaves)
        leaf_n = np.bincount(self._leaf, weights=(self._qty != 0).astype(np.float64), minlength=n_leaves)
        nol = self._node_of_leaf()
        return np.asarray(nol @ leaf_pv), np.asarray(nol @ leaf_n)

    def all_snapshots(self, as_of_us: int) -> list[RiskSnapshot]:
        """Snapshots of every node without consuming the pending input (e.g. right after a restore)."""
        with self._lock:
            return self._snapshots(np.arange(len(self._node_ids)), as_of_us, None)

    # ----------------------------------------------------------------------------------------------------------
    # reading the state

    @property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(self._node_ids)

    @property
    def steps(self) -> int:
        """Micro-batches run so far."""
        return self._steps

    def node_vector(self, node: str) -> np.ndarray:
        """Scenario P&L vector of ``node`` (reporting currency, positive = gain), one entry per scenario."""
        with self._lock:
            n = self._node(node)
            return np.asarray(self._node_of_leaf()[[n]] @ self._leaf_pnl)[0]

    def _node(self, node: str) -> int:
        try:
            return self._node_index[node]
        except KeyError:
            raise ConfigurationError("node", node, "no such node in this engine") from None

    def leaf_vectors(self) -> dict[str, np.ndarray]:
        """Leaf node id → scenario P&L vector (copies): what an :class:`Aggregator` sums across engines."""
        with self._lock:
            leaf_nodes = self._leaf_anc[:, -1]
            return {self._node_ids[int(n)]: self._leaf_pnl[i].copy() for i, n in enumerate(leaf_nodes)}

    def leaf_values(self) -> dict[str, dict[str, float]]:
        """Leaf node id → additive measures (``pv``, ``n_positions``), for an :class:`Aggregator`."""
        with self._lock:
            n_leaves = len(self._leaf_anc)
            pv = np.bincount(self._leaf, weights=self._qty * self._base[self._prow], minlength=n_leaves)
            cnt = np.bincount(self._leaf, weights=(self._qty != 0).astype(np.float64), minlength=n_leaves)
            return {
                self._node_ids[int(self._leaf_anc[i, -1])]: {"pv": float(pv[i]), "n_positions": float(cnt[i])}
                for i in range(n_leaves)
            }

    def exact_leaf_vectors(self) -> np.ndarray:
        """Leaf vectors recomputed from scratch (``Q @ P``) without changing the state: the drift reference."""
        with self._lock:
            q = sp.csr_matrix(
                (self._qty, (self._leaf, self._prow)), shape=(len(self._leaf_anc), len(self._row_inst))
            )
            return np.asarray(q @ self._P)

    def leaf_matrix(self) -> np.ndarray:
        """The incremental leaf vectors (leaves × scenarios), in the order of :meth:`exact_leaf_vectors`."""
        with self._lock:
            return self._leaf_pnl.copy()

    def current_snapshot(self) -> MarketSnapshot:
        """The market at the last step (pending ticks not included)."""
        with self._lock:
            values = dict(self._other)
            values.update(zip(self._fids, self._cur.tolist(), strict=True))
        return MarketSnapshot(self._as_of, values, self._ccy)

    def positions(self) -> dict[str, np.ndarray]:
        """Live positions as columns (``position_id``, ``instrument_id``, ``quantity`` and the attributes)."""
        with self._lock:
            live = np.array(sorted(self._slot.values()), dtype=np.int64)
            ids = np.array([inst.instrument_id for inst in self._instruments], dtype=str)
            cols: dict[str, np.ndarray] = {
                "position_id": np.array(self._pid, dtype=str)[live] if live.size else np.empty(0, dtype=str),
                "instrument_id": ids[self._row_inst[self._prow[live]]]
                if live.size
                else np.empty(0, dtype=str),
                "quantity": self._qty[live].copy(),
            }
            for a in ATTRIBUTES:
                cols[a] = np.array(self._attrs[a], dtype=str)[live] if live.size else np.empty(0, dtype=str)
            return cols

    def current_portfolio(self) -> Portfolio:
        """The live positions as a Portfolio over the same instruments (for a full recomputation)."""
        cols: dict[str, Any] = self.positions()
        return Portfolio.from_records(self._instruments, cols, self._ccy)

    # ----------------------------------------------------------------------------------------------------------
    # contributors

    def contributors(
        self, node: str, top_n: int | None = None, *, vector: np.ndarray | None = None
    ) -> NodeRisk:
        """VaR/ES of ``node`` with its top contributors by component ES.

        By position: ``−quantity·(P[instrument]·w_es)`` with ``w_es`` the ES tail weights of the node's vector
        (Euler components, they sum to ES over all positions). By risk factor: delta-gamma at the tail scenarios
        with sensitivities at the current levels; the remainder is ``unexplained``.

        ``vector``: the node's whole scenario P&L when its positions span several engines (a desk over several
        partitions). VaR, ES and the tail weights then come from it, and this engine's positions get their
        Euler components against it: summed over the engines, the components add up to the node's ES.
        """
        k = self.config.top_n if top_n is None else top_n
        cfg = self.config
        with self._lock:
            n = self._node(node)
            vec = (
                np.asarray(self._node_of_leaf()[[n]] @ self._leaf_pnl)
                if vector is None
                else np.asarray(vector, dtype=np.float64).reshape(1, -1)
            )
            depth = self._node_level[n]
            under = np.flatnonzero((self._leaf_anc[self._leaf, depth] == n) & (self._qty != 0))
            qty = self._qty[under]
            rows = self._prow[under]
            p_rows = self._P[rows]
            pids = [self._pid[s] for s in under]
            insts = [self._instruments[g] for g in self._row_inst[rows]]
            snapshot_values = dict(zip(self._fids, self._cur.tolist(), strict=True))
            parent = self._parent[n]
        var, es = var_and_es(vec, cfg.confidence, cfg.es_confidence, cfg.rule)
        w_var, _ = tail_weights(vec, cfg.confidence, cfg.rule)
        _, w_es = tail_weights(vec, cfg.es_confidence, cfg.rule)
        comp_es = -qty * (p_rows @ w_es[0])
        comp_var = -qty * (p_rows @ w_var[0])
        es_f, var_f = float(es[0]), float(var[0])

        def share(v: float) -> float:
            return v / es_f if es_f else 0.0

        order = np.argsort(-comp_es, kind="stable")[:k]
        top_positions = tuple(
            Contribution(pids[i], float(comp_var[i]), float(comp_es[i]), share(float(comp_es[i])))
            for i in order
        )
        top_factors: tuple[Contribution, ...] = ()
        unexplained = None
        if k and insts:
            snap = MarketSnapshot(self._as_of, snapshot_values, self._ccy)
            sens = sensitivities(insts, snap)
            delta = np.nan_to_num(np.asarray(sens.delta)) * qty[:, None]
            gamma = np.nan_to_num(np.asarray(sens.gamma)) * qty[:, None]
            cols = np.array([self._fidx.get(f, -1) for f in sens.factor_ids], dtype=np.int64)
            known = cols >= 0
            x = np.zeros((self.n_scenarios, len(cols)))
            x[:, known] = self._changes[:, cols[known]]
            nd, ng = delta.sum(axis=0), gamma.sum(axis=0)
            f_es = -(nd * (w_es[0] @ x) + 0.5 * ng * (w_es[0] @ (x * x)))
            f_var = -(nd * (w_var[0] @ x) + 0.5 * ng * (w_var[0] @ (x * x)))
            forder = np.argsort(-f_es, kind="stable")[:k]
            top_factors = tuple(
                Contribution(sens.factor_ids[j], float(f_var[j]), float(f_es[j]), share(float(f_es[j])))
                for j in forder
            )
            rest_es, rest_var = es_f - float(f_es.sum()), var_f - float(f_var.sum())
            unexplained = Contribution(
                "unexplained (higher order and cross terms)", rest_var, rest_es, share(rest_es)
            )
        return NodeRisk(
            node,
            "firm" if depth == 0 else self.config.levels[depth - 1],
            self._node_ids[parent] if parent >= 0 else None,
            len(under),
            var_f,
            es_f,
            top_positions,
            top_factors,
            unexplained,
        )

    # ----------------------------------------------------------------------------------------------------------
    # slow measures

    def run_slow_measures(self) -> SlowMeasures:
        """Compute Monte Carlo VaR/ES and the stress P&L of every node now, from a copy of the current state.

        Only the copy is taken under the engine's lock; the revaluation runs outside it, so a concurrent
        :meth:`step` never waits for it. The result is published into the next step's snapshots.
        """
        from ._stream_slow import compute_slow_measures

        with self._lock:
            copy = self._slow_copy()
        result = compute_slow_measures(self, copy)
        with self._lock:
            if self._slow is None or result.step >= self._slow.step:
                self._slow = result
                self._slow_fresh = True
        return result

    def _slow_copy(self) -> dict[str, Any]:
        self._pos_index()
        live = self._qty != 0
        used_rows = np.flatnonzero(self._row_npos > 0)
        local = np.full(len(self._row_inst), -1, dtype=np.int64)
        local[used_rows] = np.arange(len(used_rows))
        self._dep_index()
        fx = self._row_fx[used_rows]
        return {
            "cols": np.union1d(_gather(self._rc_ptr, self._rc_idx, used_rows), fx[fx >= 0]),
            "step": self._steps,
            "cur": self._cur.copy(),
            "instruments": [self._instruments[g] for g in self._row_inst[used_rows]],
            "inst": local[self._prow[live]],
            "qty": self._qty[live].copy(),
            "leaf": self._leaf[live].copy(),
            "n_leaves": len(self._leaf_anc),
            "node_of_leaf": self._node_of_leaf().copy(),
            "node_ids": list(self._node_ids),
        }

    def slow_measures(self) -> SlowMeasures | None:
        """The latest slow measures (None before the first run)."""
        with self._lock:
            return self._slow

    def start(self) -> None:
        """Start the background thread of the slow measures (every ``slow_every_s``; no-op when 0)."""
        if self.config.slow_every_s <= 0 or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._slow_loop, name="riskstream-slow-measures", daemon=True)
        self._thread.start()

    def _slow_loop(self) -> None:
        while not self._stop.is_set():
            self.run_slow_measures()
            if self._stop.wait(self.config.slow_every_s):
                break

    def close(self) -> None:
        """Stop the background thread (waits for a run in progress to finish) and the step's helper threads
        (a later step starts them again)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._pool.close()

    def __enter__(self) -> StreamingEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------------------------
    # checkpoint

    def state(self) -> bytes:
        """Complete, deterministic checkpoint of the engine (see ``_stream_state`` for the byte layout).

        Restoring it with :meth:`from_state` and applying the same inputs gives bit-identical snapshots. The
        scenario shocks are not stored: they are rebuilt from the history and checked against a fingerprint.
        """
        with self._lock:
            slow = None
            if self._slow is not None:
                slow = {
                    "step": self._slow.step,
                    "elapsed_s": self._slow.elapsed_s,
                    "measures": {k: dict(v) for k, v in self._slow.measures.items()},
                    "skipped": dict(self._slow.skipped),
                }
            # the thread count changes no result: a checkpoint restores on a machine with other cores
            config = {k: v for k, v in self.config.to_dict().items() if k != "threads"}
            header = {
                "config": config,
                "as_of": self._as_of.isoformat(),
                "reporting_currency": self._ccy,
                "fingerprint": self._fingerprint,
                "books": sorted(self._books) if self._books is not None else None,
                "factor_ids": list(self._fids),
                "other": sorted(self._other.items()),
                "pending": sorted(self._pending.items()),
                "pending_other": sorted(self._pending_other.items()),
                "row_instruments": [self._instruments[g].instrument_id for g in self._row_inst],
                "row_failed": sorted(self._row_failed.items()),
                "position_ids": self._pid,
                "live": sorted(self._slot.items()),
                "attributes": self._attrs,
                "node_ids": self._node_ids,
                "parent": self._parent,
                "node_level": self._node_level,
                "leaf_keys": [list(k) for k in self._leaf_key],
                "steps": self._steps,
                "since_exact": self._since_exact,
                "touched": sorted(self._touched),
                "slow": slow,
            }
            arrays = {
                "cur": self._cur,
                "P": self._P,
                "local": self._L,
                "base": self._base,
                "stale": self._stale,
                "prow": self._prow,
                "qty": self._qty,
                "leaf": self._leaf,
                "leaf_anc": self._leaf_anc,
                "leaf_pnl": self._leaf_pnl,
            }
            return pack_state(header, arrays)

    @classmethod
    def from_state(
        cls,
        data: bytes,
        portfolio: Portfolio,
        snapshot: MarketSnapshot,
        history: pd.DataFrame,
        config: StreamConfig | None = None,
    ) -> StreamingEngine:
        """Rebuild an engine from :meth:`state` bytes with the same start-of-day portfolio, market and history."""
        header, arrays = unpack_state(data)
        stored = StreamConfig.from_dict(header["config"])
        if config is not None:
            if replace(config, threads=stored.threads) != stored:
                raise ConfigurationError("config", config, f"the checkpoint was taken with {stored}")
            stored = config
        if header["as_of"] != snapshot.as_of.isoformat():
            raise ConfigurationError(
                "snapshot.as_of", snapshot.as_of, f"the checkpoint is of {header['as_of']}"
            )
        return cls(portfolio, snapshot, history, stored, _restore=(header, arrays))

    def _restore(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if header["fingerprint"] != self._fingerprint:
            raise ConfigurationError(
                "history", "scenarios", "the history gives other scenarios than the checkpoint's"
            )
        books = header["books"]
        self._books = frozenset(books) if books is not None else None
        self._cur = arrays["cur"]
        self._other = dict((k, float(v)) for k, v in header["other"])
        self._pending = {int(k): float(v) for k, v in header["pending"]}
        self._pending_other = {k: float(v) for k, v in header["pending_other"]}
        try:
            self._row_inst = np.array(
                [self._inst_index[i] for i in header["row_instruments"]], dtype=np.int64
            )
        except KeyError as exc:
            raise ConfigurationError(
                "portfolio", exc.args[0], "instrument of the checkpoint is missing"
            ) from None
        self._row_of[self._row_inst] = np.arange(len(self._row_inst))
        self._row_failed = {int(k): v for k, v in header["row_failed"]}
        globals_ = self._row_inst.tolist()
        deps = self._deps(globals_)
        self._row_deps = []
        fx: list[int] = []
        for g in globals_:
            d = deps[g]
            self._row_deps.append(d[0] if not isinstance(d, str) else np.empty(0, dtype=np.int64))
            fx.append(d[1] if not isinstance(d, str) else -1)
        self._row_fx = np.array(fx, dtype=np.int64)
        self._P, self._base, self._stale = arrays["P"], arrays["base"], arrays["stale"]
        self._L = arrays["local"]
        self._pid = list(header["position_ids"])
        self._slot = {k: int(v) for k, v in header["live"]}
        self._attrs = {a: list(v) for a, v in header["attributes"].items()}
        self._prow, self._qty, self._leaf = arrays["prow"], arrays["qty"], arrays["leaf"]
        self._node_ids = list(header["node_ids"])
        self._node_index = {n: i for i, n in enumerate(self._node_ids)}
        self._parent = list(header["parent"])
        self._node_level = list(header["node_level"])
        self._leaf_key = {tuple(k): i for i, k in enumerate(header["leaf_keys"])}
        self._leaf_anc, self._leaf_pnl = arrays["leaf_anc"], arrays["leaf_pnl"]
        self._steps = int(header["steps"])
        self._since_exact = int(header["since_exact"])
        self._touched = set(header["touched"])
        slow = header["slow"]
        if slow is not None:
            self._slow = SlowMeasures(slow["step"], slow["measures"], slow["elapsed_s"], slow["skipped"])
        self._deps_dirty = self._pos_dirty = self._tree_dirty = self._lad_dirty = True
