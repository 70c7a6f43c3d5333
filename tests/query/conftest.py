"""The risk store the query tests run against: a real `RiskStore` with its SQL catalog and the demo entitlements.

Three jobs are committed through ``open_job`` / ``put_chunk`` / ``commit`` (so the store builds its
pre-aggregations on commit): D1, D2, then a re-run of D2 with new values and a sparse ``rating`` column. The
catalog holds the demo users and roles (`seed_demo`), trades and instruments for the reference dimensions, and
the market history holds two factors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from riskstream.query import flush_audit
from riskstream.store import Principal, RiskStore, seed_demo

D1, D2 = date(2024, 3, 14), date(2024, 3, 15)
DESKS = {"RATES": ["R1", "R2"], "EQ_CASH": ["E1", "E2"], "PRIME": ["P1"]}
BOOKS = {book: desk for desk, books in DESKS.items() for book in books}
SCENARIOS = 20
TRADES = 24


def bank_rows(business_date: date, seed: int, *, sparse: bool = False, trades: int = TRADES) -> pa.Table:
    """Trades across the demo desks with pv, delta (no vector) and pnl (integer scenario vector) rows."""
    rng = np.random.default_rng(seed)
    books = list(BOOKS.items())
    rows = []
    for i in range(trades):
        book, desk = books[i % len(books)]
        base = {
            "business_date": business_date,
            "namespace": "EOD",
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
        *((c, pa.string()) for c in ("namespace", "desk", "book", "trader", "trade_id", "measure")),
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


def commit_day(store: RiskStore, rows: pa.Table, business_date: date) -> int:
    """One job for ``business_date`` (whole date and namespace): the rows replace any earlier run."""
    job = store.open_job("EOD", business_date)
    store.put_chunk(job, rows)
    return store.commit(job).version


def seed_reference(store: RiskStore) -> None:
    """Instruments (type, currency; issuer as an attribute) and the trades pointing at them."""
    store.catalog.upsert_instruments(
        pd.DataFrame(
            {
                "instrument_id": [f"I{k}" for k in range(6)],
                "type": [["bond", "swap", "option"][k % 3] for k in range(6)],
                "currency": ["USD"] * 6,
                "issuer": [f"ISS{k % 2}" for k in range(6)],
            }
        )
    )
    books = list(BOOKS)
    store.catalog.upsert_trades(
        pd.DataFrame(
            {
                "trade_id": [f"T{i:03d}" for i in range(TRADES)],
                "instrument_id": [f"I{i % 6}" for i in range(TRADES)],
                "book": [books[i % len(books)] for i in range(TRADES)],
                "counterparty": [f"CP{i % 4}" for i in range(TRADES)],
                "quantity": [float(i + 1) for i in range(TRADES)],
            }
        )
    )


@dataclass
class Built:
    store: RiskStore
    versions: dict[str, int]
    stamps: dict[str, datetime]


def build_store(root: Path) -> Built:
    """Versions: d1 (D1), d2 (D2), rerun (D2 again, new values and a sparse 'rating' column)."""
    store = RiskStore.open(root)
    seed_demo(store.catalog, BOOKS)
    seed_reference(store)
    versions, stamps = {}, {}
    versions["d1"] = commit_day(store, bank_rows(D1, 1), D1)
    stamps["d1"] = datetime.now(UTC)
    versions["d2"] = commit_day(store, bank_rows(D2, 2), D2)
    stamps["d2"] = datetime.now(UTC)
    versions["rerun"] = commit_day(store, bank_rows(D2, 3, sparse=True), D2)
    store.write_market_history(
        pd.DataFrame({"EQ.SPX": [5100.0, 5150.5], "FX.EUR": [1.09, 1.08]}, index=pd.Index([D1, D2]))
    )
    return Built(store, versions, stamps)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    result = build_store(tmp_path_factory.mktemp("store"))
    yield result
    result.store.close()


def results_path(store: RiskStore) -> str:
    return str(store.root / "tables" / "risk_results")


def all_rows(store: RiskStore, version: int | None = None) -> list[dict[str, Any]]:
    dt = DeltaTable(results_path(store), version=version)
    return dt.to_pyarrow_table().to_pylist()


def audit_entries(store: RiskStore, user: str | None = None) -> list[dict[str, Any]]:
    """The catalog's audit log (newest first) after every pending record is written."""
    flush_audit(store)
    return store.catalog.audit_log(limit=10_000, user=user)


def visible(principal: Principal, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Brute-force entitlement: rows the principal admits, masked columns set to None."""
    return [
        {k: (None if k in principal.masked_columns else v) for k, v in r.items()}
        for r in rows
        if principal.admits(r)
    ]
