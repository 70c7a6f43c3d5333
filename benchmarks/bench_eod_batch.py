"""EOD batch: HS VaR and ES at every node for 1,000,000 positions × 1,000 scenarios, full revaluation.

The portfolio is the sample bank (≈10 % options) on the default 1,000-factor universe. The engine values each
*unique* instrument once under all scenarios and aggregates quantities through a sparse leaf × instrument matrix,
so a position's P&L vector is never materialised. Figures reported:

* wall time of ``run_risk`` (everything after loading: factors, scenarios, valuation, aggregation, VaR/ES,
  top contributors by position and by risk factor), and of the core without factor attribution;
* peak resident memory during the run above the resident memory before it (sampled every 5 ms);
* the *effective* P&L throughput — positions × scenarios × 8 bytes divided by the time, i.e. the bytes a
  position-level engine would have to stream — against the machine's streaming bandwidth measured with a numpy
  float32 sum in the same process;
* a baseline in the same process: the position-level approach (every position valued on its own, the positions ×
  scenarios matrix built and summed into nodes), timed on 20,000 positions and scaled linearly to 1,000,000.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from benchmarks._results import record
from riskstream.domain import Hierarchy, Portfolio
from riskstream.engine import RiskRequest, required_factors, run_risk
from riskstream.marketdata import Universe, synthetic_history
from riskstream.pricing import instrument_pnl
from riskstream.refdata import sample_bank
from riskstream.risk import var_es
from riskstream.scenarios import HistoricalScenarios

POSITIONS = 1_000_000
SCENARIOS = 1_000
BASELINE_POSITIONS = 20_000
LEVELS = ("desk", "book", "trader")
GOAL_S = 10.0


def streaming_bandwidth() -> float:
    """Bytes/s of a numpy float32 sum over 1 GiB (best of 5): the machine's practical memory bandwidth."""
    a = np.ones(2**28, dtype=np.float32)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - t)
    return a.nbytes / best


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


class PeakRss:
    """Peak resident set size while the block runs, sampled every 5 ms from /proc/self/statm."""

    def __enter__(self) -> PeakRss:
        self.base = _rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def growth(self) -> int:
        return self.peak - self.base


def position_level_baseline(portfolio: Portfolio, bank, n: int) -> float:
    """Seconds for the position-level approach on the first ``n`` positions (no instrument sharing)."""
    sub = Portfolio(portfolio.instruments, portfolio.positions.take(np.arange(n)))
    t = time.perf_counter()
    insts = [sub.instruments[i] for i in sub.positions.instrument]
    factors, _ = required_factors(insts, bank.snapshot, bank.history)
    scen = HistoricalScenarios(SCENARIOS).generate(bank.snapshot, bank.history, factors)
    pnl = np.nan_to_num(instrument_pnl(insts, bank.snapshot, scen.market).values)
    pnl *= sub.positions.quantity[:, None]
    h = Hierarchy.build(dict(sub.positions.attributes), LEVELS)
    node_pnl = np.zeros((h.n_nodes, SCENARIOS))
    for level in range(h.depth + 1):
        np.add.at(node_pnl, h.position_node[level], pnl)
    var_es(node_pnl, 0.99)
    return time.perf_counter() - t


