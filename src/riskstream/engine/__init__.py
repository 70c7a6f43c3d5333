"""Engine: the batch risk run (VaR/ES per node with contributors), stress tests, FRTB liquidity-adjusted ES, and
the streaming engine (incremental VaR/ES under ticks and trade events, checkpointable) and risk limits with
hysteresis alerts."""

from ._batch import METHODS, Contribution, NodeRisk, RiskReport, RiskRequest, run_risk
from ._factors import required_factors
from ._frtb import FrtbNode, FrtbReport, run_frtb_es
from ._limits import (
    Limit,
    LimitMonitor,
    LimitProblem,
    LimitSet,
    limits_from_dict,
    limits_from_values,
    load_limits,
)
from ._stream import SlowMeasures, StreamingEngine
from ._stream_aggregate import Aggregator
from ._stream_config import StreamConfig
from ._stream_reference import reference_snapshots
from ._stress import NodeStress, StressReport, resolve_scenario, run_stress

__all__ = [
    "METHODS",
    "Aggregator",
    "Contribution",
    "FrtbNode",
    "FrtbReport",
    "Limit",
    "LimitMonitor",
    "LimitProblem",
    "LimitSet",
    "NodeRisk",
    "NodeStress",
    "RiskReport",
    "RiskRequest",
    "SlowMeasures",
    "StreamConfig",
    "StreamingEngine",
    "StressReport",
    "limits_from_dict",
    "limits_from_values",
    "load_limits",
    "reference_snapshots",
    "required_factors",
    "resolve_scenario",
    "run_frtb_es",
    "run_risk",
    "run_stress",
]
