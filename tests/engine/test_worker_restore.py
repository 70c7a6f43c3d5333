"""The engine state a worker checkpoints restores bit for bit in another process: windows of ticks and position
events (new, amend, cancel; bonds and swaps on the cash-flow ladder), state taken midway, restored in a child
process with another string-hash seed, gives the same snapshots and leaf vectors as the uninterrupted engine."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from worker_inputs import WINDOW_US, position_events, replay_ticks, sim_config, small_bank

from riskstream.engine import StreamingEngine
from riskstream.engine._worker import books_by_partition

SECONDS = 3.0
RESTORE_AT = 5  # windows applied before the state is taken


def _windows() -> list[tuple[int, list, list]]:
    ticks, events = replay_ticks(SECONDS), position_events(SECONDS, n=30)
    config = sim_config(Path("."), SECONDS)
    by_tick: dict[int, list] = {}
    by_event: dict[int, list] = {}
    for t in ticks:
        by_tick.setdefault(t.event_time_us // WINDOW_US, []).append(t)
    for e in events:
        by_event.setdefault(e.event_time_us // WINDOW_US, []).append(e)
    return [
        (k, by_tick.get(k, []), by_event.get(k, []))
        for k in range(config.first_window, config.last_window + 1)
    ]


def run(state: bytes | None, partition: int) -> tuple[bytes, list]:
    """Windows of ``partition``'s books as a worker closes them (ticks, then events one by one, then a step);
    from ``state`` after RESTORE_AT windows when given. Returns the state at RESTORE_AT and every window's
    (snapshots, leaf vectors)."""
    bank = small_bank()
    config = sim_config(Path("."), SECONDS).stream
    books = books_by_partition(bank.portfolio(), 4)[partition]
    windows = _windows()
    if state is None:
        engine = StreamingEngine(bank.portfolio(), bank.snapshot, bank.history, config, books=books)
    else:
        engine = StreamingEngine.from_state(state, bank.portfolio(), bank.snapshot, bank.history, config)
        windows = windows[RESTORE_AT:]
    taken = b""
    out = []
    for i, (k, ticks, events) in enumerate(windows):
        if state is None and i == RESTORE_AT:
            taken = engine.state()
        engine.apply_ticks(ticks)
        for e in events:
            engine.apply_position_events([e])
        snaps = [(s.node, dict(s.measures)) for s in engine.step((k + 1) * WINDOW_US)]
        out.append((snaps, {leaf: v.tobytes() for leaf, v in engine.leaf_vectors().items()}))
    return taken, out


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.parametrize("partition", [2])
def test_state_restored_in_another_process_continues_bit_for_bit(partition: int, tmp_path: Path) -> None:
    state, uninterrupted = run(None, partition)
    assert state and any(events for _, _, events in _windows()[RESTORE_AT:])
    script = (
        "import pickle, sys; sys.path.insert(0, sys.argv[1]); import test_worker_restore as t; "
        "sys.stdout.buffer.write(pickle.dumps(t.run(open(sys.argv[2], 'rb').read(), int(sys.argv[3]))[1]))"
    )
    (tmp_path / "state").write_bytes(state)
    env = {**os.environ, "PYTHONHASHSEED": str(17 + partition)}
    child = subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent), str(tmp_path / "state"), str(partition)],
        capture_output=True,
        env=env,
        timeout=110,
    )
    assert child.returncode == 0, child.stderr.decode()[-3000:]
    restored = pickle.loads(child.stdout)
    assert len(restored) == len(uninterrupted) - RESTORE_AT
    for i, (got, want) in enumerate(zip(restored, uninterrupted[RESTORE_AT:], strict=True)):
        assert got[0] == want[0], f"window {RESTORE_AT + i}: snapshots differ"
        assert got[1] == want[1], f"window {RESTORE_AT + i}: leaf vectors differ"
    # the windows after the restore did change something: ticks and events touched nodes
    assert sum(len(snaps) for snaps, _ in restored) > len(restored)
