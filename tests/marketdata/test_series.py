"""Daily price series: built-in histories shipped by arch, CSV files, simple returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskstream.errors import EmptyInputError, InvalidFieldError, MissingFieldError
from riskstream.marketdata import BUILTIN_SERIES, load_price_series, simple_returns


def _csv(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- built-in series ------------------------------------------------------------------------------------------


def test_sp500_is_the_arch_adjusted_close() -> None:
    import arch.data.sp500

    prices = load_price_series("sp500")
    raw = arch.data.sp500.load()["Adj Close"]
    assert len(prices) == len(raw) == 5031
    assert prices.index[0] == pd.Timestamp("1999-01-04") and prices.index[-1] == pd.Timestamp("2018-12-31")
    np.testing.assert_array_equal(prices.to_numpy(), raw.to_numpy())
    assert prices.name == "sp500" and prices.index.name == "date"
    assert prices.index.is_monotonic_increasing


@pytest.mark.parametrize("name", sorted(BUILTIN_SERIES))
def test_builtin_series_are_clean(name: str) -> None:
    prices = load_price_series(name.upper())  # names are case-insensitive
    assert len(prices) > 1000
    assert prices.notna().all() and (prices > 0).all()  # FRED holidays (NaN) are dropped for wti and vix
    assert isinstance(prices.index, pd.DatetimeIndex) and prices.index.is_unique


# --- CSV files ------------------------------------------------------------------------------------------------


def test_csv_prefers_adjusted_close(tmp_path: Path) -> None:
    path = _csv(tmp_path, "Date,Open,Close,Adj Close\n2020-01-03,1,10,9\n2020-01-02,1,11,10\n")
    prices = load_price_series(path)
    # sorted by date; the adjusted close wins over the close
    assert prices.index.tolist() == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]
    assert prices.tolist() == [10.0, 9.0]
    assert prices.name == "prices"


@pytest.mark.parametrize(
    ("header", "column_value"),
    [("timestamp,adj_close", 5.0), ("DATE,ADJUSTED CLOSE", 5.0), ("day,close", 5.0), ("Date,Price", 5.0)],
)
def test_csv_column_names_are_detected_case_insensitively(
    tmp_path: Path, header: str, column_value: float
) -> None:
    path = _csv(tmp_path, f"{header}\n2021-05-03,{column_value}\n2021-05-04,6\n")
    assert load_price_series(str(path)).tolist() == [column_value, 6.0]


def test_missing_file_names_the_value(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(InvalidFieldError, match=r"'series'.*nope\.csv.*no such file.*sp500") as info:
        load_price_series(missing)
    assert info.value.field == "series"


@pytest.mark.parametrize("text", ["", "Date,Adj Close\n"], ids=["zero-bytes", "header-only"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(EmptyInputError, match=r"price file is empty.*prices\.csv"):
        load_price_series(path)


@pytest.mark.parametrize(
    ("text", "error", "pattern", "field", "value"),
    [
        (
            "Date,Open,Volume\n2020-01-02,1,100\n",
            MissingFieldError,
            r"columns: Date, Open, Volume;.*Adj Close.*field 'price' is missing",
            "price",
            None,
        ),
        ("when,Close\n2020-01-02,1\n", MissingFieldError, r"field 'date' is missing", "date", None),
        (
            "Date,Adj Close\n2020-01-02,10\n2020-01-03,11\n2020-01-06,-2.5\n",
            InvalidFieldError,
            r"line 4: field 'Adj Close' has invalid value -2\.5: .*positive",
            "Adj Close",
            -2.5,
        ),
    ],
    ids=["no-price-column", "no-date-column", "negative-price"],
)
def test_bad_file_names_field_and_value(
    tmp_path: Path, text: str, error: type[Exception], pattern: str, field: str, value: object
) -> None:
    with pytest.raises(error, match=pattern) as info:
        load_price_series(_csv(tmp_path, text))
    assert getattr(info.value, "field", None) == field
    assert getattr(info.value, "value", None) == value


@pytest.mark.parametrize("bad", ["abc", "", "inf"])
def test_non_numeric_price_names_line_and_value(tmp_path: Path, bad: str) -> None:
    path = _csv(tmp_path, f"Date,Close\n2020-01-02,10\n2020-01-03,{bad}\n")
    with pytest.raises(InvalidFieldError, match=rf"line 3: field 'Close' has invalid value '{bad}'"):
        load_price_series(path)


def test_bad_and_duplicate_dates(tmp_path: Path) -> None:
    with pytest.raises(InvalidFieldError, match=r"line 2: field 'Date' has invalid value 'yesterday'"):
        load_price_series(_csv(tmp_path, "Date,Close\nyesterday,10\n"))
    with pytest.raises(InvalidFieldError, match=r"'Date' has invalid value '2020-01-02'.*more than once"):
        load_price_series(_csv(tmp_path, "Date,Close\n2020-01-02,10\n2020-01-02,11\n", "dup.csv"))


# --- returns --------------------------------------------------------------------------------------------------


def test_simple_returns_by_hand() -> None:
    # 100 -> 110 -> 99: +10 %, then 99 / 110 - 1 = -10 %
    prices = pd.Series([100.0, 110.0, 99.0], index=pd.bdate_range("2020-01-01", periods=3))
    returns = simple_returns(prices)
    np.testing.assert_allclose(returns.to_numpy(), [0.10, -0.10])
    assert returns.index[0] == prices.index[1]


def test_simple_returns_of_a_frame() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [4.0, 3.0]})
    np.testing.assert_allclose(simple_returns(frame).to_numpy(), [[1.0, -0.25]])


def test_simple_returns_rejects_bad_prices() -> None:
    prices = pd.Series([100.0, 0.0, 99.0], index=pd.bdate_range("2020-01-01", periods=3))
    with pytest.raises(InvalidFieldError, match=r"date 2020-01-02.*'price' has invalid value 0\.0"):
        simple_returns(prices)
    with pytest.raises(EmptyInputError, match="returns"):
        simple_returns(prices.iloc[:1])
