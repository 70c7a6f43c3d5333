"""The sample bank: a multi-asset trading portfolio on the synthetic market, sized from a handful to millions.

Six desks, as in a bank's markets division, each with its books and two to four traders per book:

============  ======================================================================  ==========
desk          what it holds                                                           positions
============  ======================================================================  ==========
EQ-CASH       single-name equities by region, index futures (index arbitrage)          25 %
EQ-DERIV      listed options on SPX, NASDAQ and single names, delta hedges             12 %
RATES         government fixed-rate and zero-coupon bonds, interest-rate swaps         15 %
FX            G10 spot, outright forwards, options                                     10 %
CREDIT        corporate bonds (investment grade, high yield), commercial paper         10 %
PRIME         prime-brokerage clients' long/short equity (swaps held as equity)        28 %
============  ======================================================================  ==========

Options are about 10 % of all positions. Instruments are shared the way listed contracts and bond issues are:
options come from a finite grid (underlying × expiry × strike moneyness × call/put), bonds from a fixed issue
list, swaps and FX forwards from a grid of standard tenors and rates, so a million positions reference a few tens
of thousands of instruments. Every instrument is priceable on the valuation-date snapshot (its factors exist,
its maturity is after the valuation date, strikes are around the current spot) and positions are sized at
$0.1–10M of notional each (log-normal by desk), long or short.

Positions carry desk, book, trader, counterparty (prime-brokerage and OTC clients by name, exchanges for listed
trades, dealer banks for bonds and spot FX), sector, region and currency. Generation is vectorised: positions are
drawn as index arrays into the instrument grid, never as Python objects; only the instruments used are built.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..domain import (
    INSTRUMENT_CLASSES,
    TENORS,
    Instrument,
    InstrumentType,
    MarketSnapshot,
    Portfolio,
    equity_factor,
    fx_factor,
    rate_factor,
)
from ..errors import ConfigurationError

__all__ = ["BOOKS", "DESKS", "EquityLike", "SampleBank", "UniverseLike", "sample_bank"]

#: Desk → share of positions.
DESKS: dict[str, float] = {
    "EQ-CASH": 0.25,
    "EQ-DERIV": 0.12,
    "RATES": 0.15,
    "FX": 0.10,
    "CREDIT": 0.10,
    "PRIME": 0.28,
}

#: Desk → its books.
BOOKS: dict[str, tuple[str, ...]] = {
    "EQ-CASH": (
        "EQ-CASH-US",
        "EQ-CASH-US-TECH",
        "EQ-CASH-EUROPE",
        "EQ-CASH-UK",
        "EQ-CASH-JAPAN",
        "EQ-CASH-INDEX-ARB",
    ),
    "EQ-DERIV": (
        "EQ-DERIV-INDEX-VOL",
        "EQ-DERIV-SINGLE-STOCK-US",
        "EQ-DERIV-SINGLE-STOCK-INTL",
        "EQ-DERIV-VOL-ARB",
    ),
    "RATES": (
        "RATES-USD-GOVT",
        "RATES-EUR-GOVT",
        "RATES-GBP-JPY-GOVT",
        "RATES-USD-SWAPS",
        "RATES-INTL-SWAPS",
    ),
    "FX": ("FX-G10-SPOT", "FX-FORWARDS", "FX-OPTIONS"),
    "CREDIT": ("CREDIT-IG-USD", "CREDIT-IG-INTL", "CREDIT-HIGH-YIELD", "CREDIT-MONEY-MARKETS"),
    "PRIME": ("PRIME-AMER", "PRIME-EMEA", "PRIME-APAC", "PRIME-SYNTHETICS"),
}

#: Desk → (product, share of the desk's positions, probability a position is long).
_MIX: dict[str, tuple[tuple[str, float, float], ...]] = {
    "EQ-CASH": (("equity", 0.93, 0.65), ("index_future", 0.07, 0.50)),
    "EQ-DERIV": (
        ("index_option", 0.28, 0.45),
        ("name_option", 0.47, 0.45),
        ("equity", 0.17, 0.50),
        ("index_future", 0.08, 0.50),
    ),
    "RATES": (("govt_bond", 0.45, 0.80), ("govt_zero", 0.10, 0.80), ("swap", 0.45, 1.0)),
    "FX": (("fx_spot", 0.38, 0.50), ("fx_forward", 0.50, 0.50), ("fx_option", 0.12, 0.50)),
    "CREDIT": (("corp_bond", 0.85, 0.85), ("corp_zero", 0.15, 0.95)),
    "PRIME": (("equity", 1.0, 0.60),),
}

#: Desk → median notional per position in USD (log-normal, clipped to $0.1–10M).
_NOTIONAL_USD: dict[str, float] = {
    "EQ-CASH": 1.0e6,
    "EQ-DERIV": 1.5e6,
    "RATES": 4.0e6,
    "FX": 5.0e6,
    "CREDIT": 1.5e6,
    "PRIME": 1.5e6,
}

_REGION = {"USD": "AMER", "CAD": "AMER", "JPY": "APAC", "AUD": "APAC", "NZD": "APAC"}  # others: EMEA
_EXCHANGE = {
    "USD": "NYSE",
    "EUR": "XETRA",
    "GBP": "LSE",
    "JPY": "TSE",
    "CHF": "SIX",
    "CAD": "TSX",
    "AUD": "ASX",
}
_OPTION_EXCHANGE = {"USD": "CBOE", "EUR": "EUREX", "GBP": "ICE", "JPY": "OSE"}
_OPTION_MULTIPLIER = {"USD": 100.0, "EUR": 100.0, "GBP": 1000.0, "JPY": 1000.0}
#: Index → (futures multiplier, dividend yield, share of the equity options traded on it).
_INDEX = {"SPX": (50.0, 0.020, 0.75), "NASDAQ": (20.0, 0.010, 0.25)}
#: Government issuer → (currency, z-spread over the currency's curve, coupons per year).
_GOVT = {
    "UST": ("USD", 0.0, 2),
    "DBR": ("EUR", 0.0, 1),
    "OAT": ("EUR", 0.0035, 1),
    "BTP": ("EUR", 0.0150, 1),
    "SPGB": ("EUR", 0.0100, 1),
    "UKT": ("GBP", 0.0, 2),
    "JGB": ("JPY", 0.0, 2),
}
_GOVT_SECTOR = "Government"
_FX_WEIGHT = {"EUR": 0.30, "JPY": 0.20, "GBP": 0.15, "AUD": 0.08, "CAD": 0.08, "CHF": 0.08}

_HEDGE_FUNDS = (
    "Aldgate Capital",
    "Birchwood Partners",
    "Cobalt Ridge Advisors",
    "Driftwood Asset Management",
    "Ember Lane Capital",
    "Foxglove Investors",
    "Granite Peak Partners",
    "Harbourview Capital",
    "Ironbridge Fund LP",
    "Juniper Hill Advisors",
    "Kestrel Point Capital",
    "Larkspur Partners",
    "Meridian Arc Capital",
    "Northgate Asset Management",
    "Oakmont Square Partners",
    "Pinnacle Reach Capital",
    "Quarry Lane Investors",
    "Redwood Cove Capital",
    "Saltmarsh Partners",
    "Thornbury Capital",
    "Upland Ridge Advisors",
    "Vantage Hollow Capital",
    "Westbrook Fields LP",
    "Yarrow Street Capital",
)
_OTC_CLIENTS = (
    "Northwind Pension Fund",
    "Alpine Re Insurance",
    "Bayside Municipal Authority",
    "Cardinal Airlines",
    "Delta Shipping Holdings",
    "Eastgate Energy",
    "Fjordline Utilities",
    "Greenfield University Endowment",
    "Highland Mutual Insurance",
    "Iberia Motorworks",
    "Kingsway Retail Group",
    "Lakeshore Teachers Pension",
    "Mistral Aerospace",
    "Nordic Timber Holdings",
    "Orchard Foods",
    "Pacific Rim Telecom",
    "Riverside Housing Trust",
    "Sakura Heavy Industries",
    "Tidewater Ports",
    "Unity Life Assurance",
    "Verdant Chemicals",
    "Westmarch Sovereign Fund",
)
_DEALERS = (
    "Atlas Bank",
    "Borealis Bank",
    "Crown Securities",
    "Danube Bank",
    "Everest Securities",
    "Fairhaven Bank",
    "Gotham Markets",
    "Helvetia Bank",
)
_TRADER_SURNAMES = (
    "smith",
    "kato",
    "rossi",
    "chen",
    "brown",
    "dubois",
    "mueller",
    "patel",
    "wong",
    "okafor",
    "garcia",
    "novak",
    "sato",
    "moreau",
    "cohen",
    "ivanova",
    "nguyen",
    "silva",
    "andersen",
    "zhang",
    "romano",
    "kim",
    "lee",
    "murphy",
    "schmidt",
    "tanaka",
    "walsh",
    "haddad",
    "jensen",
    "kowalski",
)

#: Typical dividend yield of a GICS sector (decimal per year), for equity options' carry.
_DIVIDEND_YIELD = {
    "Information Technology": 0.010,
    "Communication Services": 0.020,
    "Consumer Discretionary": 0.015,
    "Consumer Staples": 0.028,
    "Health Care": 0.016,
    "Financials": 0.027,
    "Industrials": 0.020,
    "Energy": 0.035,
    "Materials": 0.025,
    "Utilities": 0.038,
    "Real Estate": 0.037,
}


class EquityLike(Protocol):
    """What the sample bank reads of a single name (`riskstream.marketdata.EquitySpec` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def sector(self) -> str: ...
    @property
    def region(self) -> str: ...


class UniverseLike(Protocol):
    """What the sample bank reads of a factor universe (`riskstream.marketdata.Universe` is one)."""

    @property
    def equities(self) -> Sequence[EquityLike]: ...
    @property
    def indices(self) -> Sequence[str]: ...
    @property
    def fx_currencies(self) -> Sequence[str]: ...
    @property
    def curves(self) -> Sequence[str]: ...
    @property
    def vol_underlyings(self) -> Sequence[str]: ...
    @property
    def reporting_currency(self) -> str: ...
    @property
    def factor_ids(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class SampleBank:
    """A generated bank: instruments, positions (columns), the valuation-date market and its history.

    Attributes
    ----------
    instruments
        Every instrument some position references, unique by id.
    positions
        Position columns (numpy arrays of equal length): ``position_id``, ``instrument_id``, ``quantity`` and
        every attribute of `riskstream.domain.ATTRIBUTES`; ready for `Portfolio.from_records`.
    snapshot
        Factor values at the valuation date (the history's last day), reporting currency USD.
    history
        Daily factor levels (index: dates, columns: factor ids), see `riskstream.marketdata.synthetic_history`.
    universe
        The factor universe the market was generated for.
    """

    instruments: tuple[Instrument, ...]
    positions: dict[str, np.ndarray]
    snapshot: MarketSnapshot
    history: pd.DataFrame
    universe: UniverseLike

    @property
    def as_of(self) -> date:
        return self.snapshot.as_of

    @property
    def n_positions(self) -> int:
        return len(self.positions["position_id"])

    def portfolio(self) -> Portfolio:
        """The positions validated against the instruments, as a `Portfolio`."""
        columns: dict[str, Sequence[object] | np.ndarray] = dict(self.positions)
        return Portfolio.from_records(self.instruments, columns, self.snapshot.reporting_currency)


def sample_bank(
    n_positions: int = 10_000, seed: int = 0, *, universe: UniverseLike, history: pd.DataFrame
) -> SampleBank:
    """Generate the sample bank: ``n_positions`` positions across six desks on a market history.

    The market comes from the caller (reference-data adapters do not reach into market-data ones)::

        universe = marketdata.Universe.default()
        bank = sample_bank(10_000, seed=0, universe=universe, history=marketdata.synthetic_history(universe, 0))

    Parameters
    ----------
    n_positions
        Number of positions (≥ 1); a million take a few seconds.
    seed
        Seed of the portfolio draws (instrument grid, positions); the same inputs give the same bank.
    universe
        The factor universe: which names (with currency, sector, region), indices, FX currencies, curves and vol
        underlyings exist.
    history
        Daily factor levels (index: dates, columns: factor ids) holding every factor of ``universe``; its last
        row is the valuation-date market.
    """
    if isinstance(n_positions, bool) or not isinstance(n_positions, int | np.integer) or n_positions < 1:
        raise ConfigurationError("n_positions", n_positions, "must be a whole number ≥ 1")
    if len(history) == 0:
        raise ConfigurationError("history", "empty", "the market history has no rows")
    missing = [f for f in universe.factor_ids if f not in history.columns]
    if missing:
        raise ConfigurationError(
            "history", missing[:5], f"{len(missing)} factor(s) of the universe have no history"
        )
    as_of = pd.Timestamp(history.index[-1]).date()
    last = history.iloc[-1]
    values = {f: float(last[f]) for f in universe.factor_ids}
    snapshot = MarketSnapshot(as_of, values, universe.reporting_currency)
    market = _Market(snapshot)
    catalogue = _catalogue(universe, market, np.random.default_rng([seed, 2]))
    rows, columns = _draw_positions(catalogue, int(n_positions), np.random.default_rng([seed, 1]))
    used, inverse = np.unique(rows, return_inverse=True)
    instruments = _build_instruments(catalogue.iloc[used])
    ids = np.array([inst.instrument_id for inst in instruments], dtype=str)
    columns["instrument_id"] = ids[inverse.ravel()]
    return SampleBank(instruments, columns, snapshot, history, universe)


# ---------------------------------------------------------------------------------------------------------------
# market helpers and dates


class _Market:
    """Spot, FX and zero-curve look-ups on the valuation-date snapshot, vectorised over maturities."""

    def __init__(self, snapshot: MarketSnapshot) -> None:
        self.snapshot = snapshot
        self.as_of = snapshot.as_of

    def spot(self, name: str) -> float:
        return self.snapshot[equity_factor(name)]

    def fx(self, ccy: str) -> float:
        return self.snapshot[fx_factor(ccy)]

    def years(self, maturities: Sequence[date]) -> np.ndarray:
        """ACT/365F year fractions from the valuation date."""
        return np.array([(m - self.as_of).days / 365.0 for m in maturities])

    def zero(self, ccy: str, t: np.ndarray) -> np.ndarray:
        """Zero rates at times ``t`` (years): linear between tenors, flat beyond."""
        tenors = self.snapshot.curve_tenors(ccy)
        times = np.array([TENORS[x] for x in tenors])
        rates = np.array([self.snapshot[rate_factor(ccy, x)] for x in tenors])
        return np.interp(np.asarray(t, dtype=np.float64), times, rates)

    def df(self, ccy: str, t: np.ndarray) -> np.ndarray:
        return np.exp(-self.zero(ccy, t) * t)

    def par_rate(self, ccy: str, t: np.ndarray, frequency: int) -> np.ndarray:
        """Par fixed rate of a swap (or par yield of a bond) of remaining life ``t`` years, per maturity."""
        out = np.empty(len(t))
        for i, ti in enumerate(np.asarray(t, dtype=np.float64)):
            pay = ti - np.arange(0, int(np.ceil(ti * frequency - 1e-9))) / frequency
            pay = np.sort(pay[pay > 1e-9])
            accrual = np.diff(np.concatenate([[max(0.0, pay[0] - 1 / frequency)], pay]))
            out[i] = (1.0 - self.df(ccy, ti)) / np.sum(accrual * self.df(ccy, pay))
        return out


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return date(year, month, 1 + (4 - first.weekday()) % 7 + 14)


def _expiries(as_of: date, months: Sequence[int]) -> list[date]:
    """Listed expiries: the third Friday of the month ``months`` after the valuation date."""
    out = []
    for k in months:
        d = _add_months(as_of, k)
        out.append(_third_friday(d.year, d.month))
    return out


def _quarterly(as_of: date, n: int) -> list[date]:
    """The next ``n`` quarterly (Mar/Jun/Sep/Dec) third-Friday expiries strictly after the valuation date."""
    out: list[date] = []
    d = date(as_of.year, as_of.month, 1)
    while len(out) < n:
        if d.month % 3 == 0 and _third_friday(d.year, d.month) > as_of:
            out.append(_third_friday(d.year, d.month))
        d = _add_months(d, 1)
    return out


def _tick(values: np.ndarray) -> np.ndarray:
    """Listed strike increment for each spot: 2.5 per mille of the spot's decade (SPX 2500 → 25, $40 → 0.25)."""
    return 2.5 * 10.0 ** (np.floor(np.log10(values)) - 2)


def _grid(*sizes: int) -> tuple[np.ndarray, ...]:
    """Every combination of indices ``0 ≤ i_k < sizes[k]``, one flat array per axis, the last axis fastest."""
    return tuple(a.ravel() for a in np.meshgrid(*(np.arange(n) for n in sizes), indexing="ij"))


def _fmt(x: float) -> str:
    return f"{round(float(x), 6):.10g}"


def _region(ccy: str) -> str:
    return _REGION.get(ccy, "EMEA")


# ---------------------------------------------------------------------------------------------------------------
# the instrument grid: every contract a position may reference, with what the draws need to know about it


def _frame(rows: dict[str, Any], product: str, **meta: Any) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["product"] = product
    for k, v in meta.items():
        frame[k] = v
    return frame


def _catalogue(universe: UniverseLike, market: _Market, rng: np.random.Generator) -> pd.DataFrame:
    """One row per contract: family fields plus product, sector, region, venue, unit_usd, lot, weight, hint."""
    curves = set(universe.curves)
    parts = [
        _equities(universe, market),
        _index_futures(universe, market, curves),
        _equity_options(universe, market, curves),
        _government_bonds(market, curves, rng),
        _corporate_bonds(universe, market, curves, rng),
        _swaps(market, curves),
        *_fx(universe, market, curves),
    ]
    cat = pd.concat([p for p in parts if len(p)], ignore_index=True)
    if cat["instrument_id"].duplicated().any():  # strike rounding can merge grid points: keep the first
        cat = cat.drop_duplicates("instrument_id").reset_index(drop=True)
    return cat


def _equities(universe: UniverseLike, market: _Market) -> pd.DataFrame:
    eqs = universe.equities
    n = len(eqs)
    spot = np.array([market.spot(e.name) for e in eqs])
    fx = np.array([market.fx(e.currency) for e in eqs])
    tech = np.array([e.sector in ("Information Technology", "Communication Services") for e in eqs])
    hint = [
        "US-TECH"
        if e.currency == "USD" and t
        else {"USD": "US", "GBP": "UK", "JPY": "JAPAN"}.get(e.currency, "EUROPE")
        for e, t in zip(eqs, tech, strict=True)
    ]
    venue = [
        "NASDAQ" if e.currency == "USD" and t else _EXCHANGE.get(e.currency, "EXCHANGE")
        for e, t in zip(eqs, tech, strict=True)
    ]
    return _frame(
        {
            "instrument_id": [f"STK-{e.name}" for e in eqs],
            "type": InstrumentType.EQUITY.value,
            "currency": [e.currency for e in eqs],
            "underlying": [e.name for e in eqs],
            "sector": [e.sector for e in eqs],
            "region": [e.region for e in eqs],
            "venue": venue,
            "unit_usd": spot * fx,
            "lot": 1.0,
            "weight": 1.0 / (np.arange(n) + 20.0) ** 0.8,  # the universe lists the largest names first
            "hint": hint,
        },
        "equity",
    )


def _index_futures(universe: UniverseLike, market: _Market, curves: set[str]) -> pd.DataFrame:
    if "USD" not in curves:
        return pd.DataFrame()
    rows: dict[str, list[object]] = {
        k: [] for k in ("instrument_id", "underlying", "maturity", "trade_price")
    }
    extra: dict[str, list[float]] = {"multiplier": [], "dividend_yield": [], "unit_usd": [], "weight": []}
    codes = {3: "H", 6: "M", 9: "U", 12: "Z"}
    expiries = _quarterly(market.as_of, 4)
    t = market.years(expiries)
    for index in universe.indices:
        multiplier, q, _ = _INDEX[index]
        spot = market.spot(index)
        fwd = spot * np.exp((market.zero("USD", t) - q) * t)
        for k, (m, f) in enumerate(zip(expiries, fwd, strict=True)):
            rows["instrument_id"].append(f"FUT-{index}-{m.year}{codes[m.month]}")
            rows["underlying"].append(index)
            rows["maturity"].append(m)
            rows["trade_price"].append(round(f * 4) / 4)  # settled daily at the fair price, to the 0.25 tick
            extra["multiplier"].append(multiplier)
            extra["dividend_yield"].append(q)
            extra["unit_usd"].append(spot * multiplier)
            extra["weight"].append([0.55, 0.25, 0.12, 0.08][k] * _INDEX[index][2])
    return _frame(
        {**rows, **extra, "type": InstrumentType.INDEX_FUTURE.value, "currency": "USD"},
        "index_future",
        sector="Index",
        region="AMER",
        venue="CME",
        lot=1.0,
        hint="INDEX",
    )


def _equity_options(universe: UniverseLike, market: _Market, curves: set[str]) -> pd.DataFrame:
    vols = set(universe.vol_underlyings)
    index_rows = [
        (i, "USD", "Index", "AMER", _INDEX[i][1], _INDEX[i][2])
        for i in universe.indices
        if i in vols and "USD" in curves
    ]
    names = [e for e in universe.equities if e.name in vols and e.currency in curves]
    name_rows = [
        (e.name, e.currency, e.sector, e.region, _DIVIDEND_YIELD.get(e.sector, 0.02), 1.0 / (k + 20.0) ** 0.8)
        for k, e in enumerate(names)
    ]
    parts = [
        _option_grid(
            market, index_rows, (1, 2, 3, 6, 9, 12, 18, 24), np.arange(0.70, 1.301, 0.05), "index_option"
        ),
        _option_grid(market, name_rows, (1, 2, 3, 6, 9, 12), np.arange(0.85, 1.151, 0.05), "name_option"),
    ]
    return (
        pd.concat([p for p in parts if len(p)], ignore_index=True)
        if any(len(p) for p in parts)
        else pd.DataFrame()
    )


def _option_grid(
    market: _Market,
    underlyings: Sequence[tuple[str, str, str, str, float, float]],
    months: Sequence[int],
    moneyness: np.ndarray,
    product: str,
) -> pd.DataFrame:
    """Listed equity options: underlying × expiry × strike × call/put, weighted towards short-dated ATM."""
    if not underlyings:
        return pd.DataFrame()
    expiries = _expiries(market.as_of, months)
    name, ccy, sector, region, q, popularity = (np.array(c) for c in zip(*underlyings, strict=True))
    spot = np.array([market.spot(u) for u in name])
    fx = np.array([market.fx(c) for c in ccy])
    mult = np.array([_OPTION_MULTIPLIER.get(c, 100.0) for c in ccy])
    # grid axes: underlying (u), expiry (e), moneyness (k), call/put (c)
    u, e, k, c = _grid(len(name), len(expiries), len(moneyness), 2)
    tick = _tick(spot)[u]
    strike = np.maximum(np.round(spot[u] * moneyness[k] / tick) * tick, tick)
    kind = np.array(["call", "put"])[c]
    exp = np.array(expiries, dtype=object)[e]
    weight = popularity.astype(float)[u] * np.exp(-0.5 * ((moneyness[k] - 1.0) / 0.08) ** 2) / (1.0 + e)
    ids = [
        f"OPT-{n}-{d:%Y%m%d}-{t[0].upper()}{_fmt(s)}"
        for n, d, t, s in zip(name[u], exp, kind, strike, strict=True)
    ]
    hint = np.where(product == "index_option", "INDEX", np.where(ccy[u] == "USD", "US", "INTL"))
    return _frame(
        {
            "instrument_id": ids,
            "type": InstrumentType.EQUITY_OPTION.value,
            "currency": ccy[u],
            "underlying": name[u],
            "strike": strike,
            "maturity": exp,
            "option_type": kind,
            "dividend_yield": q.astype(float)[u],
            "multiplier": mult[u],
            "sector": sector[u],
            "region": region[u],
            "venue": [_OPTION_EXCHANGE.get(x, "EXCHANGE") for x in ccy[u]],
            "unit_usd": (spot * mult * fx)[u],
            "lot": 1.0,
            "weight": weight,
            "hint": hint,
        },
        product,
    )


def _coupon(
    market: _Market, ccy: str, t: np.ndarray, frequency: int, spread: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """Coupon of a bond issued some time ago: today's par yield + spread + noise, to 1/8 %, never negative."""
    return np.maximum(np.round((market.par_rate(ccy, t, frequency) + spread + noise) * 800) / 800, 0.0)


def _government_bonds(market: _Market, curves: set[str], rng: np.random.Generator) -> pd.DataFrame:
    years = np.array([1, 2, 3, 4, 5, 7, 8, 10, 15, 20, 25, 30])
    benchmark = np.isin(years, (2, 5, 10, 30))
    bills = (1, 3, 6, 12, 24, 60, 120, 240, 360)
    parts = []
    for issuer, (ccy, spread, freq) in _GOVT.items():
        if ccy not in curves:
            continue
        months = rng.integers(0, 12, len(years))
        maturity = [
            _add_months(market.as_of, int(12 * y - 6 + m)).replace(day=15)
            for y, m in zip(years, months, strict=True)
        ]
        maturity = [d if d > market.as_of else _add_months(d, 1) for d in maturity]
        t = market.years(maturity)
        coupon = _coupon(market, ccy, t, freq, np.full(len(t), spread), rng.normal(0.0, 0.008, len(t)))
        weight = np.where(benchmark, 3.0, 1.0) * (3.0 if spread == 0.0 else 1.0)
        parts.append(
            _frame(
                {
                    "instrument_id": [
                        f"{issuer}-{100 * cp:.3f}-{d:%Y%m%d}" for cp, d in zip(coupon, maturity, strict=True)
                    ],
                    "type": InstrumentType.FIXED_RATE_BOND.value,
                    "maturity": maturity,
                    "coupon_rate": coupon,
                    "frequency": freq,
                    "spread": spread,
                    "weight": weight,
                },
                "govt_bond",
                currency=ccy,
                face=100.0,
                unit_usd=100.0 * market.fx(ccy),
                lot=10.0,
                hint=ccy,
            )
        )
        if spread == 0.0:  # bills and strips of the benchmark issuer
            zmat = [_add_months(market.as_of, m) for m in bills]
            parts.append(
                _frame(
                    {
                        "instrument_id": [f"{issuer}Z-{d:%Y%m%d}" for d in zmat],
                        "type": InstrumentType.ZERO_COUPON_BOND.value,
                        "maturity": zmat,
                        "weight": 1.0 / (1.0 + np.arange(len(bills))),
                    },
                    "govt_zero",
                    currency=ccy,
                    face=100.0,
                    spread=0.0,
                    unit_usd=100.0 * market.fx(ccy),
                    lot=10.0,
                    hint=ccy,
                )
            )
    return _with_meta(parts, sector=_GOVT_SECTOR, venue="", region=None)


def _with_meta(parts: list[pd.DataFrame], **meta: str | None) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True)
    for k, v in meta.items():
        frame[k] = frame["currency"].map(_region) if v is None else v
    return frame


def _corporate_bonds(
    universe: UniverseLike, market: _Market, curves: set[str], rng: np.random.Generator
) -> pd.DataFrame:
    """Corporate issues of the universe's first 300 names with a curve: 1–3 bonds each, 25 % high yield.

    The hundred largest investment-grade issuers also have commercial paper (1, 3, 6 and 12 months).
    """
    issuers = [e for e in universe.equities if e.currency in curves][:300]
    if not issuers:
        return pd.DataFrame()
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "instrument_id",
            "type",
            "product",
            "maturity",
            "coupon_rate",
            "frequency",
            "spread",
            "weight",
        )
    }
    meta: dict[str, list[Any]] = {k: [] for k in ("currency", "sector", "region", "unit_usd", "hint")}
    paper = np.array([1, 3, 6, 12])
    for k, e in enumerate(issuers):
        hy = rng.random() < 0.25
        n_bonds = int(rng.integers(1, 4))
        spread = rng.uniform(0.03, 0.06) if hy else rng.uniform(0.006, 0.02)
        years = np.sort(rng.uniform(2.0, 10.0 if hy else 20.0, n_bonds))
        maturity = [_add_months(market.as_of, round(12 * y)).replace(day=15) for y in years]
        freq = 2 if e.currency == "USD" else 1
        noise = rng.normal(0.0, 0.006, n_bonds)
        coupon = _coupon(market, e.currency, market.years(maturity), freq, np.full(n_bonds, spread), noise)
        popularity = 1.0 / (k + 20.0) ** 0.8
        grade = "HY" if hy else ("IG-USD" if e.currency == "USD" else "IG-INTL")
        rows["instrument_id"] += [
            f"{e.name}-{100 * c:.3f}-{d:%Y%m%d}" for c, d in zip(coupon, maturity, strict=True)
        ]
        rows["type"] += [InstrumentType.FIXED_RATE_BOND.value] * n_bonds
        rows["product"] += ["corp_bond"] * n_bonds
        rows["maturity"] += maturity
        rows["coupon_rate"] += coupon.tolist()
        rows["frequency"] += [freq] * n_bonds
        rows["spread"] += [spread] * n_bonds
        rows["weight"] += [popularity] * n_bonds
        count = n_bonds
        if k < 100 and not hy:
            rows["instrument_id"] += [
                f"{e.name}-CP-{_add_months(market.as_of, int(m)):%Y%m%d}" for m in paper
            ]
            rows["type"] += [InstrumentType.ZERO_COUPON_BOND.value] * len(paper)
            rows["product"] += ["corp_zero"] * len(paper)
            rows["maturity"] += [_add_months(market.as_of, int(m)) for m in paper]
            rows["coupon_rate"] += [np.nan] * len(paper)
            rows["frequency"] += [np.nan] * len(paper)
            rows["spread"] += [round(spread / 3, 4)] * len(paper)
            rows["weight"] += (popularity / (1.0 + np.arange(len(paper)))).tolist()
            grades = [grade] * n_bonds + ["MONEY-MARKETS"] * len(paper)
            count += len(paper)
        else:
            grades = [grade] * n_bonds
        meta["currency"] += [e.currency] * count
        meta["sector"] += [e.sector] * count
        meta["region"] += [e.region] * count
        meta["unit_usd"] += [100.0 * market.fx(e.currency)] * count
        meta["hint"] += grades
    frame = pd.DataFrame({**rows, **meta})
    frame["frequency"] = frame["frequency"].astype("Int64")
    frame["face"] = 100.0
    frame["lot"] = 10.0
    frame["venue"] = ""
    return frame


