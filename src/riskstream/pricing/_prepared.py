"""Closed-form instruments laid out once as arrays, for repeated valuation of any subset under many scenarios.

A streaming engine values the same options, forwards, futures and shares again and again as factors tick. Their
terms, the columns of the factors they read and the interpolation weights of their expiry on each curve do not
change during the day; only the levels do. A :class:`PreparedBook` holds that fixed part — what each family
pricer of :func:`~riskstream.pricing.value_instruments` builds on every call (checks, factor look-ups, curve
weights) — so that one call values any subset of instruments from a level matrix with a few array operations
per family.

The formulas and the order of every floating-point operation are those of the family pricers (the same
:func:`~riskstream.pricing.black_scholes`, the same two-term interpolation ``w_lo·z_lo + w_hi·z_hi``), so the
values agree with them to rounding (tested to 1e-12 relative; in practice bit for bit).

Currency conventions: single-currency instruments (shares, FX spot, index futures, equity options) are valued
in their **own currency** (every ``FX.<ccy>`` at 1: a share is worth ``S``, one unit of a currency is worth 1) —
translate with ``FX.<ccy>``; currency pairs (FX forwards, FX options) are valued in the **reporting currency**,
reading ``FX.<dom>`` and ``FX.<for>`` (1 for the reporting currency).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..domain import (
    TENORS,
    Instrument,
    InstrumentType,
    MarketSnapshot,
    OptionType,
    equity_factor,
    fx_factor,
    rate_factor,
    vol_factor,
    year_fraction,
)
from ._black_scholes import black_scholes
from ._curve import _bracket
from ._family import Workspace, block_rows, blocks

__all__ = ["PREPARED_FAMILIES", "PreparedBook"]

#: Smallest piece of option valuations (rows × scenarios) worth handing to another thread. Measured on a 2-core
#: machine: waking a pool thread and collecting its result costs ~0.15 ms, an option element ~40 ns (two
#: ``ndtr`` and the rest), and two threads first beat one at ~32 rows × 501 scenarios a piece.
PARALLEL_OPTION_ELEMENTS = 1 << 14
#: The same for shares, futures and forwards: at most two ``exp`` per element, ~8× cheaper than an option.
PARALLEL_LINEAR_ELEMENTS = 1 << 17

_EQUITY, _FX_SPOT, _FUTURE, _FORWARD, _EQ_OPTION, _FX_OPTION = range(6)

#: The families a :class:`PreparedBook` values, by internal code.
PREPARED_FAMILIES: dict[InstrumentType, int] = {
    InstrumentType.EQUITY: _EQUITY,
    InstrumentType.FX_SPOT: _FX_SPOT,
    InstrumentType.INDEX_FUTURE: _FUTURE,
    InstrumentType.FX_FORWARD: _FORWARD,
    InstrumentType.EQUITY_OPTION: _EQ_OPTION,
    InstrumentType.FX_OPTION: _FX_OPTION,
}


@dataclass(frozen=True)
class PreparedBook:
    """Terms and factor columns of instruments, one entry per instrument (``kind`` −1: not prepared).

    Column indices point into the factor universe ``factor_ids`` given to :meth:`build`; ``len(factor_ids)``
    stands for ``FX.<reporting currency>`` (always 1). Rate columns come in pairs (the tenor points bracketing
    the expiry on the instrument's curve) with their linear interpolation weights (flat outside the curve).

    Attributes
    ----------
    kind
        Family code per instrument, −1 when the instrument is left to the family pricers (a family without a
        closed form here, a maturity on or before the valuation date, a factor outside the universe).
    expiry
        Years (ACT/365F) from the valuation date to maturity; 0 for undated instruments.
    strike
        Strike (options, forwards) or trade price (futures).
    phi
        +1 call, −1 put.
    dividend, multiplier
        Dividend yield and contract multiplier (1 when the family has none).
    spot, vol, fx_dom, fx_for
        Columns of the spot (``EQ`` level; for FX options the foreign ``FX``), vol, domestic and foreign FX.
    rate_cols, rate_w, foreign_cols, foreign_w
        (n, 2) columns and weights of the domestic and foreign zero rates at expiry.
    """

    n_factors: int
    kind: np.ndarray
    expiry: np.ndarray
    strike: np.ndarray
    phi: np.ndarray
    dividend: np.ndarray
    multiplier: np.ndarray
    spot: np.ndarray
    vol: np.ndarray
    fx_dom: np.ndarray
    fx_for: np.ndarray
    rate_cols: np.ndarray
    rate_w: np.ndarray
    foreign_cols: np.ndarray
    foreign_w: np.ndarray

    @classmethod
    def build(
        cls, instruments: Sequence[Instrument], snapshot: MarketSnapshot, factor_ids: Sequence[str]
    ) -> PreparedBook:
        """Lay out ``instruments`` against the factor universe ``factor_ids``; curves are the snapshot's tenors
        and ``snapshot.as_of`` is the valuation date."""
        n = len(instruments)
        col = {f: j for j, f in enumerate(factor_ids)}
        one = len(factor_ids)
        col[fx_factor(snapshot.reporting_currency)] = one
        kind = np.full(n, -1, dtype=np.int64)
        expiry, strike, phi = np.zeros(n), np.zeros(n), np.ones(n)
        dividend, multiplier = np.zeros(n), np.ones(n)
        spot, vol, fx_dom, fx_for = (np.full(n, one, dtype=np.int64) for _ in range(4))
        rate_cols = np.full((n, 2), one, dtype=np.int64)
        foreign_cols = np.full((n, 2), one, dtype=np.int64)
        rate_w, foreign_w = np.zeros((n, 2)), np.zeros((n, 2))
        curves: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

        def curve(ccy: str) -> tuple[np.ndarray, np.ndarray] | None:
            if ccy not in curves:
                tenors = snapshot.curve_tenors(ccy)
                cols = [col.get(rate_factor(ccy, t), -1) for t in tenors]
                ok = bool(tenors) and min(cols) >= 0
                curves[ccy] = (
                    (np.array([TENORS[t] for t in tenors]), np.array(cols, dtype=np.int64)) if ok else None
                )
            return curves[ccy]

        def pillars(ccy: str, t: float, cols_out: np.ndarray, w_out: np.ndarray, i: int) -> bool:
            c = curve(ccy)
            if c is None:
                return False
            times, cols = c
            lo, frac = _bracket(times, np.array([t]))
            # as CurveSet.weights: (lo, lo + 1) with weights (1 − frac, frac), the last point twice at the end
            cols_out[i] = cols[int(lo[0])], cols[min(int(lo[0]) + 1, len(cols) - 1)]
            w_out[i] = 1.0 - frac[0], frac[0]
            return True

        for i, inst in enumerate(instruments):
            code = PREPARED_FAMILIES.get(getattr(inst, "type", None))  # type: ignore[arg-type]
            if code is None:
                continue
            ccy = str(inst.currency)
            need: list[str] = []
            if code == _EQUITY:
                need = [equity_factor(inst.underlying)]  # type: ignore[attr-defined]
            elif code in (_FUTURE, _EQ_OPTION):
                need = [equity_factor(inst.underlying)]  # type: ignore[attr-defined]
                if code == _EQ_OPTION:
                    need.append(vol_factor(inst.underlying))  # type: ignore[attr-defined]
            elif code in (_FORWARD, _FX_OPTION):
                fgn = str(inst.foreign_currency)  # type: ignore[attr-defined]
                need = [fx_factor(fgn), fx_factor(ccy)]
                if code == _FX_OPTION:
                    need.append(vol_factor(inst.pair))  # type: ignore[attr-defined]
            cols = [col.get(f, -1) for f in need]
            if cols and min(cols) < 0:
                continue
            if code != _EQUITY and code != _FX_SPOT:
                t = year_fraction(snapshot.as_of, inst.maturity)  # type: ignore[attr-defined]
                if not t > 0:
                    continue
                if not pillars(ccy, t, rate_cols, rate_w, i):
                    continue
                if code in (_FORWARD, _FX_OPTION) and not pillars(
                    str(inst.foreign_currency),  # type: ignore[attr-defined]
                    t,
                    foreign_cols,
                    foreign_w,
                    i,
                ):
                    continue
                expiry[i] = t
            if code == _EQUITY:
                spot[i] = cols[0]
            elif code == _FUTURE:
                spot[i] = cols[0]
                strike[i] = inst.trade_price  # type: ignore[attr-defined]
                dividend[i] = inst.dividend_yield  # type: ignore[attr-defined]
                multiplier[i] = inst.multiplier  # type: ignore[attr-defined]
            elif code == _EQ_OPTION:
                spot[i], vol[i] = cols
                strike[i] = inst.strike  # type: ignore[attr-defined]
                dividend[i] = inst.dividend_yield  # type: ignore[attr-defined]
                multiplier[i] = inst.multiplier  # type: ignore[attr-defined]
                phi[i] = 1.0 if inst.option_type is OptionType.CALL else -1.0  # type: ignore[attr-defined]
            elif code in (_FORWARD, _FX_OPTION):
                fx_for[i], fx_dom[i] = cols[0], cols[1]
                strike[i] = inst.strike  # type: ignore[attr-defined]
                if code == _FX_OPTION:
                    vol[i] = cols[2]
                    phi[i] = 1.0 if inst.option_type is OptionType.CALL else -1.0  # type: ignore[attr-defined]
            kind[i] = code
        return cls(
            one, kind, expiry, strike, phi, dividend, multiplier, spot, vol, fx_dom, fx_for,
            rate_cols, rate_w, foreign_cols, foreign_w,
        )  # fmt: skip

    @property
    def prepared(self) -> np.ndarray:
        """Boolean mask of the instruments this book values."""
        return self.kind >= 0

    def columns(self, idx: np.ndarray) -> np.ndarray:
        """Sorted factor columns (universe positions, without the reporting-currency FX) instruments ``idx`` read."""
        idx = np.asarray(idx, dtype=np.int64)
        parts = [self.spot[idx], self.vol[idx], self.fx_dom[idx], self.fx_for[idx]]
        parts += [self.rate_cols[idx].ravel(), self.foreign_cols[idx].ravel()]
        cols = np.unique(np.concatenate(parts)) if idx.size else np.empty(0, dtype=np.int64)
        return cols[cols < self.n_factors]

    def values(self, idx: np.ndarray, levels: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Values of the prepared instruments ``idx`` under every column of ``levels``: (len(idx), n_columns).

        Parameters
        ----------
        idx
            Instrument positions (all prepared).
        levels
            Factor levels, one row per factor, one column per scenario (any number of columns), C order.
        position
            Row of ``levels`` holding each universe factor, length ``n_factors + 1``; the last entry points
            to a row of ones (``FX`` of the reporting currency). Entries of factors the instruments do not read
            are not looked at.
        """
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((len(idx), levels.shape[1]))
        for task in self.tasks(idx, levels, position, out):
            task()
        return out

    def tasks(
        self,
        idx: np.ndarray,
        levels: np.ndarray,
        position: np.ndarray,
        out: np.ndarray,
        parts: int = 1,
        *,
        at: np.ndarray | None = None,
    ) -> list[Callable[[], None]]:
        """Independent pieces of :meth:`values`, each writing its own rows of ``out``: the values of ``idx[i]``
        go to row ``at[i]`` (row ``i`` when ``at`` is None).

        Each family's rows are cut into up to ``parts`` contiguous pieces, no smaller than
        :data:`PARALLEL_OPTION_ELEMENTS` (options) or :data:`PARALLEL_LINEAR_ELEMENTS` (the others) rows ×
        columns, so that a piece pays for handing it to another thread. Every value is computed element by
        element, so running the pieces in any order, on any threads, fills ``out`` with the same bits as
        :meth:`values`. Costliest pieces (options) come first.
        """
        idx = np.asarray(idx, dtype=np.int64)
        m = levels.shape[1]
        kinds = self.kind[idx]
        options: list[Callable[[], None]] = []
        linear: list[Callable[[], None]] = []
        for code in np.unique(kinds).tolist():
            part = np.flatnonzero(kinds == code)
            is_option = code in (_EQ_OPTION, _FX_OPTION)
            size = PARALLEL_OPTION_ELEMENTS if is_option else PARALLEL_LINEAR_ELEMENTS
            n_pieces = max(1, min(parts, len(part) * m // size))
            for piece in np.array_split(part, n_pieces):
                dest = piece if at is None else at[piece]
                (options if is_option else linear).append(
                    functools.partial(self._fill, code, dest, idx[piece], levels, position, out)
                )
        return options + linear

    def _fill(
        self,
        code: int,
        part: np.ndarray,
        sub: np.ndarray,
        levels: np.ndarray,
        pos: np.ndarray,
        out: np.ndarray,
    ) -> None:
        """Values of instruments ``sub`` (all of family ``code``) into rows ``part`` of ``out``."""
        if code not in (_EQ_OPTION, _FX_OPTION):
            out[part] = self._linear(code, sub, levels, pos)
            return
        m = levels.shape[1]
        ws = Workspace(min(len(sub), block_rows(m)), m)
        for b in blocks(len(sub), m):
            out[part[b]] = self._options(code, sub[b], levels, pos, ws)

    def _rate(
        self, cols: np.ndarray, w: np.ndarray, sub: np.ndarray, levels: np.ndarray, pos: np.ndarray
    ) -> np.ndarray:
        # the order of CurveSet.zero_rates' sparse product: 0 + w_lo·z_lo, then + w_hi·z_hi
        r = levels[pos[cols[sub, 0]]]
        r *= w[sub, 0, None]
        hi = levels[pos[cols[sub, 1]]]
        hi *= w[sub, 1, None]
        r += hi
        return r

    def _linear(self, code: int, sub: np.ndarray, levels: np.ndarray, pos: np.ndarray) -> np.ndarray:
        if code == _EQUITY:
            return levels[pos[self.spot[sub]]]
        if code == _FX_SPOT:
            return np.ones((len(sub), levels.shape[1]))
        t = self.expiry[sub, None]
        if code == _FUTURE:
            growth = self._rate(self.rate_cols, self.rate_w, sub, levels, pos)
            growth -= self.dividend[sub, None]
            growth *= t
            np.exp(growth, out=growth)
            growth *= levels[pos[self.spot[sub]]]
            growth -= self.strike[sub, None]
            growth *= self.multiplier[sub, None]
            return growth
        # FX forward: X_for·DF_for − K·X_dom·DF_dom
        value = self._rate(self.foreign_cols, self.foreign_w, sub, levels, pos)
        value *= -t
        np.exp(value, out=value)
        value *= levels[pos[self.fx_for[sub]]]
        dom = self._rate(self.rate_cols, self.rate_w, sub, levels, pos)
        dom *= -t
        np.exp(dom, out=dom)
        dom *= levels[pos[self.fx_dom[sub]]]
        dom *= self.strike[sub, None]
        value -= dom
        return value

    def _options(
        self, code: int, sub: np.ndarray, levels: np.ndarray, pos: np.ndarray, ws: Workspace
    ) -> np.ndarray:
        n = len(sub)
        rate = self._rate(self.rate_cols, self.rate_w, sub, levels, pos)
        vol = levels[pos[self.vol[sub]]]
        if code == _EQ_OPTION:
            spot = levels[pos[self.spot[sub]]]
            carry = np.subtract(rate, self.dividend[sub, None], out=ws("carry", n))
            scale: np.ndarray | None = None
        else:
            carry = np.subtract(
                rate, self._rate(self.foreign_cols, self.foreign_w, sub, levels, pos), out=ws("carry", n)
            )
            scale = levels[pos[self.fx_dom[sub]]]
            spot = levels[pos[self.fx_for[sub]]]
            spot /= scale
        price = black_scholes(
            spot,
            self.strike[sub, None],
            self.expiry[sub, None],
            rate,
            carry,
            vol,
            self.phi[sub, None],
            out=np.empty((n, levels.shape[1])),
            work=ws("work", n, depth=2),
        )
        if scale is None:
            # the family's scale: FX (1 in the instrument's own currency) × multiplier
            price *= self.multiplier[sub, None]
        else:
            price *= scale
        return price
