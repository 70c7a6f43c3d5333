"""Report DSL over the risk store: pivot, diff, drill, hierarchy and as-of reports, entitlements, pre-aggregation routing.

``load_report`` validates a JSON/YAML report; ``run_report`` compiles it to SQL on DuckDB over the store's Delta
views with the user's row filter and column masks applied, routes it to a pre-aggregation when that gives the same
answer, joins reference data when asked, audits it, and returns a :class:`ReportResult`.
"""

from riskstream.query._entitle import quote, row_clauses, row_predicate, secured_source
from riskstream.query._federate import reference_table
from riskstream.query._report import (
    AGGREGATIONS,
    DEFAULT_HIERARCHY,
    FILTER_OPS,
    Filter,
    MeasureSpec,
    Report,
    Side,
    load_report,
)
from riskstream.query._result import ReportResult
from riskstream.query._run import run_report
from riskstream.query._session import PRINCIPAL_TTL_S, close_query_session, flush_audit

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_HIERARCHY",
    "FILTER_OPS",
    "PRINCIPAL_TTL_S",
    "Filter",
    "MeasureSpec",
    "Report",
    "ReportResult",
    "Side",
    "close_query_session",
    "flush_audit",
    "load_report",
    "quote",
    "reference_table",
    "row_clauses",
    "row_predicate",
    "run_report",
    "secured_source",
]