def _swaps(market: _Market, curves: set[str]) -> pd.DataFrame:
    """Vanilla swaps: currency × tenor × seasoning × pay/receive × fixed rate (par ± 0, 25, 50 bp)."""
    tenors = np.array([2, 3, 5, 7, 10, 15, 20, 30])
    tenor_weight = np.array([2.0, 1.0, 3.0, 1.0, 3.0, 1.0, 1.0, 2.0])
    seasoning = np.array([0, 3, 6, 9])
    offsets = np.array([-0.005, -0.0025, 0.0, 0.0025, 0.005])
    freq = {"USD": 2, "EUR": 1, "GBP": 2, "JPY": 2}
    parts = []
    for ccy in sorted(curves, key=lambda c: ("USD", "EUR", "GBP", "JPY").index(c) if c in freq else 9):
        f = freq.get(ccy, 1)
        te, se, of, receive = _grid(len(tenors), len(seasoning), len(offsets), 2)
        pf = receive == 0
        maturity = [
            _add_months(market.as_of, int(12 * tenors[i] - seasoning[j])) for i, j in zip(te, se, strict=True)
        ]
        par = market.par_rate(ccy, market.years(maturity), f)
        rate = np.round((par + offsets[of]) * 2000) / 2000  # to 5 bp: off-market rates of older trades
        weight = tenor_weight[te] / (1.0 + seasoning[se] / 3) / (1.0 + 2 * np.abs(offsets[of]) / 0.0025)
        parts.append(
            _frame(
                {
                    "instrument_id": [
                        f"IRS-{ccy}-{d:%Y%m%d}-{'PAY' if p else 'REC'}-{100 * r:.3f}"
                        for d, p, r in zip(maturity, pf, rate, strict=True)
                    ],
                    "type": InstrumentType.INTEREST_RATE_SWAP.value,
                    "maturity": maturity,
                    "fixed_rate": rate,
                    "pay_fixed": pf,
                    "weight": weight,
                },
                "swap",
                currency=ccy,
                frequency=f,
                sector="Rates",
                region=_region(ccy),
                unit_usd=market.fx(ccy),
                lot=100_000.0,
                hint="USD" if ccy == "USD" else "INTL",
            )
        )
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True)
    frame["venue"] = ""
    return frame


