"""``riskstream query``: bad input gives one ``error:`` line and exit status 2; a report runs against a store."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from riskstream.cli import app
from riskstream.cli._errors import run
from riskstream.store import Catalog, RiskStore, seed_demo


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["riskstream", "query", *args])
    try:
        code = run(app)
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"rows": ["desk"], "measures": [{"measure": "pv", "agg": "median"}]},
            "'measures.agg' has invalid value 'median'",
        ),
        (
            {"rows": ["desk"], "measures": ["pv"], "business_date": "2024-02-30"},
            "'business_date' has invalid value '2024-02-30'",
        ),
    ],
)
def test_bad_report_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    body: dict[str, object],
    message: str,
) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(body))
    code, out, err = _cli(
        monkeypatch, capsys, str(path), "--store", str(tmp_path / "s"), "--user", "head_trading"
    )
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"error: report field {message}: " + err.split(": ", 2)[2].strip()]
    assert message in err


def test_bad_as_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rows: [desk]\nmeasures: [pv]\n")
    code, _, err = _cli(monkeypatch, capsys, str(path), "--user", "x", "--as-of", "noon-ish")
    assert code == 2 and "'--as-of' has invalid value 'noon-ish'" in err


def test_report_against_demo_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = RiskStore.open(tmp_path / "s")
    seed_demo(store.catalog, {"R1": "RATES", "P1": "PRIME"})
    job = store.open_job("EOD", date(2024, 3, 15))
    rows = [
        {
            "business_date": date(2024, 3, 15),
            "namespace": "EOD",
            "job_id": job,
            "desk": d,
            "book": b,
            "trader": "t",
            "trade_id": f"T{i}",
            "measure": "pv",
            "value": float(10 * (i + 1)),
            "currency": "USD",
        }
        for i, (b, d) in enumerate([("R1", "RATES"), ("P1", "PRIME")])
    ]
    store.put_chunk(job, pa.Table.from_pylist(rows))
    store.commit(job)
    store.close()
    path = tmp_path / "r.yaml"
    path.write_text("rows: [desk]\nmeasures: [pv]\n")
    code, out, err = _cli(
        monkeypatch, capsys, str(path), "--store", str(tmp_path / "s"), "--user", "trader_rates", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["rows"] == [{"desk": "RATES", "pv_sum": 10.0}]  # the trader sees the RATES row alone
    code, out, _ = _cli(
        monkeypatch, capsys, str(path), "--store", str(tmp_path / "s"), "--user", "head_trading"
    )
    assert code == 0 and "RATES" in out and "PRIME" in out
    with Catalog(f"sqlite:///{tmp_path / 's' / 'catalog.db'}") as catalog:
        audited = [(e["user"], e["detail"]["route"], e["rows"]) for e in catalog.audit_log()]
    # both runs audited before the command returned, newest first (source: the two invocations above)
    assert audited == [("head_trading", "preagg:desk_measure", 2), ("trader_rates", "preagg:desk_measure", 1)]