def main() -> None:
    universe = Universe.default()
    t = time.perf_counter()
    history = synthetic_history(universe, 0)
    bank = sample_bank(POSITIONS, 0, universe=universe, history=history)
    portfolio = bank.portfolio()
    setup_s = time.perf_counter() - t
    n_options = sum(
        1 for i in portfolio.positions.instrument if portfolio.instruments[i].type.value.endswith("option")
    )
    print(
        f"sample bank: {len(portfolio):,} positions, {len(portfolio.instruments):,} instruments, "
        f"{n_options / len(portfolio):.1%} options, built in {setup_s:.1f} s",
        flush=True,
    )

    bandwidth = streaming_bandwidth()
    req_core = RiskRequest("hs", 0.99, 1, levels=LEVELS, window=SCENARIOS, factor_attribution=False)
    req_full = RiskRequest("hs", 0.99, 1, levels=LEVELS, window=SCENARIOS)
    run_risk(portfolio, bank.snapshot, bank.history, req_core)  # warm caches (cashflow schedules, imports)

    best_core = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        core = run_risk(portfolio, bank.snapshot, bank.history, req_core)
        best_core = min(best_core, time.perf_counter() - t)
    full_s = float("inf")
    for _ in range(3):
        with PeakRss() as mem:
            t = time.perf_counter()
            full = run_risk(portfolio, bank.snapshot, bank.history, req_full)
            full_s = min(full_s, time.perf_counter() - t)
    peak = mem.growth
    assert full.node("FIRM").var == core.node("FIRM").var

    base_s = position_level_baseline(portfolio, bank, BASELINE_POSITIONS) * POSITIONS / BASELINE_POSITIONS
    effective = POSITIONS * SCENARIOS * 8
    rate = effective / best_core
    firm = full.node("FIRM")
    stages = ", ".join(f"{k} {v:.2f}" for k, v in full.timings.items() if k != "total")
    print(
        f"core {best_core:.2f} s, full {full_s:.2f} s (goal ≤ {GOAL_S:.0f} s); peak +{peak / 2**20:,.0f} MiB"
    )
    print(
        f"effective P&L throughput {rate / 1e9:.1f} GB/s vs numpy streaming {bandwidth / 1e9:.1f} GB/s "
        f"= {rate / bandwidth:.2f}×"
    )
    print(f"position-level baseline ≈ {base_s:.0f} s → {base_s / best_core:.0f}× faster")
    body = f"""
Sample bank: {POSITIONS:,} positions ({n_options / POSITIONS:.1%} options, full revaluation), \
{len(portfolio.instruments):,} unique instruments, {full.n_factors} risk factors, {SCENARIOS:,} historical \
scenarios, {len(full.nodes):,} nodes (firm → desk → book → trader). Firm var_99_1d {firm.var / 1e6:,.1f}M, \
es_99_1d {firm.es / 1e6:,.1f}M USD.

| run | time (s) | vs goal {GOAL_S:.0f} s |
|---|---:|---:|
| `run_risk` core: scenarios, valuation, aggregation, VaR/ES, top positions (best of 3) | {best_core:.2f} | \
{"met" if best_core <= GOAL_S else "missed"} |
| `run_risk` full, with risk-factor attribution (best of 3) | {full_s:.2f} | {"met" if full_s <= GOAL_S else "missed"} |
| position-level baseline (every position revalued, positions × scenarios matrix), 20k scaled to 1M | \
{base_s:.1f} | — |

- Speed-up over the position-level baseline: **{base_s / best_core:.0f}×**.
- Peak resident memory added by the full run: **{peak / 2**20:,.0f} MiB** (the portfolio itself is loaded
  before); a float64 positions × scenarios matrix alone would be {effective / 2**30:.1f} GiB.
- Effective P&L throughput {rate / 1e9:.1f} GB/s (positions × scenarios × 8 B / core time) against numpy's
  streaming bandwidth of {bandwidth / 1e9:.1f} GB/s (float32 sum of 1 GiB, same run): **{rate / bandwidth:.2f}×**.
  The engine never streams that matrix: it values {len(portfolio.instruments):,} unique instruments and
  aggregates quantities sparsely, so the time goes to per-position bookkeeping (hierarchy, top contributors)
  and option revaluation, not to memory traffic.
- Stages of the full run (s): {stages}.
"""
    record(
        "eod_batch",
        "EOD batch: HS VaR/ES at every node, 1M positions × 1,000 scenarios",
        body,
        ".venv/bin/python -m benchmarks eod_batch",
    )


if __name__ == "__main__":
    main()
