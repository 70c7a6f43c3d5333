"""The portfolio directory: instruments, positions, the valuation-date market and the factor history, as files.

A portfolio directory holds::

    instruments.parquet   one row per instrument: ``instrument_id``, ``type`` (an `InstrumentType` value, e.g.
                          ``equity_option``) and the union of every family's fields (``currency``,
                          ``underlying``, ``foreign_currency``, ``maturity`` (date), ``strike``, ``option_type``,
                          ``trade_price``, ``multiplier``, ``dividend_yield``, ``coupon_rate``, ``frequency``,
                          ``face``, ``spread``, ``fixed_rate``, ``pay_fixed``); a family leaves the others empty
    positions.parquet     one row per position: ``position_id``, ``instrument_id``, ``quantity`` (units of the
                          instrument, negative = short), ``desk``, ``book``, ``trader`` (mandatory) and
                          ``counterparty``, ``sector``, ``region``, ``currency``
    market.json           ``{"as_of": "YYYY-MM-DD", "reporting_currency": "USD", "values": {factor id: value}}``
    history.parquet       daily factor levels: index ``date``, one column per factor id

Users who bring their own data may write ``instruments.csv`` and ``positions.csv`` instead (same columns, dates
as ``YYYY-MM-DD``), and ``history.csv`` (first column the date); ``market.json`` may be left out, the history's last
row is then the market.

Loading is a batch: one bad instrument row (unknown type, negative strike, missing field, …), position (NaN
quantity, unknown instrument, duplicate id, …) or market value (negative vol or price) becomes a `BadRecord` with
a reason naming the field and the value, in ``Portfolio.rejected``; positions on a rejected instrument are rejected
too, instruments needing a rejected market value fail when priced, and the rest loads. Only input that is
unusable as a whole raises: a missing directory or file (`InputError` naming the path), an empty file
(`EmptyInputError` naming it) or a missing mandatory column (`MissingFieldError`).

Positions are read column-wise (a million load in about a second); each distinct instrument row is built once.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..domain import (
    ATTRIBUTES,
    INSTRUMENT_CLASSES,
    BadRecord,
    Instrument,
    MarketSnapshot,
    Portfolio,
    PositionTable,
    instrument_from_record,
    parse_factor,
)
from ..errors import EmptyInputError, InputError, MissingFieldError
from ._sample import SampleBank

__all__ = [
    "LoadedPortfolio",
    "load_history",
    "load_instruments",
    "load_market",
    "load_portfolio",
    "load_positions",
    "write_portfolio",
]

INSTRUMENTS = "instruments"
POSITIONS = "positions"
MARKET = "market.json"
HISTORY = "history"

#: Mandatory position columns; the others of `ATTRIBUTES` may be absent.
POSITION_COLUMNS: tuple[str, ...] = ("position_id", "instrument_id", "quantity", "desk", "book", "trader")

_ARROW_TYPES = {
    "str": pa.string(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
}


def _instrument_schema() -> pa.Schema:
    """``instrument_id``, ``type`` and the union of every family's fields, each with its Arrow type."""
    columns: dict[str, pa.DataType] = {"instrument_id": pa.string(), "type": pa.string()}
    for cls in INSTRUMENT_CLASSES.values():
        for f in fields(cls):
            columns.setdefault(f.name, _ARROW_TYPES.get(str(f.type), pa.string()))
    return pa.schema(list(columns.items()))


INSTRUMENT_SCHEMA = _instrument_schema()


@dataclass(frozen=True)
class LoadedPortfolio:
    """What `load_portfolio` returns.

    Attributes
    ----------
    portfolio
        Instruments and positions that loaded; ``portfolio.rejected`` lists the records left out, with reasons.
    snapshot
        The valuation-date market.
    history
        Daily factor levels (index: dates, columns: factor ids).
    directory
        Where it was loaded from.
    """

    portfolio: Portfolio
    snapshot: MarketSnapshot
    history: pd.DataFrame
    directory: Path

    @property
    def rejected(self) -> tuple[BadRecord, ...]:
        return self.portfolio.rejected


# ---------------------------------------------------------------------------------------------------------------
# writing


