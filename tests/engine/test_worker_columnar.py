"""The worker's columnar tick path (``poll_batch`` → ``validate_batch`` → ``apply_levels``) against its per-message
reference path (``poll`` → ``validate`` → ``apply_ticks``, ``WorkerConfig(columnar=False)``): the same input gives
the same records on every output partition, byte by byte, and the same final checkpoints."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from worker_inputs import position_events, publish_events, replay_ticks, sim_config, small_bank

from riskstream.bus import Bus, RawBatch, TickBatch, TickValidator, TopicPartition, open_bus, partition_for
from riskstream.domain import DeadLetter, Tick
from riskstream.engine._checkpoint import CheckpointStore
from riskstream.engine._pipeline import run_simulation
from riskstream.engine._worker import VECTORS_TOPIC, Codecs, RiskWorker, _read_range, _split, _TickPending

N = 4  # partitions


def _inputs() -> list[tuple[bytes, Tick | bytes]]:
    """Replay ticks with bad ones mixed in (a non-positive price, a NaN, an unknown factor, a duplicate sequence,
    undecodable bytes), every 37th good tick followed by one of them."""
    out: list[tuple[bytes, Tick | bytes]] = []
    for i, t in enumerate(replay_ticks()):
        key = t.factor_id.encode()
        out.append((key, t))
        kind = (i // 37) % 5
        if i % 37 == 0:
            bad: Tick | bytes = (
                dataclasses.replace(t, factor_id="EQ.NEG" if not t.factor_id.startswith("EQ.") else t.factor_id,
                                    value=-1.0),
                dataclasses.replace(t, value=float("nan"), sequence=t.sequence + 1),
                dataclasses.replace(t, factor_id="EQ.NOSUCH", value=1.0),
                t,
                b"\x07not avro",
            )[kind]  # fmt: skip
            out.append((key, bad))
    return out


def _bus() -> tuple[Bus, Codecs]:
    bus = open_bus("memory", partitions=N)
    codecs = Codecs(bus)
    producer = bus.producer()
    for key, item in _inputs():
        value = item if isinstance(item, bytes) else codecs.tick.encode(item)
        producer.produce(bus.topics.ticks, value, key=key, partition=partition_for(key, N))
    producer.flush()
    producer.close()
    publish_events(bus, position_events(), codecs)
    return bus, codecs


def _outputs(bus: Bus) -> dict[tuple[str, int], Counter[tuple[bytes | None, bytes]]]:
    """Every record of every output partition as (key, value) bytes (the aggregator and the worker interleave on
    ``risk.snapshots`` by thread timing: compared as multisets per partition)."""
    t = bus.topics
    reader = bus.consumer("test.outputs")
    out: dict[tuple[str, int], Counter[tuple[bytes | None, bytes]]] = {}
    try:
        for topic in (t.snapshots, t.alerts, t.deadletter, VECTORS_TOPIC):
            for p, end in bus.end_offsets(topic).items():
                records = _read_range(reader, TopicPartition(topic, p), 0, end)
                assert len(records) == end
                out[(topic, p)] = Counter((r.key, r.value) for r in records)
    finally:
        reader.close()
    return out


def _run(
    tmp: Path,
    *,
    columnar: bool,
    poll_records: int,
    share: bool = True,
    checkpoint_every_windows: int = 10,
    leave_after: list[int | None] | None = None,
) -> tuple[dict, list[dict[str, int]], dict]:
    bank = small_bank()
    bus, _ = _bus()
    config = sim_config(
        tmp,
        columnar=columnar,
        share_tick_reads=share,
        poll_records=poll_records,
        checkpoint_every_windows=checkpoint_every_windows,
    )
    workers = 2 if leave_after else 1
    result = run_simulation(
        bus, bank.portfolio(), bank.snapshot, bank.history, config, workers=workers, leave_after=leave_after
    )
    store = CheckpointStore(config.checkpoint_dir, config.group)
    ckpts = {}
    for p in range(N):
        c = store.load(p)
        assert c is not None
        # not the output offsets: the aggregator writes desk and firm snapshots to the same topic, so how many of
        # them a partition's last checkpoint counts depends on thread timing
        ckpts[p] = (c.window, dict(c.input_offsets), c.blobs["meta"], c.blobs["engine"])
    return _outputs(bus), result.stats, ckpts


@pytest.mark.parametrize(("poll_records", "share"), [(5_000, True), (37, True), (37, False)])
def test_columnar_worker_publishes_what_the_per_message_path_published(
    tmp_path: Path, poll_records: int, share: bool
) -> None:
    # 37-record polls: chunks straddle window boundaries and are split by index; share: the 4 partitions of the
    # one worker read and validate each poll once, or each on its own
    ref_out, ref_stats, ref_ckpt = _run(tmp_path / "ref", columnar=False, poll_records=poll_records)
    col_out, col_stats, col_ckpt = _run(
        tmp_path / "col", columnar=True, poll_records=poll_records, share=share
    )
    # the run did something: every window of 4 partitions (16 windows each), dead letters published
    assert ref_stats[0]["windows_closed"] == 4 * 16
    assert ref_stats[0]["dead_letters"] > 0
    assert sum(sum(c.values()) for (topic, _), c in ref_out.items() if topic == VECTORS_TOPIC) == 4 * 16
    assert col_out == ref_out
    assert col_stats == ref_stats
    assert col_ckpt == ref_ckpt


def test_columnar_worker_resumes_from_checkpoints_with_pending_ticks(tmp_path: Path) -> None:
    # a worker leaving after 5 windows hands its partitions over through checkpoints holding pending ticks
    # (small polls: records read past a boundary are pending when it checkpoints); the partitions taken over
    # start at other offsets than those the other worker holds, so they read apart until both reach the end
    runs = {
        columnar: _run(
            tmp_path / str(columnar),
            columnar=columnar,
            poll_records=40,
            checkpoint_every_windows=3,
            leave_after=[5, None],
        )
        for columnar in (False, True)
    }
    (ref_out, _, ref_ckpt), (col_out, _, col_ckpt) = runs[False], runs[True]
    assert col_out == ref_out
    assert {p: c[:2] for p, c in col_ckpt.items()} == {p: c[:2] for p, c in ref_ckpt.items()}


def test_pending_ticks_round_trip_through_checkpoint_rows(tmp_path: Path) -> None:
    bus, codecs = _bus()
    tp = TopicPartition(bus.topics.ticks, 0)
    consumer = bus.consumer("test.pending")
    consumer.assign({tp: 0})
    raw = consumer.poll_batch(200, 1.0)
    consumer.close()
    part = raw.split()[tp]
    records = part.records()
    pending = _TickPending()
    # the records a validator would pass on: decodable, finite (the others are dead letters, never pending)
    good = [
        r for r in records if r.value != b"\x07not avro" and math.isfinite(codecs.tick.decode(r.value).value)
    ]
    ticks = [codecs.tick.decode(r.value) for r in good]
    offsets = np.array([r.offset for r in good], np.int64)
    pending.extend(TickBatch.from_ticks(ticks, np.zeros(len(good), np.int32), offsets), part)
    rows = pending.rows()
    # reference: the per-message checkpoint form of the same records, [offset, key hex, value hex, timestamp]
    assert rows == [[r.offset, r.key.hex() if r.key else None, r.value.hex(), r.timestamp_us] for r in good]
    taken = pending.take(7)
    assert [len(t) for t in taken] == [7] and pending.first_offset() == good[7].offset
    again = _TickPending.from_records(tp, good[7:], codecs.tick)
    assert again.rows() == pending.rows()
    assert again.chunks[0][0].to_ticks() == ticks[7:]


def test_partitions_at_the_same_offsets_validate_each_poll_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = TickValidator.validate_batch

    def counted(self: TickValidator, raw: RawBatch) -> tuple[TickBatch, list[DeadLetter]]:
        calls.append(len(raw))
        return original(self, raw)

    monkeypatch.setattr(TickValidator, "validate_batch", counted)
    rows = {}
    for share in (False, True):
        calls.clear()
        _run(tmp_path / str(share), columnar=True, poll_records=5_000, share=share)
        rows[share] = sum(calls)
    # one worker owning the 4 partitions, all from offset 0: each tick validated 4 times apart, once shared
    n_ticks = len(_inputs())
    assert rows == {False: 4 * n_ticks, True: n_ticks}


def _revoke_midway(tmp: Path, columnar: bool) -> tuple[dict, dict]:
    """One worker owning the 4 partitions loses partition 0 (the one reading for the others when shared) after 8
    windows and runs the other three to the end; their outputs and checkpoints."""
    bank = small_bank()
    bus, _ = _bus()
    config = dataclasses.replace(sim_config(tmp, columnar=columnar, poll_records=37), assigned=(0, 1, 2, 3))
    worker = RiskWorker(bus, bank.portfolio(), bank.snapshot, bank.history, config)
    tps = [TopicPartition(bus.topics.positions, p) for p in range(N)]
    worker._consumer.assign({tp: 0 for tp in tps})
    worker._on_assign(tps)
    while worker.windows_closed < 8:
        worker.step()
    worker._on_revoke(tps[:1])
    while not all(r.done for r in worker.runners.values()):
        worker.step()
    worker.close()
    out = {k: v for k, v in _outputs(bus).items() if k[1] != 0}
    store = CheckpointStore(config.checkpoint_dir, config.group)
    ckpts = {}
    for p in range(1, N):
        c = store.load(p)
        assert c is not None
        ckpts[p] = (c.window, dict(c.input_offsets), c.blobs["meta"], c.blobs["engine"])
    return out, ckpts


def test_partitions_read_on_alone_when_the_one_reading_for_them_is_revoked(tmp_path: Path) -> None:
    assert _revoke_midway(tmp_path / "col", True) == _revoke_midway(tmp_path / "ref", False)


def test_split_with_timestamps_read_when_asked_equals_rawbatch_split() -> None:
    bus, _ = _bus()
    consumer = bus.consumer("test.split")
    consumer.assign({TopicPartition(bus.topics.ticks, q): 0 for q in range(N)})
    raw = consumer.poll_batch(5_000, 1.0)
    consumer.close()
    assert len(raw.tps) > 1
    got, want = _split(raw), raw.split()  # reference: the bus's own split, timestamps read at once
    assert list(got) == list(want)
    for tp, part in want.items():
        mine = got[tp]
        assert callable(mine.timestamps)
        assert (
            mine.records() == part.records()
        )  # topic, partition, offset, key, value, timestamp of every row
