"""Feeds: replay of a history and of a tick file, synthetic ticks (statistics, determinism, rate), merging."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskstream.domain import Tick, parse_factor
from riskstream.errors import ConfigurationError, EmptyInputError, MissingFieldError
from riskstream.marketdata import (
    Feed,
    MultiFeed,
    ReplayFeed,
    SimulatedClock,
    SyntheticFeed,
    factor_changes,
    read_ticks,
    write_ticks,
)

T0 = 1_700_000_000_000_000  # 2023-11-14 22:13:20 UTC, in µs
FACTORS = ["EQ.AAA", "EQ.BBB", "FX.EUR", "IR.USD.5Y"]
CORR = np.array(
    [
        [1.0, 0.7, 0.3, -0.4],
        [0.7, 1.0, 0.2, -0.3],
        [0.3, 0.2, 1.0, 0.1],
        [-0.4, -0.3, 0.1, 1.0],
    ]
)
DAILY_SD = np.array([0.02, 0.015, 0.006, 0.0006])  # relative for EQ/FX, absolute (6 bp) for the rate


def _history(n_days: int = 251, seed: int = 1, start_levels: tuple[float, ...] = (100.0, 50.0, 1.1, 0.02)):
    """Hand-made daily levels with correlation CORR and daily sd DAILY_SD, on business days from 2024-01-01."""
    rng = np.random.default_rng(seed)
    chg = rng.multivariate_normal(np.zeros(4), CORR * np.outer(DAILY_SD, DAILY_SD), size=n_days - 1)
    levels = np.empty((n_days, 4))
    levels[0] = start_levels
    for i in range(1, n_days):
        levels[i, :3] = levels[i - 1, :3] * (1 + chg[i - 1, :3])
        levels[i, 3] = levels[i - 1, 3] + chg[i - 1, 3]
    return pd.DataFrame(
        levels, index=pd.bdate_range("2024-01-01", periods=n_days, name="date"), columns=FACTORS
    )


def _drain(feed: Feed, batch: int = 100_000) -> list[Tick]:
    out: list[Tick] = []
    while got := feed.next_batch(batch):
        out.extend(got)
    return out


def _close_us(day: str) -> int:
    return int(pd.Timestamp(day + " 21:00").value // 1000)  # DEFAULT_CLOSE_UTC


# ---------------------------------------------------------------------------------------------------- replay


def test_history_replay_emits_every_level_at_the_close_in_order() -> None:
    hist = _history(5)
    feed = ReplayFeed.from_history(hist, clock=SimulatedClock(T0))
    ticks = _drain(feed, 7)  # batches of 7 straddle days
    assert feed.exhausted and len(ticks) == 5 * 4
    assert [t.sequence for t in ticks] == list(range(1, 21))
    assert {t.source for t in ticks} == {"replay"}
    assert [t.factor_id for t in ticks[:4]] == FACTORS
    assert ticks[0].event_time_us == _close_us("2024-01-01")
    assert ticks[-1].event_time_us == _close_us("2024-01-05")
    assert [t.value for t in ticks[4:8]] == hist.iloc[1].tolist()


def test_history_replay_only_changed_and_date_window() -> None:
    hist = _history(6)
    hist.iloc[2, 0] = hist.iloc[1, 0]  # EQ.AAA unchanged on day 3
    hist.iloc[3, 3] = np.nan  # no rate on day 4: skipped
    ticks = _drain(ReplayFeed.from_history(hist, clock=SimulatedClock(T0), only_changed=True))
    assert (
        len(ticks) == 4 * 6 - 2
    )  # less the unchanged level and the NaN (day 5's rate differs from NaN: kept)
    assert ("EQ.AAA", _close_us("2024-01-03")) not in {(t.factor_id, t.event_time_us) for t in ticks}
    part = _drain(
        ReplayFeed.from_history(hist, clock=SimulatedClock(T0), start="2024-01-03", end="2024-01-04")
    )
    assert sorted({t.event_time_us for t in part}) == [_close_us("2024-01-03"), _close_us("2024-01-04")]
    assert len(part) == 4 + 3  # the NaN rate is skipped
    with pytest.raises(EmptyInputError, match="start and end"):
        ReplayFeed.from_history(hist, clock=SimulatedClock(T0), start="2030-01-01")


def test_replay_speed_maps_market_time_to_the_simulated_clock() -> None:
    hist = _history(6)  # Mon 2024-01-01 … Mon 2024-01-08
    clock = SimulatedClock(T0)
    feed = ReplayFeed.from_history(hist, clock=clock, speed=86_400.0)  # one market day per clock second
    sizes = []
    for step in (0, 999_999, 1, 1_000_000, 1_000_000, 1_000_000, 2_000_000, 1_000_000):
        clock.advance(step)
        sizes.append(len(feed.next_batch(100)))
    # day 1 is due at once; day 2 exactly one clock second later; Friday's close to Monday's is 3 days = 3 s
    assert sizes == [4, 0, 4, 4, 4, 4, 0, 4]
    assert feed.exhausted
    with pytest.raises(ConfigurationError, match="speed"):
        ReplayFeed.from_history(hist, clock=clock, speed=0.0)


def test_tick_file_round_trip_and_replay_keeps_recorded_sources(tmp_path: Path) -> None:
    day = 86_400_000_000
    ticks = [
        Tick("EQ.AAA", 101.0, "exch", 1, T0, 100.9, 101.1),
        Tick("FX.EUR", 1.1, "bank", 7, T0 + 10),
        Tick("EQ.AAA", 101.5, "exch", 2, T0 + day),
        Tick("IR.USD.5Y", -0.001, "bank", 8, T0 + 2 * day),
    ]
    path = write_ticks(tmp_path / "rec" / "ticks.parquet", ticks)
    assert read_ticks(path) == ticks
    replayed = _drain(ReplayFeed.from_file(path, clock=SimulatedClock(0)))
    assert replayed == ticks  # source, sequence, bid/ask as recorded
    # 2023-11-14 … 2023-11-15 UTC: T0 is 22:13 on the 14th
    window = _drain(ReplayFeed.from_file(path, clock=SimulatedClock(0), start="2023-11-15", end="2023-11-15"))
    assert window == [ticks[2]]
    shuffled = _drain(ReplayFeed.from_ticks(ticks[::-1], clock=SimulatedClock(0)))
    assert [t.event_time_us for t in shuffled] == [t.event_time_us for t in ticks]
    pq.write_table(pa.table({"factor_id": ["EQ.A"], "value": [1.0]}), tmp_path / "bad.parquet")
    with pytest.raises(MissingFieldError, match="'source'"):
        read_ticks(tmp_path / "bad.parquet")


# ---------------------------------------------------------------------------------------------------- synthetic


def _step_moves(ticks: list[Tick], feed: SyntheticFeed) -> np.ndarray:
    """Per-step change of each factor from the last tick of each step (log change for prices, plain for rates)."""
    frame = pd.DataFrame(
        {
            "step": [(t.sequence - 1) // feed.ticks_per_step for t in ticks],
            "factor": [t.factor_id for t in ticks],
            "value": [t.value for t in ticks],
        }
    )
    levels = frame.groupby(["step", "factor"])["value"].last().unstack()[list(feed.factor_ids)].to_numpy()
    assert not np.isnan(levels).any()  # every factor ticked in every step (P(miss) = 0.75^100 ≈ 3e-13)
    positive = np.array([parse_factor(f).positive for f in feed.factor_ids])
    return np.diff(np.where(positive, np.log(levels), levels), axis=0)


def _excess_kurtosis(x: np.ndarray) -> float:
    z = x - x.mean()
    return float((z**4).mean() / (z**2).mean() ** 2 - 3.0)


EQUAL = {"EQ": 1.0, "FX": 1.0, "IR": 1.0, "VOL": 1.0}


def test_synthetic_moves_have_the_history_correlation_and_variance() -> None:
    hist = _history()
    clock = SimulatedClock(T0)
    dof = 10.0
    feed = SyntheticFeed(hist, clock=clock, rate=1_000, seed=11, dof=dof, jump_intensity=0.0, weights=EQUAL)
    assert feed.ticks_per_step == 100  # step_us 100 ms at 1,000 ticks/s
    clock.advance(200_000_000)
    moves = _step_moves(_drain(feed), feed)
    n = len(moves)
    assert n == 1_999
    target = factor_changes(hist, 250)
    expected = np.corrcoef(target.to_numpy(), rowvar=False)
    got = np.corrcoef(moves, rowvar=False)
    # Sampling error of a correlation under an elliptical law with kurtosis parameter κ (Muirhead 1982,
    # "Aspects of Multivariate Statistical Theory", §5.1): sd(r) ≈ √(1+κ)·(1−ρ²)/√n, and for Student-t with ν
    # degrees of freedom κ = 2/(ν−4) (marginal excess kurtosis 6/(ν−4), divided by 3). Allow 4 sd.
    kappa = 2.0 / (dof - 4.0)
    tol = 4.0 * math.sqrt(1 + kappa) * (1 - expected**2) / math.sqrt(n) + 1e-12
    assert np.all(np.abs(got - expected) <= tol), (got - expected, tol)
    # variance per step = daily variance × step length in days (100 ticks / 1,000 per s / 86,400 s)
    step_days = 0.1 / 86_400
    ratio = moves.var(axis=0, ddof=1) / (target.var(axis=0, ddof=1).to_numpy() * step_days)
    # sd of a sample variance ratio ≈ √((2 + γ₂)/n), γ₂ = 6/(ν−4) the excess kurtosis of t_ν: 5 sd
    assert np.all(np.abs(ratio - 1) <= 5 * math.sqrt((2 + 6 / (dof - 4)) / n)), ratio


def test_synthetic_moves_have_fat_tails_from_student_t_and_from_jumps() -> None:
    hist = _history()
    moves = {}
    for label, kwargs in {
        "t4": {},  # defaults: dof 4, rare jumps
        "normal": {"dof": 1e6, "jump_intensity": 0.0},
        # one step = 0.1 s of a 1 s "day": 0.005 jumps per factor per step of 4 daily sigmas
        "jumps": {"dof": 1e6, "jump_intensity": 0.05, "jump_size": 4.0, "seconds_per_day": 1.0},
    }.items():
        clock = SimulatedClock(T0)
        feed = SyntheticFeed(hist, clock=clock, seed=5, weights=EQUAL, **kwargs)  # type: ignore[arg-type]
        clock.advance(100_000_000)
        moves[label] = _step_moves(_drain(feed), feed)
    kurt = {k: [_excess_kurtosis(m[:, j]) for j in range(4)] for k, m in moves.items()}
    # the sample excess kurtosis of n = 999 normal draws has sd √(24/n) ≈ 0.155 (Kendall & Stuart):
    # a normal stays within ±0.6 (3.9 sd) and a fat-tailed law must exceed it
    assert all(abs(k) < 0.6 for k in kurt["normal"]), kurt
    assert all(k > 0.6 for k in kurt["t4"]), kurt
    assert all(k > 0.6 for k in kurt["jumps"]), kurt


def test_synthetic_prices_stay_positive_and_rates_may_go_negative() -> None:
    hist = _history(start_levels=(100.0, 50.0, 1.1, 0.0005))
    clock = SimulatedClock(T0)
    # a 0.01 s "day": every 0.1 s step is ten days of variance, so 20,000 ticks span 2,000 days
    feed = SyntheticFeed(hist, clock=clock, seed=2, weights=EQUAL, seconds_per_day=0.01)
    clock.advance(20_000_000)
    ticks = _drain(feed)
    values = pd.DataFrame([(t.factor_id, t.value) for t in ticks], columns=["f", "v"]).groupby("f")["v"]
    assert values.min()[["EQ.AAA", "EQ.BBB", "FX.EUR"]].gt(0).all()
    assert values.min()["IR.USD.5Y"] < 0 < values.max()["IR.USD.5Y"]
    assert np.isfinite([t.value for t in ticks]).all()


def test_synthetic_rate_is_honoured_against_a_simulated_clock() -> None:
    clock = SimulatedClock(T0)
    feed = SyntheticFeed(_history(), clock=clock, rate=250, seed=1)
    assert feed.next_batch(1_000) == []  # the first tick is due 4 ms after start (10⁶/250 µs)
    clock.advance(1_000_000)
    first = feed.next_batch(1_000)
    assert len(first) == 250
    assert [t.event_time_us for t in first] == [T0 + 4_000 * j for j in range(1, 251)]
    clock.advance(500_000)
    assert len(feed.next_batch(1_000)) == 125
    clock.advance(1_000_000)
    assert len(feed.next_batch(100)) == 100 and len(feed.next_batch(1_000)) == 150  # max_ticks honoured
    assert feed.emitted == 625 and not feed.exhausted
    stopping = SyntheticFeed(_history(), clock=clock, rate=10, stop_us=clock.now_us() + 1_000_000)
    clock.advance(5_000_000)
    assert len(_drain(stopping)) == 10 and stopping.exhausted


def test_synthetic_stream_is_reproducible_by_seed_whatever_the_polling() -> None:
    hist = _history()
    a_clock, b_clock = SimulatedClock(T0), SimulatedClock(T0)
    a = SyntheticFeed(hist, clock=a_clock, seed=7, chunk_ticks=1_000)
    b = SyntheticFeed(hist, clock=b_clock, seed=7, chunk_ticks=1_000)
    a_clock.advance(10_000_000)
    got_a = _drain(a)
    got_b: list[Tick] = []
    for step in (3_333_333, 1, 4_000_000, 2_666_666):
        b_clock.advance(step)
        got_b.extend(_drain(b, 37))
    assert len(got_a) == 10_000 and got_a == got_b
    c_clock = SimulatedClock(T0)
    c = SyntheticFeed(hist, clock=c_clock, seed=8, chunk_ticks=1_000)
    c_clock.advance(10_000_000)
    assert [t.value for t in _drain(c)] != [t.value for t in got_a]


def _reference_levels(
    feed: SyntheticFeed, rng: np.random.Generator, n_chunks: int
) -> list[tuple[int, float]]:
    """Plain-loop reference of SyntheticFeed's generation, drawing the same numbers in the same order."""
    tps, steps, n_f = feed.ticks_per_step, feed._steps_per_chunk, len(feed.factor_ids)
    state = feed._state.copy()
    out = []
    for _ in range(n_chunks):
        g = rng.standard_normal((steps, feed._loading.shape[0]))
        w = rng.chisquare(feed._dof, steps)
        jumps: dict[tuple[int, int], float] = {}
        n_jumps = rng.poisson(feed._jump_rate * steps * n_f)
        if n_jumps:
            at_step, at_factor = rng.integers(0, steps, n_jumps), rng.integers(0, steps and n_f, n_jumps)
            sizes = rng.standard_normal(n_jumps)
            for s, f, z in zip(at_step, at_factor, sizes, strict=True):
                jumps[(int(s), int(f))] = jumps.get((int(s), int(f)), 0.0) + z * feed._jump_sd[f]
        u = rng.random(steps * tps)
        for s in range(steps):
            scale = feed._diffusion_scale * math.sqrt((feed._dof - 2) / w[s])
            for f in range(n_f):
                shock = sum(g[s, k] * feed._loading[k, f] for k in range(len(g[s]))) * scale
                state[f] += shock + jumps.get((s, f), 0.0)
            for i in range(s * tps, (s + 1) * tps):
                f = next(j for j in range(n_f) if u[i] < feed._cdf[j])
                out.append((f, math.exp(state[f]) if feed._log[f] else state[f]))
    return out


