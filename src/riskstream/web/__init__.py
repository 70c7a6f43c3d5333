"""riskstream.web: dashboard and report charts."""

from ._charts import plot_backtest
from ._risk_chart import plot_risk_report

__all__ = ["plot_backtest", "plot_risk_report"]
