"""Instruments: immutable, validated at construction; one class per family.

Every instrument carries its ``currency`` (the currency its value is quoted in) and lists the risk factors its
value depends on. Quantities are held by positions, not instruments: a value is per unit of the instrument
(one share, one contract, one bond of face ``face``, one unit of swap notional, one unit of foreign currency).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from enum import StrEnum
from typing import Any, ClassVar

from ..errors import InvalidFieldError, MissingFieldError, UnknownInstrumentTypeError
from ._factor import equity_factor, fx_factor, vol_factor

__all__ = [
    "INSTRUMENT_CLASSES",
    "Equity",
    "EquityIndexFuture",
    "EquityOption",
    "FixedRateBond",
    "FxForward",
    "FxOption",
    "FxSpot",
    "Instrument",
    "InstrumentType",
    "InterestRateSwap",
    "OptionType",
    "ZeroCouponBond",
    "instrument_from_record",
]

_CCY = re.compile(r"^[A-Z]{3}$")


class InstrumentType(StrEnum):
    EQUITY = "equity"
    INDEX_FUTURE = "index_future"
    FX_SPOT = "fx_spot"
    FX_FORWARD = "fx_forward"
    FIXED_RATE_BOND = "fixed_rate_bond"
    ZERO_COUPON_BOND = "zero_coupon_bond"
    INTEREST_RATE_SWAP = "interest_rate_swap"
    EQUITY_OPTION = "equity_option"
    FX_OPTION = "fx_option"


class OptionType(StrEnum):
    CALL = "call"
    PUT = "put"


def _check_ccy(field: str, value: str, where: str) -> None:
    if not isinstance(value, str) or not _CCY.match(value):
        raise InvalidFieldError(field, value, "expected a 3-letter upper-case ISO currency code", where=where)


def _check_finite(
    field: str, value: float, where: str, *, positive: bool = False, non_negative: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidFieldError(field, value, "must be a finite number", where=where)
    if positive and value <= 0:
        raise InvalidFieldError(field, value, "must be > 0", where=where)
    if non_negative and value < 0:
        raise InvalidFieldError(field, value, "must be ≥ 0", where=where)


@dataclass(frozen=True, slots=True)
class Instrument:
    """Base of every instrument family."""

    instrument_id: str
    currency: str

    type: ClassVar[InstrumentType]

    def __post_init__(self) -> None:
        if not isinstance(self.instrument_id, str) or not self.instrument_id.strip():
            raise InvalidFieldError("instrument_id", self.instrument_id, "must be a non-empty string")
        _check_ccy("currency", self.currency, self.instrument_id)

    def factors(self, reporting_currency: str) -> tuple[str, ...]:
        """Ids of the risk factors this instrument's value (in the reporting currency) depends on.

        Curve dependence is listed as ``IR.<ccy>.*``: all tenor points of that currency's curve.
        """
        return self._own_factors() + self._fx(reporting_currency, self.currency)

    def _own_factors(self) -> tuple[str, ...]:
        raise NotImplementedError

    @staticmethod
    def _fx(reporting: str, ccy: str) -> tuple[str, ...]:
        return () if ccy == reporting else (fx_factor(ccy),)

    def to_record(self) -> dict[str, Any]:
        """Flat record (``type`` plus every field), the inverse of :func:`instrument_from_record`."""
        rec: dict[str, Any] = {"type": self.type.value}
        for f in fields(self):
            v = getattr(self, f.name)
            rec[f.name] = v.value if isinstance(v, StrEnum) else v
        return rec


@dataclass(frozen=True, slots=True)
class Equity(Instrument):
    """A stock or ETF share; value = spot × FX."""

    underlying: str = ""

    type: ClassVar[InstrumentType] = InstrumentType.EQUITY

    def __post_init__(self) -> None:
        Instrument.__post_init__(self)
        if not self.underlying:
            raise MissingFieldError("underlying", where=self.instrument_id)

    def _own_factors(self) -> tuple[str, ...]:
        return (equity_factor(self.underlying),)


@dataclass(frozen=True, slots=True)
class EquityIndexFuture(Instrument):
    """Future on an equity index: value = (S·exp((r−q)T) − trade_price) × multiplier (marked to market, undiscounted)."""

    underlying: str = ""
    maturity: date = date.min
    trade_price: float = 0.0
    multiplier: float = 1.0
    dividend_yield: float = 0.0

    type: ClassVar[InstrumentType] = InstrumentType.INDEX_FUTURE

    def __post_init__(self) -> None:
        Instrument.__post_init__(self)
        if not self.underlying:
            raise MissingFieldError("underlying", where=self.instrument_id)
        _check_date("maturity", self.maturity, self.instrument_id)
        _check_finite("trade_price", self.trade_price, self.instrument_id, positive=True)
        _check_finite("multiplier", self.multiplier, self.instrument_id, positive=True)
        _check_finite("dividend_yield", self.dividend_yield, self.instrument_id)

    def _own_factors(self) -> tuple[str, ...]:
        return (equity_factor(self.underlying), f"IR.{self.currency}.*")


@dataclass(frozen=True, slots=True)
class FxSpot(Instrument):
    """One unit of ``currency`` held: value in the reporting currency = FX.<currency>."""

    type: ClassVar[InstrumentType] = InstrumentType.FX_SPOT

    def _own_factors(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class FxForward(Instrument):
    """Buy one unit of ``foreign_currency`` for ``strike`` units of ``currency`` at ``maturity``.

    Value in ``currency``: S·DF_foreign(T) − K·DF_domestic(T), S = FX.<foreign> / FX.<currency>.
    """

    foreign_currency: str = ""
    strike: float = 0.0
    maturity: date = date.min

    type: ClassVar[InstrumentType] = InstrumentType.FX_FORWARD

    def __post_init__(self) -> None:
        Instrument.__post_init__(self)
        _check_fx_contract(
            self.instrument_id, self.currency, self.foreign_currency, self.strike, self.maturity
        )

    def factors(self, reporting_currency: str) -> tuple[str, ...]:
        return (
            f"IR.{self.currency}.*",
            f"IR.{self.foreign_currency}.*",
            *self._fx(reporting_currency, self.foreign_currency),
            *self._fx(reporting_currency, self.currency),
        )


@dataclass(frozen=True, slots=True)
class FixedRateBond(Instrument):
    """Bullet bond paying ``coupon_rate``·face/frequency per period and face at maturity.

    Dirty price per bond = Σ cashflow·exp(−(z(t)+spread)·t) over cashflows after the valuation date, z the
    currency's zero curve (linear in zero rate between tenors, flat beyond), ``spread`` a static z-spread.
    """

    maturity: date = date.min
    coupon_rate: float = 0.0
    frequency: int = 1
    face: float = 100.0
    spread: float = 0.0

    type: ClassVar[InstrumentType] = InstrumentType.FIXED_RATE_BOND

    def __post_init__(self) -> None:
        Instrument.__post_init__(self)
        _check_date("maturity", self.maturity, self.instrument_id)
        _check_finite("coupon_rate", self.coupon_rate, self.instrument_id, non_negative=True)
        if self.frequency not in (1, 2, 4, 12):
            raise InvalidFieldError(
                "frequency", self.frequency, "must be 1, 2, 4 or 12 per year", where=self.instrument_id
            )
        _check_finite("face", self.face, self.instrument_id, positive=True)
        _check_finite("spread", self.spread, self.instrument_id)

    def _own_factors(self) -> tuple[str, ...]:
        return (f"IR.{self.currency}.*",)


@dataclass(frozen=True, slots=True)
class ZeroCouponBond(Instrument):
    """Pays ``face`` at maturity; price = face·exp(−(z(T)+spread)·T)."""

    maturity: date = date.min
    face: float = 100.0
    spread: float = 0.0

    type: ClassVar[InstrumentType] = InstrumentType.ZERO_COUPON_BOND

    def __post_init__(self) -> None:
        Instrument.__post_init__(self)
        _check_date("maturity", self.maturity, self.instrument_id)
        _check_finite("face", self.face, self.instrument_id, positive=True)
        _check_finite("spread", self.spread, self.instrument_id)

    def _own_factors(self) -> tuple[str, ...]:
        return (f"IR.{self.currency}.*",)


@dataclass(frozen=True, slots=True)
class InterestRateSwap(Instrument):
    """Plain fixed-for-floating swap, spot-starting, one unit of notional, single-curve.

    Receiver value = fixed_rate·Σ τ_i·DF(t_i) − (1 − DF(T)) (the floating leg is worth par at a reset date);
    a payer swap (``pay_fixed``) is the negative.
    """

    maturity: date = date.min
    fixed_rate: float = 0.0
    frequency: int = 1
    pay_fixed: bool = True

    type: ClassVar[InstrumentType] = InstrumentType.INTEREST_RATE_SWAP

    def __post_init__(self) -> None:
        Instrument.__post_init__(self)
        _check_date("maturity", self.maturity, self.instrument_id)
        _check_finite("fixed_rate", self.fixed_rate, self.instrument_id)
        if self.frequency not in (1, 2, 4, 12):
            raise InvalidFieldError(
                "frequency", self.frequency, "must be 1, 2, 4 or 12 per year", where=self.instrument_id
            )
        if not isinstance(self.pay_fixed, bool):
            raise InvalidFieldError(
                "pay_fixed", self.pay_fixed, "must be true or false", where=self.instrument_id
            )

    def _own_factors(self) -> tuple[str, ...]:
        return (f"IR.{self.currency}.*",)


@dataclass(frozen=True, slots=True)
class EquityOption(Instrument):
    """European option on an equity or index; Black-Scholes with continuous dividend yield, value × multiplier."""

    underlying: str = ""
    strike: float = 0.0
    maturity: date = date.min
    option_type: OptionType = OptionType.CALL
    dividend_yield: float = 0.0
    multiplier: float = 1.0

    type: ClassVar[InstrumentType] = InstrumentType.EQUITY_OPTION

    def __post_init__(self) -> None:
        Instrument.__post_init__(self)
        if not self.underlying:
            raise MissingFieldError("underlying", where=self.instrument_id)
        _check_finite("strike", self.strike, self.instrument_id, positive=True)
        _check_date("maturity", self.maturity, self.instrument_id)
        object.__setattr__(self, "option_type", _option_type(self.option_type, self.instrument_id))
        _check_finite("dividend_yield", self.dividend_yield, self.instrument_id)
        _check_finite("multiplier", self.multiplier, self.instrument_id, positive=True)

    def _own_factors(self) -> tuple[str, ...]:
        return (equity_factor(self.underlying), vol_factor(self.underlying), f"IR.{self.currency}.*")


@dataclass(frozen=True, slots=True)
class FxOption(Instrument):
    """European option to buy (call) or sell (put) one unit of ``foreign_currency`` at ``strike`` units of
    ``currency``; Garman-Kohlhagen with the two currencies' zero curves and vol factor ``VOL.<FOR><DOM>``."""

    foreign_currency: str = ""
    strike: float = 0.0
    maturity: date = date.min
    option_type: OptionType = OptionType.CALL

    type: ClassVar[InstrumentType] = InstrumentType.FX_OPTION

    def __post_init__(self) -> None:
        Instrument.__post_init__(self)
        _check_fx_contract(
            self.instrument_id, self.currency, self.foreign_currency, self.strike, self.maturity
        )
        object.__setattr__(self, "option_type", _option_type(self.option_type, self.instrument_id))

    @property
    def pair(self) -> str:
        return f"{self.foreign_currency}{self.currency}"

    def factors(self, reporting_currency: str) -> tuple[str, ...]:
        return (
            vol_factor(self.pair),
            f"IR.{self.currency}.*",
            f"IR.{self.foreign_currency}.*",
            *self._fx(reporting_currency, self.foreign_currency),
            *self._fx(reporting_currency, self.currency),
        )