def test_vectorised_generation_agrees_with_the_plain_reference() -> None:
    hist = _history()
    clock = SimulatedClock(T0)
    feed = SyntheticFeed(
        hist,
        clock=clock,
        seed=3,
        rate=100,
        step_us=50_000,
        chunk_ticks=50,
        jump_intensity=0.2,
        jump_size=2.0,
        seconds_per_day=1.0,
    )
    expected = _reference_levels(feed, np.random.default_rng([3, 0x71C5]), n_chunks=4)
    clock.advance(2_000_000)
    got = _drain(feed)
    assert len(got) == len(expected) == 200
    assert [feed.factor_ids.index(t.factor_id) for t in got] == [f for f, _ in expected]
    np.testing.assert_allclose([t.value for t in got], [v for _, v in expected], rtol=1e-12, atol=1e-15)
    # the loading reproduces the history's daily covariance: LᵀL = Σ (np.cov of the last 250 changes)
    cov = np.cov(factor_changes(hist, 250).to_numpy(), rowvar=False)
    np.testing.assert_allclose(feed._loading.T @ feed._loading, cov, rtol=1e-10, atol=1e-18)


def test_tick_weights_decide_which_factors_tick() -> None:
    clock = SimulatedClock(T0)
    feed = SyntheticFeed(
        _history(), clock=clock, rate=10_000, weights={"EQ": 1.0, "FX": 0.0, "IR.USD.5Y": 2.0}
    )
    clock.advance(4_000_000)
    counts = pd.Series([t.factor_id for t in _drain(feed)]).value_counts()
    assert "FX.EUR" not in counts
    # IR share 2/(1+1+2) = 0.5 of 40,000 ticks: binomial sd √(40,000·0.25) = 100; allow 5 sd
    assert abs(counts["IR.USD.5Y"] - 20_000) < 500


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate": 0.0}, "rate"),
        ({"dof": 2.0}, "dof"),
        ({"jump_intensity": 0.1, "jump_size": 4.0}, "jump_intensity"),
        ({"weights": {"EQ": 0.0, "FX": 0.0, "IR": 0.0}}, "weights"),
        ({"weights": {"EQ": -1.0}}, "weights[EQ]"),
    ],
)
def test_synthetic_feed_options_are_validated(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"option '{field}'")):
        SyntheticFeed(_history(), clock=SimulatedClock(T0), **kwargs)


