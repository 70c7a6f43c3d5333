"""Session fixtures: the small synthetic market and portfolio of engine_market.py."""

from __future__ import annotations

import pandas as pd
import pytest
from engine_market import instruments, make_history, positions, snapshot_from

from riskstream.domain import MarketSnapshot, Portfolio


@pytest.fixture(scope="session")
def market() -> tuple[pd.DataFrame, MarketSnapshot]:
    h = make_history()
    return h, snapshot_from(h)


@pytest.fixture(scope="session")
def portfolio() -> Portfolio:
    return Portfolio.from_records(instruments(), positions())
