"""200 concurrent WebSocket clients on the live stream while the engine runs at 10,000 ticks/s.

The service (``riskstream serve``, 10,000-position sample bank, synthetic feed at 10,000 ticks/s, memory bus,
two risk workers and the aggregator) runs in its own process; the clients run here on asyncio (`websockets`),
logged in as the demo users in turn (traders of each desk, head of trading, middle office, junior PB risk), so
the hub filters every message per user. Delivery delay of a snapshot = the client's receive time − ``sent_us``
(when the service read the snapshot off ``risk.snapshots`` and queued it to the sockets); both clocks are this
machine's. Also shown: tick → client (receive time − the snapshot's ``as_of``, the event time of its newest
tick), which adds the workers' 250 ms micro-batch trigger.

Baseline, same run: one client alone. Goal: p99 ≤ 200 ms with 200 clients.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from datetime import datetime

import numpy as np
import websockets

from benchmarks._results import record
from benchmarks._service import demo_data, metric, service, token
from riskstream.store import DEMO_USERS

CLIENTS = 200
SECONDS = 20.0
RATE = 10_000
_SENT = re.compile(r'"as_of":"([^"]+)","sent_us":(\d+)')


async def _client(url: str, tok: str, until: float, delays: list[float], ticks: list[float]) -> int:
    n = 0
    async with websockets.connect(
        f"{url.replace('http', 'ws', 1)}/ws/live?access_token={tok}", max_size=2**24
    ) as ws:
        while time.monotonic() < until:
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=max(0.01, until - time.monotonic()))
            except TimeoutError:
                break
            now_us = time.time_ns() / 1000
            m = _SENT.search(text[:160]) if isinstance(text, str) else None
            if m and int(m.group(2)) > 0:
                delays.append((now_us - int(m.group(2))) / 1000)
                as_of = datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp() * 1e6
                ticks.append((now_us - as_of) / 1000)
                n += 1
    return n


async def _run(url: str, tokens: list[str], seconds: float) -> tuple[list[float], list[float], int]:
    delays: list[float] = []
    ticks: list[float] = []
    until = time.monotonic() + seconds
    counts = await asyncio.gather(*(_client(url, t, until, delays, ticks) for t in tokens))
    return delays, ticks, int(sum(counts))


def _pct(xs: list[float]) -> tuple[float, float, float]:
    a = np.asarray(xs)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max())


def main() -> None:
    portfolio, store = demo_data(10_000)
    with service(portfolio, store, "--rate", str(RATE)) as url:
        users = sorted(DEMO_USERS)
        tokens = {u: token(url, u) for u in users}
        t0, ticks0 = time.monotonic(), metric(url, "riskstream_ticks_total")
        base, _base_tick, base_n = asyncio.run(_run(url, [tokens["head_trading"]], 10.0))
        many_tokens = [tokens[u] for u in itertools.islice(itertools.cycle(users), CLIENTS)]
        many, many_tick, many_n = asyncio.run(_run(url, many_tokens, SECONDS))
        rate = (metric(url, "riskstream_ticks_total") - ticks0) / (time.monotonic() - t0)
    b50, b99, bmax = _pct(base)
    m50, m99, mmax = _pct(many)
    t50, t99, _ = _pct(many_tick)
    print(f"ticks/s produced: {rate:,.0f}")
    print(f"1 client:    p50 {b50:.1f} ms, p99 {b99:.1f} ms, max {bmax:.1f} ms ({base_n} snapshots)")
    print(f"{CLIENTS} clients: p50 {m50:.1f} ms, p99 {m99:.1f} ms, max {mmax:.1f} ms ({many_n} snapshots)")
    print(f"tick → client with {CLIENTS} clients: p50 {t50:.0f} ms, p99 {t99:.0f} ms")
    print(f"p99 ratio {CLIENTS} clients / 1 client: {m99 / b99:.2f}")
    body = f"""
| clients | snapshots received | delivery p50 | delivery p99 | max |
|---:|---:|---:|---:|---:|
| 1 (baseline) | {base_n:,} | {b50:.1f} ms | {b99:.1f} ms | {bmax:.1f} ms |
| {CLIENTS} | {many_n:,} | {m50:.1f} ms | **{m99:.1f} ms** | {mmax:.1f} ms |

Engine input: {rate:,.0f} ticks/s (synthetic feed asked for {RATE:,}). p99 ratio {CLIENTS} clients ÷ 1 client:
**{m99 / b99:.2f}**. Goal: p99 ≤ 200 ms with {CLIENTS} clients — {"met" if m99 <= 200 else "missed"}.
Tick → client with {CLIENTS} clients (includes the workers' 250 ms micro-batch trigger): p50 {t50:.0f} ms,
p99 {t99:.0f} ms.
"""
    record(
        "ws",
        "Live WebSocket fan-out: 200 clients at 10,000 ticks/s",
        body,
        ".venv/bin/python -m benchmarks ws",
    )


if __name__ == "__main__":
    main()
