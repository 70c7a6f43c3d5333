"""A small risk store for query tests: Delta tables with the store contract's columns, pre-aggregations, catalog.

The tables are written with ``deltalake`` exactly as the store lays them out (``tables/risk_results`` partitioned
by business date, ``tables/preagg/<name>``, ``tables/market_history``); the catalog side (principals, audit,
trades and instruments in SQLite through SQLAlchemy) follows the demo roles of the contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from deltalake import DeltaTable, write_deltalake

from riskstream.errors import AccessDeniedError

D1, D2 = date(2024, 3, 14), date(2024, 3, 15)
DESKS = {"RATES": ["R1", "R2"], "EQ_CASH": ["E1", "E2"], "PRIME": ["P1"]}
SCENARIOS = 20
GRAINS = {
    "desk_book_measure": ["business_date", "namespace", "desk", "book", "measure"],
    "desk_measure": ["business_date", "namespace", "desk", "measure"],
}
MASKED_PB = frozenset({"counterparty", "sector", "region"})


@dataclass(frozen=True)
class Principal:
    """The contract's principal: row filter (AND across columns) and masked columns."""

    user: str
    roles: frozenset[str]
    row_filter: Mapping[str, frozenset[str]] | None
    masked_columns: frozenset[str] = frozenset()

    def admits(self, row: Mapping[str, Any]) -> bool:
        if self.row_filter is None:
            return True
        return all(str(row.get(c)) in vals for c, vals in self.row_filter.items())


def demo_principals() -> dict[str, Principal]:
    out = {
        f"trader_{d.lower()}": Principal(
            f"trader_{d.lower()}", frozenset({f"trader:{d}"}), {"desk": frozenset({d})}
        )
        for d in DESKS
    }
    out["head_trading"] = Principal("head_trading", frozenset({"head_of_trading"}), None)
    out["middle_office"] = Principal("middle_office", frozenset({"middle_office"}), None)
    out["pb_junior"] = Principal(
        "pb_junior", frozenset({"pb_junior_risk"}), {"desk": frozenset({"PRIME"})}, MASKED_PB
    )
    return out


@dataclass
class FakeCatalog:
    engine: sa.Engine
    principals: dict[str, Principal]
    log: list[dict[str, Any]] = field(default_factory=list)

    def principal(self, user: str) -> Principal:
        if user not in self.principals:
            raise AccessDeniedError(user, "the store (unknown user)")
        return self.principals[user]

    def audit(self, user: str, action: str, detail: Mapping[str, Any], rows: int | None = None) -> None:
        self.log.append({"user": user, "action": action, "detail": dict(detail), "rows": rows})


@dataclass(frozen=True)
class Spec:
    name: str
    dimensions: tuple[str, ...]