def _check_fx_contract(where: str, domestic: str, foreign: str, strike: float, maturity: date) -> None:
    """Checks shared by FX forwards and options: a real pair, a positive strike, a maturity date."""
    _check_ccy("foreign_currency", foreign, where)
    if foreign == domestic:
        raise InvalidFieldError("foreign_currency", foreign, "equals the domestic currency", where=where)
    _check_finite("strike", strike, where, positive=True)
    _check_date("maturity", maturity, where)


def _check_date(field: str, value: Any, where: str) -> None:
    if not isinstance(value, date) or value == date.min:
        raise InvalidFieldError(field, value, "must be a date (YYYY-MM-DD)", where=where)


def _option_type(value: Any, where: str) -> OptionType:
    try:
        return OptionType(str(value).lower())
    except ValueError:
        raise InvalidFieldError("option_type", value, "must be 'call' or 'put'", where=where) from None


INSTRUMENT_CLASSES: Mapping[InstrumentType, type[Instrument]] = {
    cls.type: cls
    for cls in (
        Equity,
        EquityIndexFuture,
        FxSpot,
        FxForward,
        FixedRateBond,
        ZeroCouponBond,
        InterestRateSwap,
        EquityOption,
        FxOption,
    )
}

#: Fields a record may leave empty: the family's default applies. Every other field is mandatory.
_OPTIONAL = {"multiplier", "dividend_yield", "frequency", "face", "spread"}
_FLOATS = {
    "trade_price",
    "multiplier",
    "dividend_yield",
    "strike",
    "coupon_rate",
    "face",
    "spread",
    "fixed_rate",
}
_INTS = {"frequency"}


