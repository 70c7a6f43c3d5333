"""``riskstream demo`` and ``riskstream stream`` through the typer app: JSON lines of firm and desk VaR/ES."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from riskstream.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from worker_inputs import portfolio_dir


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_demo_prints_firm_and_desk_var_es(tmp_path: Path) -> None:
    folder = portfolio_dir(tmp_path.parent)
    args = ["demo", "--headless", "--duration", "3", "--json", "--portfolio", str(folder), "--window", "250"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    nodes = {x["node"] for x in lines}
    assert "FIRM" in nodes and {"FIRM/RATES", "FIRM/FX"} <= nodes
    for x in lines:
        assert set(x) >= {"as_of", "node", "var", "es"} and x["var"] > 0 and x["es"] > 0


@pytest.mark.integration
def test_stream_on_the_kafka_mock(tmp_path: Path) -> None:
    folder = portfolio_dir(tmp_path.parent)
    args = [
        "stream", "--bus", "kafka://mock", "--portfolio", str(folder), "--source", "synthetic",
        "--duration", "4", "--json", "--window", "250", "--checkpoint-dir", str(tmp_path / "ckpt"),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "FIRM" in {x["node"] for x in _lines(result.stdout)}
    assert any((tmp_path / "ckpt").rglob("p*.ckpt"))
