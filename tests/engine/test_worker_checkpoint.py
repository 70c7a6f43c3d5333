"""Checkpoint files: round trip, atomic replacement keeping the previous one, corruption detected and skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskstream.engine._checkpoint import Checkpoint, CheckpointStore
from riskstream.errors import ConfigurationError, StoreError


def _ckpt(window: int, engine: bytes = b"engine-state") -> Checkpoint:
    return Checkpoint(
        group="risk-workers",
        partition=2,
        window=window,
        window_end_us=1_000_000 * (window + 1),
        input_offsets={"marketdata.ticks:0": 17, "marketdata.ticks:1": 0, "positions:2": 5},
        output_offsets={"risk.snapshots:2": 40},
        blobs={"engine": engine, "limits": b"", "ticks": bytes(range(256))},
    )


def test_round_trip_and_previous_kept(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "risk-workers")
    assert store.load(2) is None
    store.save(_ckpt(3))
    store.save(_ckpt(4, b"newer"))
    got = store.load(2)
    assert got == _ckpt(4, b"newer")
    assert Checkpoint.decode(store.path(2).with_name("p2.ckpt.prev").read_bytes()) == _ckpt(3)
    # no temporary file is left behind by a completed save
    assert sorted(p.name for p in store.directory.iterdir()) == ["p2.ckpt", "p2.ckpt.prev"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_newest_falls_back_to_previous(tmp_path: Path, damage: str) -> None:
    store = CheckpointStore(tmp_path, "risk-workers")
    store.save(_ckpt(3))
    store.save(_ckpt(4))
    data = bytearray(store.path(2).read_bytes())
    if damage == "truncate":
        data = data[:-10]
    elif damage == "flip":
        data[-1] ^= 0xFF
    else:
        data = bytearray(b"not a checkpoint")
    store.path(2).write_bytes(bytes(data))
    assert store.load(2) == _ckpt(3)
    store.path(2).with_name("p2.ckpt.prev").write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"p2\.ckpt"):
        store.load(2)


def test_groups_are_separate_and_validated(tmp_path: Path) -> None:
    CheckpointStore(tmp_path, "risk-workers").save(_ckpt(1))
    assert CheckpointStore(tmp_path, "other").load(2) is None
    with pytest.raises(ConfigurationError, match="group"):
        CheckpointStore(tmp_path, "../escape")
    with pytest.raises(ConfigurationError, match="input_offsets"):
        Checkpoint("g", 0, 0, 0, input_offsets={"no-partition": 1})
