"""Market history, live snapshots and sample results (per-trade rows of a priced portfolio)."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest

from riskstream.domain import RiskSnapshot
from riskstream.marketdata import Universe, synthetic_history
from riskstream.refdata import load_portfolio, sample_bank, write_portfolio
from riskstream.risk import var_es
from riskstream.store import SAMPLE_MEASURES, RiskStore, sample_results


def test_market_history_is_stored_long_and_rewrites_replace(tmp_path):
    store = RiskStore.open(tmp_path / "s")
    frame = pd.DataFrame(
        {"EQ.SPX": [100.0, 101.0, np.nan], "FX.EUR": [1.1, 1.2, 1.3]},
        index=pd.to_datetime(["2026-11-18", "2026-11-19", "2026-11-20"]),
    )
    assert store.write_market_history(frame) == 5  # 6 cells, one NaN left out
    assert store.write_market_history(frame.iloc[1:] * 2) == 3
    con = duckdb.connect()
    view = store.register(con, "market_history")
    got = con.execute(f"SELECT date, factor_id, value FROM {view} ORDER BY ALL").fetchall()
    assert got == [
        (date(2026, 11, 18), "EQ.SPX", 100.0),
        (date(2026, 11, 18), "FX.EUR", 1.1),
        (date(2026, 11, 19), "EQ.SPX", 202.0),
        (date(2026, 11, 19), "FX.EUR", 2.4),
        (date(2026, 11, 20), "FX.EUR", 2.6),
    ]


def test_market_history_reads_back_as_the_frame_written(tmp_path):
    store = RiskStore.open(tmp_path / "s")
    assert store.read_market_history().empty
    frame = pd.DataFrame(
        {"EQ.SPX": [100.0, 101.0, np.nan], "FX.EUR": [1.1, 1.2, 1.3]},
        index=pd.to_datetime(["2026-11-18", "2026-11-19", "2026-11-20"]),
    )
    store.write_market_history(frame)
    pd.testing.assert_frame_equal(store.read_market_history(), frame, check_freq=False)
    window = store.read_market_history(date(2026, 11, 19), date(2026, 11, 19))
    pd.testing.assert_frame_equal(window, frame.iloc[1:2], check_freq=False)


def test_live_snapshots_one_row_per_measure(tmp_path):
    store = RiskStore.open(tmp_path / "s")
    at = 1_795_132_800_000_000  # 2026-11-20T00:00:00Z in µs (datetime(2026, 11, 20, tzinfo=UTC).timestamp())
    snaps = [
        RiskSnapshot("FIRM", at, {"var_99_1d": 10.0, "es_975_1d": 12.0}, sequence=1),
        RiskSnapshot("FIRM/RATES", at + 1_000_000, {"var_99_1d": 4.0}, sequence=2),
    ]
    assert store.append_live_snapshots(snaps) == 3
    con = duckdb.connect()
    view = store.register(con, "live_snapshots")
    got = con.execute(f"SELECT business_date, node, measure, value FROM {view} ORDER BY ALL").fetchall()
    assert got == [
        (date(2026, 11, 20), "FIRM", "es_975_1d", 12.0),
        (date(2026, 11, 20), "FIRM", "var_99_1d", 10.0),
        (date(2026, 11, 20), "FIRM/RATES", "var_99_1d", 4.0),
    ]


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    universe = Universe.default()
    bank = sample_bank(120, seed=3, universe=universe, history=synthetic_history(universe, seed=3))
    return load_portfolio(write_portfolio(tmp_path_factory.mktemp("bank"), bank))


def test_sample_results_components_add_up_to_the_firm_figures(portfolio, tmp_path):
    table = sample_results(portfolio, date(2026, 11, 20), window=250)
    assert set(table.column("measure").to_pylist()) == set(SAMPLE_MEASURES)
    pv = table.filter(pc.equal(table["measure"], "pv"))
    vectors = np.array(pv.column("pnl_vector").to_pylist())
    assert vectors.shape == (pv.num_rows, 250)
    firm = vectors.sum(axis=0)
    var, _ = var_es(firm, 0.99)
    _, es = var_es(firm, 0.975)
    # Euler allocation: components of VaR/ES (−w·P&L with the firm's tail weights) sum to the firm's figure
    for measure, want in (("var_99_1d_contribution", var), ("es_975_1d_contribution", es)):
        got = pc.sum(table.filter(pc.equal(table["measure"], measure))["value"]).as_py()
        assert got == pytest.approx(float(want), rel=1e-9)
    store = RiskStore.open(tmp_path / "s")
    job = store.open_job("EOD", date(2026, 11, 20), expected_chunks=3)
    size = -(-table.num_rows // 3)
    for i in range(3):
        store.put_chunk(job, table.slice(i * size, size))
    assert store.commit(job).rows == table.num_rows
