"""riskstream.store: the front-office risk store — Delta Lake tables written by atomic chunked jobs, read with
DuckDB over hot and cold tiers, with pre-aggregations maintained on commit and notifications of every commit."""

from ._config import DEFAULT_PREAGGREGATIONS, PreaggSpec, StoreConfig
from ._jobs import JobState
from ._notify import Delivery, StoreEventPayload
from ._preagg import preaggregate, preaggregate_reference
from ._sample import SAMPLE_MEASURES, sample_results
from ._schema import KEY_COLUMNS, MANDATORY, OPTIONAL
from ._store import ChunkReceipt, CommitResult, JobStatus, RiskStore, TierResult, VacuumResult

__all__ = [
    "DEFAULT_PREAGGREGATIONS",
    "KEY_COLUMNS",
    "MANDATORY",
    "OPTIONAL",
    "SAMPLE_MEASURES",
    "ChunkReceipt",
    "CommitResult",
    "Delivery",
    "JobState",
    "JobStatus",
    "PreaggSpec",
    "RiskStore",
    "StoreConfig",
    "StoreEventPayload",
    "TierResult",
    "VacuumResult",
    "preaggregate",
    "preaggregate_reference",
    "sample_results",
]
