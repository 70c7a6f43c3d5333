"""A standard trader report through the API with 50 concurrent users.

The service (``riskstream serve`` with the live pipeline running, 10,000-position sample bank, demo store with
two business days of EOD results) runs in its own process. 50 catalog users, each a trader of one of the six desks
(groups ``grp-trader:<DESK>``), log in on the development identity provider; each then asks, back to back for
``SECONDS``, ``GET /api/v1/reports/trader_risk/run`` once a second (and then back to back, for the saturation
throughput) (desk/book/trader × PV, count, 99 % VaR, 97.5 % ES from
summed vectors, latest date: the pre-aggregated route), over keep-alive HTTP with httpx on asyncio. Latency =
request sent → JSON body read.

Baseline, same run: the same report through `riskstream.query.run_report` in this process (no HTTP, no
authentication, one caller). Goal: p50 ≤ 50 ms through the API with 50 concurrent users.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import numpy as np

from benchmarks._results import record
from benchmarks._service import demo_data, service, token
from riskstream.query import close_query_session, load_report, run_report
from riskstream.store import RiskStore

USERS = 50
SECONDS = 20.0
#: each user asks again this long after their last request started (a dashboard refreshing once a second)
THINK_S = 1.0
REPORT = "trader_risk"


def _users(store_root: object) -> list[str]:
    store = RiskStore.open(store_root)  # type: ignore[arg-type]
    desks = sorted(store.catalog.desks())
    names = []
    for i in range(USERS):
        user = f"bench_trader_{i:02d}"
        store.catalog.add_user(user, [f"grp-trader:{desks[i % len(desks)]}"])
        names.append(user)
    store.catalog.close()
    return names


def _baseline(store_root: object, user: str, runs: int = 50) -> float:
    from importlib.resources import files

    import yaml

    spec = yaml.safe_load((files("riskstream.api") / "reports" / f"{REPORT}.yaml").read_text())
    report = load_report(spec["report"])
    store = RiskStore.open(store_root)  # type: ignore[arg-type]
    run_report(store, report, user)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run_report(store, report, user)
        times.append((time.perf_counter() - t) * 1000)
    close_query_session(store)
    return statistics.median(times)


async def _user(
    url: str, tok: str, until: float, out: list[float], errors: list[int], think_s: float, offset_s: float
) -> None:
    headers = {"Authorization": f"Bearer {tok}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        await asyncio.sleep(offset_s)
        while time.monotonic() < until:
            t = time.perf_counter()
            r = await client.get(f"/api/v1/reports/{REPORT}/run")
            r.json()
            elapsed = time.perf_counter() - t
            if r.status_code != 200:
                errors.append(r.status_code)
            else:
                out.append(elapsed * 1000)
            if think_s:
                await asyncio.sleep(max(0.0, think_s - elapsed))


async def _load(
    url: str, tokens: list[str], seconds: float, think_s: float = 0.0
) -> tuple[list[float], list[int]]:
    out: list[float] = []
    errors: list[int] = []
    until = time.monotonic() + seconds
    n = len(tokens)
    await asyncio.gather(
        *(_user(url, t, until, out, errors, think_s, think_s * i / n) for i, t in enumerate(tokens))
    )
    return out, errors


def main() -> None:
    portfolio, store = demo_data(10_000)
    users = _users(store)
    base = _baseline(store, users[0])
    with service(portfolio, store, "--rate-limit", "1000000") as url:
        tokens = [token(url, u) for u in users]
        asyncio.run(_load(url, tokens[:5], 2.0))  # warm-up: query session, principals, connections
        lat, errors = asyncio.run(_load(url, tokens, SECONDS, THINK_S))
        closed, closed_errors = asyncio.run(_load(url, tokens, SECONDS / 2))
    a, c = np.asarray(lat), np.asarray(closed)
    p50, p90, p99 = (float(np.percentile(a, q)) for q in (50, 90, 99))
    c50, c90, c99 = (float(np.percentile(c, q)) for q in (50, 90, 99))
    rps, crps = len(lat) / SECONDS, len(closed) / (SECONDS / 2)
    print(f"run_report in-process p50 {base:.1f} ms")
    print(
        f"API, {USERS} users refreshing every {THINK_S:.0f} s: p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms"
    )
    print(f"API, {USERS} users back to back: p50 {c50:.1f} ms, p99 {c99:.1f} ms, {crps:.0f} req/s")
    print(f"ratio API p50 / in-process p50: {p50 / base:.2f}")
    verdict = "met" if p50 <= 50 else "missed"
    body = f"""
| path | users | p50 | p90 | p99 | requests/s |
|---|---:|---:|---:|---:|---:|
| `run_report` in-process (baseline) | 1 | {base:.1f} ms | | | |
| API, each user refreshing every {THINK_S:.0f} s | {USERS} | **{p50:.1f} ms** | {p90:.1f} ms | {p99:.1f} ms | {rps:.0f} |
| API, each user back to back (saturation) | {USERS} | {c50:.1f} ms | {c90:.1f} ms | {c99:.1f} ms | {crps:.0f} |

Ratio API p50 ÷ in-process p50: **{p50 / base:.2f}**. Users with the same entitlements (the traders of one desk)
share one computed answer per table version; each request is still authenticated and audited. The live pipeline
runs in the same service process. Errors: {len(errors) + len(closed_errors)}. Goal: p50 ≤ 50 ms with {USERS}
concurrent users — {verdict}.
"""
    record(
        "api_report",
        "Trader report through the API, 50 concurrent users",
        body,
        ".venv/bin/python -m benchmarks api_report",
    )


if __name__ == "__main__":
    main()
