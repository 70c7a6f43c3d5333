"""riskstream.pricing: vectorised valuation of every instrument family under a batch of scenarios, and sensitivities.

Values are per unit of instrument in the market's reporting currency; ``FX.<ccy>`` converts one unit of ``ccy``
into it. Time to maturity is ACT/365F from the market's ``as_of``; zero rates are continuously compounded and
interpolated linearly between tenor points, flat outside. Sensitivities follow each factor's shock convention:
relative for EQ, FX and VOL (``X·∂V/∂X``, ``X²·∂²V/∂X²``), absolute for IR zero rates (``∂V/∂z``, ``∂²V/∂z²``).
"""

from ._black_scholes import BlackScholesGreeks, black_scholes, black_scholes_greeks
from ._cashflows import coupon_times
from ._curve import CurveSet, discount_factors, interpolation_weights, zero_rates
from ._dependencies import factor_dependencies_exact, single_currency, translation_currency
from ._ladder import CASHFLOW_SCHEDULES, CashflowLadder
from ._prepared import PREPARED_FAMILIES, PreparedBook
from ._reference import reference_value, reference_values
from ._sensitivities import Sensitivities, factor_dependencies, sensitivities, sensitivities_by_bumping
from ._valuation import Valuation, instrument_pnl, value_instruments

__all__ = [
    "CASHFLOW_SCHEDULES",
    "PREPARED_FAMILIES",
    "BlackScholesGreeks",
    "CashflowLadder",
    "CurveSet",
    "PreparedBook",
    "Sensitivities",
    "Valuation",
    "black_scholes",
    "black_scholes_greeks",
    "coupon_times",
    "discount_factors",
    "factor_dependencies",
    "factor_dependencies_exact",
    "instrument_pnl",
    "interpolation_weights",
    "reference_value",
    "reference_values",
    "sensitivities",
    "sensitivities_by_bumping",
    "single_currency",
    "translation_currency",
    "value_instruments",
    "zero_rates",
]
