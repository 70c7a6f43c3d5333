"""The pipeline on the in-process bus in simulation mode: equal to the engine driven directly, one worker equal to
two, a worker leaving mid-run recovered from checkpoints."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from worker_inputs import replay_ticks, sim_config, small_bank

from riskstream.bus import open_bus
from riskstream.domain import RiskSnapshot
from riskstream.engine._pipeline import publish_ticks, reference_series, run_simulation


def _by_key(snaps: list[RiskSnapshot]) -> dict[tuple[str, int], dict[str, float]]:
    counts = Counter((s.node, s.sequence) for s in snaps)
    assert max(counts.values()) == 1, "a window was published twice"
    return {(s.node, s.sequence): dict(s.measures) for s in snaps}


@pytest.fixture(scope="module")
def ticks() -> list:
    return replay_ticks()


@pytest.fixture(scope="module")
def one_worker(ticks: list, tmp_path_factory: pytest.TempPathFactory) -> dict:
    bank = small_bank()
    bus = open_bus("memory", partitions=4)
    publish_ticks(bus, ticks)
    config = sim_config(tmp_path_factory.mktemp("one"))
    result = run_simulation(bus, bank.portfolio(), bank.snapshot, bank.history, config, workers=1)
    return {"config": config, "result": result, "snapshots": _by_key(result.snapshots)}


def test_intraday_var_equals_the_engine_driven_directly(one_worker: dict, ticks: list) -> None:
    bank = small_bank()
    config = one_worker["config"]
    ref = reference_series(bank.portfolio(), bank.snapshot, bank.history, config, ticks)
    got = one_worker["result"]
    firm = dict(got.series("FIRM", "var_99_1d"))
    # one window per 250 ms of the 4 s session: 16 windows
    assert sorted(firm) == list(range(config.first_window, config.last_window + 1)) and len(firm) == 16
    # the market moves: the firm VaR is not constant through the day
    assert len({round(v, 6) for v in firm.values()}) > 1
    for k, nodes in ref.items():
        for node, var in nodes.items():
            # reference: one StreamingEngine over every book fed the same window's ticks, no bus (sums of the
            # same leaf vectors in another order: equal to rounding)
            value = one_worker["snapshots"][(node, k)]["var_99_1d"]
            np.testing.assert_allclose(value, var, rtol=1e-9, err_msg=f"{node} window {k}")


def test_two_workers_equal_one(one_worker: dict, ticks: list, tmp_path: Path) -> None:
    bank = small_bank()
    bus = open_bus("memory", partitions=4)
    publish_ticks(bus, ticks)
    result = run_simulation(
        bus, bank.portfolio(), bank.snapshot, bank.history, sim_config(tmp_path), workers=2
    )
    assert len(result.stats) == 2 and all(s["windows_closed"] > 0 for s in result.stats)
    assert _by_key(result.snapshots) == one_worker["snapshots"]


def test_worker_leaving_mid_run_hands_its_partitions_over(
    one_worker: dict, ticks: list, tmp_path: Path
) -> None:
    bank = small_bank()
    bus = open_bus("memory", partitions=4)
    publish_ticks(bus, ticks)
    # small polls: windows close a few at a time, so the worker leaves with work still to do
    config = sim_config(tmp_path, checkpoint_every_windows=3, poll_records=40)
    result = run_simulation(
        bus, bank.portfolio(), bank.snapshot, bank.history, config, workers=2, leave_after=[5, None]
    )
    left, stayed = sorted(result.stats, key=lambda s: s["windows_closed"])
    # 4 partitions × 16 windows; the partitions handed over resume from the checkpoint taken on revocation
    assert 5 <= left["windows_closed"] < 32 and left["windows_closed"] + stayed["windows_closed"] == 64
    assert _by_key(result.snapshots) == one_worker["snapshots"]
