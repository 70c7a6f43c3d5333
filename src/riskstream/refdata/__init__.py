"""riskstream.refdata: reference-data adapters — the sample bank and the portfolio directory format."""

from ._files import (
    LoadedPortfolio,
    load_history,
    load_instruments,
    load_market,
    load_portfolio,
    load_positions,
    write_portfolio,
)
from ._sample import BOOKS, DESKS, EquityLike, SampleBank, UniverseLike, sample_bank

__all__ = [
    "BOOKS",
    "DESKS",
    "EquityLike",
    "LoadedPortfolio",
    "SampleBank",
    "UniverseLike",
    "load_history",
    "load_instruments",
    "load_market",
    "load_portfolio",
    "load_positions",
    "sample_bank",
    "write_portfolio",
]
