"""Daily price series: the real index histories shipped with ``arch``, or a CSV file of dates and prices.

Prices are adjusted closes (dividends and splits folded in) in the instrument's currency, one per business day,
indexed by date in ascending order. Returns are **simple** daily returns ``P_t / P_{t-1} - 1`` (fraction of value,
positive for a gain), dated on the day they are realised.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import EmptyInputError, InvalidFieldError, MissingFieldError

__all__ = ["BUILTIN_SERIES", "load_price_series", "simple_returns"]

# Column headers recognised as a date or a price, compared after lower-casing and dropping spaces, "_", "-", ".".
_DATE_COLUMNS = ("date", "datetime", "timestamp", "time", "day")
# Preference order: an adjusted close beats a raw close beats a generic price.
_PRICE_COLUMNS = ("adjclose", "adjustedclose", "adjclosingprice", "close", "closingprice", "price")
_PRICE_FIELD = "price"


def _arch_column(module: str, column: str) -> Callable[[], pd.Series]:
    def load() -> pd.Series:
        import importlib

        frame = importlib.import_module(f"arch.data.{module}").load()
        return frame[column]

    return load


#: Built-in series: name → (description, loader). Real daily history shipped by the ``arch`` package.
BUILTIN_SERIES: dict[str, tuple[str, Callable[[], pd.Series]]] = {
    "sp500": ("S&P 500 index, adjusted close, 1999-01-04 to 2018-12-31", _arch_column("sp500", "Adj Close")),
    "nasdaq": (
        "NASDAQ Composite index, adjusted close, 1999-01-04 to 2018-12-31",
        _arch_column("nasdaq", "Adj Close"),
    ),
    "wti": (
        "WTI crude oil spot price (FRED DCOILWTICO), USD/bbl, 1986-2019",
        _arch_column("wti", "DCOILWTICO"),
    ),
    "vix": ("CBOE VIX index level, 2014-2019", _arch_column("vix", "vix")),
}


def _normalise(header: object) -> str:
    return re.sub(r"[\s_\-.]", "", str(header).lower())


def _load_builtin(name: str) -> pd.Series:
    raw = BUILTIN_SERIES[name][1]()
    # FRED-sourced series (wti, vix) mark exchange holidays as missing rather than repeating the last price.
    prices = raw.dropna().astype(np.float64)
    prices.index = pd.DatetimeIndex(prices.index).as_unit("ns")
    prices.index.name = "date"
    prices.name = name
    return prices


def _pick(columns: list[str], wanted: tuple[str, ...]) -> str | None:
    by_name = {_normalise(c): c for c in columns}
    for key in wanted:
        if key in by_name:
            return by_name[key]
    return None


def _load_csv(path: Path) -> pd.Series:
    where = str(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise EmptyInputError("price file", where) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InvalidFieldError("series", where, f"cannot be read as CSV: {exc}") from exc
    columns = [str(c) for c in frame.columns]
    date_col = _pick(columns, _DATE_COLUMNS)
    if date_col is None:
        raise MissingFieldError("date", where=f"{where} (columns: {', '.join(columns)})")
    price_col = _pick(columns, _PRICE_COLUMNS)
    if price_col is None:
        raise MissingFieldError(
            _PRICE_FIELD,
            where=f"{where} (columns: {', '.join(columns)}; a price column is Adj Close, Adjusted Close, Close or Price)",
        )
    if frame.empty:
        raise EmptyInputError("price file", where)
    dates = pd.to_datetime(frame[date_col].str.strip(), errors="coerce")
    prices = pd.to_numeric(frame[price_col].str.strip(), errors="coerce")
    values = prices.to_numpy(np.float64)
    bad = dates.isna().to_numpy() | ~np.isfinite(values) | ~(values > 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        # Lines are numbered as in the file: the header is line 1, the first data row line 2.
        line = f"{where}, line {i + 2}"
        if pd.isna(dates.iloc[i]):
            raise InvalidFieldError(date_col, frame[date_col].iloc[i], "not a date", where=line)
        if not np.isfinite(values[i]):
            raise InvalidFieldError(price_col, frame[price_col].iloc[i], "not a finite number", where=line)
        raise InvalidFieldError(price_col, float(values[i]), "prices must be positive", where=line)
    series = pd.Series(values, index=pd.DatetimeIndex(dates, name="date").as_unit("ns"))
    duplicated = series.index.duplicated()
    if duplicated.any():
        first = series.index[int(np.flatnonzero(duplicated)[0])]
        raise InvalidFieldError(
            date_col, first.strftime("%Y-%m-%d"), "date appears more than once", where=where
        )
    series = series.sort_index()
    series.name = path.stem
    return series


def load_price_series(name_or_path: str | Path) -> pd.Series:
    """Load a daily price series by built-in name or from a CSV file.

    Parameters
    ----------
    name_or_path : str or Path
        A built-in name — ``sp500`` or ``nasdaq`` (adjusted close of the index), ``wti`` or ``vix`` (the single
        column) — real daily histories shipped by the ``arch`` package (``arch.data.<name>.load()``); or the
        path of a CSV file with a date column (``Date``, ``Datetime``, ``Timestamp``…) and a price column, the
        first found of ``Adj Close``, ``Adjusted Close``, ``Close``, ``Price`` (headers matched ignoring case,
        spaces, ``_``, ``-`` and ``.``). Other columns are ignored.

    Returns
    -------
    pandas.Series
        Prices (currency units per unit of the instrument, all positive) indexed by a ``DatetimeIndex`` named
        ``date`` in ascending order; the series is named after the built-in or the file's stem. Missing values
        of the built-in FRED series (exchange holidays) are dropped.

    Raises
    ------
    InvalidFieldError
        Not a built-in name and no such file; a date or price that does not parse, a price <= 0, a repeated
        date (each naming the line of the file and the value).
    MissingFieldError
        No date column or no price column.
    EmptyInputError
        The file is empty or holds only a header.
    """
    key = str(name_or_path).strip()
    if key.lower() in BUILTIN_SERIES:
        return _load_builtin(key.lower())
    path = Path(key).expanduser()
    if not path.is_file():
        raise InvalidFieldError(
            "series", key, f"no such file, and not a built-in series ({', '.join(BUILTIN_SERIES)})"
        )
    return _load_csv(path)


def simple_returns(prices: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """Return simple daily returns ``P_t / P_{t-1} - 1`` of a price series (or of each column of a frame).

    Parameters
    ----------
    prices : pandas.Series or pandas.DataFrame
        Positive prices in date order (currency units), at least two rows.

    Returns
    -------
    pandas.Series or pandas.DataFrame
        Returns (fraction of value, gain positive), one row shorter, each dated on the later day of its pair.
    """
    if len(prices) < 2:
        raise EmptyInputError("returns", f"{len(prices)} price(s): need at least 2")
    values = prices.to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        first = np.argwhere(bad)[0]
        raise InvalidFieldError(
            _PRICE_FIELD,
            float(values[tuple(first)]),
            "prices must be finite and positive",
            where=f"date {prices.index[int(first[0])]}",
        )
    return (prices / prices.shift(1) - 1.0).iloc[1:]
