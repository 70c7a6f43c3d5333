"""riskstream.store: the front-office risk store — Delta Lake tables written by atomic chunked jobs, read with
DuckDB over hot and cold tiers, with pre-aggregations maintained on commit and notifications of every commit."""

from ._catalog import DEMO_USERS, Catalog, JobRecord, JobState, UpsertResult, Webhook, seed_demo
from ._config import DEFAULT_PREAGGREGATIONS, PreaggSpec, StoreConfig
from ._entitlements import Principal, RoleDefinition
from ._notify import Delivery, StoreEventPayload
from ._preagg import preaggregate, preaggregate_duckdb, preaggregate_reference
from ._sample import SAMPLE_MEASURES, sample_results
from ._schema import KEY_COLUMNS, MANDATORY, OPTIONAL
from ._store import ChunkReceipt, CommitResult, JobStatus, RiskStore, TierResult, VacuumResult

__all__ = [
    "DEFAULT_PREAGGREGATIONS",
    "DEMO_USERS",
    "KEY_COLUMNS",
    "MANDATORY",
    "OPTIONAL",
    "SAMPLE_MEASURES",
    "Catalog",
    "ChunkReceipt",
    "CommitResult",
    "Delivery",
    "JobRecord",
    "JobState",
    "JobStatus",
    "PreaggSpec",
    "Principal",
    "RiskStore",
    "RoleDefinition",
    "StoreConfig",
    "StoreEventPayload",
    "TierResult",
    "UpsertResult",
    "VacuumResult",
    "Webhook",
    "preaggregate",
    "preaggregate_duckdb",
    "preaggregate_reference",
    "sample_results",
    "seed_demo",
]