# ---------------------------------------------------------------------------------------------------- merge


def test_multifeed_merges_fairly_and_keeps_each_source_in_sequence() -> None:
    clock = SimulatedClock(T0)
    replay = ReplayFeed.from_history(_history(30), clock=clock)  # 120 ticks, all due at once
    live = SyntheticFeed(_history(), clock=clock, rate=1_000, seed=1)
    multi = MultiFeed([replay, live])
    clock.advance(1_000_000)  # 1,000 synthetic ticks due
    first = multi.next_batch(100)
    assert sorted(pd.Series([t.source for t in first]).value_counts().items()) == [
        ("replay", 50),
        ("synthetic", 50),
    ]
    rest = _drain(multi, 100)
    assert len(first) + len(rest) == 120 + 1_000 and replay.exhausted and not multi.exhausted
    for source in ("replay", "synthetic"):
        seqs = [t.sequence for t in first + rest if t.source == source]
        assert seqs == sorted(set(seqs)) and len(seqs) == (120 if source == "replay" else 1_000)
    with pytest.raises(ConfigurationError, match="unique"):
        MultiFeed([replay, ReplayFeed.from_history(_history(3), clock=clock)])


def test_multifeed_is_exhausted_when_every_feed_is() -> None:
    clock = SimulatedClock(T0)
    a = ReplayFeed.from_history(_history(2), clock=clock, name="a")
    b = ReplayFeed.from_history(_history(3), clock=clock, name="b")
    multi = MultiFeed([a, b])
    assert len(multi.next_batch(5)) == 5 and not multi.exhausted  # shares 2 + 3: b fills what a leaves
    assert len(_drain(multi, 5)) == 8 + 12 - 5 and multi.exhausted
