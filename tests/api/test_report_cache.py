"""Report answers are shared by users with the same entitlements over the same table version, and each request is
still audited under its own user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from riskstream.query import flush_audit, load_report, run_report


def test_same_entitlements_share_an_answer_and_each_request_is_audited(
    app: Any, client: TestClient, login: Callable[[str], dict[str, str]]
) -> None:
    store = app.state.ctx.store
    # a second RATES trader: the same groups as trader_rates, so the same row filter and masks
    store.catalog.add_user("trader_rates_2", ["grp-trader:RATES"])
    first = client.get("/api/v1/reports/trader_risk/run", headers=login("trader_rates"))
    second = client.get("/api/v1/reports/trader_risk/run", headers=login("trader_rates_2"))
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    other = client.get("/api/v1/reports/trader_risk/run", headers=login("trader_fx")).json()
    assert {r[0] for r in other["rows"]} == {"FX"} and {r[0] for r in first.json()["rows"]} == {"RATES"}
    # the cached answer is the report run now
    spec = client.get("/api/v1/reports/trader_risk", headers=login("trader_fx")).json()["report"]
    direct = run_report(store, load_report(spec), "trader_rates_2")
    assert second.json()["rows"] == [list(r.values()) for r in direct.table.to_pylist()]
    flush_audit(store)
    users = {e["user"] for e in store.catalog.audit_log(limit=50) if e["action"] == "query"}
    assert {"trader_rates", "trader_rates_2", "trader_fx"} <= users
