"""Risk limits per hierarchy node, and a monitor that turns measure updates into limit alerts with hysteresis.

A limit caps one measure of one node (``FIRM/RATES`` · ``var_99_1d`` ≤ 25,000,000 in the reporting currency).
Utilisation u = value / limit. The monitor's states and their thresholds:

==========  ==================  ===============================================
state       entered when        left (downwards) when
==========  ==================  ===============================================
OK          —                   u ≥ warn → WARNING; u ≥ 1 → BREACH
WARNING     u ≥ warn            u ≥ 1 → BREACH; u < clear · warn → OK
BREACH      u ≥ 1               u < clear · 1 → WARNING, or OK if also u < clear · warn
==========  ==================  ===============================================

``warn`` is the warning fraction (default 0.8) and ``clear`` the hysteresis fraction (default 0.75) of the
threshold just crossed: a breach clears below 75 % utilisation, a warning below 60 %. An update emits at most one
`Alert`, only when the state changes: WARNING or BREACH with the new state, CLEAR when the node returns to OK.
Values that wobble around a threshold therefore raise one alert, not a storm.
"""

from __future__ import annotations

import csv
import enum
import io
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from ..domain import FIRM, Alert, AlertState, RiskSnapshot
from ..errors import ConfigurationError, InvalidFieldError

__all__ = [
    "DEFAULT_CLEAR_FRACTION",
    "DEFAULT_LIMIT_MULTIPLE",
    "DEFAULT_WARN_FRACTION",
    "Limit",
    "LimitLevel",
    "LimitMonitor",
    "LimitProblem",
    "LimitSet",
    "limits_from_dict",
    "limits_from_values",
    "load_limits",
    "with_limit",
]

DEFAULT_WARN_FRACTION = 0.8
DEFAULT_CLEAR_FRACTION = 0.75
#: The demo's default rule: every firm, desk and book limit is 1.25 × its VaR at start.
DEFAULT_LIMIT_MULTIPLE = 1.25

_FIELDS = ("node", "measure", "limit", "warn_fraction", "clear_fraction")


class LimitLevel(enum.IntEnum):
    """Where a node stands against its limit; ordered, so a higher level is a worse one."""

    OK = 0
    WARNING = 1
    BREACH = 2


@dataclass(frozen=True, slots=True)
class Limit:
    """A cap on one measure of one hierarchy node.

    Parameters
    ----------
    node
        Hierarchy node id: ``FIRM`` or a path below it (``FIRM/RATES/RATES-USD-GOVT``).
    measure
        Measure name with confidence and horizon (``var_99_1d``, ``es_975_10d``): a positive loss.
    limit
        The cap, in the reporting currency, > 0.
    warn_fraction
        Utilisation at which a WARNING starts, in (0, 1).
    clear_fraction
        Hysteresis: a state is left only below this fraction of the threshold that entered it, in (0, 1).
    """

    node: str
    measure: str
    limit: float
    warn_fraction: float = DEFAULT_WARN_FRACTION
    clear_fraction: float = DEFAULT_CLEAR_FRACTION

    def __post_init__(self) -> None:
        if not isinstance(self.node, str) or not (self.node == FIRM or self.node.startswith(FIRM + "/")):
            raise InvalidFieldError("node", self.node, f"a node id is {FIRM} or a path below it ({FIRM}/...)")
        if not isinstance(self.measure, str) or not self.measure.strip():
            raise InvalidFieldError("measure", self.measure, "a measure name such as var_99_1d")
        if not _finite(self.limit) or self.limit <= 0:
            raise InvalidFieldError("limit", self.limit, "must be a finite amount > 0")
        for name in ("warn_fraction", "clear_fraction"):
            v = getattr(self, name)
            if not _finite(v) or not 0 < v < 1:
                raise InvalidFieldError(name, v, "must be a fraction in (0, 1)")

    def level_for(self, utilisation: float, current: LimitLevel) -> LimitLevel:
        """The state after observing ``utilisation`` in state ``current`` (the table of the module docstring)."""
        if utilisation >= 1.0:
            return LimitLevel.BREACH
        level = current
        if utilisation >= self.warn_fraction and level < LimitLevel.WARNING:
            level = LimitLevel.WARNING
        # thresholds rounded to 12 decimals so that 0.75 × 0.8 is 0.6, not 0.6000000000000001
        if level is LimitLevel.BREACH and utilisation < round(self.clear_fraction, 12):
            level = LimitLevel.WARNING
        if level is LimitLevel.WARNING and utilisation < round(self.clear_fraction * self.warn_fraction, 12):
            level = LimitLevel.OK
        return level


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True, slots=True)
class LimitProblem:
    """A config row left out: where it is (1-based row of the file, or the dict key), the field, value and why."""

    row: str
    field: str
    value: Any
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: field {self.field!r} has invalid value {self.value!r}: {self.reason}"


