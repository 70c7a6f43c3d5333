"""``riskstream backtest`` on the real S&P 500 history (short spans, so it stays fast) and on bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from riskstream.cli import app
from riskstream.cli._errors import run

runner = CliRunner()

SHORT_SPAN = ["--series", "sp500", "--start", "2016-01-01", "--end", "2018-12-31", "--window", "250"]


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run the command as the console script does (errors become one line and exit status 2)."""
    monkeypatch.setattr(sys, "argv", ["riskstream", "backtest", *args])
    try:
        code = run(app)
    except SystemExit as exc:  # typer's standalone mode ends a successful command this way
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_output_on_sp500(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(
        monkeypatch, capsys, *SHORT_SPAN, "--method", "hs", "--confidence", "0.975", "--json"
    )
    assert code == 0, err
    data = json.loads(out)  # stdout holds only the JSON: no progress bar with --json
    for key in (
        "observations",
        "exceptions",
        "kupiec_pvalue",
        "christoffersen_pvalue",
        "conditional_coverage_pvalue",
        "traffic_light",
        "plus_factor",
        "first_date",
        "last_date",
    ):
        assert key in data
    assert data["series"] == "sp500" and data["method"] == "hs"
    assert data["window"] == 250 and data["confidence"] == 0.975
    # 2016-01-04 .. 2018-12-31 holds 754 prices, so 753 returns and 753 - 250 = 503 forecast days
    assert data["observations"] == 503
    assert data["last_date"] == "2018-12-31"
    assert data["traffic_light"] in ("green", "yellow", "red")


def test_table_output_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "backtest.png"
    result = runner.invoke(
        app, ["backtest", *SHORT_SPAN, "--method", "fhs", "--refit-every", "50", "--plot", str(png)]
    )
    assert result.exit_code == 0, result.output
    for text in ("Kupiec", "Christoffersen", "traffic light", "plus factor", "fhs 1-day VaR 99.0%"):
        assert text in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000


def test_model_options_reach_the_model(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        monkeypatch,
        capsys,
        *SHORT_SPAN,
        "--method",
        "garch",
        "--dist",
        "skewt",
        "--gjr",
        "--refit-every",
        "100",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["options"] == {
        "dist": "skewt",
        "mean": "constant",
        "asymmetric": True,
        "refit_every": 100,
        "warm_start": True,
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", r"price file is empty: '.*bad\.csv'"),
        ("Date,Open\n2020-01-02,3\n", r"field 'price' is missing"),
        (
            "Date,Adj Close\n2020-01-02,3\n2020-01-03,-1.5\n",
            r"line 3: field 'Adj Close' has invalid value -1\.5",
        ),
        ("Date,Close\n2020-01-02,3\n2020-01-03,n/a\n", r"line 3: field 'Close' has invalid value 'n/a'"),
    ],
    ids=["empty", "no-price-column", "negative-price", "non-numeric-price"],
)
def test_bad_csv_is_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str,
    expected: str,
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = _cli(monkeypatch, capsys, "--series", str(path), "--method", "hs", "--json")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(expected, lines[0]), lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--method", "svm"], "option 'method' has invalid value 'svm'"),
        (["--confidence", "1.5"], "option 'confidence' has invalid value 1.5"),
        (["--series", "ftse"], "field 'series' has invalid value 'ftse'"),
        (["--start", "2018-06-01"], "needs at least 502 returns"),
        (["--start", "someday"], "field 'start' has invalid value 'someday'"),
    ],
)
def test_bad_options_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    code, _, err = _cli(monkeypatch, capsys, *args, "--json")
    assert code == 2
    assert expected in err


def test_console_script_end_to_end(tmp_path: Path) -> None:
    # the installed entry point, in a fresh interpreter: python -m riskstream
    proc = subprocess.run(
        [sys.executable, "-m", "riskstream", "backtest", *SHORT_SPAN, "--method", "ewma", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["method"] == "ewma"
