"""Stress scenarios: replays of named historical periods, the worst window in the history, and user shocks.

A user-defined scenario is a list of factor shifts; a shift names a factor id or a glob pattern over ids
(``EQ.*``, ``IR.USD.*``, ``VOL.*``) and is relative (``-0.2`` = −20 %) or absolute (``0.01`` = +100 bp) —
by default the factor's own shock convention. Files are CSV (columns ``factor,shift[,type]``), JSON or YAML
(``{name, description, shocks: [{factor, shift, type}]}``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..domain import MarketSnapshot, ShockType, parse_factor
from ..errors import (
    ConfigurationError,
    EmptyInputError,
    InputError,
    InsufficientHistoryError,
    InvalidFieldError,
    MissingFieldError,
)
from ._scenario_set import ScenarioSet, apply_shocks, factor_changes, history_matrix, shock_types_for

__all__ = [
    "HISTORICAL_STRESS_PERIODS",
    "HYPOTHETICAL_STRESS",
    "FactorShift",
    "HistoricalStress",
    "StressScenario",
    "load_stress_file",
    "stress_library",
    "worst_window_scenarios",
]


@dataclass(frozen=True, slots=True)
class FactorShift:
    """Move every factor matching ``pattern`` by ``shift`` (relative or absolute; None = factor default)."""

    pattern: str
    shift: float
    shock_type: ShockType | None = None


@dataclass(frozen=True)
class StressScenario:
    """A hypothetical scenario: named factor shifts applied to today's market (later shifts win on overlap)."""

    name: str
    shifts: tuple[FactorShift, ...]
    description: str = ""

    def generate(self, snapshot: MarketSnapshot, factor_ids: Sequence[str]) -> ScenarioSet:
        """One scenario: every factor in ``factor_ids`` shifted per the first-to-last matching rule."""
        types = list(shock_types_for(factor_ids))
        changes = np.zeros((1, len(factor_ids)))
        for j, fid in enumerate(factor_ids):
            for shift in self.shifts:
                if fnmatchcase(fid, shift.pattern):
                    if shift.shock_type is not None and shift.shock_type is not types[j]:
                        # a shift in the other convention is converted to the factor's own one
                        base = snapshot[fid]
                        changes[0, j] = (
                            shift.shift / base if types[j] is ShockType.RELATIVE else base * shift.shift
                        )
                    else:
                        changes[0, j] = shift.shift
        market = apply_shocks(snapshot, factor_ids, changes, types)
        return ScenarioSet("stress", market, changes, tuple(types), (self.name,), 1)


@dataclass(frozen=True)
class HistoricalStress:
    """Replay the factor moves between two past dates (inclusive of the move on ``end``)."""

    name: str
    start: date
    end: date
    description: str = ""

    def generate(
        self, snapshot: MarketSnapshot, history: pd.DataFrame, factor_ids: Sequence[str]
    ) -> ScenarioSet:
        idx = pd.DatetimeIndex(history.index)
        s = idx.searchsorted(pd.Timestamp(self.start), side="right") - 1
        e = idx.searchsorted(pd.Timestamp(self.end), side="right") - 1
        if s < 0 or e <= s:
            raise InsufficientHistoryError(
                f"stress period {self.name!r} ({self.start} → {self.end}) is not covered by the history "
                f"({idx[0].date()} → {idx[-1].date()})"
            )
        types = shock_types_for(factor_ids)
        levels = history_matrix(history.iloc[[int(s), int(e)]], factor_ids, snapshot.reporting_currency)
        changes = factor_changes(levels, types, 1)
        market = apply_shocks(snapshot, factor_ids, changes, types)
        return ScenarioSet("stress", market, changes, types, (self.name,), int(e - s))


#: Named crisis periods inside the shipped history (1999–2018 daily index data).
HISTORICAL_STRESS_PERIODS: dict[str, HistoricalStress] = {
    s.name: s
    for s in (
        HistoricalStress("dotcom-2000", date(2000, 4, 7), date(2000, 4, 14), "NASDAQ crash week, April 2000"),
        HistoricalStress(
            "sept-2001", date(2001, 9, 10), date(2001, 9, 21), "markets reopen after 11 September"
        ),
        HistoricalStress(
            "gfc-2008", date(2008, 9, 12), date(2008, 10, 10), "Lehman default to the October low"
        ),
        HistoricalStress("flash-crash-2010", date(2010, 5, 5), date(2010, 5, 7), "6 May 2010 flash crash"),
        HistoricalStress("us-downgrade-2011", date(2011, 7, 29), date(2011, 8, 10), "US sovereign downgrade"),
        HistoricalStress("china-2015", date(2015, 8, 17), date(2015, 8, 25), "renminbi devaluation sell-off"),
        HistoricalStress(
            "volmageddon-2018", date(2018, 2, 1), date(2018, 2, 8), "short-vol unwind, Feb 2018"
        ),
        HistoricalStress("q4-2018", date(2018, 12, 3), date(2018, 12, 24), "December 2018 sell-off"),
    )
}