@dataclass(frozen=True)
class LimitSet:
    """Limits by (node, measure), and the config rows that were refused."""

    limits: Mapping[tuple[str, str], Limit]
    problems: tuple[LimitProblem, ...] = ()

    def get(self, node: str, measure: str) -> Limit | None:
        return self.limits.get((node, measure))

    def __len__(self) -> int:
        return len(self.limits)

    def __iter__(self) -> Iterator[Limit]:
        return iter([self.limits[k] for k in sorted(self.limits)])


def _parse_number(raw: Any, name: str) -> float:
    if isinstance(raw, str):
        raw = raw.strip().replace("_", "").replace(",", "")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidFieldError(name, raw, "not a number") from None
    return value


def _limits_from_rows(rows: Iterable[tuple[str, Any]]) -> LimitSet:
    limits: dict[tuple[str, str], Limit] = {}
    problems: list[LimitProblem] = []
    for where, row in rows:
        if not isinstance(row, Mapping):
            problems.append(LimitProblem(where, "row", row, f"expected a mapping with {', '.join(_FIELDS)}"))
            continue
        unknown = sorted(set(row) - set(_FIELDS))
        if unknown:
            problems.append(
                LimitProblem(
                    where, unknown[0], row[unknown[0]], f"unknown field; expected {', '.join(_FIELDS)}"
                )
            )
            continue
        missing = [f for f in ("node", "measure", "limit") if row.get(f) in (None, "")]
        if missing:
            problems.append(LimitProblem(where, missing[0], None, "mandatory field is missing"))
            continue
        try:
            kwargs: dict[str, Any] = {
                "node": str(row["node"]).strip(),
                "measure": str(row["measure"]).strip(),
            }
            for name in ("limit", "warn_fraction", "clear_fraction"):
                if row.get(name) not in (None, ""):
                    kwargs[name] = _parse_number(row[name], name)
            limit = Limit(**kwargs)
        except InvalidFieldError as exc:
            problems.append(LimitProblem(where, str(exc.field), exc.value, str(exc).split(": ", 1)[-1]))
            continue
        key = (limit.node, limit.measure)
        if key in limits:
            problems.append(
                LimitProblem(where, "node", limit.node, f"second limit for {limit.measure} (first kept)")
            )
            continue
        limits[key] = limit
    return LimitSet(limits, tuple(problems))