def _coerce(name: str, value: Any, where: str) -> Any:
    if name in _FLOATS:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InvalidFieldError(name, value, "must be a number", where=where) from None
    if name in _INTS:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise InvalidFieldError(name, value, "must be an integer", where=where) from None
        if not f.is_integer():
            raise InvalidFieldError(name, value, "must be an integer", where=where)
        return int(f)
    if name == "maturity":
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError:
            raise InvalidFieldError(name, value, "must be a date (YYYY-MM-DD)", where=where) from None
    if name == "pay_fixed":
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if isinstance(value, bool | int) and value in (0, 1):
            return bool(value)
        raise InvalidFieldError(name, value, "must be true or false", where=where)
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def instrument_from_record(record: Mapping[str, Any]) -> Instrument:
    """Build an instrument from a flat record (a row of the instruments file); ``type`` picks the family.

    Fields the family does not use are ignored (a table row holds the union of all families' columns); empty
    or NaN fields take the family's default if it has one, else raise MissingFieldError.
    """
    where = str(record.get("instrument_id", "?"))
    kind = record.get("type")
    if _missing(kind):
        raise MissingFieldError("type", where=where)
    try:
        cls = INSTRUMENT_CLASSES[InstrumentType(str(kind))]
    except ValueError:
        raise UnknownInstrumentTypeError(
            kind, known=tuple(t.value for t in InstrumentType), where=where
        ) from None
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        value = record.get(f.name)
        if _missing(value):
            if f.name in _OPTIONAL:
                continue
            raise MissingFieldError(f.name, where=where)
        kwargs[f.name] = _coerce(f.name, value, where)
    return cls(**kwargs)
