"""A commit killed (SIGKILL) at random points leaves the old rows or the new ones; a retry completes it once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import duckdb
import pytest
from store_rows import DAY, rows

from riskstream.store import JobState, RiskStore

CHILD = """
import sys
from riskstream.store import RiskStore
store = RiskStore.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
store.commit(sys.argv[2])
print("done", flush=True)
"""


def _state(store: RiskStore) -> tuple[int, float]:
    con = duckdb.connect()
    view = store.register(con)
    n, total = con.execute(f"SELECT count(*), coalesce(sum(value), 0) FROM {view}").fetchall()[0]
    return int(n), float(total)


@pytest.mark.integration
def test_sigkill_during_commit_leaves_old_or_new_and_retry_completes(tmp_path):
    rng = random.Random(20261120)
    old = rows(value=1.0)  # 18 rows, sum 18.018 (see store_rows)
    new = rows(value=2.0, trades_per_book=4)  # 24 rows, sum 48 + 6·(0.001+0.002+0.003) = 48.036
    old_state, new_state = (18, pytest.approx(18.018)), (24, pytest.approx(48.036))
    runs = []
    for run in range(8):
        store = RiskStore.open(tmp_path / f"s{run}")
        first = store.open_job("EOD", DAY)
        store.put_chunk(first, old)
        store.commit(first)
        job = store.open_job("EOD", DAY)
        store.put_chunk(job, new.slice(0, 12), chunk_id="a")
        store.put_chunk(job, new.slice(12), chunk_id="b")
        # every child starts (imports) at once and waits for its cue, so the runs overlap their start-up
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(store.root), job],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        runs.append((store.root, job, child))
    outcomes = []
    for root, job, child in runs:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == b"ready"
        child.stdin.write(b"go\n")
        child.stdin.flush()
        time.sleep(rng.uniform(0.0, 0.15))  # a commit of 24 rows with its pre-aggregations takes ~0.1-0.2 s
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        child.stdin.close()
        reopened = RiskStore.open(root)
        seen = _state(reopened)
        assert seen in (old_state, new_state)
        outcomes.append(seen[0])
        result = reopened.commit(job)
        assert _state(reopened) == new_state
        assert reopened.status(job).state == JobState.COMMITTED
        again = reopened.commit(job)
        assert again.already_committed and again.version == result.version
        assert reopened.results_version() == result.version  # no new version, no new rows
        assert _state(reopened) == new_state
        assert reopened.preagg_source_version("desk_measure") == result.version
    print("rows seen after each kill:", outcomes)
    assert len(outcomes) == 8