def write_portfolio(directory: str | os.PathLike[str], bank: SampleBank | LoadedPortfolio) -> Path:
    """Write a portfolio directory (see the module docstring); files are replaced atomically.

    Parameters
    ----------
    directory
        Target folder, created if missing.
    bank
        A generated `SampleBank`, or a `LoadedPortfolio` to write back.

    Returns
    -------
    pathlib.Path
        The directory.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(bank, LoadedPortfolio):
        instruments: Sequence[Instrument] = bank.portfolio.instruments
        positions = _position_columns(bank.portfolio)
    else:
        instruments, positions = bank.instruments, bank.positions
    _atomic(out / f"{INSTRUMENTS}.parquet", lambda p: pq.write_table(_instrument_table(instruments), p))
    _atomic(out / f"{POSITIONS}.parquet", lambda p: pq.write_table(_position_table(positions), p))
    market = {
        "as_of": bank.snapshot.as_of.isoformat(),
        "reporting_currency": bank.snapshot.reporting_currency,
        "values": dict(bank.snapshot.values),
    }
    _atomic(out / MARKET, lambda p: p.write_text(json.dumps(market, indent=1)))
    history = bank.history.copy()
    history.index = pd.DatetimeIndex(history.index, name="date")
    _atomic(out / f"{HISTORY}.parquet", lambda p: history.to_parquet(p))
    return out


def _atomic(path: Path, write: Any) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _instrument_table(instruments: Sequence[Instrument]) -> pa.Table:
    records = [inst.to_record() for inst in instruments]
    return pa.Table.from_pylist(records, schema=INSTRUMENT_SCHEMA)


def _position_columns(portfolio: Portfolio) -> dict[str, np.ndarray]:
    table = portfolio.positions
    ids = np.array([inst.instrument_id for inst in portfolio.instruments], dtype=str)
    return {
        "position_id": table.position_id,
        "instrument_id": ids[table.instrument],
        "quantity": table.quantity,
        **table.attributes,
    }


def _position_table(columns: Mapping[str, np.ndarray]) -> pa.Table:
    """Positions as Arrow: text columns other than the id dictionary-encoded (few distinct values)."""
    arrays = {}
    for name, values in columns.items():
        if name == "quantity":
            arrays[name] = pa.array(np.asarray(values, dtype=np.float64))
        elif name == "position_id":
            arrays[name] = pa.array(np.asarray(values).astype(str))
        else:
            arrays[name] = pa.array(np.asarray(values).astype(str)).dictionary_encode()
    return pa.table(arrays)


# ---------------------------------------------------------------------------------------------------------------
# reading


def load_portfolio(directory: str | os.PathLike[str]) -> LoadedPortfolio:
    """Load a portfolio directory; bad instruments and positions are reported in ``portfolio.rejected``.

    Parameters
    ----------
    directory
        Folder holding ``instruments`` and ``positions`` (``.parquet`` or ``.csv``), ``history`` (``.parquet``
        or ``.csv``) and, optionally, ``market.json``.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise InputError(f"portfolio directory not found: {folder}", field="directory", value=str(folder))
    history = load_history(_find(folder, HISTORY))
    market_file = folder / MARKET
    snapshot, bad_market = (
        load_market(market_file) if market_file.exists() else _snapshot_from_history(history)
    )
    instruments, bad_instruments = load_instruments(_find(folder, INSTRUMENTS))
    positions = load_positions(_find(folder, POSITIONS))
    portfolio = _assemble(instruments, bad_instruments, positions, snapshot.reporting_currency, bad_market)
    return LoadedPortfolio(portfolio, snapshot, history, folder)


def _find(folder: Path, stem: str) -> Path:
    for suffix in (".parquet", ".csv"):
        path = folder / f"{stem}{suffix}"
        if path.exists():
            return path
    raise InputError(
        f"missing file: {folder / stem}.parquet (or {stem}.csv)", field="file", value=str(folder / stem)
    )


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"file not found: {path}", field="file", value=str(path))
    if path.stat().st_size == 0:
        raise EmptyInputError("file", str(path))


def _read_table(path: Path, *, text: bool) -> pa.Table:
    """A Parquet or CSV file as an Arrow table; CSV cells read as text when ``text`` (types are coerced later)."""
    _check_file(path)
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(
                path, dtype=str if text else None, keep_default_na=True, skipinitialspace=True
            )
            table = pa.Table.from_pandas(frame, preserve_index=False)
        else:
            table = pq.read_table(path)
    except (pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"cannot read {path}: {exc}", field="file", value=str(path)) from None
    except pd.errors.EmptyDataError:
        raise EmptyInputError("file", str(path)) from None
    if table.num_rows == 0:
        raise EmptyInputError("file", str(path))
    return table


