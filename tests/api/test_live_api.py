"""Live risk through the service: endpoints per role, the entitlement matrix over REST and WebSocket (zero
leaks against a brute-force evaluation over every position), and figures equal to the engines' own.

One service per module with the live pipeline running (2,000 positions, memory bus, synthetic + replay feeds).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from riskstream.api import ApiConfig, build_context, create_app
from riskstream.risk import var_and_es
from riskstream.store import DEMO_USERS

USERS = sorted(DEMO_USERS)


@pytest.fixture(scope="module")
def live(api_config: ApiConfig) -> Iterator[tuple[Any, TestClient]]:
    config = ApiConfig(
        portfolio=api_config.portfolio,
        store=api_config.store,
        live=True,
        rate=2_000.0,
        publish_ms=300.0,
        # limits at 1 × the first VaR: every node with a limit starts in breach, so alerts fire at once
        limit_multiple=1.0,
    )
    app = create_app(ctx=build_context(config))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.2)
        yield app, client


def _headers(app: Any, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.state.ctx.auth.dev_token(user)}"}


def _expected_nodes(app: Any, user: str) -> set[str]:
    """Brute force: a node is visible iff the user's principal admits every position under it."""
    ctx = app.state.ctx
    principal = ctx.store.catalog.principal(user)
    pos = ctx.loaded.portfolio.positions
    desks, books, traders = (pos.attribute(a).tolist() for a in ("desk", "book", "trader"))
    hidden: set[str] = set()
    every: set[str] = set()
    for d, b, t in zip(desks, books, traders, strict=True):
        path = ["FIRM", f"FIRM/{d}", f"FIRM/{d}/{b}", f"FIRM/{d}/{b}/{t}"]
        every.update(path)
        if not principal.admits({"desk": d, "book": b, "trader": t}):
            hidden.update(path)
    return every - hidden


def test_health_ready_and_metrics(live: tuple[Any, TestClient]) -> None:
    _, client = live
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] and ready["checks"] == {"store": "ok", "live": "ok"}
    text = client.get("/metrics").text
    ticks = [
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("riskstream_ticks_total")
    ]
    assert ticks and ticks[0] > 0
    for name in (
        "riskstream_consumer_lag",
        "riskstream_tick_to_var_seconds_count",
        "riskstream_http_requests_total",
        "riskstream_query_seconds",
        "riskstream_commit_seconds",
    ):
        assert name in text, name


def test_a_bad_tick_is_counted_by_reason_and_the_stream_goes_on(live: tuple[Any, TestClient]) -> None:
    app, client = live
    bus = app.state.ctx.live.bus
    producer = bus.producer()
    for p in range(bus.partitions(bus.topics.ticks)):
        producer.produce(bus.topics.ticks, b"not avro at all", key=b"EQ.BAD", partition=p)
    producer.flush()
    window = client.get("/api/v1/live/nodes/FIRM", headers=_headers(app, "head_trading")).json()["window"]
    deadline = time.monotonic() + 20
    while True:
        text = client.get("/metrics").text
        dead = [
            line
            for line in text.splitlines()
            if line.startswith("riskstream_worker_deadletter_total{") and 'topic="marketdata.ticks"' in line
        ]
        if dead:
            break
        assert time.monotonic() < deadline, "no dead letter counted"
        time.sleep(0.2)
    assert 'reason="' in dead[0] and float(dead[0].split()[-1]) >= 1
    while (
        client.get("/api/v1/live/nodes/FIRM", headers=_headers(app, "head_trading")).json()["window"]
        <= window
    ):
        assert time.monotonic() < deadline, "the stream stopped after a bad tick"
        time.sleep(0.2)