def limits_from_dict(config: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> LimitSet:
    """Limits from a list of rows (mappings with the fields of `Limit`) or ``{"limits": [...]}``.

    Bad rows are not raised: they are listed in ``problems`` with the field and value, and the rest load.
    """
    rows = config.get("limits", []) if isinstance(config, Mapping) else config
    if not isinstance(rows, Iterable) or isinstance(rows, str | bytes):
        raise ConfigurationError("limits", rows, "expected a list of limit rows")
    return _limits_from_rows((str(i), row) for i, row in enumerate(rows, start=1))


def load_limits(path: str | Path) -> LimitSet:
    """Limits from a YAML (``.yaml``/``.yml``: a list of rows or ``limits:``) or CSV file (header row with
    ``node,measure,limit[,warn_fraction,clear_fraction]``). Bad rows are reported in ``problems``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError("path", str(path), f"cannot read the limits file: {exc.strerror}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError("path", str(path), f"not valid YAML: {exc}") from None
        return limits_from_dict(doc if doc is not None else [])
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        # rows are numbered as in the file: the header is row 1
        return _limits_from_rows((str(i), dict(r)) for i, r in enumerate(reader, start=2))
    raise ConfigurationError("path", str(path), "limits files are .yaml, .yml or .csv")


def limits_from_values(
    values: Mapping[str, float],
    *,
    measure: str = "var_99_1d",
    multiple: float = DEFAULT_LIMIT_MULTIPLE,
    max_depth: int | None = 2,
    warn_fraction: float = DEFAULT_WARN_FRACTION,
    clear_fraction: float = DEFAULT_CLEAR_FRACTION,
) -> LimitSet:
    """The default rule: each node's limit is ``multiple`` × its measure at start.

    Parameters
    ----------
    values
        Node id → the measure at start (e.g. each node's VaR from the first risk run), > 0.
    multiple
        Limit over starting value (default 1.25: a node starts at 80 % utilisation, on its warning threshold).
    max_depth
        Deepest level that gets a limit: 0 firm, 1 desk, 2 book (default), None every node.
    """
    if not _finite(multiple) or multiple <= 0:
        raise ConfigurationError("multiple", multiple, "must be > 0")
    rows = []
    for node, v in sorted(values.items()):
        if max_depth is not None and node.count("/") > max_depth:
            continue
        rows.append(
            (
                node,
                {
                    "node": node,
                    "measure": measure,
                    "limit": v * multiple if _finite(v) else v,
                    "warn_fraction": warn_fraction,
                    "clear_fraction": clear_fraction,
                },
            )
        )
    return _limits_from_rows(rows)


class LimitMonitor:
    """Turns measure updates into limit alerts, one state machine per (node, measure) with a limit.

    ``update(node, measure, value, as_of_us)`` returns the alerts of that update (at most one; none for a
    measure without a limit or a state that holds). State is plain data (`state` / `restore`) for checkpoints.
    """

    def __init__(self, limits: LimitSet | Mapping[tuple[str, str], Limit] | Iterable[Limit]) -> None:
        if isinstance(limits, LimitSet):
            table = dict(limits.limits)
        elif isinstance(limits, Mapping):
            table = dict(limits)
        else:
            table = {(lim.node, lim.measure): lim for lim in limits}
        self._limits: dict[tuple[str, str], Limit] = table
        self._level: dict[tuple[str, str], LimitLevel] = {}

    def limit(self, node: str, measure: str) -> Limit | None:
        return self._limits.get((node, measure))

    def level(self, node: str, measure: str) -> LimitLevel:
        return self._level.get((node, measure), LimitLevel.OK)

    def utilisation(self, node: str, measure: str, value: float) -> float | None:
        lim = self._limits.get((node, measure))
        return None if lim is None else value / lim.limit

    def update(self, node: str, measure: str, value: float, as_of_us: int) -> list[Alert]:
        """Observe ``value`` of ``measure`` at ``node`` as of ``as_of_us``; returns the alert it raises, if any.

        Raises InvalidFieldError for a value that is not a finite number (the caller reports it and goes on).
        """
        lim = self._limits.get((node, measure))
        if lim is None:
            return []
        if not _finite(value):
            raise InvalidFieldError("value", value, f"{measure} of {node} must be a finite number")
        key = (node, measure)
        before = self._level.get(key, LimitLevel.OK)
        u = value / lim.limit
        after = lim.level_for(u, before)
        if after is before:
            return []
        self._level[key] = after
        state = {LimitLevel.OK: AlertState.CLEAR, LimitLevel.WARNING: AlertState.WARNING}.get(
            after, AlertState.BREACH
        )
        message = (
            f"{node} {measure} {value:,.0f} is {u:.1%} of its limit {lim.limit:,.0f}: "
            f"{before.name.lower()} → {after.name.lower()}"
        )
        return [Alert(node, measure, state, float(value), lim.limit, u, int(as_of_us), message)]

    def state(self) -> dict[str, Any]:
        """Non-OK states as ``[[node, measure, level], ...]`` (OK is the default and not stored)."""
        return {
            "levels": [
                [n, m, lv.name] for (n, m), lv in sorted(self._level.items()) if lv is not LimitLevel.OK
            ]
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        levels: dict[tuple[str, str], LimitLevel] = {}
        for node, measure, name in state["levels"]:
            try:
                levels[(str(node), str(measure))] = LimitLevel[str(name)]
            except KeyError:
                raise InvalidFieldError(
                    "level", name, f"one of {', '.join(LimitLevel.__members__)}"
                ) from None
        self._level = levels


def with_limit(snapshot: RiskSnapshot, monitor: LimitMonitor, measure: str) -> RiskSnapshot:
    """``snapshot`` with its limit usage added to its measures, when ``monitor`` holds a limit on it.

    Adds ``limit`` (the cap), ``limit_utilisation`` (``measure`` ÷ cap) and ``limit_level`` (0 OK, 1 WARNING,
    2 BREACH: the state after this snapshot's value was observed, so call it after `LimitMonitor.update`).
    """
    lim = monitor.limit(snapshot.node, measure)
    value = snapshot.measures.get(measure)
    if lim is None or value is None:
        return snapshot
    return replace(
        snapshot,
        measures={
            **snapshot.measures,
            "limit": float(lim.limit),
            "limit_utilisation": float(value) / lim.limit,
            "limit_level": float(monitor.level(snapshot.node, measure)),
        },
    )
