"""FRTB internal-models Expected Shortfall with liquidity horizons (Basel Framework MAR33.4–33.5, MAR33.12).

The liquidity-adjusted ES cascades 10-day ES figures computed with fewer and fewer factors shocked::

    ES = sqrt( ES_T(P)² + Σ_{j≥2} ( ES_T(P, j) · sqrt((LH_j − LH_{j−1}) / T) )² )

with T = 10 days, LH = 10, 20, 40, 60, 120 days, ES_T(P) the 10-day 97.5 % ES with every factor shocked and
ES_T(P, j) the 10-day 97.5 % ES when only the factors whose liquidity horizon is at least LH_j are shocked (the
others held at their current value). ES figures are positive losses; P&L is positive for a gain.

Factor liquidity horizons follow the MAR33.12 table for the factor ids riskstream uses:

=================  ==========================================  =====================================
factor id          meaning                                     liquidity horizon (days)
=================  ==========================================  =====================================
``EQ.<name>``      equity spot price                           large cap 10, small cap 20
``FX.<ccy>``       spot of <ccy> in the reporting currency     specified pair 10, other 20
``IR.<ccy>.<t>``   zero rate of <ccy> at tenor <t>             specified currency 10, other 20
``VOL.<pair>``     FX volatility (``VOL.EURUSD``, ``VOL.FX.…``)  40
``VOL.IR.…``       interest-rate volatility                    60
``VOL.<name>``     equity volatility (``VOL.EQ.<name>`` too)   large cap 20, small cap 60
=================  ==========================================  =====================================

Specified currency pairs (MAR33.12, footnote): USD against EUR, JPY, GBP, AUD, CAD, CHF, MXN, CNY, NZD, RUB, HKD,
SGD, TRY, KRW, SEK, ZAR, INR, NOK, BRL, and the first-order crosses among those currencies (e.g. EUR/GBP).
Specified interest-rate currencies: EUR, USD, GBP, AUD, JPY, SEK, CAD and the bank's domestic currency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from riskstream.errors import ConfigurationError, InvalidFieldError, MissingFieldError
from riskstream.risk._measures import as_pnl, validate_confidence, var_es

__all__ = [
    "BASE_HORIZON_DAYS",
    "LIQUIDITY_HORIZONS",
    "LiquidityAdjustedES",
    "LiquidityHorizonRules",
    "horizon_masks",
    "liquidity_adjusted_es",
    "liquidity_horizon",
    "masked_shocks",
]

FloatArray = NDArray[np.float64]

BASE_HORIZON_DAYS = 10
LIQUIDITY_HORIZONS: tuple[int, ...] = (10, 20, 40, 60, 120)

SPECIFIED_FX_CURRENCIES = frozenset(
    "USD EUR JPY GBP AUD CAD CHF MXN CNY NZD RUB HKD SGD TRY KRW SEK ZAR INR NOK BRL".split()
)
SPECIFIED_IR_CURRENCIES = frozenset("EUR USD GBP AUD JPY SEK CAD".split())
# ISO 4217 codes in use (plus CNH, the offshore yuan, and XAU: gold is an FX risk factor in FRTB), to tell an FX
# pair such as VOL.EURUSD from a six-letter equity name.
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF
    CHF CLP CNH CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD
    HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VES VND VUV WST XAF XAU XCD XOF XPF YER ZAR ZMW ZWL""".split()
)


def _currency(code: str, factor_id: str) -> str:
    if code not in CURRENCIES:
        raise InvalidFieldError("factor_id", factor_id, f"{code!r} is not an ISO 4217 currency code")
    return code


