"""A portfolio: instruments, the positions held in them, and the reporting currency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import EmptyInputError, InvalidFieldError
from ._instrument import Instrument
from ._position import PositionTable

__all__ = ["BadRecord", "Portfolio"]


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record left out of a run, with the reason (a failure is reported, not raised, in a batch)."""

    kind: str  # "instrument" | "position"
    record_id: str
    reason: str


@dataclass(frozen=True)
class Portfolio:
    """Instruments (unique, by id) and positions referencing them by index."""

    instruments: tuple[Instrument, ...]
    positions: PositionTable
    reporting_currency: str = "USD"
    rejected: tuple[BadRecord, ...] = ()
    _by_id: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {inst.instrument_id: i for i, inst in enumerate(self.instruments)}
        if len(by_id) != len(self.instruments):
            seen: set[str] = set()
            for inst in self.instruments:
                if inst.instrument_id in seen:
                    raise InvalidFieldError("instrument_id", inst.instrument_id, "duplicate instrument id")
                seen.add(inst.instrument_id)
        if len(self.positions) and (self.positions.instrument.max() >= len(self.instruments)):
            raise InvalidFieldError("instrument", int(self.positions.instrument.max()), "index out of range")
        object.__setattr__(self, "_by_id", by_id)

    @classmethod
    def from_records(
        cls,
        instruments: Sequence[Instrument],
        positions: dict[str, Sequence[object] | np.ndarray],
        reporting_currency: str = "USD",
        rejected: Sequence[BadRecord] = (),
    ) -> Portfolio:
        """Validate positions against the instruments; bad positions are kept in ``rejected`` with a reason."""
        index = {inst.instrument_id: i for i, inst in enumerate(instruments)}
        table, bad = PositionTable.from_columns(positions, index)
        if len(table) == 0 and not bad:
            raise EmptyInputError("positions")
        return cls(
            tuple(instruments),
            table,
            reporting_currency,
            tuple(rejected) + tuple(BadRecord("position", pid, reason) for pid, reason in bad),
        )

    def instrument_index(self, instrument_id: str) -> int:
        return self._by_id[instrument_id]

    def __len__(self) -> int:
        return len(self.positions)