class DeltaStore:
    """Delta tables in the store's layout; ``register`` time-travels as the store does."""

    def __init__(self, root: Path, catalog: FakeCatalog):
        self.root = root
        self.catalog = catalog
        self.tables = root / "tables"
        self.built_from: dict[str, int] = {}

    def path(self, table: str) -> str:
        return str(self.tables / table)

    def write(self, frame: pa.Table, mode: str = "append", predicate: str | None = None) -> int:
        write_deltalake(
            self.path("risk_results"),
            frame,
            mode=mode,
            partition_by=["business_date"],
            predicate=predicate,
            schema_mode="merge",
        )
        self.rebuild_preaggs()
        return self.results_version()

    def rebuild_preaggs(self) -> None:
        version = self.results_version()
        raw = DeltaTable(self.path("risk_results")).to_pyarrow_table().to_pylist()
        for name, dims in GRAINS.items():
            groups: dict[tuple[Any, ...], dict[str, Any]] = {}
            for r in raw:
                g = groups.setdefault(
                    tuple(r[d] for d in dims), {"value": None, "row_count": 0, "pnl_vector": None}
                )
                g["row_count"] += 1
                if r["value"] is not None:
                    g["value"] = (g["value"] or 0.0) + r["value"]
                if r.get("pnl_vector") is not None:
                    vec = np.asarray(r["pnl_vector"])
                    g["pnl_vector"] = vec if g["pnl_vector"] is None else g["pnl_vector"] + vec
            rows = [
                {
                    **dict(zip(dims, k, strict=True)),
                    **v,
                    "pnl_vector": None if v["pnl_vector"] is None else v["pnl_vector"].tolist(),
                    "source_version": version,
                }
                for k, v in groups.items()
            ]
            schema = pa.schema(
                [(d, pa.date32() if d == "business_date" else pa.string()) for d in dims]
                + [
                    ("value", pa.float64()),
                    ("row_count", pa.int64()),
                    ("pnl_vector", pa.list_(pa.float64())),
                    ("source_version", pa.int64()),
                ]
            )
            write_deltalake(
                self.path(f"preagg/{name}"), pa.Table.from_pylist(rows, schema=schema), mode="overwrite"
            )
            self.built_from[name] = version

    def results_version(self) -> int:
        return int(DeltaTable(self.path("risk_results")).version())

    def history(self, table: str = "risk_results") -> list[dict[str, Any]]:
        return list(DeltaTable(self.path(table)).history())

    def register(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str = "risk_results",
        *,
        view: str | None = None,
        version: int | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        dt = (
            DeltaTable(self.path(table), version=version)
            if version is not None
            else DeltaTable(self.path(table))
        )
        if timestamp is not None:
            dt.load_as_version(timestamp)
        name = view or table.replace("/", "_")
        con.register(name, dt.to_pyarrow_dataset())
        return name

    def preaggregations(self) -> list[Spec]:
        return [Spec(n, tuple(d)) for n, d in GRAINS.items()]

    def preagg_source_version(self, name: str) -> int | None:
        return self.built_from.get(name)


def bank_rows(business_date: date, seed: int, *, sparse: bool = False, trades: int = 24) -> pa.Table:
    """Trades across the demo desks with pv, delta (no vector) and pnl (integer scenario vector) rows."""
    rng = np.random.default_rng(seed)
    books = [(d, b) for d, bs in DESKS.items() for b in bs]
    rows = []
    for i in range(trades):
        desk, book = books[i % len(books)]
        base = {
            "business_date": business_date,
            "namespace": "EOD",
            "job_id": f"job-{seed}",
            "desk": desk,
            "book": book,
            "trader": f"{book}-t{i % 2}",
            "trade_id": f"T{i:03d}",
            "currency": ["USD", "EUR"][i % 2],
            "instrument_type": ["swap", "equity", "bond"][i % 3],
            "counterparty": f"CP{i % 4}",
            "sector": ["fin", "tech"][i % 2],
            "region": ["EU", "US", "AS"][i % 3],
        }
        if sparse:
            base["rating"] = ["AA", "BBB", None][i % 3]
        rows.append({**base, "measure": "pv", "value": float(rng.integers(-1000, 1000)), "pnl_vector": None})
        rows.append({**base, "measure": "delta", "value": float(rng.integers(-50, 50)), "pnl_vector": None})
        vec = rng.integers(-100, 100, SCENARIOS).astype(float)
        rows.append({**base, "measure": "pnl", "value": float(vec.sum()), "pnl_vector": vec.tolist()})
    fields = [
        ("business_date", pa.date32()),
        *((c, pa.string()) for c in ("namespace", "job_id", "desk", "book", "trader", "trade_id", "measure")),
        ("value", pa.float64()),
        ("currency", pa.string()),
        ("instrument_type", pa.string()),
        ("counterparty", pa.string()),
        ("sector", pa.string()),
        ("region", pa.string()),
        ("pnl_vector", pa.list_(pa.float64())),
    ]
    if sparse:
        fields.append(("rating", pa.string()))
    return pa.Table.from_pylist([{k: r.get(k) for k, _ in fields} for r in rows], schema=pa.schema(fields))


def reference_engine(root: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{root / 'catalog.db'}")
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE instruments (instrument_id TEXT PRIMARY KEY, type TEXT, issuer TEXT)")
        )
        conn.execute(
            sa.text(
                "CREATE TABLE trades (trade_id TEXT PRIMARY KEY, instrument_id TEXT, book TEXT, counterparty TEXT)"
            )
        )
        for k in range(6):
            conn.execute(
                sa.text("INSERT INTO instruments VALUES (:i, :t, :s)"),
                {"i": f"I{k}", "t": ["bond", "swap", "option"][k % 3], "s": f"ISS{k % 2}"},
            )
        for i in range(24):
            conn.execute(
                sa.text("INSERT INTO trades VALUES (:t, :i, :b, :c)"),
                {"t": f"T{i:03d}", "i": f"I{i % 6}", "b": "x", "c": f"CP{i % 4}"},
            )
    return engine


@dataclass
class Built:
    store: DeltaStore
    versions: dict[str, int]
    stamps: dict[str, datetime]


def build_store(root: Path) -> Built:
    """Version 0: D1; 1: D2; 2: rerun of D2 with new values and a sparse 'rating' column."""
    catalog = FakeCatalog(reference_engine(root), demo_principals())
    store = DeltaStore(root, catalog)
    versions, stamps = {}, {}
    versions["d1"] = store.write(bank_rows(D1, 1))
    stamps["d1"] = datetime.now(UTC)
    versions["d2"] = store.write(bank_rows(D2, 2))
    stamps["d2"] = datetime.now(UTC)
    versions["rerun"] = store.write(
        bank_rows(D2, 3, sparse=True), mode="overwrite", predicate=f"business_date = '{D2}'"
    )
    write_deltalake(
        store.path("market_history"),
        pd.DataFrame(
            {
                "date": [D1, D2, D1, D2],
                "factor_id": ["EQ.SPX", "EQ.SPX", "FX.EUR", "FX.EUR"],
                "value": [5100.0, 5150.5, 1.09, 1.08],
            }
        ),
    )
    return Built(store, versions, stamps)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_store(tmp_path_factory.mktemp("store"))


def all_rows(store: DeltaStore, version: int | None = None) -> list[dict[str, Any]]:
    dt = (
        DeltaTable(store.path("risk_results"), version=version)
        if version is not None
        else DeltaTable(store.path("risk_results"))
    )
    return dt.to_pyarrow_table().to_pylist()


def visible(principal: Principal, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Brute-force entitlement: rows the principal admits, masked columns set to None."""
    return [
        {k: (None if k in principal.masked_columns else v) for k, v in r.items()}
        for r in rows
        if principal.admits(r)
    ]
