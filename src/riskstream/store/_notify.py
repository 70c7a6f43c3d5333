"""Telling the world a job committed: a StoreEvent on the bus topic ``store.events`` and a JSON POST per webhook.

Delivery never fails a commit: the data is already committed when notifications go out. A webhook is retried with
exponential backoff (``backoff_s``, doubled per attempt, ``attempts`` in all); every outcome is returned and
appended to ``<root>/notifications.jsonl`` so an operator can see (and replay) what did not arrive.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from ..bus import StoreEvent, codec_for

__all__ = ["Delivery", "StoreEventPayload"]

log = logging.getLogger("riskstream.store")
STORE_EVENTS_TOPIC = "store.events"


@dataclass(frozen=True)
class StoreEventPayload:
    """What a commit announces: which data is now readable, at which table version."""

    job_id: str
    namespace: str
    business_date: str
    scope: Mapping[str, Sequence[str]] | None
    measures: tuple[str, ...]
    table: str
    version: int
    rows: int
    committed_at_us: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "namespace": self.namespace,
            "business_date": self.business_date,
            "scope": {k: list(v) for k, v in self.scope.items()} if self.scope else None,
            "measures": list(self.measures),
            "table": self.table,
            "version": self.version,
            "rows": self.rows,
            "committed_at_us": self.committed_at_us,
        }


@dataclass(frozen=True)
class Delivery:
    """The outcome of one notification: target (``bus:<topic>`` or the URL), ok, attempts, last error."""

    target: str
    ok: bool
    attempts: int
    error: str | None = None


def publish(bus: Any, event: StoreEventPayload) -> Delivery:
    """Produce a `riskstream.bus.StoreEvent` (Avro, Schema Registry wire format) on the bus's store-events topic,
    keyed by namespace."""
    topics = getattr(bus, "topics", None)
    topic = topics.store_events if topics is not None else STORE_EVENTS_TOPIC
    target = f"bus:{topic}"
    try:
        codec = codec_for(StoreEvent, topic, getattr(bus, "registry_url", "mock://"))
        value = codec.encode(
            StoreEvent(
                event.namespace,
                event.business_date,
                event.job_id,
                {k: tuple(v) for k, v in (event.scope or {}).items()},
                tuple(event.measures),
                event.version,
                event.committed_at_us,
                event.rows,
            )
        )
        producer = bus.producer()
        producer.produce(topic, value, key=event.namespace.encode())
        flush = getattr(producer, "flush", None)
        if callable(flush):
            flush()
    except Exception as exc:  # a bus failure is reported, never raised: the commit already happened
        log.warning("store event for job %s not published: %s", event.job_id, exc)
        return Delivery(target, False, 1, f"{type(exc).__name__}: {exc}")
    return Delivery(target, True, 1)


def post_webhook(
    url: str, event: StoreEventPayload, *, attempts: int = 4, backoff_s: float = 0.05, timeout_s: float = 2.0
) -> Delivery:
    """POST the event as JSON; retry on a connection error or a non-2xx answer, with exponential backoff."""
    error = None
    body = event.to_dict()
    with httpx.Client(timeout=timeout_s) as client:
        for attempt in range(1, attempts + 1):
            try:
                response = client.post(url, json=body, headers={"X-Riskstream-Event": "job.committed"})
                if 200 <= response.status_code < 300:
                    return Delivery(url, True, attempt)
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < attempts:
                time.sleep(backoff_s * 2 ** (attempt - 1))
    log.warning("webhook %s failed for job %s after %d attempts: %s", url, event.job_id, attempts, error)
    return Delivery(url, False, attempts, error)


def record(root: Path, event: StoreEventPayload, deliveries: Sequence[Delivery]) -> None:
    """Append the outcomes to ``<root>/notifications.jsonl`` (one line per delivery)."""
    if not deliveries:
        return
    lines = "".join(
        json.dumps({"job_id": event.job_id, "version": event.version, **asdict(d)}) + "\n" for d in deliveries
    )
    with open(root / "notifications.jsonl", "a") as fh:
        fh.write(lines)
        fh.flush()
        os.fsync(fh.fileno())
