"""A trader's standard pivot (book × measure, today, entitled to one desk) through ``run_report``, by table size.

History: ``rows`` rows over ``DATES`` business dates ending today (6 desks × 20 books, 5 measures), generated with
Arrow and committed one job per date through ``RiskStore`` (so the pre-aggregations are built on commit); the
catalog holds the demo users (`seed_demo`), so ``trader_rates`` sees the RATES desk only. Timed, p50 over ``RUNS``
runs after one warm-up run:

* ``run_report`` end to end (DSL → principal → entitlements → SQL → Arrow result → audit record queued), routed
  to the ``desk_book_measure`` pre-aggregation;
* the same query as a raw DuckDB scan of the Delta table (the store's view over its Arrow dataset, same SQL with
  the trader's desk filter): the baseline the goal's ratio is measured against;
* ``run_report`` with ``route="raw"`` (the same scan behind the query layer);
* at 1M rows, the same GROUP BY on a DuckDB native table (a reference: no Delta, no entitlements).

Goal: p50 ≤ 20 ms and ≥ 20× faster than the raw scan on 10M rows and more.

``.venv/bin/python -m benchmarks query`` runs 1M and 10M rows; ``RISKSTREAM_BENCH_QUERY_ROWS=1e6,1e7,3e7``
chooses the sizes. ``RISKSTREAM_BENCH_DIR`` keeps the generated stores there for later runs (reused when present).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from benchmarks._results import record
from riskstream.query import close_query_session, flush_audit, load_report, run_report
from riskstream.store import RiskStore, seed_demo

SIZES = [int(float(x)) for x in os.environ.get("RISKSTREAM_BENCH_QUERY_ROWS", "1e6,1e7").split(",")]
DATES = 5
RUNS = 30
DESKS = ["RATES", "CREDIT", "FX", "EQ_CASH", "EQ_DERIV", "PRIME"]
MEASURES = ["pv", "delta", "gamma", "vega", "theta"]
BOOKS = {f"B{b}": DESKS[b // 20] for b in range(120)}
SEED = 7
REPORT = {
    "name": "trader_book_measure",
    "rows": ["book"],
    "columns": ["measure"],
    "measures": MEASURES,
    "business_date": "today",
}


def _day(d: date, n: int, rng: np.random.Generator, first: int = 0) -> pa.Table:
    trade = rng.integers(0, n // len(MEASURES), n)
    book = trade % 120
    return pa.table(
        {
            "business_date": pa.array([d] * n, pa.date32()),
            "namespace": pa.array(["EOD"] * n),
            "desk": pa.array(np.array(DESKS)[book // 20]),
            "book": pa.array(np.char.add("B", book.astype(str))),
            "trader": pa.array(np.char.add("TR", (trade % 6000).astype(str))),
            "trade_id": pa.array(np.char.add("T", ((first + np.arange(n)) // len(MEASURES)).astype(str))),
            "measure": pa.array(np.array(MEASURES)[np.arange(n) % len(MEASURES)]),
            "value": pa.array(rng.normal(0, 1e4, n)),
            "currency": pa.array(np.array(["USD", "EUR", "GBP"])[trade % 3]),
        }
    )


def _build(root: Path, rows: int, today: date) -> float:
    """Commit ``rows`` rows over DATES days ending ``today`` (one job per day, in chunks of ≤ 2M rows)."""
    store = RiskStore.open(root)
    seed_demo(store.catalog, BOOKS)
    rng = np.random.default_rng(SEED)
    per_day = rows // DATES
    start = time.perf_counter()
    for k in range(DATES):
        d = today - timedelta(days=DATES - 1 - k)
        job = store.open_job("EOD", d)
        left = per_day
        while left:
            n = min(left, 2_000_000)
            store.put_chunk(job, _day(d, n, rng, per_day - left))
            left -= n
        store.commit(job)
    store.close()
    (root / "built").write_text(f"{today.isoformat()} {time.perf_counter() - start:.1f}")
    return time.perf_counter() - start


def _p50(run: Callable[[], object]) -> float:
    run()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _measure(root: Path, rows: int) -> dict[str, float]:
    today = date.today()
    marker = root / "built"
    if marker.exists() and marker.read_text().split()[0] == today.isoformat():
        load_s = float(marker.read_text().split()[1])
    else:
        if root.exists():
            import shutil

            shutil.rmtree(root)
        load_s = _build(root, rows, today)
    store = RiskStore.open(root)
    report = load_report(REPORT)
    fast = run_report(store, report, "trader_rates")
    slow = run_report(store, report, "trader_rates", route="raw")
    assert fast.route == "preagg:desk_book_measure" and slow.route == "raw", (fast.route, slow.route)
    np.testing.assert_allclose(
        fast.to_pandas().drop(columns="book").to_numpy(float),
        slow.to_pandas().drop(columns="book").to_numpy(float),
        rtol=1e-9,
    )
    out = {"rows": float(rows), "load_s": load_s}
    out["preagg"] = _p50(lambda: run_report(store, report, "trader_rates"))
    if os.environ.get("RISKSTREAM_BENCH_PROFILE"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for _ in range(50):
            run_report(store, report, "trader_rates")
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    con = duckdb.connect()
    view = store.register(con, "risk_results", view="rr")
    sql = (
        f"SELECT book, measure, sum(value) FROM {view} WHERE business_date = ? AND namespace = 'EOD' "
        "AND desk = 'RATES' AND measure IN ('pv', 'delta', 'gamma', 'vega', 'theta') GROUP BY book, measure"
    )
    out["scan"] = _p50(lambda: con.execute(sql, [today]).fetchall())
    out["raw"] = _p50(lambda: run_report(store, report, "trader_rates", route="raw"))
    if rows <= 2_000_000:
        con.execute(f"CREATE TABLE hist AS SELECT * FROM {view}")
        native = sql.replace(view, "hist")
        out["native"] = _p50(lambda: con.execute(native, [today]).fetchall())
    con.close()
    flush_audit(store)
    close_query_session(store)
    store.close()
    return out


def main() -> None:
    keep = os.environ.get("RISKSTREAM_BENCH_DIR")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(keep) if keep else Path(tmp)
        for rows in SIZES:
            m = _measure(base / f"query_{rows}", rows)
            results.append(m)
            print(
                f"{rows:>12,} rows: run_report preagg {m['preagg'] * 1e3:7.1f} ms | raw Delta scan "
                f"{m['scan'] * 1e3:8.1f} ms ({m['scan'] / m['preagg']:6.1f}x) | run_report raw "
                f"{m['raw'] * 1e3:8.1f} ms ({m['raw'] / m['preagg']:6.1f}x)"
                + (f" | DuckDB native {m['native'] * 1e3:6.1f} ms" if "native" in m else ""),
                flush=True,
            )
    table = "\n".join(
        f"| {int(m['rows']):,} | {m['load_s']:.0f} | **{m['preagg'] * 1e3:,.1f}** | {m['scan'] * 1e3:,.1f} | "
        f"**{m['scan'] / m['preagg']:,.0f}×** | {m['raw'] * 1e3:,.1f} | {m['raw'] / m['preagg']:,.0f}× | "
        + (f"{m['native'] * 1e3:,.1f}" if "native" in m else "—")
        + " |"
        for m in results
    )
    met = all(m["preagg"] <= 0.020 and m["scan"] / m["preagg"] >= 20 for m in results if m["rows"] >= 1e7)
    body = (
        f"Rows over {DATES} business dates ending today (6 desks, 120 books, 5 measures), committed through "
        "`RiskStore` jobs with the pre-aggregations built on commit; the demo catalog's `trader_rates` (RATES desk "
        f"only). The report: book × measure pivot for `today`, p50 of {RUNS} runs after a warm-up. Both routes "
        "return the same table. Goal at ≥ 10M rows: p50 ≤ 20 ms and ≥ 20× the raw scan — "
        f"**{'met' if met else 'not met'}**.\n\n"
        "| rows | load (s) | `run_report` pre-aggregated (ms) | raw DuckDB scan of the Delta table (ms) | "
        "speed-up | `run_report` raw route (ms) | speed-up | DuckDB native table (ms) |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|\n" + table
    )
    record(
        "query_pivot",
        "Query: a trader's pivot, pre-aggregated vs raw, by table size",
        body,
        ".venv/bin/python -m benchmarks query  (RISKSTREAM_BENCH_QUERY_ROWS=1e6,1e7,3e7 for more sizes)",
    )
