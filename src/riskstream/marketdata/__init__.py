"""riskstream.marketdata: market-data adapters — daily price histories from files and shipped data sets."""

from ._series import BUILTIN_SERIES, load_price_series, simple_returns

__all__ = ["BUILTIN_SERIES", "load_price_series", "simple_returns"]
