"""Risk factors: what a market snapshot assigns values to and what scenarios shock.

A factor is named by a string id, one scheme for every layer and every message:

==========================  ====================================================  ============
id                          meaning                                               shock
==========================  ====================================================  ============
``EQ.<name>``               equity or index spot price, in the name's currency    relative
``FX.<ccy>``                value of one unit of ``ccy`` in the reporting ccy      relative
``IR.<ccy>.<tenor>``        continuously-compounded zero rate at a curve tenor     absolute
``VOL.<underlying>``        Black implied volatility (flat) of an underlying       relative
==========================  ====================================================  ============

``FX.<reporting>`` is identically 1 and never a factor. FX volatility underlyings are 6-letter pairs
(``VOL.EURUSD``: foreign EUR, domestic USD).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from ..errors import InvalidFieldError

__all__ = [
    "TENORS",
    "FactorKind",
    "RiskFactor",
    "ShockType",
    "equity_factor",
    "fx_factor",
    "parse_factor",
    "rate_factor",
    "tenor_years",
    "vol_factor",
]


class FactorKind(StrEnum):
    EQUITY = "EQ"
    FX = "FX"
    RATE = "IR"
    VOL = "VOL"


class ShockType(StrEnum):
    """How a historical change is measured and applied: ``x·(1+r)`` (relative) or ``x+d`` (absolute)."""

    RELATIVE = "relative"
    ABSOLUTE = "absolute"


#: Curve tenor points, in the order curves are stored, with their length in years.
TENORS: dict[str, float] = {
    "1M": 1 / 12,
    "3M": 0.25,
    "6M": 0.5,
    "1Y": 1.0,
    "2Y": 2.0,
    "3Y": 3.0,
    "5Y": 5.0,
    "7Y": 7.0,
    "10Y": 10.0,
    "15Y": 15.0,
    "20Y": 20.0,
    "30Y": 30.0,
}

_CCY = re.compile(r"^[A-Z]{3}$")
_NAME = re.compile(r"^[A-Za-z0-9_\-^&:/]+$")


def tenor_years(tenor: str) -> float:
    """Length of a tenor label (``"5Y"``, ``"3M"``) in years."""
    if tenor in TENORS:
        return TENORS[tenor]
    m = re.fullmatch(r"(\d+)([MY])", tenor)
    if not m:
        raise InvalidFieldError("tenor", tenor, "expected <n>M or <n>Y")
    n = int(m.group(1))
    return n / 12 if m.group(2) == "M" else float(n)


@dataclass(frozen=True, slots=True)
class RiskFactor:
    """One risk factor; ``id`` is its canonical string form."""

    kind: FactorKind
    name: str
    tenor: str | None = None

    def __post_init__(self) -> None:
        if self.kind in (FactorKind.FX, FactorKind.RATE) and not _CCY.match(self.name):
            raise InvalidFieldError("currency", self.name, "expected a 3-letter upper-case ISO code")
        if not self.name or not _NAME.match(self.name):
            raise InvalidFieldError("name", self.name, "factor names use letters, digits and _-^&:/")
        if self.kind is FactorKind.RATE:
            if self.tenor is None:
                raise InvalidFieldError("tenor", self.tenor, "a rate factor needs a tenor")
            tenor_years(self.tenor)
        elif self.tenor is not None:
            raise InvalidFieldError(
                "tenor", self.tenor, f"only rate factors have a tenor, not {self.kind.value}"
            )

    @property
    def id(self) -> str:
        return f"{self.kind.value}.{self.name}" + (f".{self.tenor}" if self.tenor else "")

    @property
    def shock_type(self) -> ShockType:
        """Default shock convention: absolute for rates (they can be ≤ 0), relative for prices, FX and vols."""
        return ShockType.ABSOLUTE if self.kind is FactorKind.RATE else ShockType.RELATIVE

    @property
    def positive(self) -> bool:
        """Whether values of this factor must be strictly positive."""
        return self.kind is not FactorKind.RATE

    def __str__(self) -> str:
        return self.id


def parse_factor(factor_id: str) -> RiskFactor:
    """Parse ``"IR.USD.5Y"`` and friends; raises InvalidFieldError naming the id."""
    parts = factor_id.split(".") if isinstance(factor_id, str) else []
    try:
        kind = FactorKind(parts[0])
    except (ValueError, IndexError):
        raise InvalidFieldError(
            "factor", factor_id, "expected EQ.<name>, FX.<ccy>, IR.<ccy>.<tenor> or VOL.<underlying>"
        ) from None
    if kind is FactorKind.RATE:
        if len(parts) != 3:
            raise InvalidFieldError("factor", factor_id, "rate factors are IR.<ccy>.<tenor>")
        return RiskFactor(kind, parts[1], parts[2])
    if len(parts) != 2:
        raise InvalidFieldError("factor", factor_id, f"{kind.value} factors are {kind.value}.<name>")
    return RiskFactor(kind, parts[1])


def equity_factor(name: str) -> str:
    return f"EQ.{name}"


def fx_factor(ccy: str) -> str:
    return f"FX.{ccy}"


def rate_factor(ccy: str, tenor: str) -> str:
    return f"IR.{ccy}.{tenor}"


def vol_factor(underlying: str) -> str:
    return f"VOL.{underlying}"
