"""Malformed ticks and position events mixed into a replay on the in-process bus: each one becomes a dead letter
with its reason, the worker carries on, and the VaR series equals that of a run that never saw them."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from worker_inputs import START_US, position_events, replay_ticks, sim_config, small_bank

from riskstream.bus import Bus, TopicPartition, open_bus, partition_for
from riskstream.domain import PositionEvent, PositionEventKind, Tick
from riskstream.engine._pipeline import run_simulation
from riskstream.engine._worker import Codecs, _read_range, books_by_partition

SECONDS = 4.0
END_US = START_US + int(SECONDS * 1e6)
N = 4  # partitions

TICK_KINDS = (
    "schema",
    "truncated",
    "not_finite",
    "non_positive_price",
    "unknown_factor",
    "future_event_time",
    "duplicate_sequence",
    "out_of_order_sequence",
)
EVENT_KINDS = (
    "schema",
    "not_finite",
    "unknown_instrument",
    "unknown_book",
    "missing_field",
    "duplicate_sequence",
    "out_of_order_sequence",
    "bad_cancel",
)


@dataclass(frozen=True)
class Bad:
    """One malformed record: which stream, what is wrong, after which good record (index) it goes, and the
    free parameters of the damage."""

    topic: str  # "ticks" | "positions"
    kind: str
    after: int
    number: float
    blob: bytes


def _bads(topic: str, kinds: tuple[str, ...], min_size: int, max_size: int) -> st.SearchStrategy[list[Bad]]:
    """Kinds and places drawn by hypothesis; the free numbers and bytes of each from a drawn seed (a few bytes of
    choice per record keep hundreds of records within hypothesis's data budget)."""

    def build(seed: int, picks: list[tuple[str, int]]) -> list[Bad]:
        rng = random.Random(seed)
        specials = [math.nan, math.inf, -math.inf, 0.0, -0.0]
        out = []
        for kind, after in picks:
            r = rng.random()
            number = (
                rng.choice(specials)
                if r < 0.3
                else (-rng.uniform(0, 1e6) if r < 0.6 else rng.uniform(1e-3, 1e6))
            )
            blob = rng.randbytes(rng.randrange(0, 40))
            out.append(Bad(topic, kind, after, number, blob))
        return out

    picks = st.lists(
        st.tuples(st.sampled_from(kinds), st.integers(0, 10_000)), min_size=min_size, max_size=max_size
    )
    return st.builds(build, st.integers(0, 2**32 - 1), picks)


@dataclass
class Streams:
    """Records per partition, in production order, with the dead-letter reason expected of each (None: good)."""

    ticks: dict[int, list[tuple[bytes, bytes, str | None]]]
    positions: dict[int, list[tuple[bytes, bytes, str | None]]]


def _damage_tick(bad: Bad, good: Tick, codecs: Codecs) -> tuple[bytes, str]:
    """The bytes of a malformed tick near ``good`` and the reason a validator gives it."""
    k = bad.kind
    if k == "schema":
        # any first byte but the wire format's magic 0
        return bytes([1 + bad.blob[0] % 255]) + bad.blob[1:] if bad.blob else b"", "schema"
    if k == "truncated":
        full = codecs.tick.encode(good)
        return full[: max(0, len(full) - 1 - len(bad.blob) % (len(full) - 1))], "schema"
    if k == "not_finite":
        v = bad.number if not math.isfinite(bad.number) else math.nan
        return codecs.tick.encode(replace(good, value=v, sequence=good.sequence + 1)), "not_finite"
    if k == "non_positive_price":
        factor = good.factor_id if good.factor_id.startswith(("EQ.", "FX.", "VOL.")) else "EQ.ZZNEG"
        v = bad.number if math.isfinite(bad.number) and bad.number <= 0 else -1.0
        return codecs.tick.encode(replace(good, factor_id=factor, value=v)), "non_positive_price"
    if k == "unknown_factor":
        return codecs.tick.encode(
            replace(good, factor_id=f"EQ.NOSUCH{len(bad.blob)}", value=1.0)
        ), "unknown_factor"
    if k == "future_event_time":
        # beyond the simulated clock (the session end) plus the 5 s the validator allows
        later = END_US + 5_000_001 + int(abs(bad.number) if math.isfinite(bad.number) else 0)
        return codecs.tick.encode(replace(good, event_time_us=later)), "future_event_time"
    if k == "duplicate_sequence":
        return codecs.tick.encode(good), "duplicate_sequence"
    assert k == "out_of_order_sequence"
    return codecs.tick.encode(replace(good, sequence=good.sequence - 1)), "out_of_order_sequence"


def _damage_event(
    bad: Bad, good: PositionEvent | None, book: str, codecs: Codecs, n_cancel: int
) -> tuple[bytes, str]:
    """The bytes of a malformed event after ``good`` (None: first of its partition, whose books include
    ``book``) and the reason it gets (``engine``: the validator passes it, the engine rejects it)."""
    k = bad.kind
    if good is None:  # nothing good before it in this partition: a sequence rule needs a previous event
        k = "schema" if k in ("duplicate_sequence", "out_of_order_sequence") else k
    base = good or PositionEvent(PositionEventKind.NEW, "X", book, "oms", 0, START_US, "I", 1.0)
    if k == "schema":
        return bytes([1 + bad.blob[0] % 255]) + bad.blob[1:] if bad.blob else b"", "schema"
    # a different source, and the neighbour's event time: a rejected event must not move its window either way
    other = replace(base, kind=PositionEventKind.AMEND, source="desk-ui", sequence=1)
    if k == "not_finite":
        v = bad.number if not math.isfinite(bad.number) else math.inf
        return codecs.position.encode(replace(other, quantity=v, instrument_id=base.instrument_id or "I")), k
    if k == "unknown_instrument":
        return codecs.position.encode(replace(other, instrument_id=f"NOSUCH-{len(bad.blob)}")), k
    if k == "unknown_book":
        return codecs.position.encode(replace(other, book=f"NOSUCH-BOOK-{len(bad.blob)}")), k
    if k == "missing_field":
        return codecs.position.encode(replace(other, position_id="")), k
    if k == "duplicate_sequence":
        assert good is not None
        return codecs.position.encode(good), k
    if k == "out_of_order_sequence":
        assert good is not None
        return codecs.position.encode(replace(good, sequence=good.sequence - 1)), k
    assert k == "bad_cancel"
    # valid for the validator (its own source, increasing sequence); the engine knows no such position
    cancel = replace(
        other, kind=PositionEventKind.CANCEL, position_id=f"NOSUCH-POS-{n_cancel}", sequence=n_cancel + 1
    )
    return codecs.position.encode(cancel), "engine"


def _streams(ticks: list[Tick], events: list[PositionEvent], bads: list[Bad], codecs: Codecs) -> Streams:
    good_ticks: dict[int, list[Tick]] = {q: [] for q in range(N)}
    for t in ticks:
        good_ticks[partition_for(t.factor_id.encode(), N)].append(t)
    good_events: dict[int, list[PositionEvent]] = {p: [] for p in range(N)}
    for e in events:
        good_events[partition_for(e.book.encode(), N)].append(e)
    # where each bad record goes: after the good record `after mod len` of a partition chosen by `after`
    out = Streams({q: [] for q in range(N)}, {p: [] for p in range(N)})
    after_tick: dict[tuple[int, int], list[Bad]] = {}
    after_event: dict[tuple[int, int], list[Bad]] = {}
    for b in bads:
        q = b.after % N
        if b.topic == "ticks":
            after_tick.setdefault((q, (b.after // N) % len(good_ticks[q])), []).append(b)
        else:
            # -1: before the first good event of the partition
            slot = (b.after // N) % (len(good_events[q]) + 1) - 1
            after_event.setdefault((q, slot), []).append(b)
    for q, goods in good_ticks.items():
        for i, t in enumerate(goods):
            out.ticks[q].append((t.factor_id.encode(), codecs.tick.encode(t), None))
            for b in after_tick.get((q, i), []):
                value, reason = _damage_tick(b, t, codecs)
                out.ticks[q].append((t.factor_id.encode(), value, reason))
    cancels = Counter[int]()
    books = books_by_partition(small_bank().portfolio(), N)
    for p, goods in good_events.items():
        for i in range(-1, len(goods)):
            if i >= 0:
                e = goods[i]
                out.positions[p].append((e.book.encode(), codecs.position.encode(e), None))
            for b in after_event.get((p, i), []):
                good = goods[i] if i >= 0 else None
                value, reason = _damage_event(b, good, books[p][0], codecs, cancels[p])
                if reason == "engine":
                    cancels[p] += 1
                out.positions[p].append((b"bad", value, reason))
    return out


def _publish(bus: Bus, streams: Streams) -> dict[tuple[str, int, int], str]:
    """Produce every record to its partition; returns (topic, partition, offset) → expected reason."""
    producer = bus.producer()
    expected: dict[tuple[str, int, int], str] = {}
    for topic, by_p in ((bus.topics.ticks, streams.ticks), (bus.topics.positions, streams.positions)):
        for p, records in by_p.items():
            for offset, (key, value, reason) in enumerate(records):
                producer.produce(topic, value, key=key, partition=p)
                if reason is not None:
                    expected[(topic, p, offset)] = reason
    producer.flush()
    producer.close()
    return expected


def _run(
    streams: Streams, tmp: Path
) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int, int], str], Bus]:
    bank = small_bank()
    bus = open_bus("memory", partitions=N)
    expected = _publish(bus, streams)
    config = sim_config(tmp, SECONDS)
    result = run_simulation(
        bus, bank.portfolio(), bank.snapshot, bank.history, config, workers=1, timeout_s=60
    )
    counts = Counter((s.node, s.sequence) for s in result.snapshots)
    assert max(counts.values()) == 1, "a window was published twice"
    # every window of the session was published: the worker stayed alive to the end
    assert {k for _, k in counts} == set(range(config.first_window, config.last_window + 1))
    var = {(s.node, s.sequence): s.measures["var_99_1d"] for s in result.snapshots}
    return var, expected, bus


def _dead_letters(bus: Bus, codecs: Codecs) -> dict[tuple[str, int, int], str]:
    topic = bus.topics.deadletter
    reader = bus.consumer("test.dead")
    out: dict[tuple[str, int, int], str] = {}
    try:
        for p, end in bus.end_offsets(topic).items():
            for r in _read_range(reader, TopicPartition(topic, p), 0, end):
                d = codecs.dead.decode(r.value)
                key = (d.topic, d.partition, d.offset)
                assert key not in out, f"dead letter {key} published twice"
                out[key] = d.reason
    finally:
        reader.close()
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Tick], list[PositionEvent], dict]:
    ticks = replay_ticks(SECONDS)
    events = position_events(SECONDS)
    codecs = Codecs(open_bus("memory", partitions=N))
    var, expected, _ = _run(_streams(ticks, events, [], codecs), tmp_path_factory.mktemp("clean"))
    assert expected == {}
    return ticks, events, var


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    bad_ticks=_bads("ticks", TICK_KINDS, 300, 500),
    bad_events=_bads("positions", EVENT_KINDS, 100, 200),
)
def test_malformed_input_goes_to_deadletter_and_changes_nothing(
    clean: tuple[list[Tick], list[PositionEvent], dict],
    tmp_path_factory: pytest.TempPathFactory,
    bad_ticks: list[Bad],
    bad_events: list[Bad],
) -> None:
    ticks, events, clean_var = clean
    bus0 = open_bus("memory", partitions=N)
    codecs = Codecs(bus0)
    streams = _streams(ticks, events, bad_ticks + bad_events, codecs)
    var, expected, bus = _run(streams, tmp_path_factory.mktemp("bad"))
    got = _dead_letters(bus, Codecs(bus))
    # each malformed record is a dead letter once, with the reason it was made to have
    assert got == expected
    assert Counter(got.values()) == Counter(expected.values())
    assert len(expected) == len(bad_ticks) + len(bad_events)
    # and the VaR of every node and window is exactly that of the run that never saw them
    assert var == clean_var
