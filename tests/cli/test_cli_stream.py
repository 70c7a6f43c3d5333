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


@pytest.mark.integration
def test_worker_command_consumes_a_session_on_kafka(tmp_path: Path) -> None:
    import uuid

    from worker_inputs import START_US, WINDOW_US, replay_ticks

    from riskstream.bus import open_bus
    from riskstream.engine._pipeline import publish_ticks
    from riskstream.engine._worker import VECTORS_TOPIC, Codecs

    folder = portfolio_dir(tmp_path.parent)
    registry = f"mock://{uuid.uuid4().hex}"
    bus = open_bus("kafka://mock", partitions=4, registry_url=registry)
    try:
        publish_ticks(bus, replay_ticks(2.0), Codecs(bus))
        bus.ensure_topic(VECTORS_TOPIC)  # type: ignore[attr-defined]
        args = [
            "worker", "--bus", f"kafka://{bus.bootstrap}", "--portfolio", str(folder),  # type: ignore[attr-defined]
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--own", "0,1,2,3", "--mode", "simulation",
            "--window-us", str(WINDOW_US), "--start-us", str(START_US), "--end-us", str(START_US + 2_000_000),
            "--window", "250", "--registry-url", registry, "--until-end", "--duration", "60",
        ]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        stats = _lines(result.stdout)[-1]
        # 2 s of 250 ms windows, for each of the 4 positions partitions
        assert stats["windows_closed"] == 4 * 8
        assert sum(bus.end_offsets(VECTORS_TOPIC).values()) == 4 * 8
    finally:
        bus.close()
    assert sorted(p.name for p in (tmp_path / "ckpt" / "risk-workers").glob("p*.ckpt")) == [
        f"p{p}.ckpt" for p in range(4)
    ]


def test_stream_replays_the_market_history_of_a_risk_store(tmp_path: Path) -> None:
    """``--replay-store``: the closes replayed come from the store's market_history, not the portfolio's."""
    from riskstream.refdata import load_portfolio
    from riskstream.store import RiskStore

    folder = portfolio_dir(tmp_path.parent)
    history = load_portfolio(folder).history
    shocked = history.copy()
    equities = [c for c in shocked.columns if c.startswith("EQ.")]
    shocked.loc[shocked.index[-1], equities] *= 0.7  # a 30 % equity crash on the last stored close
    store = tmp_path / "store"
    RiskStore.open(store).write_market_history(shocked.iloc[-5:])

    def firm_var(*extra: str) -> float:
        args = [
            "stream", "--portfolio", str(folder), "--source", "replay", "--duration", "3", "--json",
            "--window", "250", *extra,
        ]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return [x["var"] for x in _lines(result.stdout) if x["node"] == "FIRM"][-1]

    assert firm_var("--replay-store", str(store), "--replay-days", "2") != firm_var()
    empty = CliRunner().invoke(
        app,
        ["stream", "--portfolio", str(folder), "--replay-store", str(tmp_path / "none"), "--duration", "1"],
    )
    # (the console script turns this into one `error: …` line and exit status 2)
    assert "holds no days to replay" in str(empty.exception)
