"""FRTB liquidity-adjusted ES (MAR33.4) and the MAR33.12 liquidity-horizon table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from riskstream.errors import ConfigurationError, InvalidFieldError, MissingFieldError
from riskstream.risk import (
    LIQUIDITY_HORIZONS,
    LiquidityHorizonRules,
    horizon_masks,
    liquidity_adjusted_es,
    liquidity_horizon,
    masked_shocks,
    var_es,
)


def _with_worst(loss: float, n: int = 40) -> np.ndarray:
    """40 scenarios whose worst P&L is −loss: at 97.5 %, t = 40·0.025 = 1, so ES = loss exactly."""
    pnl = np.linspace(-0.5 * loss, loss, n)
    pnl[7] = -loss
    return pnl


def test_cascade_by_hand() -> None:
    pnl = {10: _with_worst(100.0), 20: _with_worst(60.0), 40: _with_worst(30.0), 60: _with_worst(20.0)}
    pnl[120] = _with_worst(10.0)
    result = liquidity_adjusted_es(pnl)
    # MAR33.4 terms ES_j·sqrt((LH_j − LH_{j−1})/10), by hand:
    #   100·1 = 100; 60·sqrt(10/10) = 60; 30·sqrt(20/10) = 42.426407; 20·sqrt(20/10) = 28.284271;
    #   10·sqrt(60/10) = 24.494897
    # total = sqrt(100² + 60² + 2·30² + 2·20² + 6·10²) = sqrt(10000 + 3600 + 1800 + 800 + 600) = sqrt(16800)
    #       = 129.614814
    assert result.terms == pytest.approx({10: 100.0, 20: 60.0, 40: 42.426407, 60: 28.284271, 120: 24.494897})
    assert result.es_by_horizon == pytest.approx({10: 100.0, 20: 60.0, 40: 30.0, 60: 20.0, 120: 10.0})
    assert result.total == pytest.approx(129.614814, abs=1e-6)
    assert result.confidence == 0.975


def test_missing_bucket_contributes_nothing() -> None:
    result = liquidity_adjusted_es({10: _with_worst(30.0), 40: _with_worst(20.0)})
    # sqrt(30² + (20·sqrt(2))²) = sqrt(900 + 800) = 41.231056 (hand computation)
    assert result.total == pytest.approx(41.231056, abs=1e-6)
    assert result.terms[20] == 0.0 and result.es_by_horizon[120] == 0.0


def test_matrix_input_gives_one_total_per_node() -> None:
    rng = np.random.default_rng(4)
    pnl = {lh: rng.normal(size=(3, 250)) / lh for lh in LIQUIDITY_HORIZONS}
    result = liquidity_adjusted_es(pnl)
    assert isinstance(result.total, np.ndarray) and result.total.shape == (3,)
    for node in range(3):
        single = liquidity_adjusted_es({lh: v[node] for lh, v in pnl.items()})
        assert result.total[node] == pytest.approx(single.total, rel=1e-12)


@pytest.mark.parametrize(
    ("pnl", "error"),
    [
        ({20: np.ones(5)}, MissingFieldError),
        ({10: np.ones(5), 30: np.ones(5)}, InvalidFieldError),
        ({10: np.ones(5), 20: np.ones(6).reshape(2, 3)}, InvalidFieldError),
    ],
)
def test_bad_inputs_are_rejected(pnl: dict[int, np.ndarray], error: type) -> None:
    with pytest.raises(error):
        liquidity_adjusted_es(pnl)


RULES = LiquidityHorizonRules(small_caps=frozenset({"TINYCO"}))


@pytest.mark.parametrize(
    ("factor_id", "horizon"),
    [
        # MAR33.12: equity price large cap 10, small cap 20
        ("EQ.ACME", 10),
        ("EQ.TINYCO", 20),
        # FX rate: specified pairs (USD vs EUR, JPY, ..., BRL) 10, other 20
        ("FX.EUR", 10),
        ("FX.BRL", 10),
        ("FX.PLN", 20),
        # interest rate: EUR, USD, GBP, AUD, JPY, SEK, CAD and domestic 10, other 20
        ("IR.USD.5Y", 10),
        ("IR.SEK.10Y", 10),
        ("IR.CHF.2Y", 20),
        # FX volatility 40; interest-rate volatility 60
        ("VOL.EURUSD", 40),
        ("VOL.FX.USDJPY", 40),
        ("VOL.IR.USD.5Y", 60),
        # equity volatility: large cap 20, small cap 60 (six letters that are not two currencies: equity)
        ("VOL.ACME", 20),
        ("VOL.NVIDIA", 20),
        ("VOL.EQ.TINYCO", 60),
        ("VOL.TINYCO", 60),
    ],
)
def test_liquidity_horizon_table(factor_id: str, horizon: int) -> None:
    assert liquidity_horizon(factor_id, RULES) == horizon


def test_reporting_and_domestic_currency() -> None:
    eur = LiquidityHorizonRules(reporting_currency="EUR")
    # first-order cross of specified pairs: GBP/EUR is 10; USD/EUR is a specified pair
    assert liquidity_horizon("FX.GBP", eur) == 10
    assert liquidity_horizon("FX.USD", eur) == 10
    assert liquidity_horizon("FX.PLN", eur) == 20
    pln = LiquidityHorizonRules(reporting_currency="PLN")
    # PLN is not in the specified pairs, so USD/PLN is "other"; PLN rates are the domestic currency's, hence 10
    assert liquidity_horizon("FX.USD", pln) == 20
    assert liquidity_horizon("IR.PLN.5Y", pln) == 10
    assert liquidity_horizon("IR.PLN.5Y") == 20


@pytest.mark.parametrize(
    "factor_id", ["EQ", "CMD.GOLD", "FX.XYZ", "FX.USD", "IR.USD", "IR.ABC.5Y", "VOL.FX.EUR"]
)
def test_unknown_factor_ids_are_rejected(factor_id: str) -> None:
    with pytest.raises(InvalidFieldError):
        liquidity_horizon(factor_id)


def test_bad_rules_are_rejected() -> None:
    with pytest.raises(ConfigurationError):
        LiquidityHorizonRules(reporting_currency="usd")


FACTORS = ["EQ.ACME", "FX.PLN", "VOL.EURUSD", "VOL.IR.USD.5Y", "VOL.TINYCO"]  # horizons 10, 20, 40, 60, 60


def test_horizon_masks() -> None:
    masks = horizon_masks(FACTORS, RULES)
    assert {lh: m.tolist() for lh, m in masks.items()} == {
        10: [True, True, True, True, True],
        20: [False, True, True, True, True],
        40: [False, False, True, True, True],
        60: [False, False, False, True, True],
        120: [False, False, False, False, False],
    }


def test_masked_shocks_feed_the_cascade() -> None:
    rng = np.random.default_rng(8)
    shocks = rng.normal(size=(5, 400))
    by_horizon = masked_shocks(FACTORS, shocks, RULES)
    assert sorted(by_horizon) == [10, 20, 40, 60]  # nothing has a 120-day horizon
    np.testing.assert_array_equal(by_horizon[10], shocks)
    np.testing.assert_array_equal(by_horizon[40][:2], 0.0)
    np.testing.assert_array_equal(by_horizon[40][2:], shocks[2:])
    assert (masked_shocks(FACTORS, shocks, RULES, neutral=1.0)[60][:3] == 1.0).all()
    # a linear book revalued under each masked shock set
    delta = np.array([3.0, -1.0, 0.5, 2.0, 1.0])
    result = liquidity_adjusted_es({lh: delta @ s for lh, s in by_horizon.items()})
    es = {lh: float(var_es(delta @ s, 0.975)[1]) for lh, s in by_horizon.items()}
    expected = math.sqrt(es[10] ** 2 + es[20] ** 2 + 2 * es[40] ** 2 + 2 * es[60] ** 2)
    assert result.total == pytest.approx(expected, rel=1e-12)
    with pytest.raises(InvalidFieldError):
        masked_shocks(FACTORS[:2], shocks, RULES)
