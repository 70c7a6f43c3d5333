"""The per-store query session: caches never serve an old table version, cursors serve threads at once,
principals expire, and every audit record reaches the catalog (in order, after failures, and at exit)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import BOOKS, D1, bank_rows, commit_day

import riskstream.query._session as session_module
from riskstream.query import close_query_session, flush_audit, load_report, run_report
from riskstream.query._session import AuditWriter, session
from riskstream.store import Catalog, RiskStore, seed_demo

PIVOT = load_report({"rows": ["desk"], "measures": ["pv"]})


@pytest.fixture
def small(tmp_path: Path) -> RiskStore:
    store = RiskStore.open(tmp_path / "store")
    seed_demo(store.catalog, BOOKS)
    commit_day(store, bank_rows(D1, 1), D1)
    yield store
    close_query_session(store)
    store.close()


def _pv(rows: Any, desk: str) -> float:
    return sum(r["value"] for r in rows.to_pylist() if r["desk"] == desk and r["measure"] == "pv")


def test_a_commit_is_seen_by_the_next_report(small: RiskStore) -> None:
    before = run_report(small, PIVOT, "head_trading")
    again = run_report(small, PIVOT, "head_trading")
    assert before.to_arrow().equals(again.to_arrow()) and before.route == "preagg:desk_measure"
    rerun = bank_rows(D1, 99)
    version = commit_day(small, rerun, D1)
    after = run_report(small, PIVOT, "head_trading")
    assert after.version == version == before.version + 1 and after.route == "preagg:desk_measure"
    got = {r["desk"]: r["pv_sum"] for r in after.to_arrow().to_pylist()}
    assert got["RATES"] == _pv(rerun, "RATES")  # hand sum of the re-run's RATES pv rows
    # the older version is still answered from the in-memory copy of its pre-aggregation, and a new session
    # (which never loaded it; the store's table now reflects the re-run) reads the raw table at that version
    old = run_report(small, PIVOT, "head_trading", as_of=before.version)
    assert old.route == "preagg:desk_measure" and old.to_arrow().equals(before.to_arrow())
    close_query_session(small)
    old = run_report(small, PIVOT, "head_trading", as_of=before.version)
    assert old.route == "raw" and old.to_arrow().equals(before.to_arrow())
    state = session(small)
    assert {v for (_, v) in state.preaggs} <= {before.version, version}


def test_concurrent_reports_on_one_store(small: RiskStore) -> None:
    users = ["trader_rates", "trader_prime", "head_trading", "pb_junior"] * 4
    expected = {u: run_report(small, PIVOT, u).to_arrow() for u in set(users)}
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda u: (u, run_report(small, PIVOT, u).to_arrow()), users))
    assert all(table.equals(expected[u]) for u, table in results)
    flush_audit(small)
    assert len(small.catalog.audit_log(limit=100)) == len(users) + len(expected)


def test_principal_cache_expires(small: RiskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    assert [r["desk"] for r in run_report(small, PIVOT, "trader_rates").to_arrow().to_pylist()] == ["RATES"]
    small.catalog.define_role("trader:RATES", row_filter={"desk": ["PRIME"]})
    # within the time to live the cached principal still applies
    monkeypatch.setattr(session_module, "PRINCIPAL_TTL_S", 3600.0)
    assert [r["desk"] for r in run_report(small, PIVOT, "trader_rates").to_arrow().to_pylist()] == ["RATES"]
    monkeypatch.setattr(session_module, "PRINCIPAL_TTL_S", 0.0)
    assert [r["desk"] for r in run_report(small, PIVOT, "trader_rates").to_arrow().to_pylist()] == ["PRIME"]


class FlakyCatalog:
    """The real catalog behind a connection that fails the first ``failures`` writes."""

    def __init__(self, catalog: Catalog, failures: int):
        self.catalog = catalog
        self.failures = failures

    def audit(self, *args: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("catalog unreachable")
        self.catalog.audit(*args)


def test_audit_records_survive_a_failing_catalog(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Catalog(f"sqlite:///{tmp_path / 'c.db'}") as catalog:
        writer = AuditWriter(FlakyCatalog(catalog, failures=2), linger_s=0.0)
        for k in range(5):
            writer.submit("u", "query", {"n": k}, k)
        writer.close()  # the thread or this close has written every record despite the failures
        assert [e["detail"]["n"] for e in catalog.audit_log()] == [4, 3, 2, 1, 0]
        writer.submit("u", "query", {"n": 5}, 5)  # after close: written at once
        assert catalog.audit_log(limit=1)[0]["detail"] == {"n": 5}


@pytest.mark.integration
def test_audit_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    root = tmp_path / "store"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from conftest import BOOKS, D1, bank_rows, commit_day
        from riskstream.query import load_report, run_report
        from riskstream.query._session import session
        from riskstream.store import RiskStore, seed_demo
        store = RiskStore.open({str(root)!r})
        seed_demo(store.catalog, BOOKS)
        commit_day(store, bank_rows(D1, 1), D1)
        session(store).audit.linger_s = 60.0  # the writer thread would wait past the exit
        for _ in range(20):
            run_report(store, load_report({{"rows": ["desk"], "measures": ["pv"]}}), "trader_rates")
        print(session(store).audit.pending)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 0  # records were still queued when the script ended
    with Catalog(f"sqlite:///{root / 'catalog.db'}") as catalog:
        entries = catalog.audit_log(limit=100, user="trader_rates")
    assert len(entries) == 20 and all(e["detail"]["route"] == "preagg:desk_measure" for e in entries)


def test_closed_session_is_replaced(small: RiskStore) -> None:
    first = session(small)
    run_report(small, PIVOT, "head_trading")
    close_query_session(small)
    assert first.closed and first.audit.pending == 0
    assert run_report(small, PIVOT, "head_trading").num_rows == 3  # desks RATES, EQ_CASH, PRIME
    assert session(small) is not first
    assert date(2024, 3, 14) == D1