@dataclass(frozen=True)
class LiquidityHorizonRules:
    """The bank-specific inputs of the MAR33.12 liquidity-horizon table.

    Parameters
    ----------
    reporting_currency : str
        Currency FX spot factors ``FX.<ccy>`` are quoted in (ISO 4217), default USD.
    domestic_currency : str, optional
        The bank's domestic currency, a specified currency for interest rates; default the reporting currency.
    small_caps : frozenset of str
        Equity names (as in ``EQ.<name>``) that are small caps; every other equity is large cap.
    """

    reporting_currency: str = "USD"
    domestic_currency: str | None = None
    small_caps: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.reporting_currency not in CURRENCIES:
            raise ConfigurationError("reporting_currency", self.reporting_currency, "is not an ISO 4217 code")
        if self.domestic_currency is None:
            object.__setattr__(self, "domestic_currency", self.reporting_currency)
        elif self.domestic_currency not in CURRENCIES:
            raise ConfigurationError("domestic_currency", self.domestic_currency, "is not an ISO 4217 code")
        object.__setattr__(self, "small_caps", frozenset(self.small_caps))

    def _fx_spot(self, ccy: str, factor_id: str) -> int:
        _currency(ccy, factor_id)
        if ccy == self.reporting_currency:
            raise InvalidFieldError("factor_id", factor_id, "is the reporting currency against itself")
        specified = ccy in SPECIFIED_FX_CURRENCIES and self.reporting_currency in SPECIFIED_FX_CURRENCIES
        return 10 if specified else 20

    def _volatility(self, underlying: str, factor_id: str) -> int:
        kind, _, rest = underlying.partition(".")
        if kind == "IR" and rest:
            return 60
        if kind == "FX" and rest:
            underlying = rest
        elif kind == "EQ" and rest:
            return 60 if rest in self.small_caps else 20
        if len(underlying) == 6 and underlying[:3] in CURRENCIES and underlying[3:] in CURRENCIES:
            return 40
        if kind == "FX":
            raise InvalidFieldError(
                "factor_id", factor_id, "FX volatility needs a currency pair such as EURUSD"
            )
        return 60 if underlying in self.small_caps else 20

    def horizon(self, factor_id: str) -> int:
        """Liquidity horizon in days (10, 20, 40, 60 or 120) of one riskstream factor id.

        Parameters
        ----------
        factor_id : str
            ``EQ.<name>``, ``FX.<ccy>``, ``IR.<ccy>.<tenor>`` or ``VOL.<underlying>``.
        """
        kind, _, rest = str(factor_id).partition(".")
        if not rest:
            raise InvalidFieldError(
                "factor_id", factor_id, "must look like EQ.<name>, FX.<ccy>, IR.<ccy>.<tenor>"
            )
        if kind == "EQ":
            return 20 if rest in self.small_caps else 10
        if kind == "FX" and "." not in rest:
            return self._fx_spot(rest, factor_id)
        if kind == "IR":
            ccy, _, tenor = rest.partition(".")
            if not tenor:
                raise InvalidFieldError("factor_id", factor_id, "interest-rate factors are IR.<ccy>.<tenor>")
            _currency(ccy, factor_id)
            return 10 if ccy in SPECIFIED_IR_CURRENCIES or ccy == self.domestic_currency else 20
        if kind == "VOL":
            return self._volatility(rest, factor_id)
        raise InvalidFieldError("factor_id", factor_id, "unknown factor class; known: EQ, FX, IR, VOL")


def liquidity_horizon(factor_id: str, rules: LiquidityHorizonRules | None = None) -> int:
    """Liquidity horizon in days of a riskstream factor id per MAR33.12 (see the module docstring).

    Parameters
    ----------
    factor_id : str
        ``EQ.<name>``, ``FX.<ccy>``, ``IR.<ccy>.<tenor>`` or ``VOL.<underlying>``.
    rules : LiquidityHorizonRules, optional
        Reporting and domestic currency and the small-cap names; default USD with no small caps.
    """
    return (rules or LiquidityHorizonRules()).horizon(factor_id)


def horizon_masks(
    factor_ids: Sequence[str], rules: LiquidityHorizonRules | None = None
) -> dict[int, NDArray[np.bool_]]:
    """For each liquidity horizon LH_j, which factors are shocked in ES_T(P, j): those with horizon >= LH_j.

    Parameters
    ----------
    factor_ids : sequence of str
        Factor ids, one per row of the factor-shock matrix.
    rules : LiquidityHorizonRules, optional
        Bank-specific inputs of the horizon table.

    Returns
    -------
    dict
        ``{10: mask, 20: mask, 40: mask, 60: mask, 120: mask}``, boolean masks of shape ``(n_factors,)``; the mask
        for 10 is all true.
    """
    resolved = rules or LiquidityHorizonRules()
    horizons = np.array([resolved.horizon(f) for f in factor_ids], dtype=np.int64)
    return {lh: horizons >= lh for lh in LIQUIDITY_HORIZONS}


