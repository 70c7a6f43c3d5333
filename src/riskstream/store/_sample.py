"""Realistic risk results for a portfolio: one row per (trade, measure), with the trade's scenario P&L vector.

Used by ``riskstream job sample``, the demo and tests of the query layer.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..engine import required_factors
from ..pricing import instrument_pnl, value_instruments
from ..refdata import LoadedPortfolio, load_portfolio
from ..risk import tail_weights
from ..scenarios import HistoricalScenarios

__all__ = ["sample_results"]

#: Measures `sample_results` writes per trade.
SAMPLE_MEASURES = ("pv", "var_99_1d_contribution", "es_975_1d_contribution", "exposure")


def sample_results(
    portfolio: LoadedPortfolio | str | Path,
    business_date: date,
    *,
    namespace: str = "EOD",
    window: int = 250,
    with_vectors: bool = True,
    job_id: str = "",
) -> pa.Table:
    """Per-trade risk results of a portfolio directory under 1-day historical simulation (``window`` scenarios).

    Rows (measure, value in the reporting currency):

    - ``pv``: quantity × today's value (carries the trade's scenario P&L vector, positive = gain, when
      ``with_vectors``; the other measures leave it null, so P&L vectors are summed over ``pv`` rows only);
    - ``var_99_1d_contribution``, ``es_975_1d_contribution``: Euler components of the firm's 99 % VaR and
      97.5 % ES (−w·P&L with the firm's tail weights; they sum over all trades to the firm's VaR / ES);
    - ``exposure``: the same as pv for linear positions — the market value the marginal figures divide by.

    ``job_id`` fills that column when given (the store fills it otherwise). Trades whose instrument cannot be
    valued are left out.
    """
    loaded = load_portfolio(portfolio) if not isinstance(portfolio, LoadedPortfolio) else portfolio
    pf, snapshot = loaded.portfolio, loaded.snapshot
    pos = pf.positions
    used = np.unique(pos.instrument)
    instruments = [pf.instruments[i] for i in used]
    factors, failed = required_factors(instruments, snapshot, loaded.history)
    scen = HistoricalScenarios(window, 1, "overlapping").generate(snapshot, loaded.history, factors)
    unit = instrument_pnl(instruments, snapshot, scen.market).values
    base = np.asarray(value_instruments(instruments, snapshot.to_scenarios(factors)).values)[:, 0]
    local = np.full(len(pf.instruments), -1)
    local[used] = np.arange(len(used))
    li = local[pos.instrument]
    ok = np.array([i not in failed for i in range(len(used))])[li] & np.isfinite(base[li])
    ok &= np.isfinite(unit[li]).all(axis=1)
    li = li[ok]
    qty = pos.quantity[ok]
    pnl = unit[li] * qty[:, None]
    firm = pnl.sum(axis=0)
    w_var, _ = tail_weights(firm, 0.99)
    _, w_es = tail_weights(firm, 0.975)
    pv = qty * base[li]
    n = len(li)
    measures = {
        "pv": pv,
        "var_99_1d_contribution": -(pnl @ np.asarray(w_var)),
        "es_975_1d_contribution": -(pnl @ np.asarray(w_es)),
        "exposure": pv,
    }
    k = len(measures)
    attrs = {name: np.asarray(pos.attribute(name))[ok] for name in ("desk", "book", "trader")}
    optional = {}
    for name in ("counterparty", "sector", "region"):
        if name in pos.attributes:
            optional[name] = np.asarray(pos.attributes[name])[ok]
    inst_type = np.array([instruments[i].type.value for i in li], dtype=object)
    trade_ids = np.asarray(pos.position_id)[ok].astype(str)

    def rep(a: np.ndarray) -> pa.Array:
        return pa.array(np.tile(a, k), pa.string())

    columns: dict[str, pa.Array] = {
        "business_date": pa.array([business_date] * (n * k), pa.date32()),
        "namespace": pa.array([namespace] * (n * k), pa.string()),
        "desk": rep(attrs["desk"]),
        "book": rep(attrs["book"]),
        "trader": rep(attrs["trader"]),
        "trade_id": rep(trade_ids),
        "measure": pa.array(np.repeat(np.array(list(measures), dtype=object), n), pa.string()),
        "value": pa.array(np.concatenate(list(measures.values())), pa.float64()),
        "currency": pa.array([snapshot.reporting_currency] * (n * k), pa.string()),
        "instrument_type": rep(inst_type),
    }
    for name, values in optional.items():
        columns[name] = rep(values)
    if job_id:
        columns["job_id"] = pa.array([job_id] * (n * k), pa.string())
    if with_vectors:
        m = pnl.shape[1]
        # pv rows hold the vectors; the rows of the other measures are null (empty slots in the offsets)
        offsets = np.concatenate([np.arange(n + 1) * m, np.full((k - 1) * n, n * m)]).astype(np.int64)
        mask = np.concatenate([np.zeros(n, bool), np.ones((k - 1) * n, bool)])
        columns["pnl_vector"] = pa.LargeListArray.from_arrays(
            pa.array(offsets), pa.array(pnl.ravel(), pa.float64()), mask=pa.array(mask)
        ).cast(pa.list_(pa.float64()))
    return pa.table(columns)