def load_instruments(path: str | os.PathLike[str]) -> tuple[list[Instrument], list[BadRecord]]:
    """Instruments of a file (``.parquet`` or ``.csv``): the good ones, and a `BadRecord` per bad row.

    Identical rows count once; rows that define the same ``instrument_id`` differently are all rejected.
    """
    file = Path(path)
    table = _read_table(file, text=True)
    for name in ("instrument_id", "type"):
        if name not in table.column_names:
            raise MissingFieldError(name, where=str(file))
    records = [{k: _clean(v) for k, v in rec.items()} for rec in table.to_pylist()]
    unique: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
    for rec in records:
        unique.setdefault(tuple(rec.items()), rec)
    by_id: dict[str, list[dict[str, Any]]] = {}
    bad: list[BadRecord] = []
    for row, rec in enumerate(unique.values()):
        iid = rec.get("instrument_id")
        if iid is None:
            bad.append(BadRecord("instrument", f"row {row}", "mandatory field 'instrument_id' is missing"))
            continue
        by_id.setdefault(str(iid), []).append(rec)
    good: list[Instrument] = []
    for iid, recs in by_id.items():
        if len(recs) > 1:
            bad.append(
                BadRecord(
                    "instrument", iid, f"instrument_id {iid!r} is defined by {len(recs)} different rows"
                )
            )
            continue
        try:
            good.append(instrument_from_record({**recs[0], "instrument_id": iid}))
        except (ValueError, TypeError) as exc:  # InputError is a ValueError
            bad.append(BadRecord("instrument", iid, str(exc).removeprefix(f"{iid}: ")))
    return good, bad


def _clean(value: Any) -> Any:
    """Empty cells, NaN and blank strings are all 'missing'; text is stripped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def load_positions(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Position columns of a file (``.parquet`` or ``.csv``) as numpy arrays; rows are validated on assembly.

    Raises `MissingFieldError` if a mandatory column (``position_id``, ``instrument_id``, ``quantity``, ``desk``,
    ``book``, ``trader``) is absent.
    """
    file = Path(path)
    table = _read_table(file, text=False)
    for name in POSITION_COLUMNS:
        if name not in table.column_names:
            raise MissingFieldError(name, where=str(file))
    columns: dict[str, np.ndarray] = {}
    for name in (*POSITION_COLUMNS, *ATTRIBUTES):
        if name in columns or name not in table.column_names:
            continue
        col = table.column(name)
        columns[name] = _numbers(col) if name == "quantity" else _text(col)
    return columns