#: Hypothetical scenarios shipped with riskstream.
HYPOTHETICAL_STRESS: dict[str, StressScenario] = {
    s.name: s
    for s in (
        StressScenario(
            "equity-crash",
            (FactorShift("EQ.*", -0.20), FactorShift("VOL.*", 0.60)),
            "equities −20 %, implied vols +60 % (relative)",
        ),
        StressScenario("rates-up-200bp", (FactorShift("IR.*", 0.02),), "parallel +200 bp on every curve"),
        StressScenario("rates-down-100bp", (FactorShift("IR.*", -0.01),), "parallel −100 bp on every curve"),
        StressScenario(
            "curve-steepener",
            (
                FactorShift("IR.*.1M", -0.005),
                FactorShift("IR.*.3M", -0.004),
                FactorShift("IR.*.6M", -0.003),
                FactorShift("IR.*.1Y", -0.002),
                FactorShift("IR.*.10Y", 0.005),
                FactorShift("IR.*.15Y", 0.006),
                FactorShift("IR.*.20Y", 0.007),
                FactorShift("IR.*.30Y", 0.008),
            ),
            "short end down, long end up",
        ),
        StressScenario("usd-rally", (FactorShift("FX.*", -0.10),), "every currency −10 % against USD"),
        StressScenario("vol-spike", (FactorShift("VOL.*", 1.0),), "implied vols double"),
    )
}


def stress_library() -> dict[str, StressScenario | HistoricalStress]:
    """Every built-in scenario by name (hypothetical and historical)."""
    return {**HYPOTHETICAL_STRESS, **HISTORICAL_STRESS_PERIODS}


def _shift_from_record(rec: dict[str, object], where: str) -> FactorShift:
    pattern = rec.get("factor")
    if pattern is None or str(pattern).strip() == "":
        raise MissingFieldError("factor", where=where)
    pattern = str(pattern).strip()
    if not any(ch in pattern for ch in "*?["):
        parse_factor(pattern)  # a plain id must be a valid factor id
    raw_shift = rec.get("shift")
    if raw_shift is None or str(raw_shift).strip() == "":
        raise MissingFieldError("shift", where=where)
    try:
        shift = float(str(raw_shift))
    except ValueError:
        raise InvalidFieldError("shift", raw_shift, "must be a number", where=where) from None
    if not np.isfinite(shift):
        raise InvalidFieldError("shift", raw_shift, "must be finite", where=where)
    raw_type = rec.get("type")
    shock_type = None
    if raw_type is not None and str(raw_type).strip():
        try:
            shock_type = ShockType(str(raw_type).strip().lower())
        except ValueError:
            raise InvalidFieldError(
                "type", raw_type, "must be 'relative' or 'absolute'", where=where
            ) from None
    if shock_type is ShockType.RELATIVE and shift <= -1:
        raise InvalidFieldError("shift", raw_shift, "a relative shift must be > −1 (−100 %)", where=where)
    return FactorShift(pattern, shift, shock_type)


def load_stress_file(path: str | Path) -> StressScenario:
    """Read a user-defined scenario from CSV, JSON or YAML; errors name the file, row, field and value."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"stress scenario file {str(p)!r} does not exist", field="scenario", value=str(p))
    text = p.read_text()
    if not text.strip():
        raise EmptyInputError("stress scenario file", str(p))
    name, description = p.stem, ""
    if p.suffix.lower() == ".csv":
        records = list(csv.DictReader(text.splitlines()))
    elif p.suffix.lower() in (".json", ".yaml", ".yml"):
        doc = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
        if isinstance(doc, list):
            records = doc
        elif isinstance(doc, dict):
            name = str(doc.get("name", name))
            description = str(doc.get("description", ""))
            records = doc.get("shocks") or []
        else:
            raise InvalidFieldError("shocks", type(doc).__name__, "expected a list of shifts", where=str(p))
    else:
        raise ConfigurationError("scenario", str(p), "expected a .csv, .json, .yaml or .yml file")
    if not records:
        raise EmptyInputError("stress scenario file", str(p))
    shifts = tuple(
        _shift_from_record(dict(r) if isinstance(r, dict) else {}, f"{p.name} row {i + 1}")
        for i, r in enumerate(records)
    )
    return StressScenario(name, shifts, description)


def worst_window_scenarios(
    snapshot: MarketSnapshot, history: pd.DataFrame, factor_ids: Sequence[str], horizon_days: int = 10
) -> ScenarioSet:
    """Every overlapping ``horizon_days`` move in the whole history, as scenarios labelled by their end date.

    The engine values the portfolio under all of them and reports the worst one: the historical stress
    window "worst 10-day period" for *this* portfolio.
    """
    types = shock_types_for(factor_ids)
    levels = history_matrix(history, factor_ids, snapshot.reporting_currency)
    changes = factor_changes(levels, types, horizon_days)
    idx = pd.DatetimeIndex(history.index)
    labels = tuple(
        f"{idx[i].date()}→{idx[i + horizon_days].date()}" for i in range(len(history) - horizon_days)
    )
    market = apply_shocks(snapshot, factor_ids, changes, types)
    return ScenarioSet("stress", market, changes, types, labels, horizon_days)
