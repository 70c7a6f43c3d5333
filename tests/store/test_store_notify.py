"""Commit notifications: a StoreEvent on the bus, JSON POSTs to webhooks (retried, failures recorded)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from store_rows import DAY, rows

from riskstream.bus import StoreEvent, TopicPartition, codec_for, open_bus
from riskstream.store import RiskStore, StoreConfig


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        if cls.fail_first > 0:
            cls.fail_first -= 1
            self.send_response(503)
        else:
            cls.received.append(body)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hook():
    handler = type("Hook", (_Hook,), {"received": [], "fail_first": 2})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/risk", handler
    server.shutdown()
    server.server_close()


def test_webhooks_get_the_event_with_retries_and_a_dead_one_never_fails_the_commit(tmp_path, hook):
    url, handler = hook
    dead = "http://127.0.0.1:9/nothing-listens"  # port 9 (discard) is closed on this machine: refused
    store = RiskStore.open(tmp_path / "s", config=StoreConfig(webhooks=(url,)))
    store.catalog.add_webhook(dead, namespaces=["EOD"])
    store.catalog.add_webhook(url + "/intraday-only", namespaces=["INTRADAY"])
    job = store.open_job("EOD", DAY, scope={"desk": ["RATES"]})
    store.put_chunk(job, rows(desks=("RATES",)))
    result = store.commit(job)
    by_target = {d.target: d for d in result.deliveries}
    assert set(by_target) == {url, dead}  # the INTRADAY hook is not told of an EOD job
    assert by_target[url].ok and by_target[url].attempts == 3  # two 503s, then 204
    assert not by_target[dead].ok and by_target[dead].attempts == 4 and "Connect" in by_target[dead].error
    (event,) = handler.received
    assert event == {
        "job_id": job,
        "namespace": "EOD",
        "business_date": "2026-11-20",
        "scope": {"desk": ["RATES"]},
        "measures": ["delta", "pv"],
        "table": "risk_results",
        "version": result.version,
        "rows": 12,
        "committed_at_us": event["committed_at_us"],
    }
    recorded = [json.loads(line) for line in (store.root / "notifications.jsonl").read_text().splitlines()]
    assert [(r["target"], r["ok"]) for r in recorded] == [(url, True), (dead, False)]


def test_store_event_on_the_bus(tmp_path):
    bus = open_bus("memory")
    store = RiskStore.open(tmp_path / "s", bus=bus)
    job = store.open_job("EOD", DAY)
    store.put_chunk(job, rows())
    result = store.commit(job)
    consumer = bus.consumer("test")
    topic = bus.topics.store_events
    consumer.assign({TopicPartition(topic, p): 0 for p in range(bus.partitions(topic))})
    records = consumer.poll(timeout=1.0)
    assert len(records) == 1 and records[0].key == b"EOD"
    event = codec_for(StoreEvent, topic).decode(records[0].value)
    assert (event.job_id, event.table_version, event.rows, event.business_date) == (
        job,
        result.version,
        18,
        "2026-11-20",
    )
    assert tuple(event.measures) == ("delta", "pv") and dict(event.scope) == {}
