"""The answer to a report: an Arrow table with how it was computed (route, SQL, table version)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

__all__ = ["ReportResult"]


def _plain(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass(frozen=True)
class ReportResult:
    """Result of :func:`riskstream.query.run_report`.

    ``route`` is ``"preagg:<name>"`` when a pre-aggregation answered, else ``"raw"`` (a diff joins both sides'
    routes with ``" | "``); ``sql`` is the compiled SQL (parameters bound separately, never inlined); ``version``
    is the ``risk_results`` table version read (a diff: the right side's).
    """

    table: pa.Table
    route: str
    sql: str
    version: int | None
    report: str
    kind: str
    business_date: date | None = None

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": self.report,
            "kind": self.kind,
            "route": self.route,
            "version": self.version,
            "business_date": None if self.business_date is None else self.business_date.isoformat(),
            "columns": self.table.column_names,
            "rows": [{k: _plain(v) for k, v in row.items()} for row in self.table.to_pylist()],
        }

    def to_json(self) -> str:
        """One JSON document: report name, kind, route, version, business date, columns and rows (NaN → null)."""
        return json.dumps(self.to_dict(), default=str)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows
