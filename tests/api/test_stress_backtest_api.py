"""Stress tests and back-tests over HTTP: the figures equal the library functions called directly, stress nodes
are those the caller may see, and the back-test's statistics are checked against their textbook definitions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.stats import chi2

from riskstream.engine import run_stress
from riskstream.marketdata import load_price_series, simple_returns
from riskstream.risk import var_es_reference
from riskstream.risk._forecast import run_backtest
from riskstream.scenarios import stress_library

Login = Callable[[str], dict[str, str]]
SCENARIOS = ["equity-crash", "rates-up-200bp", "gfc-2008", "worst-10d"]


def _loaded(client: TestClient) -> Any:
    return client.app.state.ctx.loaded  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def firm_stress(client: TestClient, login: Login) -> dict[str, Any]:
    reply = client.post(
        "/api/v1/stress", json={"scenarios": SCENARIOS, "top": 3}, headers=login("head_trading")
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_scenarios_listed(client: TestClient, login: Login) -> None:
    listed = client.get("/api/v1/stress/scenarios", headers=login("trader_fx")).json()
    names = [s["name"] for s in listed]
    assert names == [*stress_library(), "worst-10d"]
    kinds = {s["name"]: s["kind"] for s in listed}
    assert kinds["gfc-2008"] == "historical" and kinds["equity-crash"] == "hypothetical"
    assert kinds["worst-10d"] == "worst-window"
    assert next(s for s in listed if s["name"] == "gfc-2008")["period"] == "2008-09-12→2008-10-10"


def test_stress_equals_run_stress(client: TestClient, firm_stress: dict[str, Any]) -> None:
    loaded = _loaded(client)
    assert firm_stress["market"] == "snapshot" and firm_stress["as_of"] == loaded.snapshot.as_of.isoformat()
    assert [s["name"] for s in firm_stress["scenarios"]] == SCENARIOS
    by_node = {n["node"]: n for n in firm_stress["nodes"]}
    for name in SCENARIOS:
        direct = run_stress(
            loaded.portfolio, loaded.snapshot, loaded.history, name, ("desk", "book", "trader"), 3
        )
        assert set(by_node) == {n.node for n in direct.nodes}  # the head of trading sees every node
        for n in direct.nodes:
            assert by_node[n.node]["pnl"][name] == pytest.approx(n.pnl, rel=1e-12, abs=1e-9)
            got = [(p["position"], p["pnl"]) for p in by_node[n.node]["top_losers"][name]]
            assert got == [(p, pytest.approx(v)) for p, v in n.top_losers[:3]]
        if name == "worst-10d":
            assert firm_stress["scenarios"][-1]["period"] == direct.period
    # full revaluation P&L adds up: every node's P&L is the sum of its children's
    children: dict[str, list[str]] = {}
    for n in firm_stress["nodes"]:
        if n["parent"] is not None:
            children.setdefault(n["parent"], []).append(n["node"])
    for parent, kids in children.items():
        for name in SCENARIOS:
            total = sum(by_node[k]["pnl"][name] for k in kids)
            assert by_node[parent]["pnl"][name] == pytest.approx(total, rel=1e-9, abs=1e-6)
    # an equity crash of −20 % loses money on the demo bank, whose equity books are long (sample portfolio)
    assert by_node["FIRM"]["pnl"]["equity-crash"] < 0
    for n in firm_stress["nodes"]:
        for losers in n["top_losers"].values():
            values = [p["pnl"] for p in losers]
            assert all(v < 0 for v in values) and values == sorted(values) and len(values) <= 3


@pytest.mark.parametrize(
    ("user", "desk"), [("trader_rates", "RATES"), ("trader_eq_cash", "EQ-CASH"), ("pb_junior", "PRIME")]
)
def test_stress_nodes_are_only_those_the_user_may_see(
    client: TestClient, login: Login, firm_stress: dict[str, Any], user: str, desk: str
) -> None:
    reply = client.post("/api/v1/stress", json={"scenarios": SCENARIOS}, headers=login(user))
    assert reply.status_code == 200
    nodes = {n["node"]: n for n in reply.json()["nodes"]}
    # a desk user's visible nodes: the desk and everything under it (every leaf of it is theirs), never the firm
    everything = {n["node"] for n in firm_stress["nodes"]}
    assert set(nodes) == {n for n in everything if n == f"FIRM/{desk}" or n.startswith(f"FIRM/{desk}/")}
    assert nodes[f"FIRM/{desk}"]["parent"] is None  # the firm is not theirs to see
    head = {n["node"]: n for n in firm_stress["nodes"]}
    for node, n in nodes.items():
        assert n["pnl"] == pytest.approx(head[node]["pnl"])


def test_stress_refuses_unknown_scenarios_and_files(client: TestClient, login: Login) -> None:
    for name in ("no-such-scenario", "/etc/passwd", "shocks.csv", "worst-0d", "worst-999d"):
        reply = client.post("/api/v1/stress", json={"scenarios": [name]}, headers=login("head_trading"))
        assert reply.status_code == 404, (name, reply.text)
        assert reply.json()["error"] == "not_found" and reply.json()["value"] == name
    bad = client.post(
        "/api/v1/stress", json={"scenarios": ["equity-crash"], "top": 9}, headers=login("head_trading")
    )
    assert bad.status_code == 422 and bad.json()["field"] == "body.top" and bad.json()["value"] == 9
    assert client.post("/api/v1/stress", json={}).status_code == 401


def test_default_stress_runs_every_scenario(client: TestClient, login: Login) -> None:
    reply = client.post("/api/v1/stress", headers=login("trader_fx"))
    assert reply.status_code == 200
    assert [s["name"] for s in reply.json()["scenarios"]] == [*stress_library(), "worst-10d"]


@pytest.fixture(scope="module")
def sp500_hs(client: TestClient, login: Login) -> dict[str, Any]:
    reply = client.get(
        "/api/v1/backtest?series=sp500&model=hs&window=500&confidence=0.99", headers=login("middle_office")
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_backtest_equals_run_backtest(sp500_hs: dict[str, Any]) -> None:
    returns = simple_returns(load_price_series("sp500"))
    direct = run_backtest(returns, "hs", 500, 0.99).to_dict(include_series=True)
    for key in ("dates", "returns", "var", "es"):
        assert (
            sp500_hs[key] == pytest.approx(direct[key], rel=1e-12)
            if key != "dates"
            else sp500_hs[key] == direct[key]
        )
    assert sp500_hs["exceptions"] == [
        d for d, hit in zip(direct["dates"], direct["exception_flags"], strict=True) if hit
    ]
    assert sp500_hs["kupiec"] == {
        "lr": pytest.approx(direct["kupiec_lr"]),
        "pvalue": pytest.approx(direct["kupiec_pvalue"]),
    }
    assert sp500_hs["christoffersen"]["pvalue"] == pytest.approx(direct["christoffersen_pvalue"])
    assert sp500_hs["traffic_light"]["zone"] == direct["traffic_light"]
    assert sp500_hs["observations"] == direct["observations"] == len(sp500_hs["dates"])


def test_backtest_statistics_follow_their_definitions(sp500_hs: dict[str, Any]) -> None:
    r = np.array(sp500_hs["returns"])
    var = np.array(sp500_hs["var"])
    # an exception is a day whose return is below −VaR (docs: riskstream.risk._backtest)
    assert sp500_hs["exceptions"] == [d for d, x, v in zip(sp500_hs["dates"], r, var, strict=True) if x < -v]
    # historical-simulation VaR of a day: the empirical 99 % loss quantile of the 500 returns before it
    # (plain-Python reference var_es_reference; the first forecast day is the 501st return)
    all_returns = simple_returns(load_price_series("sp500")).to_numpy()
    for t in (0, 1000, len(r) - 1):
        ref_var, ref_es = var_es_reference(all_returns[t : t + 500].tolist(), 0.99)
        assert var[t] == pytest.approx(ref_var, rel=1e-12) and sp500_hs["es"][t] == pytest.approx(
            ref_es, rel=1e-12
        )
    # Kupiec (1995) proportion of failures: LR = −2 ln[(1−p)^(n−x) p^x] + 2 ln[(1−x/n)^(n−x) (x/n)^x] ~ χ²(1)
    n, x, p = len(r), len(sp500_hs["exceptions"]), 0.01
    lr = -2 * ((n - x) * math.log(1 - p) + x * math.log(p)) + 2 * (
        (n - x) * math.log(1 - x / n) + x * math.log(x / n)
    )
    assert sp500_hs["kupiec"]["lr"] == pytest.approx(lr, rel=1e-9)
    assert sp500_hs["kupiec"]["pvalue"] == pytest.approx(chi2.sf(lr, 1), rel=1e-9)
    assert sp500_hs["expected_exceptions"] == pytest.approx(n * p)
    # Basel traffic light over the last 250 days at 99 % (BCBS 1996, Table 2): 0–4 green, 5–9 yellow, 10+ red;
    # plus factors 0.40 0.50 0.65 0.75 0.85 for 5…9 exceptions
    last = sum(1 for d in sp500_hs["exceptions"] if d >= sp500_hs["dates"][-250])
    tl = sp500_hs["traffic_light"]
    assert tl["exceptions"] == last and tl["observations"] == 250 and tl["expected"] == pytest.approx(2.5)
    assert tl["zone"] == ("green" if last <= 4 else "yellow" if last <= 9 else "red")
    plus = {5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}
    assert tl["plus_factor"] == pytest.approx(0.0 if last <= 4 else plus.get(last, 1.0))


def test_backtest_date_range_and_cache(client: TestClient, login: Login) -> None:
    url = "/api/v1/backtest?series=nasdaq&model=ewma&window=250&confidence=0.975&start=2005-01-01&end=2012-12-31"
    first = client.get(url, headers=login("trader_rates"))
    assert first.status_code == 200, first.text
    body = first.json()
    prices = load_price_series("nasdaq").loc["2005-01-01":"2012-12-31"]
    direct = run_backtest(simple_returns(prices), "ewma", 250, 0.975)
    assert body["dates"][0] == direct.dates[0].strftime("%Y-%m-%d") and body["dates"][-1] <= "2012-12-31"
    assert body["var"] == pytest.approx(direct.var.tolist(), rel=1e-12)
    assert body["options"] == {"lam": 0.94}  # RiskMetrics decay (J.P. Morgan 1996)
    assert client.get(url, headers=login("trader_fx")).json() == body  # served from the cache, same figures


@pytest.mark.parametrize(
    ("query", "field", "value"),
    [
        ("model=median", "query.model", "median"),
        ("series=/etc/passwd", "query.series", "/etc/passwd"),
        ("window=10", "query.window", "10"),
        ("confidence=1.5", "query.confidence", "1.5"),
        ("start=2010-01-01&end=2009-01-01", "end", "2009-01-01"),
        ("series=vix&window=2000", "window", 2000),
    ],
)
def test_backtest_bad_input_is_422(
    client: TestClient, login: Login, query: str, field: str, value: Any
) -> None:
    reply = client.get(f"/api/v1/backtest?{query}", headers=login("head_trading"))
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == field and reply.json()["value"] == value
