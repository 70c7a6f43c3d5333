"""``riskstream job`` and ``riskstream store``: a job from the command line, maintenance commands, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from riskstream.cli import app
from riskstream.refdata import sample_bank, write_portfolio


def _rows(desk: str, n: int) -> pa.Table:
    return pa.table(
        {
            "business_date": pa.array([pa.scalar(20777, pa.date32()).as_py()] * n, pa.date32()),  # 2026-11-20
            "namespace": ["EOD"] * n,
            "desk": [desk] * n,
            "book": [f"{desk}-1"] * n,
            "trader": ["t1"] * n,
            "trade_id": [f"{desk}-{i}" for i in range(n)],
            "measure": ["pv"] * n,
            "value": [float(i) for i in range(n)],
            "currency": ["USD"] * n,
        }
    )


def test_job_open_put_commit_status_and_history(tmp_path: Path) -> None:
    runner = CliRunner()
    store = str(tmp_path / "store")
    pq.write_table(_rows("RATES", 5), tmp_path / "part1.parquet")
    _rows("RATES", 8).slice(5).to_pandas().to_csv(tmp_path / "part2.csv", index=False)
    opened = runner.invoke(
        app,
        [
            "job",
            "open",
            "--store",
            store,
            "--namespace",
            "EOD",
            "--date",
            "2026-11-20",
            "--scope",
            "desk=RATES",
            "--chunks",
            "2",
        ],
    )
    assert opened.exit_code == 0, opened.output
    job = opened.output.strip()
    put = runner.invoke(
        app,
        [
            "job",
            "put",
            "--store",
            store,
            job,
            str(tmp_path / "part1.parquet"),
            str(tmp_path / "part2.csv"),
            "--json",
        ],
    )
    assert put.exit_code == 0, put.output
    assert json.loads(put.stdout) == [{"chunk_id": "part1", "rows": 5}, {"chunk_id": "part2", "rows": 3}]
    status = json.loads(runner.invoke(app, ["job", "status", "--store", store, job, "--json"]).stdout)
    assert (status["state"], status["chunks_received"], status["chunks_expected"], status["rows"]) == (
        "OPEN",
        2,
        2,
        8,
    )
    committed = json.loads(runner.invoke(app, ["job", "commit", "--store", store, job, "--json"]).stdout)
    assert committed["rows"] == 8 and committed["already_committed"] is False
    again = json.loads(runner.invoke(app, ["job", "commit", "--store", store, job, "--json"]).stdout)
    assert again["version"] == committed["version"] and again["already_committed"] is True
    history = json.loads(runner.invoke(app, ["store", "history", "--store", store, "--json"]).stdout)
    assert history[0]["job_id"] == job and history[0]["rows_added"] == 8
    tiered = json.loads(
        runner.invoke(app, ["store", "tier", "--store", store, "--today", "2026-12-31", "--json"]).stdout
    )
    assert tiered["moved"] == ["2026-11-20"] and tiered["rows"] == 8
    vac = json.loads(runner.invoke(app, ["store", "vacuum", "--store", store, "--dry-run", "--json"]).stdout)
    assert vac["dry_run"] is True and vac["expired"] == []
    aborted = runner.invoke(
        app, ["job", "open", "--store", store, "--namespace", "EOD", "--date", "2026-11-20"]
    )
    other = aborted.output.strip()
    assert runner.invoke(app, ["job", "abort", "--store", store, other]).exit_code == 0
    assert "ABORTED" in runner.invoke(app, ["job", "status", "--store", store, other]).output


def test_job_sample_sends_priced_chunks(tmp_path: Path) -> None:
    from riskstream.marketdata import Universe, synthetic_history

    universe = Universe.default()
    bank = sample_bank(60, seed=2, universe=universe, history=synthetic_history(universe, seed=2))
    portfolio = write_portfolio(tmp_path / "bank", bank)
    result = CliRunner().invoke(
        app,
        [
            "job",
            "sample",
            "--store",
            str(tmp_path / "s"),
            "--portfolio",
            str(portfolio),
            "--date",
            "2026-11-20",
            "--chunks",
            "4",
            "--window",
            "50",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["chunks"] == 4 and doc["version"] is not None and doc["rows"] == 4 * 60  # 4 measures per trade


def test_bad_chunk_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    run = [sys.executable, "-m", "riskstream"]
    job = subprocess.run(
        [
            *run,
            "job",
            "open",
            "--store",
            store,
            "--namespace",
            "EOD",
            "--date",
            "2026-11-20",
            "--scope",
            "desk=FX",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pq.write_table(_rows("RATES", 3), tmp_path / "wrong.parquet")
    bad = subprocess.run(
        [*run, "job", "put", "--store", store, job, str(tmp_path / "wrong.parquet")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: chunk 'wrong'")
    assert "'desk' has value 'RATES' outside the job's scope" in bad.stderr