def masked_shocks(
    factor_ids: Sequence[str],
    shocks: ArrayLike,
    rules: LiquidityHorizonRules | None = None,
    *,
    neutral: float = 0.0,
) -> dict[int, FloatArray]:
    """Factor-shock matrices to revalue for each liquidity horizon, unshocked factors set to ``neutral``.

    Buckets in which no factor is shocked are left out (they contribute 0 to :func:`liquidity_adjusted_es`), except
    the 10-day bucket, which shocks every factor.

    Parameters
    ----------
    factor_ids : sequence of str
        Factor ids, one per row of ``shocks``.
    shocks : array_like
        10-day factor shocks, shape ``(n_factors, n_scenarios)``, in the factors' shock units.
    rules : LiquidityHorizonRules, optional
        Bank-specific inputs of the horizon table.
    neutral : float
        The shock that leaves a factor unchanged: 0 for additive or log-return shocks, 1 for ratio shocks.
    """
    x = as_pnl(shocks, "shocks", max_ndim=2)
    if x.ndim != 2 or x.shape[0] != len(factor_ids):
        raise InvalidFieldError(
            "shocks", x.shape, f"must be ({len(factor_ids)}, n_scenarios): one row per factor"
        )
    out: dict[int, FloatArray] = {}
    for lh, mask in horizon_masks(factor_ids, rules).items():
        if lh == BASE_HORIZON_DAYS or mask.any():
            out[lh] = np.where(mask[:, None], x, neutral)
    return out


@dataclass(frozen=True)
class LiquidityAdjustedES:
    """The liquidity-adjusted ES and the terms of its cascade.

    Parameters
    ----------
    total : float or ndarray
        Liquidity-adjusted ES, positive loss in currency units (an array for matrix input, one per node).
    es_by_horizon : dict
        ES_T(P, j), the 10-day ES with factors of horizon >= LH_j shocked, keyed by LH_j; 0 for missing buckets.
    terms : dict
        ES_T(P, j) · sqrt((LH_j − LH_{j−1}) / T) keyed by LH_j (the 10-day term is ES_T(P) itself); the total is
        the square root of the sum of their squares.
    confidence : float
        Confidence level α (0.975 in MAR33.3).
    """

    total: float | FloatArray
    es_by_horizon: dict[int, float | FloatArray]
    terms: dict[int, float | FloatArray]
    confidence: float


def _as_result(values: FloatArray) -> float | FloatArray:
    return float(values) if values.ndim == 0 else values


def liquidity_adjusted_es(
    pnl_by_horizon: Mapping[int, ArrayLike], confidence: float = 0.975
) -> LiquidityAdjustedES:
    """Liquidity-adjusted ES of MAR33.4 from the 10-day P&L revalued under each horizon's masked shocks.

    Parameters
    ----------
    pnl_by_horizon : mapping of int to array_like
        10-day scenario P&L in currency units keyed by liquidity horizon LH_j (10, 20, 40, 60, 120): the P&L when
        only factors with horizon >= LH_j are shocked (see :func:`masked_shocks`). Key 10 (all factors shocked) is
        required; a missing other key contributes 0. Each value is a vector ``(n_scenarios,)`` or a matrix
        ``(n_nodes, n_scenarios)``, all of the same shape.
    confidence : float
        Confidence level α, default 0.975 (MAR33.3).
    """
    alpha = validate_confidence(confidence)
    unknown = sorted(set(pnl_by_horizon) - set(LIQUIDITY_HORIZONS))
    if unknown:
        raise InvalidFieldError(
            "pnl_by_horizon", unknown, f"keys must be liquidity horizons {LIQUIDITY_HORIZONS}"
        )
    if BASE_HORIZON_DAYS not in pnl_by_horizon:
        raise MissingFieldError(f"pnl_by_horizon[{BASE_HORIZON_DAYS}]")
    es_by: dict[int, FloatArray] = {}
    for lh, pnl in pnl_by_horizon.items():
        es_by[lh] = var_es(pnl, alpha)[1]
    shape = es_by[BASE_HORIZON_DAYS].shape
    if any(es.shape != shape for es in es_by.values()):
        raise InvalidFieldError("pnl_by_horizon", {k: v.shape for k, v in es_by.items()}, "shapes differ")
    zero = np.zeros(shape)
    terms: dict[int, FloatArray] = {}
    previous = 0
    for lh in LIQUIDITY_HORIZONS:
        # The 10-day term is unscaled: sqrt((10 − 0)/10) = 1.
        terms[lh] = es_by.get(lh, zero) * math.sqrt((lh - previous) / BASE_HORIZON_DAYS)
        previous = lh
    total = np.sqrt(sum(t * t for t in terms.values()))
    return LiquidityAdjustedES(
        _as_result(np.asarray(total)),
        {lh: _as_result(es_by.get(lh, zero)) for lh in LIQUIDITY_HORIZONS},
        {lh: _as_result(t) for lh, t in terms.items()},
        alpha,
    )
