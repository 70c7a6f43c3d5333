"""VaR and Expected Shortfall estimators, parametric methods, decomposition and FRTB liquidity-horizon ES.

Conventions: P&L is positive for a gain; VaR and ES are positive losses; confidence α ∈ (0, 1); measure names carry
confidence and horizon (``var_99_1d``, ``es_975_10d``); P&L arrays hold scenarios along the last axis.
"""

from riskstream.risk._decomposition import (
    Contributor,
    Decomposition,
    component_var_es,
    incremental_var_es,
    marginal_var_es,
    top_contributors,
)
from riskstream.risk._frtb import (
    BASE_HORIZON_DAYS,
    LIQUIDITY_HORIZONS,
    LiquidityAdjustedES,
    LiquidityHorizonRules,
    horizon_masks,
    liquidity_adjusted_es,
    liquidity_horizon,
    masked_shocks,
)
from riskstream.risk._measures import (
    QUANTILE_RULES,
    Estimator,
    HistoricalEstimator,
    QuantileRule,
    RiskEstimate,
    measure_name,
    scale_horizon,
    tail_weights,
    var_es,
    var_es_reference,
)
from riskstream.risk._parametric import (
    CornishFisherRisk,
    DeltaNormalRisk,
    NormalEstimator,
    cornish_fisher_var_es,
    delta_gamma_cornish_fisher,
    delta_normal,
    normal_var_es,
    student_t_unit_variance_var_es,
    student_t_var_es,
)

__all__ = [
    "BASE_HORIZON_DAYS",
    "LIQUIDITY_HORIZONS",
    "QUANTILE_RULES",
    "Contributor",
    "CornishFisherRisk",
    "Decomposition",
    "DeltaNormalRisk",
    "Estimator",
    "HistoricalEstimator",
    "LiquidityAdjustedES",
    "LiquidityHorizonRules",
    "NormalEstimator",
    "QuantileRule",
    "RiskEstimate",
    "component_var_es",
    "cornish_fisher_var_es",
    "delta_gamma_cornish_fisher",
    "delta_normal",
    "horizon_masks",
    "incremental_var_es",
    "liquidity_adjusted_es",
    "liquidity_horizon",
    "marginal_var_es",
    "masked_shocks",
    "measure_name",
    "normal_var_es",
    "scale_horizon",
    "student_t_unit_variance_var_es",
    "student_t_var_es",
    "tail_weights",
    "top_contributors",
    "var_es",
    "var_es_reference",
]
