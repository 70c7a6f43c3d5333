"""Engine: the batch risk run (VaR/ES per node with contributors), stress tests and FRTB liquidity-adjusted ES."""

from ._batch import METHODS, Contribution, NodeRisk, RiskReport, RiskRequest, run_risk
from ._factors import required_factors
from ._frtb import FrtbNode, FrtbReport, run_frtb_es
from ._stress import NodeStress, StressReport, resolve_scenario, run_stress

__all__ = [
    "METHODS",
    "Contribution",
    "FrtbNode",
    "FrtbReport",
    "NodeRisk",
    "NodeStress",
    "RiskReport",
    "RiskRequest",
    "StressReport",
    "required_factors",
    "resolve_scenario",
    "run_frtb_es",
    "run_risk",
    "run_stress",
]
