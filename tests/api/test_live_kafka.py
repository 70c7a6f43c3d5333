"""The service's live risk over the Kafka protocol (librdkafka's mock cluster): what `riskstream demo --bus
kafka://mock` runs."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from riskstream.api import ApiConfig, build_context, create_app

pytestmark = pytest.mark.integration


def test_live_risk_over_kafka(api_config: ApiConfig) -> None:
    config = ApiConfig(portfolio=api_config.portfolio, store=api_config.store, bus="kafka://mock", live=True)
    app = create_app(ctx=build_context(config))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.2)
        token = app.state.ctx.auth.dev_token("trader_rates")
        headers = {"Authorization": f"Bearer {token}"}
        first = client.get("/api/v1/live/nodes/FIRM/RATES", headers=headers).json()
        while (later := client.get("/api/v1/live/nodes/FIRM/RATES", headers=headers).json())[
            "window"
        ] <= first["window"]:
            assert time.monotonic() < deadline + 30, "the desk's figures did not move on"
            time.sleep(0.2)
        assert later["var"] > 0 and later["es"] > 0
        assert client.get("/api/v1/live/nodes/FIRM", headers=headers).status_code == 404
        with client.websocket_connect(f"/ws/live?access_token={token}") as ws:
            hello = ws.receive_json()
            assert hello["type"] == "hello" and "FIRM" not in hello["nodes"]
            snap = ws.receive_json()
            assert snap["type"] == "snapshot" and all(
                n["node"].startswith("FIRM/RATES") for n in snap["nodes"]
            )
        assert app.state.ctx.live.bus.__class__.__name__ == "KafkaBus"