def _fx(universe: UniverseLike, market: _Market, curves: set[str]) -> list[pd.DataFrame]:
    """FX spot per currency; forwards and options on the vol pairs whose two currencies have curves."""
    ccys = list(universe.fx_currencies)
    spot = _frame(
        {
            "instrument_id": [f"FXS-{c}" for c in ccys],
            "type": InstrumentType.FX_SPOT.value,
            "currency": ccys,
            "region": [_region(c) for c in ccys],
            "unit_usd": [market.fx(c) for c in ccys],
            "weight": [_FX_WEIGHT.get(c, 0.04) for c in ccys],
        },
        "fx_spot",
        sector="FX",
        venue="",
        lot=1000.0,
        hint="SPOT",
    )
    known = {universe.reporting_currency, *ccys}
    pairs = [
        p
        for p in universe.vol_underlyings
        if len(p) == 6 and p[:3] in known and p[3:] in known and p[:3] in curves and p[3:] in curves
    ]
    if not pairs:
        return [spot]
    months = np.array([1, 2, 3, 6, 9, 12])
    fwd_parts, opt_parts = [], []
    for rank, pair in enumerate(pairs):
        foreign, domestic = pair[:3], pair[3:]
        maturity = [_add_months(market.as_of, int(m)) for m in months]
        t = market.years(maturity)
        s = market.fx(foreign) / market.fx(domestic)
        fwd = s * market.df(foreign, t) / market.df(domestic, t)
        decimals = 2 if s > 20 else 4
        other = foreign if domestic == universe.reporting_currency else domestic
        meta = {
            "currency": domestic,
            "foreign_currency": foreign,
            "sector": "FX",
            "region": _region(other),
            "venue": "",
            "unit_usd": market.fx(foreign),
            "lot": 1000.0,
        }
        mi, ki = _grid(len(months), 5)
        strike = np.round(fwd[mi] * (1 + np.array([-0.03, -0.015, 0.0, 0.015, 0.03])[ki]), decimals)
        fwd_parts.append(
            _frame(
                {
                    "instrument_id": [
                        f"FXF-{pair}-{maturity[i]:%Y%m%d}-{_fmt(k)}" for i, k in zip(mi, strike, strict=True)
                    ],
                    "type": InstrumentType.FX_FORWARD.value,
                    "strike": strike,
                    "maturity": [maturity[i] for i in mi],
                    "weight": 1.0 / (1.0 + rank) / (1.0 + mi) / (1.0 + np.abs(ki - 2)),
                },
                "fx_forward",
                hint="FORWARDS",
                **meta,
            )
        )
        oi, ki, ci = _grid(5, 5, 2)
        mi = np.array([0, 1, 2, 3, 5])[oi]  # 1M, 2M, 3M, 6M, 1Y
        strike = np.round(fwd[mi] * np.array([0.90, 0.95, 1.0, 1.05, 1.10])[ki], decimals)
        kind = np.array(["call", "put"])[ci]
        opt_parts.append(
            _frame(
                {
                    "instrument_id": [
                        f"FXO-{pair}-{maturity[i]:%Y%m%d}-{c[0].upper()}{_fmt(k)}"
                        for i, c, k in zip(mi, kind, strike, strict=True)
                    ],
                    "type": InstrumentType.FX_OPTION.value,
                    "strike": strike,
                    "maturity": [maturity[i] for i in mi],
                    "option_type": kind,
                    "weight": 1.0 / (1.0 + rank) / (1.0 + mi) / (1.0 + np.abs(ki - 2)),
                },
                "fx_option",
                hint="OPTIONS",
                **meta,
            )
        )
    return [spot, *fwd_parts, *opt_parts]


