"""Positions: a quantity of an instrument held in a book, with the attributes risk is sliced by."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidFieldError, MissingFieldError

__all__ = ["ATTRIBUTES", "Position", "PositionTable"]

#: Attributes every position carries; risk can be aggregated and filtered by each of them.
ATTRIBUTES: tuple[str, ...] = ("desk", "book", "trader", "counterparty", "sector", "region", "currency")


@dataclass(frozen=True, slots=True)
class Position:
    """One position (or trade): ``quantity`` units of ``instrument_id`` (negative = short)."""

    position_id: str
    instrument_id: str
    quantity: float
    desk: str
    book: str
    trader: str
    counterparty: str = ""
    sector: str = ""
    region: str = ""
    currency: str = ""

    def __post_init__(self) -> None:
        for name in ("position_id", "instrument_id", "desk", "book", "trader"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise MissingFieldError(name, where=str(self.position_id))
        q = self.quantity
        if isinstance(q, bool) or not isinstance(q, int | float) or not math.isfinite(q):
            raise InvalidFieldError("quantity", q, "must be a finite number", where=self.position_id)


@dataclass(frozen=True)
class PositionTable:
    """Many positions held column-wise (numpy arrays of equal length) for vectorised risk.

    ``instrument`` holds, for each position, the index of its instrument in the portfolio's instrument list.
    Build one with :meth:`from_columns`, which validates every row and reports bad rows instead of raising.
    """

    position_id: np.ndarray
    instrument: np.ndarray
    quantity: np.ndarray
    attributes: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        n = len(self.position_id)
        for name, col in (
            ("instrument", self.instrument),
            ("quantity", self.quantity),
            *self.attributes.items(),
        ):
            if len(col) != n:
                raise InvalidFieldError(name, len(col), f"column length differs from position_id ({n})")

    def __len__(self) -> int:
        return len(self.position_id)

    def attribute(self, name: str) -> np.ndarray:
        try:
            return self.attributes[name]
        except KeyError:
            raise InvalidFieldError(
                "attribute", name, f"positions carry {', '.join(self.attributes)}"
            ) from None

    def take(self, rows: np.ndarray) -> PositionTable:
        """The positions at ``rows`` (indices or boolean mask)."""
        return PositionTable(
            self.position_id[rows],
            self.instrument[rows],
            self.quantity[rows],
            {k: v[rows] for k, v in self.attributes.items()},
        )

    @staticmethod
    def from_columns(
        columns: Mapping[str, Sequence[Any] | np.ndarray],
        instrument_index: Mapping[str, int],
    ) -> tuple[PositionTable, list[tuple[str, str]]]:
        """Validate position columns; return the good rows and ``(position_id, reason)`` for each bad one.

        Parameters
        ----------
        columns
            ``position_id``, ``instrument_id``, ``quantity``, ``desk``, ``book``, ``trader`` (mandatory) and any of
            ``counterparty``, ``sector``, ``region``, ``currency``.
        instrument_index
            instrument id → index into the portfolio's instrument list; positions on unknown instruments are bad.
        """
        for name in ("position_id", "instrument_id", "quantity", "desk", "book", "trader"):
            if name not in columns:
                raise MissingFieldError(name, where="positions")
        pid = np.asarray(columns["position_id"]).astype(str)
        iid = np.asarray(columns["instrument_id"]).astype(str)
        n = len(pid)
        qty_raw = np.asarray(columns["quantity"])
        with np.errstate(invalid="ignore"):
            qty = np.array(qty_raw, dtype=np.float64) if qty_raw.dtype.kind in "fiub" else _to_float(qty_raw)
        bad: dict[int, str] = {}
        nonfinite = ~np.isfinite(qty)
        for i in np.flatnonzero(nonfinite):
            bad[int(i)] = f"field 'quantity' has invalid value {_py(qty_raw[i])!r}: must be a finite number"
        inst = np.fromiter(
            map(instrument_index.get, iid.tolist(), itertools.repeat(-1)), dtype=np.int64, count=n
        )
        for i in np.flatnonzero(inst < 0):
            bad.setdefault(int(i), f"field 'instrument_id' has unknown instrument {str(iid[i])!r}")
        attrs: dict[str, np.ndarray] = {}
        for name in ATTRIBUTES:
            if name in columns:
                col = np.asarray(columns[name])
                # text columns (the common case) take one vectorised pass instead of a Python call per row
                if col.dtype.kind == "U":
                    col = np.where(np.char.strip(col) == "", "", col)
                else:
                    col = col.astype(object)
                    col = np.where(np.array([_missing(v) for v in col], dtype=bool), "", col).astype(str)
            else:
                col = np.full(n, "", dtype=str)
            attrs[name] = col
        for name in ("desk", "book", "trader"):
            for i in np.flatnonzero(attrs[name] == ""):
                bad.setdefault(int(i), f"mandatory field {name!r} is missing")
        for i in np.flatnonzero(pid == ""):
            bad.setdefault(int(i), "mandatory field 'position_id' is missing")
        if bad:
            keep = np.ones(n, dtype=bool)
            keep[list(bad)] = False
            table = PositionTable(pid[keep], inst[keep], qty[keep], {k: v[keep] for k, v in attrs.items()})
        else:
            table = PositionTable(pid, inst, qty, attrs)
        return table, [(str(pid[i]) or f"row {i}", reason) for i, reason in sorted(bad.items())]


def _py(v: Any) -> Any:
    """A numpy scalar as the plain Python value, so messages read ``nan`` not ``np.float64(nan)``."""
    return v.item() if hasattr(v, "item") else v


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v.strip() == "")


def _to_float(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values))
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            out[i] = np.nan
    return out
