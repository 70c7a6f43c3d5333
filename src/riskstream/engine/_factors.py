"""Which risk factors a set of instruments needs, and which instruments cannot be valued for want of one."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..domain import TENORS, Instrument, MarketSnapshot, rate_factor

__all__ = ["required_factors"]


def _expand(factor: str, snapshot: MarketSnapshot) -> list[str]:
    """``IR.<ccy>.*`` stands for every tenor of the currency's curve present in the snapshot."""
    if factor.endswith(".*"):
        ccy = factor.split(".")[1]
        tenors = snapshot.curve_tenors(ccy)
        return [rate_factor(ccy, t) for t in tenors] if tenors else [rate_factor(ccy, next(iter(TENORS)))]
    return [factor]


def required_factors(
    instruments: Sequence[Instrument], snapshot: MarketSnapshot, history: pd.DataFrame | None = None
) -> tuple[tuple[str, ...], dict[int, str]]:
    """Factor ids the instruments depend on, and instrument index → reason for those that cannot be valued.

    An instrument fails when one of its factors has no value in the snapshot or (if ``history`` is given) no
    history to build scenarios from. Factors are returned sorted; the reporting currency's FX is never one.
    """
    one = f"FX.{snapshot.reporting_currency}"
    have_history = set(history.columns) if history is not None else None
    needed: set[str] = set()
    failed: dict[int, str] = {}
    cache: dict[tuple[str, ...], tuple[list[str], str | None]] = {}
    for i, inst in enumerate(instruments):
        deps = inst.factors(snapshot.reporting_currency)
        hit = cache.get(deps)
        if hit is None:
            ids = [f for d in deps for f in _expand(d, snapshot) if f != one]
            reason = None
            for f in ids:
                if f not in snapshot:
                    reason = f"risk factor {f!r} has no value in the market snapshot"
                    break
                if have_history is not None and f not in have_history:
                    reason = f"risk factor {f!r} has no history to build scenarios from"
                    break
            hit = (ids, reason)
            cache[deps] = hit
        ids, reason = hit
        if reason is not None:
            failed[i] = reason
        else:
            needed.update(ids)
    return tuple(sorted(needed)), failed
