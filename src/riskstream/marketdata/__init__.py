"""riskstream.marketdata: market-data adapters — daily price histories from files and shipped data sets, and a
synthetic but calibrated factor history."""

from ._series import BUILTIN_SERIES, load_price_series, simple_returns
from ._synthetic import SECTORS, EquitySpec, Universe, synthetic_history

__all__ = [
    "BUILTIN_SERIES",
    "SECTORS",
    "EquitySpec",
    "Universe",
    "load_price_series",
    "simple_returns",
    "synthetic_history",
]
