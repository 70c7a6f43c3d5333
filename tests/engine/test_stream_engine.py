"""Streaming engine: incremental VaR/ES against full recomputation by the batch engine, checkpoints, aggregation,
bad input isolation, micro-batch split invariance, slow measures and contributors.

The reference for every VaR/ES figure is :func:`riskstream.engine.run_risk` (full revaluation from scratch on the
updated positions and market), via ``reference_snapshots``; tolerances of 1e-9 relative are rounding only.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskstream import marketdata
from riskstream.domain import PositionEvent, PositionEventKind, RiskSnapshot, Tick
from riskstream.engine import (
    Aggregator,
    StreamConfig,
    StreamingEngine,
    reference_snapshots,
    run_stress,
)
from riskstream.refdata import SampleBank, sample_bank

CFG = StreamConfig(slow_every_s=0, window=250)
REL = 1e-9


@pytest.fixture(scope="module")
def bank() -> SampleBank:
    universe = marketdata.Universe.default(n_equities=30, n_option_names=10)
    history = marketdata.synthetic_history(universe, 0).iloc[-800:]
    return sample_bank(300, seed=1, universe=universe, history=history)


def _engine(bank: SampleBank, config: StreamConfig = CFG, books: list[str] | None = None) -> StreamingEngine:
    return StreamingEngine(bank.portfolio(), bank.snapshot, bank.history, config, books=books)


def _ticks(engine: StreamingEngine, rng: np.random.Generator, n: int, seq: int = 0) -> list[Tick]:
    """``n`` ticks on random factors: ±1 % relative moves of prices/FX/vols, ±2bp on rates."""
    fids = engine.factor_ids
    snap = engine.current_snapshot()
    out = []
    for k, j in enumerate(rng.integers(0, len(fids), n)):
        f = fids[int(j)]
        x = snap[f]
        value = (
            x + 2e-4 * rng.standard_normal()
            if f.startswith("IR.")
            else x * (1 + 0.01 * rng.standard_normal())
        )
        out.append(Tick(f, float(value), "feed", seq + k, 0))
    return out


def _events(bank: SampleBank) -> list[PositionEvent]:
    """New positions (existing book, new trader, new desk/book), amends and cancels of start-of-day positions."""
    pos = bank.positions
    inst = [i.instrument_id for i in bank.instruments]
    book0, desk0 = str(pos["book"][0]), str(pos["desk"][0])

    def ev(kind: PositionEventKind, pid: str, book: str, seq: int, **kw: object) -> PositionEvent:
        return PositionEvent(kind, pid, book, "oms", seq, 0, **kw)  # type: ignore[arg-type]

    return [
        ev(
            PositionEventKind.NEW,
            "N1",
            book0,
            1,
            instrument_id=inst[3],
            quantity=250.0,
            desk=desk0,
            trader="t-new",
        ),
        ev(
            PositionEventKind.NEW,
            "N2",
            "NEW-BOOK",
            2,
            instrument_id=inst[-1],
            quantity=-40.0,
            desk="NEW-DESK",
            trader="t9",
        ),
        ev(PositionEventKind.AMEND, str(pos["position_id"][1]), str(pos["book"][1]), 3, quantity=-3.0),
        ev(PositionEventKind.CANCEL, str(pos["position_id"][2]), str(pos["book"][2]), 4),
        ev(PositionEventKind.AMEND, "N1", book0, 5, quantity=500.0),
        ev(PositionEventKind.CANCEL, str(pos["position_id"][5]), str(pos["book"][5]), 6),
    ]


def _assert_close(snaps: list[RiskSnapshot], ref: list[RiskSnapshot], rel: float = REL) -> None:
    mine = {s.node: s.measures for s in snaps}
    assert ref, "the reference has nodes"
    for r in ref:
        for name, value in r.measures.items():
            assert mine[r.node][name] == pytest.approx(value, rel=rel, abs=1e-6), (r.node, name)
    # nodes emptied by cancels (absent from the batch hierarchy) carry no risk
    for node in set(mine) - {r.node for r in ref}:
        assert mine[node]["n_positions"] == 0 and mine[node]["var_99_1d"] == 0.0


@pytest.mark.parametrize("method", ["hs", "fhs"])
def test_incremental_equals_full_recomputation(bank: SampleBank, method: str) -> None:
    engine = _engine(bank, replace(CFG, method=method, exact_every=0))
    rng = np.random.default_rng(3)
    events = _events(bank)
    for k in range(12):
        engine.apply_ticks(_ticks(engine, rng, 15, seq=100 * k))
        if k % 2 == 0 and events:
            assert engine.apply_position_events([events.pop(0)]) == []
        engine.step(k)
    assert engine.apply_position_events(events) == []
    engine.step(99)
    _assert_close(engine.all_snapshots(0), reference_snapshots(engine))
    assert "FIRM/NEW-DESK/NEW-BOOK/t9" in engine.node_ids


def test_step_reports_only_touched_nodes(bank: SampleBank) -> None:
    engine = _engine(bank)
    assert len(engine.step(1)) == len(engine.node_ids)  # the first step reports everything
    assert engine.step(2) == []  # nothing moved
    pos = bank.positions
    event = PositionEvent(
        PositionEventKind.AMEND, str(pos["position_id"][0]), str(pos["book"][0]), "oms", 1, 0, quantity=7.0
    )
    assert engine.apply_position_events([event]) == []
    nodes = [s.node for s in engine.step(3)]
    leaf = f"FIRM/{pos['desk'][0]}/{pos['book'][0]}/{pos['trader'][0]}"
    assert nodes == ["FIRM", f"FIRM/{pos['desk'][0]}", f"FIRM/{pos['desk'][0]}/{pos['book'][0]}", leaf]


def test_checkpoint_restores_bit_identical_sequence(bank: SampleBank) -> None:
    def inputs(k: int, engine: StreamingEngine) -> None:
        engine.apply_ticks(_ticks(engine, np.random.default_rng(k), 20, seq=100 * k))
        if k == 3:
            engine.apply_position_events(_events(bank))

    config = replace(CFG, exact_every=4)
    a = _engine(bank, config)
    run_a = []
    for k in range(8):
        inputs(k, a)
        run_a.append(a.step(k))
    b = _engine(bank, config)
    run_b = []
    for k in range(4):
        inputs(k, b)
        run_b.append(b.step(k))
    b.apply_ticks(_ticks(b, np.random.default_rng(4), 5, seq=999))  # pending input is part of the state
    data = b.state()
    restored = StreamingEngine.from_state(data, bank.portfolio(), bank.snapshot, bank.history, config)
    assert restored.state() == data
    a2 = _engine(bank, config)
    for k in range(4):
        inputs(k, a2)
        a2.step(k)
    a2.apply_ticks(_ticks(a2, np.random.default_rng(4), 5, seq=999))
    for k in range(4, 8):
        inputs(k, a2)
        inputs(k, restored)
        assert restored.step(k) == a2.step(k)  # value by value, bit for bit
    assert run_a[:4] == run_b


def test_checkpoint_refuses_other_config_or_damage(bank: SampleBank) -> None:
    data = _engine(bank).state()
    with pytest.raises(Exception, match="config"):
        StreamingEngine.from_state(
            data, bank.portfolio(), bank.snapshot, bank.history, replace(CFG, window=200)
        )
    damaged = data[:100] + bytes([data[100] ^ 1]) + data[101:]
    with pytest.raises(Exception, match="checksum"):
        StreamingEngine.from_state(damaged, bank.portfolio(), bank.snapshot, bank.history, CFG)


def test_aggregator_of_two_partitions_equals_one_engine(bank: SampleBank) -> None:
    books = sorted(set(bank.positions["book"].tolist()))
    left, right = books[::2], [*books[1::2], "NEW-BOOK"]
    whole, a, b = _engine(bank), _engine(bank, books=left), _engine(bank, books=right)
    rng = np.random.default_rng(8)
    for k in range(5):
        ticks = _ticks(whole, rng, 25, seq=100 * k)
        for e in (whole, a, b):
            e.apply_ticks(ticks)
            e.step(k)
    for ev in _events(bank):
        assert whole.apply_position_events([ev]) == []
        owner = a if ev.book in left else b
        assert owner.apply_position_events([ev]) == []
        other = b if owner is a else a
        assert "not a book of this engine" in other.apply_position_events([ev])[0].reason
    for e in (whole, a, b):
        e.step(9)
    agg = Aggregator(CFG)
    agg.update("w1", a.leaf_vectors(), a.leaf_values())
    agg.update("w2", b.leaf_vectors(), b.leaf_values())
    got = {s.node: s.measures for s in agg.snapshots(5)}
    want = whole.all_snapshots(5)
    assert set(got) == {s.node for s in want}
    _assert_close([RiskSnapshot(n, 5, m) for n, m in got.items()], want)
    np.testing.assert_allclose(agg.node_vector("FIRM"), whole.node_vector("FIRM"), rtol=REL, atol=1e-6)


def _new(pid: str, book: str, seq: int, instrument: str, desk: str) -> PositionEvent:
    return PositionEvent(
        PositionEventKind.NEW,
        pid,
        book,
        "oms",
        seq,
        0,
        instrument_id=instrument,
        quantity=1.0,
        desk=desk,
        trader="T",
    )


def test_bad_input_is_reported_and_changes_nothing(bank: SampleBank) -> None:
    clean, dirty = _engine(bank), _engine(bank)
    pos = bank.positions
    pid0, book0 = str(pos["position_id"][0]), str(pos["book"][0])
    good_ticks = _ticks(clean, np.random.default_rng(1), 30)
    bad_ticks = [
        Tick("EQ.NOPE.X", 1.0, "feed", 900, 0),
        Tick(good_ticks[0].factor_id, float("nan"), "feed", 901, 0),
        Tick(next(f for f in clean.factor_ids if f.startswith("EQ.")), -5.0, "feed", 902, 0),
    ]
    k = PositionEventKind
    bad_events = [
        PositionEvent(
            k.NEW, "B1", book0, "oms", 1, 0, instrument_id="NO-SUCH", quantity=1.0, desk="D", trader="T"
        ),
        PositionEvent(k.CANCEL, "B2", book0, "oms", 2, 0),
        PositionEvent(k.AMEND, "B3", book0, "oms", 3, 0, quantity=2.0),
        PositionEvent(k.AMEND, pid0, book0, "oms", 4, 0, quantity=float("inf")),
        _new(pid0, book0, 5, bank.instruments[0].instrument_id, "D"),
        _new("B6", book0, 6, bank.instruments[0].instrument_id, ""),
    ]
    rejected_ticks = dirty.apply_ticks(bad_ticks[:2] + good_ticks + bad_ticks[2:])
    assert [r.record_id for r in rejected_ticks] == ["feed:900", "feed:901", "feed:902"]
    rejected = dirty.apply_position_events(bad_events)
    reasons = [r.reason for r in rejected]
    assert reasons == [
        "field 'instrument_id' has unknown instrument 'NO-SUCH'",
        "cancel of unknown position",
        "amend of unknown position",
        "field 'quantity' has invalid value inf: must be a finite number",
        "new position with an id already live",
        "mandatory field 'desk' is missing",
    ]
    clean.apply_ticks(good_ticks)
    assert [s.measures for s in dirty.step(1)] == [s.measures for s in clean.step(1)]


def test_incremental_vectors_do_not_drift(bank: SampleBank) -> None:
    engine = _engine(bank, replace(CFG, exact_every=0))
    rng = np.random.default_rng(5)
    for k in range(300):
        engine.apply_ticks(_ticks(engine, rng, 8, seq=10 * k))
        engine.step(k)
    exact = engine.exact_leaf_vectors()
    scale = np.abs(exact).max()
    assert np.abs(engine.leaf_matrix() - exact).max() <= REL * scale


_BATCH_INPUTS: list[list[Tick] | list[PositionEvent]] = []


def _inputs(bank: SampleBank) -> list[list[Tick] | list[PositionEvent]]:
    if not _BATCH_INPUTS:
        probe = _engine(bank)
        rng = np.random.default_rng(21)
        events = _events(bank)
        for k in range(10):
            _BATCH_INPUTS.append(_ticks(probe, rng, 6, seq=10 * k))
            if k % 2:
                _BATCH_INPUTS.append([events.pop(0)])
    return _BATCH_INPUTS


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.booleans(), min_size=15, max_size=15))
def test_any_split_into_micro_batches_ends_in_the_same_state(bank: SampleBank, cuts: list[bool]) -> None:
    inputs = _inputs(bank)
    one = _engine(bank)
    for item in inputs:
        (one.apply_ticks if isinstance(item[0], Tick) else one.apply_position_events)(item)  # type: ignore[operator]
    one.step(0)
    split = _engine(bank)
    for item, cut in zip(inputs, cuts + [False] * len(inputs), strict=False):
        (split.apply_ticks if isinstance(item[0], Tick) else split.apply_position_events)(item)  # type: ignore[operator]
        if cut:
            split.step(0)
    split.step(0)
    np.testing.assert_array_equal(split.current_snapshot().factor_ids, one.current_snapshot().factor_ids)
    assert split.current_snapshot().values == one.current_snapshot().values
    for name, col in one.positions().items():
        np.testing.assert_array_equal(split.positions()[name], col)
    _assert_close(split.all_snapshots(0), one.all_snapshots(0))


def test_slow_measures_are_published_and_match_run_stress(bank: SampleBank) -> None:
    engine = _engine(bank, replace(CFG, stress=("equity-crash", "rates-up-200bp"), mc_paths=400))
    engine.apply_ticks(_ticks(engine, np.random.default_rng(2), 40))
    engine.step(1)
    slow = engine.run_slow_measures()
    snaps = engine.step(2)
    assert len(snaps) == len(engine.node_ids)  # new slow measures refresh every node
    firm = snaps[0].measures
    for name in ("equity-crash", "rates-up-200bp"):
        ref = run_stress(engine.current_portfolio(), engine.current_snapshot(), bank.history, name)
        assert firm[f"stress_{name}"] == pytest.approx(ref.nodes[0].pnl, rel=REL)
    assert firm["es_975_1d_mc"] >= 0 and slow.measures["FIRM"]["var_99_1d_mc"] == firm["var_99_1d_mc"]


def test_background_thread_never_blocks_step(bank: SampleBank) -> None:
    engine = _engine(bank, replace(CFG, slow_every_s=0.05, mc_paths=200, stress=("equity-crash",)))
    with engine:
        deadline = time.monotonic() + 30
        while engine.slow_measures() is None and time.monotonic() < deadline:
            engine.apply_ticks(_ticks(engine, np.random.default_rng(0), 5))
            engine.step(0)
            time.sleep(0.01)
        assert engine.slow_measures() is not None
        assert "var_99_1d_mc" in engine.step(1)[0].measures


def test_contributors_are_euler_components(bank: SampleBank) -> None:
    engine = _engine(bank)
    firm = engine.contributors("FIRM", top_n=10_000)
    # Euler: components over all positions sum to the node's ES (Tasche 2000, homogeneity of ES in positions)
    assert sum(c.es for c in firm.top_positions) == pytest.approx(firm.es, rel=1e-9)
    assert sum(c.es for c in firm.top_factors) + firm.unexplained.es == pytest.approx(firm.es, rel=1e-9)  # type: ignore[union-attr]
    assert firm.es == pytest.approx(engine.all_snapshots(0)[0].measures["es_975_1d"], rel=1e-12)


def _instrument_pnl_by_id(engine: StreamingEngine) -> dict[str, np.ndarray]:
    ids = [engine._instruments[g].instrument_id for g in engine._row_inst]
    return dict(zip(ids, engine._P, strict=True))


def test_fx_tick_rescales_instead_of_repricing(bank: SampleBank, monkeypatch: pytest.MonkeyPatch) -> None:
    """An FX move reprices only the currency-pair instruments; the single-currency ones are re-translated, and
    their P&L per unit equals a full revaluation at the new level (an engine started there), 1e-12 relative."""
    engine = _engine(bank, replace(CFG, exact_every=0))
    fx = next(f for f in engine.factor_ids if f.startswith("FX.") and f != "FX.USD")
    ccy = fx.split(".")[1]
    repriced: list[str] = []
    value = engine._value

    def spy(rows: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
        repriced.extend(engine._instruments[g].instrument_id for g in engine._row_inst[rows])
        return value(rows)

    monkeypatch.setattr(engine, "_value", spy)
    level = engine.current_snapshot()[fx]
    assert engine.apply_ticks([Tick(fx, level * 1.03, "feed", 1, 0)]) == []
    engine.step(1)
    by_id = {i.instrument_id: i for i in bank.instruments}
    translated = [
        iid
        for iid, p in _instrument_pnl_by_id(engine).items()
        if getattr(by_id[iid], "currency", None) == ccy
        and getattr(by_id[iid], "foreign_currency", None) is None
    ]
    assert translated, f"the bank holds {ccy} instruments"
    assert not set(translated) & set(repriced)
    assert all(getattr(by_id[iid], "foreign_currency", None) is not None for iid in repriced)
    fresh = StreamingEngine(bank.portfolio(), engine.current_snapshot(), bank.history, engine.config)
    mine, full = _instrument_pnl_by_id(engine), _instrument_pnl_by_id(fresh)
    for iid in mine:
        np.testing.assert_allclose(mine[iid], full[iid], rtol=1e-12, atol=1e-12 * np.abs(full[iid]).max())
    _assert_close(engine.all_snapshots(0), reference_snapshots(engine))


def test_rate_tick_moves_only_instruments_reading_that_tenor(bank: SampleBank) -> None:
    """A tick on the 30Y point changes the values of only the instruments with a cash flow (or expiry) beyond
    20Y; every other row keeps its values bit for bit."""
    engine = _engine(bank, replace(CFG, exact_every=0))
    fid = "IR.USD.30Y"
    assert fid in engine.factor_ids
    before = engine._L.copy()
    engine.apply_ticks([Tick(fid, engine.current_snapshot()[fid] + 1e-4, "feed", 1, 0)])
    engine.step(1)
    changed = engine._row_inst[np.flatnonzero(np.any(engine._L != before, axis=1))].tolist()
    usd_curve = [g for g in engine._row_inst.tolist() if "IR.USD.*" in engine._instruments[g].factors("USD")]
    assert 0 < len(changed) < len(usd_curve)
    for g in changed:
        assert engine._instruments[g].maturity.year - bank.snapshot.as_of.year > 19  # type: ignore[attr-defined]
    _assert_close(engine.all_snapshots(0), reference_snapshots(engine))


def test_exact_resync_agrees_with_the_shifted_ladder(bank: SampleBank) -> None:
    """Bonds and swaps move by ladder shifts between resyncs; the resync every ``exact_every`` steps recomputes
    them in full and finds the same figures (1e-12 relative), and both equal the batch engine."""
    shifted = _engine(bank, replace(CFG, exact_every=0))
    resynced = _engine(bank, replace(CFG, exact_every=3))
    rng = np.random.default_rng(8)
    rates = [f for f in shifted.factor_ids if f.startswith("IR.")]
    for k in range(9):
        ticks = [
            Tick(f, shifted.current_snapshot()[f] + 3e-4 * rng.standard_normal(), "feed", 10 * k + i, 0)
            for i, f in enumerate(rng.choice(rates, 6))
        ]
        shifted.apply_ticks(ticks)
        resynced.apply_ticks(ticks)
        shifted.step(k)
        resynced.step(k)
    np.testing.assert_allclose(shifted._L, resynced._L, rtol=1e-12, atol=1e-12)
    _assert_close(shifted.all_snapshots(0), resynced.all_snapshots(0), rel=1e-12)
    _assert_close(resynced.all_snapshots(0), reference_snapshots(resynced))


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_threads_give_the_same_bits_as_one(
    bank: SampleBank, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from riskstream.engine import _stream, _stream_threads
    from riskstream.pricing import _prepared

    # every block worth a thread, so each piece of a step runs split even on this small bank
    monkeypatch.setattr(_prepared, "PARALLEL_OPTION_ELEMENTS", 1)
    monkeypatch.setattr(_prepared, "PARALLEL_LINEAR_ELEMENTS", 1)
    monkeypatch.setattr(_stream, "PARALLEL_COPY_ELEMENTS", 1)
    runs: list[int] = []
    run = _stream_threads.StepPool.run

    def counted(self: _stream_threads.StepPool, tasks: list) -> None:  # type: ignore[type-arg]
        runs.append(len(tasks))
        run(self, tasks)

    monkeypatch.setattr(_stream_threads.StepPool, "run", counted)
    config = replace(CFG, exact_every=3)
    one, many = _engine(bank, replace(config, threads=1)), _engine(bank, replace(config, threads=threads))
    rng = np.random.default_rng(8)
    events = _events(bank)
    for k in range(7):
        ticks = _ticks(one, rng, 400 if k == 2 else 25, seq=1000 * k)
        for engine in (one, many):
            engine.apply_ticks(ticks)
            if k == 4:
                engine.apply_position_events(events)
        assert many.step(k) == one.step(k)  # value by value, bit for bit
    assert max(runs) >= threads  # the step was cut into at least one piece per thread
    assert many.state() == one.state()  # the thread count is not part of the checkpoint
    restored = StreamingEngine.from_state(many.state(), bank.portfolio(), bank.snapshot, bank.history, config)
    assert restored.config.threads == config.threads
    many.close()
    one.close()


def test_thread_count_is_validated() -> None:
    with pytest.raises(Exception, match="threads"):
        StreamConfig(threads=-1)
    assert StreamConfig(threads=0).n_threads >= 1