# ---------------------------------------------------------------------------------------------------------------
# positions


def _allocate(n: int, shares: np.ndarray) -> np.ndarray:
    """Split ``n`` into whole counts proportional to ``shares`` (largest remainder), summing to ``n``."""
    raw = n * shares / shares.sum()
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts


def _draw_positions(
    cat: pd.DataFrame, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Draw ``n`` positions: catalogue row per position, and every position column but ``instrument_id``."""
    products = cat["product"].to_numpy()
    weight = cat["weight"].to_numpy(dtype=np.float64)
    plan: list[tuple[str, str, float, np.ndarray]] = []
    shares: list[float] = []
    for desk_name, mix in _MIX.items():
        available = [(p, s, lp, np.flatnonzero(products == p)) for p, s, lp in mix]
        available = [a for a in available if len(a[3])]
        total = sum(a[1] for a in available)
        for p, s, lp, cands in available:
            plan.append((desk_name, p, lp, cands))
            shares.append(DESKS[desk_name] * s / total)
    if not plan:
        raise ConfigurationError("universe", "empty", "no instrument can be built on this universe")
    counts = _allocate(n, np.array(shares))
    rows = np.empty(n, dtype=np.int64)
    desk_code = np.empty(n, dtype=np.int64)
    long_prob = np.empty(n)
    desks = list(_MIX)
    start = 0
    for (desk_name, _, lp, candidates), k in zip(plan, counts, strict=True):
        w = weight[candidates]
        rows[start : start + k] = rng.choice(candidates, size=k, p=w / w.sum())
        desk_code[start : start + k] = desks.index(desk_name)
        long_prob[start : start + k] = lp
        start += k

    desk = np.array(desks)[desk_code]
    book = _books(cat, rows, desk, rng)
    median = np.array([_NOTIONAL_USD[d] for d in desks])[desk_code]
    notional = np.clip(median * np.exp(rng.normal(0.0, 0.8, n)), 1e5, 1e7)
    unit = cat["unit_usd"].to_numpy(dtype=np.float64)[rows]
    lot = cat["lot"].to_numpy(dtype=np.float64)[rows]
    size = np.maximum(np.round(notional / unit / lot), 1.0) * lot
    quantity = np.where(rng.random(n) < long_prob, size, -size)

    order = rng.permutation(n)  # positions arrive in booking order, not grouped by desk
    rows, desk, book, quantity = rows[order], desk[order], book[order], quantity[order]
    columns = {
        "position_id": np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), max(7, len(str(n))))),
        "quantity": quantity,
        "desk": desk,
        "book": book,
        "trader": _traders(book, rng),
        "counterparty": _counterparties(cat, rows, desk, rng),
        "sector": cat["sector"].to_numpy(dtype=str)[rows],
        "region": cat["region"].to_numpy(dtype=str)[rows],
        "currency": cat["currency"].to_numpy(dtype=str)[rows],
    }
    return rows, columns


def _books(cat: pd.DataFrame, rows: np.ndarray, desk: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Book of each position, from its desk and its instrument's product, currency, region and grade."""
    product = cat["product"].to_numpy(dtype=str)[rows]
    hint = cat["hint"].to_numpy(dtype=str)[rows]
    region = cat["region"].to_numpy(dtype=str)[rows]
    u = rng.random(len(rows))
    book = np.full(len(rows), "", dtype=object)
    rules: dict[str, Callable[[], np.ndarray]] = {
        "EQ-CASH": lambda: np.where(
            product == "index_future", "EQ-CASH-INDEX-ARB", np.char.add("EQ-CASH-", hint)
        ),
        "EQ-DERIV": lambda: np.select(
            [
                np.char.endswith(product, "option") & (u < 0.15),
                (product == "index_option") | (product == "index_future"),
                hint == "US-TECH",
                hint == "US",
            ],
            [
                "EQ-DERIV-VOL-ARB",
                "EQ-DERIV-INDEX-VOL",
                "EQ-DERIV-SINGLE-STOCK-US",
                "EQ-DERIV-SINGLE-STOCK-US",
            ],
            "EQ-DERIV-SINGLE-STOCK-INTL",
        ),
        "RATES": lambda: np.where(
            product == "swap",
            np.where(hint == "USD", "RATES-USD-SWAPS", "RATES-INTL-SWAPS"),
            np.select(
                [hint == "USD", hint == "EUR"], ["RATES-USD-GOVT", "RATES-EUR-GOVT"], "RATES-GBP-JPY-GOVT"
            ),
        ),
        "FX": lambda: np.where(hint == "SPOT", "FX-G10-SPOT", np.char.add("FX-", hint)),
        "CREDIT": lambda: np.select(
            [hint == "MONEY-MARKETS", hint == "HY", hint == "IG-USD"],
            ["CREDIT-MONEY-MARKETS", "CREDIT-HIGH-YIELD", "CREDIT-IG-USD"],
            "CREDIT-IG-INTL",
        ),
        "PRIME": lambda: np.where(u < 0.2, "PRIME-SYNTHETICS", np.char.add("PRIME-", region)),
    }
    for d, rule in rules.items():
        mask = desk == d
        if mask.any():
            book[mask] = rule()[mask]
    return book.astype(str)


def _traders(book: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two to four traders per book (the same names for a book whatever the seed), drawn uniformly."""
    all_books = [b for books in BOOKS.values() for b in books]
    fixed = np.random.default_rng(2019)
    initials = "abcdefghjklmnoprstvwy"
    pool = sorted({f"{i}{s}" for i in initials for s in _TRADER_SURNAMES})
    names = fixed.permutation(pool)
    per_book = fixed.integers(2, 5, len(all_books))
    table = np.full((len(all_books), 4), "", dtype=object)
    start = 0
    for b, k in enumerate(per_book):
        table[b, :k] = names[start : start + k]
        start += k
    book_index = {b: i for i, b in enumerate(all_books)}
    uniq, inverse = np.unique(book, return_inverse=True)
    code = np.array([book_index[b] for b in uniq])[inverse.ravel()]
    pick = np.floor(rng.random(len(book)) * per_book[code]).astype(np.int64)
    return table[code, pick].astype(str)


def _counterparties(
    cat: pd.DataFrame, rows: np.ndarray, desk: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Clients for prime brokerage and OTC trades, the exchange for listed ones, dealer banks for bonds and spot."""
    n = len(rows)
    product = cat["product"].to_numpy(dtype=str)[rows]
    venue = cat["venue"].to_numpy(dtype=str)[rows]

    def zipf(names: Sequence[str]) -> np.ndarray:
        w = 1.0 / (np.arange(len(names)) + 2.0)
        return np.array(names)[rng.choice(len(names), size=n, p=w / w.sum())]

    otc = np.isin(product, ("swap", "fx_forward", "fx_option"))
    dealer = np.isin(product, ("govt_bond", "govt_zero", "corp_bond", "corp_zero", "fx_spot"))
    return np.select(
        [desk == "PRIME", otc, dealer],
        [zipf(_HEDGE_FUNDS), zipf(_OTC_CLIENTS), zipf(_DEALERS)],
        venue,
    ).astype(str)


def _build_instruments(rows: pd.DataFrame) -> tuple[Instrument, ...]:
    """Instrument objects for catalogue rows, in row order, each built and validated by its family's class."""
    out: list[Instrument | None] = [None] * len(rows)
    position = np.arange(len(rows))
    types = rows["type"].to_numpy()
    for kind, cls in INSTRUMENT_CLASSES.items():
        mask = types == kind.value
        if not mask.any():
            continue
        names = [f.name for f in fields(cls)]
        ints = [f.name for f in fields(cls) if f.type == "int"]  # a column with gaps elsewhere reads as float
        for i, record in zip(position[mask], rows.loc[mask, names].to_dict("records"), strict=True):
            out[i] = cls(**{**record, **{k: int(record[k]) for k in ints}})
    assert all(x is not None for x in out)
    return tuple(x for x in out if x is not None)
