"""Concurrent writers: chunks from several processes, disjoint scopes committing at once, conflicting ones retried."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

import duckdb
from store_rows import DAY, count, rows

from riskstream.store import RiskStore


def _put(root: str, job: str, part: int) -> int:
    store = RiskStore.open(root)
    table = rows(desks=("RATES", "FX", "EQ"), value=float(part), prefix=f"P{part}")
    return store.put_chunk(job, table, chunk_id=f"p{part}").rows


def test_chunks_of_one_job_from_several_processes(tmp_path):
    store = RiskStore.open(tmp_path / "s")
    job = store.open_job("EOD", DAY, expected_chunks=4)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        received = list(pool.map(_put, [str(store.root)] * 4, [job] * 4, range(4)))
    assert received == [30] * 4  # 5 books × 3 trades × 2 measures per chunk (store_rows.BOOKS)
    assert store.status(job).chunks_received == 4
    assert store.commit(job).rows == 120
    assert count(store) == 120


def _run(store: RiskStore, desk: str, value: float, errors: list) -> None:
    try:
        job = store.open_job("EOD", DAY, scope={"desk": [desk]})
        store.put_chunk(job, rows(desks=(desk,), value=value))
        store.commit(job)
    except Exception as exc:  # collected and asserted on below
        errors.append(exc)


def test_disjoint_scopes_commit_concurrently_and_conflicts_retry(tmp_path):
    store = RiskStore.open(tmp_path / "s")
    errors: list = []
    threads = [threading.Thread(target=_run, args=(store, d, 1.0, errors)) for d in ("RATES", "FX", "EQ")]
    # the same scope twice more: these conflict with each other and with the first RATES job and must retry
    threads += [threading.Thread(target=_run, args=(store, "RATES", v, errors)) for v in (2.0, 3.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len([h for h in store.history() if h["job_id"]]) == 5  # one commit per job
    assert count(store, desk="FX") == 6 and count(store, desk="EQ") == 12
    con = duckdb.connect()
    view = store.register(con)
    # RATES holds exactly one run's rows (whichever committed last), never a mix of runs
    n, runs = con.execute(
        f"SELECT count(*), count(DISTINCT job_id) FROM {view} WHERE desk = 'RATES'"
    ).fetchall()[0]
    assert (n, runs) == (12, 1)
    assert store.preagg_source_version("desk_book_measure") == store.results_version()
