"""riskstream.web: dashboard and report charts."""

from ._charts import plot_backtest

__all__ = ["plot_backtest"]
