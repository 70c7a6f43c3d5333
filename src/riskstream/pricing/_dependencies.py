"""Exact factor dependencies of instruments: the factors whose levels their values actually read.

``Instrument.factors`` lists a curve dependence as ``IR.<ccy>.*`` (every tenor of the curve). Under the curve
convention of ``_curve`` (zero rate linear in time between tenor points, flat outside) a cash flow at time
``t > 0`` reads only the tenor points that bracket ``t`` with a non-zero interpolation weight: the two around
it, one when ``t`` falls on a tenor point or outside the curve; a cash flow paid now (``t = 0``) or of amount 0
reads none. :func:`factor_dependencies_exact` replaces each curve by those points, per instrument:

- fixed cash flows (bonds, swaps): the points around every non-zero cash flow of the schedule;
- index futures, equity options: the point(s) around expiry on the contract's currency curve;
- FX forwards, FX options: the point(s) around expiry on both currencies' curves;
- every other factor (``EQ``, ``VOL``, ``FX``) as ``Instrument.factors`` lists it.

:func:`translation_currency` says when an instrument's only dependence on ``FX.<ccy>`` is the translation
``V = FX.<ccy> · V_local`` (single-currency instruments), so an FX move rescales the local-currency value exactly
instead of repricing it.

Exceptions where a listed factor can leave the value unchanged: a factor whose sensitivity underflows (a far
out-of-the-money option's vol or rate; ``exp`` of a large negative number), and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

from ..domain import TENORS, Instrument, InstrumentType, MarketSnapshot, rate_factor, year_fraction
from ._curve import interpolation_weights
from ._ladder import CASHFLOW_SCHEDULES as _CASHFLOWS

__all__ = ["factor_dependencies_exact", "single_currency", "translation_currency"]

#: Families valued as ``FX.<currency> × (value in the instrument's own currency)``.
_TRANSLATED = frozenset(
    {
        InstrumentType.EQUITY,
        InstrumentType.FX_SPOT,
        InstrumentType.INDEX_FUTURE,
        InstrumentType.EQUITY_OPTION,
        *_CASHFLOWS,
    }
)


def single_currency(instrument: Instrument) -> bool:
    """Whether the instrument is valued as ``FX.<currency> × V_local``, ``V_local`` free of every FX rate."""
    return getattr(instrument, "type", None) in _TRANSLATED


def translation_currency(instrument: Instrument, reporting_currency: str) -> str | None:
    """The currency ``c`` if the instrument is worth ``FX.<c> × V_local`` with ``V_local`` free of ``FX.<c>``.

    ``None`` for the reporting currency (nothing to translate) and for currency-pair instruments (FX forwards
    and options read both FX rates through the spot ``S = X_for / X_dom``, not as a rescale).
    """
    if not single_currency(instrument):
        return None
    ccy = str(getattr(instrument, "currency", reporting_currency))
    return None if ccy == reporting_currency else ccy


def _pillars(snapshot: MarketSnapshot, ccy: str, times: np.ndarray) -> list[str]:
    """Tenor points of ``ccy``'s curve with a non-zero interpolation weight at any of ``times`` (years, > 0)."""
    tenors = snapshot.curve_tenors(ccy)
    if not tenors:
        return [rate_factor(ccy, "*")]  # no curve: the pricer reports the instrument as failed
    times = times[times > 0]
    if times.size == 0:
        return []
    w = interpolation_weights(np.array([TENORS[t] for t in tenors]), times)
    return [rate_factor(ccy, tenors[k]) for k in np.flatnonzero(np.any(w != 0.0, axis=0))]


def _curve_times(instrument: Instrument, kind: object, as_of: date) -> dict[str, np.ndarray]:
    """Currency → times (years) at which the instrument reads that currency's curve."""
    maker = _CASHFLOWS.get(kind)  # type: ignore[call-overload]
    if maker is not None:
        cf = maker([instrument], as_of)
        times = np.unique(cf.time)
        # cash flows of one time add up (a swap's last coupon and its notional); amount 0 reads nothing
        amounts = np.array([cf.amount[cf.time == t].sum() for t in times])
        return {str(instrument.currency): times[amounts != 0.0]}
    expiry = np.array([year_fraction(as_of, instrument.maturity)])  # type: ignore[attr-defined]
    out = {str(instrument.currency): expiry}
    foreign = getattr(instrument, "foreign_currency", None)
    if foreign is not None:
        out[str(foreign)] = expiry
    return out


def factor_dependencies_exact(
    instruments: Sequence[Instrument], snapshot: MarketSnapshot
) -> list[tuple[str, ...]]:
    """For each instrument, the sorted ids of the factors its reporting-currency value reads.

    Parameters
    ----------
    instruments
        The instruments, any mix of families.
    snapshot
        The market whose curve tenors (``IR.<ccy>.<tenor>`` present) define the interpolation, and whose
        ``as_of`` is the valuation date. ``FX.<reporting currency>`` is never listed (it is 1).

    Bumping a factor outside an instrument's set leaves its value bit-identical under the pricers of
    :func:`~riskstream.pricing.value_instruments`; see the module docstring for the curve rule.
    """
    one = f"FX.{snapshot.reporting_currency}"
    out: list[tuple[str, ...]] = []
    for inst in instruments:
        listed = inst.factors(snapshot.reporting_currency)
        ids = {f for f in listed if not f.endswith(".*") and f != one}
        if any(f.endswith(".*") for f in listed):
            for ccy, times in _curve_times(inst, getattr(inst, "type", None), snapshot.as_of).items():
                ids.update(_pillars(snapshot, ccy, np.asarray(times, dtype=np.float64)))
        out.append(tuple(sorted(ids)))
    return out
