"""Per-source quality: staleness events, the spike rule, conflation, source failover and failback, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskstream.domain import Tick
from riskstream.errors import ConfigurationError
from riskstream.marketdata import (
    ArbitratedLevel,
    Conflator,
    SourceArbiter,
    SourceEvent,
    SourceEventKind,
    SourceSwitch,
    SpikeFilter,
    StalenessMonitor,
    robust_daily_sigma,
)

S = 1_000_000  # one second in µs
MIN = 60 * S
DAY = 86_400 * S


def _t(factor: str, value: float, at: int, source: str = "A", seq: int = 0) -> Tick:
    return Tick(factor, value, source, seq, at)


def _roundtrip(state: dict) -> dict:
    return json.loads(json.dumps(state))  # a checkpoint stores plain data


# ---------------------------------------------------------------------------------------------------- staleness


def test_staleness_events_when_a_source_goes_quiet_and_recovers() -> None:
    mon = StalenessMonitor(stale_after_us=10 * S)
    mon.observe_all([_t("EQ.A", 1.0, 0, "A"), _t("EQ.B", 1.0, 0, "A"), _t("EQ.A", 1.0, 0, "B")])
    mon.observe(_t("EQ.A", 1.0, 8 * S, "A"))
    assert mon.check(10 * S) == []  # exactly 10 s of silence is not yet stale (> stale_after_us)
    assert mon.check(10 * S + 1) == [SourceEvent("B", SourceEventKind.STALE, 10 * S + 1, 0)]
    assert mon.check(12 * S) == []  # reported once
    assert mon.stale_sources(12 * S) == ["B"]
    assert mon.stale_factors(12 * S) == [("A", "EQ.B"), ("B", "EQ.A")]  # A still quotes EQ.A, not EQ.B
    assert mon.check(19 * S) == [SourceEvent("A", SourceEventKind.STALE, 19 * S, 8 * S)]
    assert mon.observe(_t("EQ.A", 1.0, 20 * S, "B")) == [
        SourceEvent("B", SourceEventKind.RECOVERED, 20 * S, 20 * S)
    ]
    assert mon.observe(_t("EQ.A", 1.0, 21 * S, "B")) == []
    restored = StalenessMonitor(1)
    restored.restore(_roundtrip(mon.state()))
    assert restored.state() == mon.state()
    assert restored.observe(_t("EQ.B", 1.0, 22 * S, "A"))[0].kind is SourceEventKind.RECOVERED
    with pytest.raises(ConfigurationError, match="stale_after_us"):
        StalenessMonitor(0)


# ---------------------------------------------------------------------------------------------------- spikes


def _spike_filter(**kw) -> SpikeFilter:
    # 1 % daily sigma for the stock, 10 bp for the rate; at the 60 s floor σ = 1 % · √(60/86,400) ≈ 0.0264 %,
    # so k = 8 allows about 0.21 % for the stock in a minute and 0.21 bp for the rate
    return SpikeFilter({"EQ.A": 0.01, "IR.USD.5Y": 0.001}, **kw)


def test_moves_within_k_sigmas_pass_and_the_bound_grows_with_time() -> None:
    f = _spike_filter()
    assert f.offer(_t("EQ.A", 100.0, 0)).accepted  # first tick: nothing to compare with
    assert f.offer(_t("EQ.A", 100.2, MIN)).accepted  # +0.2 % in 1 min ≤ 8 · 0.0264 %
    assert not f.offer(_t("EQ.A", 101.0, 2 * MIN)).accepted  # +0.8 % in 1 min: held as a suspect
    assert [t.value for t in f.pending()] == [101.0]
    g = _spike_filter()
    g.offer(_t("EQ.A", 100.0, 0))
    assert g.offer(_t("EQ.A", 101.0, DAY)).accepted  # the same +1 % over a day is 1 σ


def test_an_unconfirmed_spike_is_rejected_with_a_reason() -> None:
    f = _spike_filter()
    f.offer(_t("EQ.A", 100.0, 0))
    assert f.offer(_t("EQ.A", 150.0, MIN)).accepted == ()  # suspect
    res = f.offer(_t("EQ.A", 100.1, 2 * MIN, source="B"))  # back near the level: denies the suspect
    assert [t.value for t in res.accepted] == [100.1]
    (rej,) = res.rejected
    assert rej.tick.value == 150.0 and rej.field == "value"
    assert "spike not confirmed by the next 2 ticks" in rej.reason and "relative move +0.5" in rej.reason
    assert f.level("EQ.A") == 100.1 and f.pending() == []


def test_a_real_jump_confirmed_by_the_next_ticks_is_accepted_in_order() -> None:
    f = _spike_filter(confirm_ticks=2)
    f.offer(_t("EQ.A", 100.0, 0))
    jump = [
        _t("EQ.A", 90.0, MIN, "A", 1),
        _t("EQ.A", 90.05, MIN + S, "B", 1),
        _t("EQ.A", 89.98, MIN + 2 * S, "A", 2),
    ]
    assert f.offer(jump[0]).accepted == () and f.offer(jump[1]).accepted == ()
    state = _roundtrip(f.state())  # a checkpoint in the middle of a confirmation
    res = f.offer(jump[2])
    assert res.accepted == tuple(jump) and res.rejected == ()
    assert f.level("EQ.A") == 89.98
    again = _spike_filter(confirm_ticks=2)
    again.restore(state)
    assert again.offer(jump[2]).accepted == tuple(jump)


def test_two_bad_ticks_then_a_good_one_reject_both_bad_ones() -> None:
    f = _spike_filter(confirm_ticks=2)
    f.offer(_t("IR.USD.5Y", 0.04, 0))
    f.offer(_t("IR.USD.5Y", 0.40, MIN))  # a fat-finger rate: absolute move of 36 %
    f.offer(_t("IR.USD.5Y", 0.40, MIN + 1))  # repeated once: not enough (m = 2)
    res = f.offer(_t("IR.USD.5Y", 0.04001, MIN + 2))
    assert [r.tick.value for r in res.rejected] == [0.40, 0.40]
    assert "absolute move" in res.rejected[0].reason
    assert [t.value for t in res.accepted] == [0.04001]


def test_bad_values_are_rejected_at_once_and_unknown_factors_pass_unfiltered() -> None:
    f = _spike_filter(confirm_ticks=0)
    assert f.offer(_t("EQ.A", float("nan"), 0)).rejected[0].reason == "value nan not finite"
    assert "must be > 0" in f.offer(_t("EQ.A", -1.0, 0)).rejected[0].reason
    assert f.offer(_t("BOND.X", 1.0, 0)).rejected[0].field == "factor_id"
    f.offer(_t("EQ.A", 100.0, 0))
    assert "spike: relative move" in f.offer(_t("EQ.A", 120.0, MIN)).rejected[0].reason  # m = 0: at once
    assert (
        f.offer(_t("EQ.Z", 1.0, 0)).accepted and f.offer(_t("EQ.Z", 1e6, 1)).accepted
    )  # no sigma: no filter
    assert f.offer(_t("IR.USD.5Y", -0.01, 0)).accepted  # a negative rate is a valid level


def test_robust_sigma_is_the_scaled_median_absolute_deviation() -> None:
    changes = np.array([0.01, -0.01, 0.02, -0.02, 0.0, 0.5])  # one crash day
    levels = 100.0 * np.cumprod(np.r_[1.0, 1.0 + changes])
    hist = pd.DataFrame({"EQ.A": levels}, index=pd.bdate_range("2024-01-01", periods=7))
    # median of the changes (0.0 + 0.01)/2 = 0.005; absolute deviations 0.005, 0.015, 0.015, 0.025, 0.005,
    # 0.495 → median 0.015; σ = 1.4826 · 0.015 (1.4826 = 1/Φ⁻¹(0.75), the normal-consistent MAD factor)
    assert robust_daily_sigma(hist)["EQ.A"] == pytest.approx(1.4826 * 0.015)


# ---------------------------------------------------------------------------------------------------- conflation


def test_conflator_keeps_the_latest_per_factor_and_drains_in_a_fixed_order() -> None:
    c = Conflator()
    c.extend(
        [
            _t("EQ.B", 1.0, 5),
            _t("EQ.A", 1.0, 3),
            _t("EQ.A", 2.0, 7),
            _t("EQ.B", 0.5, 4),  # late and older than the kept EQ.B: dropped
            _t("FX.EUR", 1.1, 5),
        ]
    )
    assert len(c) == 3 and c.conflated == 2 and c.conflated_by_factor == {"EQ.A": 1, "EQ.B": 1}
    restored = Conflator()
    restored.restore(_roundtrip(c.state()))
    expected = [("EQ.B", 1.0), ("FX.EUR", 1.1), ("EQ.A", 2.0)]  # by event time, ties by factor id
    assert [(t.factor_id, t.value) for t in c.drain(2)] == expected[:2]
    assert [(t.factor_id, t.value) for t in c.drain()] == expected[2:] and len(c) == 0
    assert [(t.factor_id, t.value) for t in restored.drain()] == expected


# ---------------------------------------------------------------------------------------------------- arbitration


def test_arbiter_fails_over_to_the_backup_and_back_to_the_primary() -> None:
    arb = SourceArbiter(["primary", "backup"], stale_after_us=5 * S)
    assert arb.offer(_t("FX.EUR", 1.10, 0, "primary")) is not None
    assert arb.offer(_t("FX.EUR", 1.11, 1 * S, "backup")) is None  # primary fresh: backup unused
    assert arb.level("FX.EUR", 2 * S) == ArbitratedLevel("FX.EUR", 1.10, "primary", 0, False)
    assert arb.poll(5 * S) == [SourceSwitch("FX.EUR", None, "primary", 0)]  # still fresh at exactly 5 s
    # 5 s + 1 µs after its last tick the primary is stale: fail over to the backup's latest tick
    assert arb.poll(5 * S + 1) == [SourceSwitch("FX.EUR", "primary", "backup", 5 * S + 1)]
    assert arb.level("FX.EUR", 5 * S + 1) == ArbitratedLevel("FX.EUR", 1.11, "backup", 1 * S, False)
    backup_tick = _t("FX.EUR", 1.12, 6 * S, "backup")
    assert arb.offer(backup_tick) is backup_tick  # now the backup's ticks are used
    state = _roundtrip(arb.state())
    primary_back = _t("FX.EUR", 1.13, 7 * S, "primary")
    assert arb.offer(primary_back) is primary_back  # failback at the primary's first tick
    assert arb.poll(7 * S) == [SourceSwitch("FX.EUR", "backup", "primary", 7 * S)]
    assert arb.offer(_t("FX.EUR", 1.14, 8 * S, "backup")) is None
    restored = SourceArbiter(["x"], 1)
    restored.restore(state)
    assert restored.level("FX.EUR", 6 * S).source == "backup"  # type: ignore[union-attr]
    assert restored.offer(primary_back) is primary_back


def test_arbiter_with_every_source_stale_uses_the_most_recent_and_flags_it() -> None:
    arb = SourceArbiter(["a", "b", "c"], stale_after_us=S)
    arb.offer(_t("EQ.A", 10.0, 0, "a"))
    arb.offer(_t("EQ.A", 11.0, 3 * S, "c"))
    arb.offer(_t("EQ.A", 12.0, 2 * S, "b"))
    assert arb.level("EQ.A", 3 * S).source == "b"  # type: ignore[union-attr]  # b is 1 s old: still fresh
    assert arb.level("EQ.A", 3 * S + 1).source == "c"  # type: ignore[union-attr]  # a, b stale; c fresh
    assert arb.level("EQ.A", 10 * S) == ArbitratedLevel("EQ.A", 11.0, "c", 3 * S, True)
    assert arb.offer(_t("EQ.A", 1.0, 0, "unknown")) is None and arb.ignored == 1
    assert arb.level("EQ.B", 0) is None
    with pytest.raises(ConfigurationError, match="priority"):
        SourceArbiter(["a", "a"], S)
