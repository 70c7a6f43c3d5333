"""``riskstream var``, ``stress`` and ``frtb`` through the installed console script, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from riskstream.marketdata import Universe, synthetic_history
from riskstream.refdata import sample_bank, write_portfolio

SCRIPT = str(Path(sys.executable).with_name("riskstream"))


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    universe = Universe.default()
    out = tmp_path_factory.mktemp("bank")
    write_portfolio(out, sample_bank(2_000, 3, universe=universe, history=synthetic_history(universe, 0)))
    return out


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("method", ["hs", "fhs", "parametric", "mc"])
def test_var_json_has_every_node_with_contributors(bank: Path, method: str) -> None:
    r = run(
        "var",
        "--portfolio",
        str(bank),
        "--method",
        method,
        "--confidence",
        "0.99",
        "--horizon-days",
        "1",
        "--by",
        "desk,book",
        "--paths",
        "2000",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["method"] == method and d["var_measure"] == "var_99_1d" and d["es_measure"] == "es_99_1d"
    levels = {n["level"] for n in d["nodes"]}
    assert levels == {"firm", "desk", "book"}
    firm = d["nodes"][0]
    assert firm["node"] == "FIRM" and firm["positions"] == 2_000
    assert firm["es"] >= firm["var"] > 0
    assert len(firm["top_positions"]) == 5 and len(firm["top_factors"]) == 5
    desks = [n for n in d["nodes"] if n["level"] == "desk"]
    if method in ("hs", "fhs", "mc"):
        # scenario methods: ES is sub-additive across desks (Acerbi–Tasche, coherent on common scenarios)
        assert firm["es"] <= sum(n["es"] for n in desks) + 1e-6


def test_var_table_names_measures_and_nodes(bank: Path) -> None:
    r = run("var", "--portfolio", str(bank), "--by", "desk")
    assert r.returncode == 0, r.stderr
    for word in ("var_99_1d", "es_99_1d", "FIRM", "RATES", "PRIME", "USD"):
        assert word in r.stdout, word


def test_stress_named_file_and_worst_window(bank: Path, tmp_path: Path) -> None:
    r = run("stress", "--portfolio", str(bank), "--scenario", "gfc-2008", "--by", "desk", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["scenario"] == "gfc-2008" and d["period"] == "2008-09-12→2008-10-10"
    firm = d["nodes"][0]
    assert firm["pnl"] == pytest.approx(sum(n["pnl"] for n in d["nodes"] if n["level"] == "desk"), rel=1e-9)
    shocks = tmp_path / "shocks.csv"
    shocks.write_text("factor,shift,type\nEQ.*,-0.3,\nIR.USD.*,0.01,absolute\n")
    r = run("stress", "--portfolio", str(bank), "--scenario", str(shocks), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["nodes"][0]["pnl"] < 0
    r = run("stress", "--portfolio", str(bank), "--scenario", "worst-10d", "--by", "desk")
    assert r.returncode == 0, r.stderr
    assert "worst 10-day" in r.stdout


def test_frtb_json(bank: Path) -> None:
    r = run("frtb", "--portfolio", str(bank), "--by", "desk", "--json")
    assert r.returncode == 0, r.stderr
    firm = json.loads(r.stdout)["nodes"][0]
    assert firm["liquidity_adjusted_es"] >= firm["es_10d"] > 0


def test_bad_input_gets_one_clear_line(bank: Path, tmp_path: Path) -> None:
    r = run("var", "--portfolio", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "nowhere" in r.stderr and "Traceback" not in r.stderr
    r = run("var", "--portfolio", str(bank), "--method", "garch-ish")
    assert r.returncode == 2 and "'method' has invalid value 'garch-ish'" in r.stderr
    r = run("var", "--portfolio", str(bank), "--confidence", "1.5")
    assert r.returncode == 2 and "confidence" in r.stderr and "1.5" in r.stderr
    r = run("stress", "--portfolio", str(bank), "--scenario", "martians")
    assert r.returncode == 2 and "martians" in r.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    r = run("stress", "--portfolio", str(bank), "--scenario", str(empty))
    assert r.returncode == 2 and "empty" in r.stderr and "Traceback" not in r.stderr


def test_bad_rows_are_reported_and_the_rest_computed(bank: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(bank, broken)
    inst = pd.read_parquet(broken / "instruments.parquet")
    pos = pd.read_parquet(broken / "positions.parquet")
    opt = inst.index[inst["type"] == "equity_option"][0]
    inst.loc[opt, "strike"] = -5.0  # negative strike: that instrument and its positions are left out
    extra = pos.iloc[[0]].copy()
    extra["position_id"], extra["instrument_id"] = "GHOST", "NO-SUCH-INSTRUMENT"
    pd.concat([pos, extra]).to_parquet(broken / "positions.parquet")
    inst.to_parquet(broken / "instruments.parquet")
    r = run("var", "--portfolio", str(broken), "--by", "desk", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    reasons = {b["id"]: b["reason"] for b in d["rejected"]}
    assert (
        "strike" in reasons[inst.loc[opt, "instrument_id"]]
        and "-5.0" in reasons[inst.loc[opt, "instrument_id"]]
    )
    assert "NO-SUCH-INSTRUMENT" in reasons["GHOST"]
    assert d["nodes"][0]["var"] > 0
    assert "left out" in r.stderr


def test_var_plot_writes_a_png(bank: Path, tmp_path: Path) -> None:
    out = tmp_path / "var.png"
    r = run("var", "--portfolio", str(bank), "--by", "desk", "--plot", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