def _text(column: pa.ChunkedArray) -> np.ndarray:
    """A column as a numpy unicode array, missing values as ``""``; dictionaries are decoded once per value."""
    if pa.types.is_dictionary(column.type):
        combined = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        values = _text(pa.chunked_array([combined.dictionary]))
        values = np.append(values, "")
        indices = pc.fill_null(combined.indices, len(values) - 1).to_numpy(zero_copy_only=False)
        return values[indices]
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    return np.asarray(pc.fill_null(column, "").to_numpy(zero_copy_only=False)).astype(str)


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64 with NaN for missing; text columns as objects (the domain reports them)."""
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.asarray(column.to_pylist(), dtype=object)


def _assemble(
    instruments: list[Instrument],
    bad_instruments: list[BadRecord],
    positions: dict[str, np.ndarray],
    reporting_currency: str,
    bad_market: Sequence[BadRecord] = (),
) -> Portfolio:
    """Validate positions against the instruments; positions on a rejected instrument carry its reason."""
    bad: list[BadRecord] = [*bad_market, *bad_instruments]
    pid = positions["position_id"]
    iid = positions["instrument_id"]
    drop = np.zeros(len(pid), dtype=bool)
    rejected_ids = {b.record_id: b.reason for b in bad_instruments}
    if rejected_ids:
        on_rejected = np.isin(iid, np.array(list(rejected_ids), dtype=str))
        for i in np.flatnonzero(on_rejected):
            reason = f"instrument {str(iid[i])!r} was rejected: {rejected_ids[str(iid[i])]}"
            bad.append(BadRecord("position", str(pid[i]), reason))
        drop |= on_rejected
    duplicate = pd.Index(pid).duplicated(keep="first") & (pid != "")
    for i in np.flatnonzero(duplicate & ~drop):
        bad.append(
            BadRecord("position", str(pid[i]), f"duplicate position_id {str(pid[i])!r}: the first is kept")
        )
    drop |= duplicate
    if drop.any():
        positions = {k: v[~drop] for k, v in positions.items()}
    if len(positions["position_id"]) == 0:
        table, _ = PositionTable.from_columns(positions, {})
        return Portfolio(tuple(instruments), table, reporting_currency, tuple(bad))
    columns: dict[str, Sequence[object] | np.ndarray] = dict(positions)
    return Portfolio.from_records(instruments, columns, reporting_currency, bad)


def load_market(path: str | os.PathLike[str]) -> tuple[MarketSnapshot, list[BadRecord]]:
    """The valuation-date market of a ``market.json`` file, and a `BadRecord` per unusable factor value.

    A bad value (a negative vol or price, a non-number, an unparseable factor id) leaves that factor out of the
    snapshot and is reported (kind ``market``); instruments that need it then fail to price, with a reason.
    """
    file = Path(path)
    _check_file(file)
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {file}: {exc}", field="file", value=str(file)) from None
    if not isinstance(data, dict):
        raise InputError(f"{file}: expected a JSON object", field="file", value=str(file))
    for name in ("as_of", "values"):
        if name not in data:
            raise MissingFieldError(name, where=str(file))
    if not isinstance(data["values"], dict):
        raise InputError(
            "field 'values' must map factor ids to numbers",
            field="values",
            value=data["values"],
            where=str(file),
        )
    if not data["values"]:
        raise EmptyInputError("market values", str(file))
    try:
        as_of = date.fromisoformat(str(data["as_of"])[:10])
    except ValueError:
        raise InputError(
            f"field 'as_of' has invalid value {data['as_of']!r}: must be a date (YYYY-MM-DD)",
            field="as_of",
            value=data["as_of"],
            where=str(file),
        ) from None
    return _snapshot(as_of, data["values"], str(data.get("reporting_currency", "USD")))


def _snapshot(
    as_of: date, values: Mapping[str, Any], reporting_currency: str
) -> tuple[MarketSnapshot, list[BadRecord]]:
    """A snapshot of the values that pass the snapshot's checks; the others as `BadRecord` (kind ``market``)."""
    try:
        return MarketSnapshot(as_of, values, reporting_currency), []
    except InputError:
        pass  # some value is bad: find which, one by one (the rare path)
    good: dict[str, Any] = {}
    bad: list[BadRecord] = []
    for fid, raw in values.items():
        try:
            MarketSnapshot(as_of, {fid: raw}, reporting_currency)
        except InputError as exc:
            bad.append(BadRecord("market", str(fid), str(exc)))
        else:
            good[fid] = raw
    return MarketSnapshot(as_of, good, reporting_currency), bad


def _snapshot_from_history(history: pd.DataFrame) -> tuple[MarketSnapshot, list[BadRecord]]:
    """The history's last row as the market (factors without a value that day are left out)."""
    last = history.iloc[-1].dropna()
    values = {str(k): float(v) for k, v in last.items()}
    return _snapshot(pd.Timestamp(history.index[-1]).date(), values, "USD")


def load_history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Daily factor levels of a ``.parquet`` or ``.csv`` file (first column, or index, the date).

    Returns a float frame indexed by a sorted `DatetimeIndex` named ``date``, one column per factor id; raises
    `InputError` naming the file on an unparseable factor id, date or value.
    """
    file = Path(path)
    _check_file(file)
    try:
        if file.suffix.lower() == ".csv":
            frame = pd.read_csv(file, index_col=0)
        else:
            frame = pd.read_parquet(file)
    except pd.errors.EmptyDataError:
        raise EmptyInputError("file", str(file)) from None
    except (pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise InputError(f"cannot read {file}: {exc}", field="file", value=str(file)) from None
    if "date" in frame.columns:
        frame = frame.set_index("date")
    if frame.empty:
        raise EmptyInputError("file", str(file))
    for fid in frame.columns:
        try:
            parse_factor(str(fid))
        except InputError as exc:
            raise InputError(str(exc), field="factor", value=fid, where=str(file)) from None
    try:
        index = pd.DatetimeIndex(pd.to_datetime(frame.index), name="date")
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"field 'date' has invalid values: {exc}",
            field="date",
            value=str(frame.index[0]),
            where=str(file),
        ) from None
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InputError(f"factor levels must be numbers: {exc}", field="values", where=str(file)) from None
    out = pd.DataFrame(values, index=index, columns=[str(c) for c in frame.columns])
    return out.sort_index()
