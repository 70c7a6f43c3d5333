"""``riskstream store demo``: a store ready for reports — demo users, market history, EOD jobs for recent days."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
from typer.testing import CliRunner

from riskstream.cli import app
from riskstream.marketdata import Universe, synthetic_history
from riskstream.query import load_report, run_report
from riskstream.refdata import load_portfolio, sample_bank, write_portfolio
from riskstream.store import DEMO_USERS, RiskStore, sample_results


def test_store_demo_fills_a_store_that_reports_run_on(tmp_path: Path) -> None:
    universe = Universe.default()
    bank = sample_bank(150, seed=4, universe=universe, history=synthetic_history(universe, seed=4))
    portfolio = write_portfolio(tmp_path / "bank", bank)
    root = tmp_path / "store"
    result = CliRunner().invoke(
        app,
        [
            "store",
            "demo",
            "--store",
            str(root),
            "--portfolio",
            str(portfolio),
            "--days",
            "2",
            "--window",
            "40",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    for user in DEMO_USERS:
        assert user in result.output

    store = RiskStore.open(root)
    con = duckdb.connect()
    view = store.register(con)
    per_day = con.execute(
        f"SELECT business_date, sum(value) FROM {view} WHERE measure = 'pv' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    today = np.busday_offset(np.datetime64(date.today(), "D"), 0, roll="backward").astype(object)
    assert len(per_day) == 2 and per_day[1][0] == today
    # the last day is priced on the portfolio's own market, the day before on the previous history row
    expected = sample_results(load_portfolio(portfolio), today, window=40)
    pv = expected.filter(expected.column("measure").to_numpy(zero_copy_only=False) == "pv")
    assert np.isclose(per_day[1][1], sum(pv.column("value").to_pylist()), rtol=1e-12)
    assert per_day[0][1] != per_day[1][1]

    # a trader sees their own desk only
    report = load_report({"kind": "pivot", "rows": ["desk"], "measures": ["pv"], "business_date": "latest"})
    desks = run_report(store, report, "trader_rates").to_pandas()["desk"].tolist()
    assert desks == ["RATES"]
