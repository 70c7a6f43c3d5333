"""``riskstream sample-portfolio``: writes a loadable directory and prints a summary."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from riskstream.cli import app
from riskstream.refdata import load_portfolio


def test_sample_portfolio_writes_a_loadable_directory(tmp_path: Path) -> None:
    out = tmp_path / "bank"
    result = CliRunner().invoke(
        app, ["sample-portfolio", "--positions", "1500", "--out", str(out), "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    for word in ("1,500", "instruments", "1,000", "EQ-CASH", "PRIME", "2018-12-31", str(out.resolve())):
        assert word in result.output, word
    loaded = load_portfolio(out)
    assert len(loaded.portfolio) == 1500 and loaded.rejected == ()
    assert set(loaded.portfolio.positions.attribute("desk").tolist()) == {
        "EQ-CASH",
        "EQ-DERIV",
        "RATES",
        "FX",
        "CREDIT",
        "PRIME",
    }


def test_sample_portfolio_is_seeded(tmp_path: Path) -> None:
    runner = CliRunner()
    for name, seed in (("a", "4"), ("b", "4"), ("c", "5")):
        args = ["sample-portfolio", "--positions", "300", "--out", str(tmp_path / name), "--seed", seed]
        assert runner.invoke(app, args).exit_code == 0
    a, b, c = (load_portfolio(tmp_path / n).portfolio for n in "abc")
    assert a.instruments == b.instruments and (a.positions.quantity == b.positions.quantity).all()
    assert a.instruments != c.instruments


def test_bad_position_count_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sample-portfolio", "--positions", "0", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "--positions" in result.output
    assert not (tmp_path / "x").exists()