def test_unauthenticated_calls_get_401_json(live: tuple[Any, TestClient]) -> None:
    _, client = live
    for path in ("/api/v1/hierarchy", "/api/v1/live", "/api/v1/live/nodes/FIRM"):
        r = client.get(path)
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated", path
        assert r.headers["www-authenticate"] == "Bearer"
    r = client.get("/api/v1/live", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401 and r.json()["reason"]


@pytest.mark.parametrize("user", USERS)
def test_entitlement_matrix_rest(live: tuple[Any, TestClient], user: str) -> None:
    app, client = live
    headers = _headers(app, user)
    expected = _expected_nodes(app, user)
    assert expected, user
    tree = client.get("/api/v1/hierarchy", headers=headers).json()
    assert {n["id"] for n in tree["nodes"]} == expected
    snap = client.get("/api/v1/live", headers=headers).json()
    got = {n["node"] for n in snap["nodes"]}
    assert got and got <= expected
    assert {a["node"] for a in snap["alerts"]} <= expected
    assert {a["node"] for a in client.get("/api/v1/live/alerts", headers=headers).json()} <= expected
    every = {n.id for n in app.state.ctx.live.access.nodes}
    for node in [*sorted(every - expected)[:: max(1, len(every - expected) // 6)], "FIRM/NO-SUCH-DESK"]:
        for suffix in ("", "/series", "/distribution", "/contributors"):
            r = client.get(f"/api/v1/live/nodes/{node}{suffix}", headers=headers)
            # a node one may not see answers exactly like one that does not exist
            assert r.status_code == 404 and r.json()["error"] == "not_found", (user, node, suffix)
    if user.startswith("trader_"):
        assert "FIRM" not in expected and all(n.count("/") >= 1 for n in expected)


@pytest.mark.parametrize("user", ["trader_rates", "pb_junior", "head_trading"])
def test_entitlement_matrix_websocket(live: tuple[Any, TestClient], user: str) -> None:
    app, client = live
    token = app.state.ctx.auth.dev_token(user)
    expected = _expected_nodes(app, user)
    seen: set[str] = set()
    snapshots = 0
    with client.websocket_connect(f"/ws/live?access_token={token}") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["user"] == user and set(hello["nodes"]) == expected
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline or snapshots < 3:
            msg = ws.receive_json()
            if msg["type"] == "snapshot":
                snapshots += 1
                seen.update(n["node"] for n in msg["nodes"])
            else:
                assert msg["type"] == "alert"
                seen.add(msg["node"])
    assert seen and seen <= expected, sorted(seen - expected)[:5]


@pytest.mark.parametrize("user", ["head_trading", "trader_fx"])
def test_alerts_fire_and_are_filtered(live: tuple[Any, TestClient], user: str) -> None:
    app, client = live
    headers = _headers(app, user)
    expected = _expected_nodes(app, user)
    deadline = time.monotonic() + 20
    while not (alerts := client.get("/api/v1/live/alerts?limit=1000", headers=headers).json()):
        assert time.monotonic() < deadline, "no alert fired"
        time.sleep(0.2)
    assert {a["node"] for a in alerts} <= expected
    assert any(a["node"].count("/") == 1 for a in alerts)  # a desk's own limit (set by the aggregator)
    for a in alerts:
        # utilisation is value over limit, and the state follows the thresholds (80 % warning, 100 % breach)
        assert a["utilisation"] == pytest.approx(a["value"] / a["limit"])
        assert a["state"] in ("warning", "breach", "clear") and a["measure"] == "var_99_1d"
    if user == "head_trading":
        assert any(a["node"] == "FIRM" for a in alerts)


def test_websocket_refuses_bad_tokens(live: tuple[Any, TestClient]) -> None:
    from starlette.websockets import WebSocketDisconnect

    _, client = live
    for url in ("/ws/live", "/ws/live?access_token=garbage"):
        with client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
        assert info.value.code == 4401


def test_the_live_view_moves_and_series_grow(live: tuple[Any, TestClient]) -> None:
    app, client = live
    headers = _headers(app, "head_trading")
    first = client.get("/api/v1/live/nodes/FIRM", headers=headers).json()
    deadline = time.monotonic() + 15
    while True:
        later = client.get("/api/v1/live/nodes/FIRM", headers=headers).json()
        if later["window"] > first["window"] + 1 and later["var"] != first["var"]:
            break
        assert time.monotonic() < deadline, (first, later)
        time.sleep(0.3)
    series = client.get("/api/v1/live/nodes/FIRM/series?points=1000", headers=headers).json()
    assert len(series["t"]) == len(series["var"]) == len(series["es"]) >= 2
    assert series["t"] == sorted(series["t"])
    # limit use: utilisation is VaR over the limit (1.3 × the node's first VaR by default)
    assert later["limit"] > 0 and later["utilisation"] == pytest.approx(later["var"] / later["limit"])
    assert later["state"] in ("ok", "warning", "breach")


def test_distribution_and_contributors_match_the_engines(live: tuple[Any, TestClient]) -> None:
    app, client = live
    headers = _headers(app, "head_trading")
    pipeline = app.state.ctx.live.pipeline
    cfg = pipeline.config.stream
    for node in ("FIRM", "FIRM/RATES"):
        dist = client.get(f"/api/v1/live/nodes/{node}/distribution?bins=40", headers=headers).json()
        assert sum(dist["counts"]) == dist["scenarios"] == cfg.window
        assert len(dist["edges"]) == 41
        # VaR/ES of the node's vector: the library's estimator (riskstream.risk.var_and_es) on the summed vector,
        # and ES ≥ the loss at its own quantile (Acerbi & Tasche 2002): ES_97.5 ≥ −q_2.5%(P&L)
        vec = pipeline.node_vector(node)
        var, _es = var_and_es(vec[None, :], cfg.confidence, cfg.es_confidence, cfg.rule)
        assert dist["var"] == pytest.approx(float(var[0]), rel=0.05)
        assert dist["es"] >= -np.quantile(vec, 1 - cfg.es_confidence) - 1e-6 * abs(dist["es"])
        contrib = client.get(f"/api/v1/live/nodes/{node}/contributors?top=5", headers=headers).json()
        assert len(contrib["positions"]) == 5 and len(contrib["factors"]) == 5
        es_pos = [p["es"] for p in contrib["positions"]]
        assert es_pos == sorted(es_pos, reverse=True)
        # Euler allocation: factor components plus the unexplained remainder add up to the node's ES
        # (Tasche 2000, "Risk contributions and performance measurement")
        full = app.state.ctx.live.contributors(node, frozenset({node}), 10**6)
        total = sum(f["es"] for f in full["factors"]) + full["unexplained"]["es"]
        assert total == pytest.approx(full["es"], rel=1e-9)


def test_a_desk_spanning_partitions_is_combined_exactly(live: tuple[Any, TestClient]) -> None:
    """Positions' Euler components against the desk's whole vector sum to the desk's ES over all positions."""
    app, _ = live
    service = app.state.ctx.live
    engines = service.pipeline.engines()
    desk = next(
        n.id
        for n in service.access.nodes
        if n.level == "desk" and sum(1 for e in engines if n.id in e.node_ids) > 1
    )
    full = service.contributors(desk, frozenset({desk}), 10**6)
    assert sum(p["es"] for p in full["positions"]) == pytest.approx(full["es"], rel=1e-6)
