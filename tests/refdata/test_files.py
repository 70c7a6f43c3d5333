"""The portfolio directory: round trip, CSV input, bad rows reported with reasons, unusable input refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from riskstream.domain import BadRecord
from riskstream.errors import EmptyInputError, InputError, MissingFieldError
from riskstream.marketdata import Universe, synthetic_history
from riskstream.refdata import (
    SampleBank,
    load_history,
    load_instruments,
    load_market,
    load_portfolio,
    sample_bank,
    write_portfolio,
)

UNIVERSE = Universe.default(n_equities=30, n_option_names=10)


@pytest.fixture(scope="module")
def bank() -> SampleBank:
    return sample_bank(3_000, seed=2, universe=UNIVERSE, history=synthetic_history(UNIVERSE, seed=2))


@pytest.fixture(scope="module")
def written(bank: SampleBank, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_portfolio(tmp_path_factory.mktemp("bank"), bank)


def _reasons(rejected: tuple[BadRecord, ...] | list[BadRecord]) -> dict[str, str]:
    return {b.record_id: b.reason for b in rejected}


def _read(path: Path) -> pd.DataFrame:
    """A Parquet file as a plain frame (dictionary columns as text, as a user would edit them)."""
    frame = pq.read_table(path).to_pandas()
    return frame.astype({c: str for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})


def _csv_directory(tmp_path: Path, written: Path, instruments: pd.DataFrame, positions: pd.DataFrame) -> Path:
    """A user's directory: CSV instruments and positions beside the sample's market and history."""
    instruments.to_csv(tmp_path / "instruments.csv", index=False)
    positions.to_csv(tmp_path / "positions.csv", index=False)
    for name in ("market.json", "history.parquet"):
        (tmp_path / name).write_bytes((written / name).read_bytes())
    return tmp_path


def test_directory_holds_the_documented_files(written: Path, bank: SampleBank) -> None:
    assert {p.name for p in written.iterdir()} == {
        "instruments.parquet",
        "positions.parquet",
        "market.json",
        "history.parquet",
    }
    instruments = pq.read_table(written / "instruments.parquet")
    assert instruments.num_rows == len(bank.instruments)
    assert {"instrument_id", "type", "currency", "maturity", "strike", "pay_fixed"} <= set(
        instruments.column_names
    )
    assert str(instruments.schema.field("maturity").type) == "date32[day]"
    market = json.loads((written / "market.json").read_text())
    assert market["as_of"] == "2018-12-31" and market["reporting_currency"] == "USD"
    assert len(market["values"]) == UNIVERSE.n_factors


def test_round_trip_gives_back_the_same_bank(written: Path, bank: SampleBank) -> None:
    loaded = load_portfolio(written)
    expected = bank.portfolio()
    assert loaded.rejected == ()
    assert loaded.portfolio.instruments == expected.instruments
    got, want = loaded.portfolio.positions, expected.positions
    np.testing.assert_array_equal(got.position_id, want.position_id)
    np.testing.assert_array_equal(got.instrument, want.instrument)
    np.testing.assert_array_equal(got.quantity, want.quantity)
    for name, column in want.attributes.items():
        np.testing.assert_array_equal(got.attributes[name], column)
    assert loaded.snapshot == bank.snapshot
    pd.testing.assert_frame_equal(loaded.history, bank.history, check_freq=False, check_names=False)


def test_a_loaded_portfolio_writes_back_identically(written: Path, tmp_path: Path) -> None:
    first = load_portfolio(written)
    second = load_portfolio(write_portfolio(tmp_path / "again", first))
    assert second.portfolio.instruments == first.portfolio.instruments
    np.testing.assert_array_equal(second.portfolio.positions.quantity, first.portfolio.positions.quantity)
    assert second.snapshot == first.snapshot


def test_csv_input_loads_like_parquet(written: Path, tmp_path: Path) -> None:
    instruments = _read(written / "instruments.parquet")
    positions = _read(written / "positions.parquet")
    folder = _csv_directory(tmp_path, written, instruments, positions)
    from_csv, from_parquet = load_portfolio(folder), load_portfolio(written)
    assert from_csv.rejected == ()
    assert from_csv.portfolio.instruments == from_parquet.portfolio.instruments
    np.testing.assert_array_equal(
        from_csv.portfolio.positions.quantity, from_parquet.portfolio.positions.quantity
    )


def test_bad_rows_are_reported_with_reasons_and_the_rest_loads(written: Path, tmp_path: Path) -> None:
    instruments = _read(written / "instruments.parquet")
    positions = _read(written / "positions.parquet")
    option = instruments.index[instruments["type"] == "equity_option"][0]
    instruments.loc[option, "strike"] = -5.0
    swap = instruments.index[instruments["type"] == "interest_rate_swap"][0]
    instruments.loc[swap, "type"] = "credit_default_swap"
    bad_option, bad_swap = instruments.loc[option, "instrument_id"], instruments.loc[swap, "instrument_id"]
    positions.loc[0, "quantity"] = np.nan
    positions.loc[1, "instrument_id"] = "NO-SUCH-THING"
    positions.loc[2, "desk"] = ""
    positions.loc[3, "position_id"] = positions.loc[4, "position_id"]
    on_bad = positions.index[positions["instrument_id"].isin([bad_option, bad_swap])]
    folder = _csv_directory(tmp_path, written, instruments, positions)
    market = json.loads((folder / "market.json").read_text())
    market["values"]["VOL.SPX"] = -0.2
    (folder / "market.json").write_text(json.dumps(market))

    loaded = load_portfolio(folder)
    reasons = _reasons(loaded.rejected)
    kinds = {b.record_id: b.kind for b in loaded.rejected}
    assert "strike" in reasons[bad_option] and "-5.0" in reasons[bad_option]
    assert "credit_default_swap" in reasons[bad_swap] and "type" in reasons[bad_swap]
    assert kinds[bad_option] == kinds[bad_swap] == "instrument"
    pid = positions["position_id"]
    assert "quantity" in reasons[pid[0]] and "nan" in reasons[pid[0]]
    assert "NO-SUCH-THING" in reasons[pid[1]]
    assert "desk" in reasons[pid[2]]
    assert "duplicate" in reasons[pid[4]]
    for i in on_bad:
        assert "was rejected" in reasons[pid[i]]
    assert kinds["VOL.SPX"] == "market" and "-0.2" in reasons["VOL.SPX"]
    assert "VOL.SPX" not in loaded.snapshot
    n_bad_positions = sum(b.kind == "position" for b in loaded.rejected)
    assert n_bad_positions == 4 + len(on_bad)
    assert len(loaded.portfolio) == len(positions) - n_bad_positions
    assert len(loaded.portfolio.instruments) == len(instruments) - 2


def test_conflicting_definitions_of_one_instrument_are_rejected(written: Path, tmp_path: Path) -> None:
    instruments = _read(written / "instruments.parquet")
    duplicate = instruments.iloc[[0]].copy()
    twin = instruments.iloc[[1]].copy()
    conflict = instruments.iloc[[1]].copy()
    conflict["currency"] = "EUR" if conflict["currency"].iloc[0] != "EUR" else "USD"
    path = tmp_path / "instruments.csv"
    pd.concat([instruments, duplicate, twin, conflict]).to_csv(path, index=False)
    good, bad = load_instruments(path)
    assert len(good) == len(instruments) - 1  # the exact duplicate counts once
    assert [b.record_id for b in bad] == [instruments["instrument_id"].iloc[1]]
    assert "2 different rows" in bad[0].reason


def test_missing_and_empty_inputs_are_refused_naming_the_file(written: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_portfolio(tmp_path / "nowhere")
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "history.parquet").write_bytes((written / "history.parquet").read_bytes())
    with pytest.raises(InputError, match=r"instruments\.parquet"):
        load_portfolio(folder)
    (folder / "instruments.csv").write_text("")
    with pytest.raises(EmptyInputError, match=r"instruments\.csv"):
        load_portfolio(folder)
    (folder / "instruments.csv").write_text("instrument_id,type,currency,underlying\n")
    with pytest.raises(EmptyInputError, match=r"instruments\.csv"):
        load_portfolio(folder)
    (folder / "instruments.csv").write_text("instrument_id,type,currency,underlying\nSTK-A,equity,USD,SPX\n")
    (folder / "positions.csv").write_text("position_id,instrument_id,quantity,desk,book\nP1,STK-A,10,EQ,B\n")
    with pytest.raises(MissingFieldError, match="trader"):
        load_portfolio(folder)
    (folder / "positions.csv").write_text(
        "position_id,instrument_id,quantity,desk,book,trader\nP1,STK-A,10,EQ,B,t\n"
    )
    loaded = load_portfolio(folder)  # no market.json: the history's last row is the market
    assert len(loaded.portfolio) == 1 and loaded.snapshot.as_of.isoformat() == "2018-12-31"


def test_instruments_need_their_key_columns(tmp_path: Path) -> None:
    path = tmp_path / "instruments.csv"
    path.write_text("instrument_id,currency\nA,USD\n")
    with pytest.raises(MissingFieldError, match="type"):
        load_instruments(path)


def test_market_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "market.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"market\.json"):
        load_market(path)
    path.write_text(json.dumps({"values": {"EQ.SPX": 1.0}}))
    with pytest.raises(MissingFieldError, match="as_of"):
        load_market(path)
    path.write_text(json.dumps({"as_of": "2018-12-31", "values": {}}))
    with pytest.raises(EmptyInputError, match=r"market\.json"):
        load_market(path)


def test_history_loads_from_csv_and_refuses_bad_columns(written: Path, tmp_path: Path) -> None:
    history = load_history(written / "history.parquet")
    csv = tmp_path / "history.csv"
    history.iloc[-50:, :20].to_csv(csv)
    from_csv = load_history(csv)
    assert from_csv.index.name == "date" and from_csv.index[-1] == pd.Timestamp("2018-12-31")
    np.testing.assert_allclose(from_csv.to_numpy(), history.iloc[-50:, :20].to_numpy())
    history.iloc[-5:, :3].rename(columns={history.columns[0]: "PRICE_OF_X"}).to_csv(csv)
    with pytest.raises(InputError, match="PRICE_OF_X"):
        load_history(csv)
    csv.write_text("date,EQ.SPX\n")
    with pytest.raises(EmptyInputError, match=r"history\.csv"):
        load_history(csv)
