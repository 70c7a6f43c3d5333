"""Risk jobs over HTTP, as a grid engine drives them with an API key: open → chunks in Arrow IPC, Parquet and
CSV → commit → visible through a report; a re-run replaces; a bad chunk is refused and the job stays open.

Each test writes to its own namespace and business date, so the demo store's EOD dates stay untouched."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from riskstream.api import SCOPE_JOBS_WRITE

Login = Callable[[str], dict[str, str]]
ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
CSV = "text/csv"


def _ctx(client: TestClient) -> Any:
    return client.app.state.ctx  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def grid_key(client: TestClient) -> dict[str, str]:
    """An API key of the head of trading carrying the jobs:write scope (as `riskstream apikey create` makes)."""
    key = _ctx(client).store.catalog.create_api_key("head_trading", "grid-engine-test", [SCOPE_JOBS_WRITE])
    return {"X-API-Key": key}


@pytest.fixture(scope="module")
def rates_book(client: TestClient) -> tuple[str, str]:
    books = _ctx(client).store.catalog.books()  # book -> desk
    book = sorted(b for b, d in books.items() if d == "RATES")[0]
    return "RATES", book


def _rows(ns: str, day: date, desk: str, book: str, ids: range, scale: float = 1.0) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "business_date": pa.array([day] * n, pa.date32()),
            "namespace": [ns] * n,
            "desk": [desk] * n,
            "book": [book] * n,
            "trader": ["grid"] * n,
            "trade_id": [f"T{i:05d}" for i in ids],
            "measure": ["pv"] * n,
            "value": [scale * (i + 1) for i in ids],
            "currency": ["USD"] * n,
            "pnl_vector": [[scale * (i - 2.0), scale * (1.0 - i), scale * 0.5 * i] for i in ids],
        }
    )


def _arrow(t: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as writer:
        writer.write_table(t)
    return sink.getvalue().to_pybytes()


def _parquet(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(t, buf)
    return buf.getvalue()


def _csv(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(t.drop_columns(["pnl_vector"]), buf)
    return buf.getvalue()


def _report(client: TestClient, login: Login, ns: str, day: date) -> dict[str, Any]:
    dsl = {
        "rows": ["desk", "book"],
        "measures": ["pv", {"measure": "pv", "agg": "count"}],
        "namespace": ns,
        "business_date": day.isoformat(),
    }
    reply = client.post("/api/v1/reports/run", json={"report": dsl}, headers=login("head_trading"))
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_open_chunks_in_three_formats_commit_and_report(
    client: TestClient, login: Login, grid_key: dict[str, str], rates_book: tuple[str, str]
) -> None:
    ns, day = "APIJOBS", date(2031, 3, 3)
    desk, book = rates_book
    opened = client.post(
        "/api/v1/jobs",
        json={
            "namespace": ns,
            "business_date": day.isoformat(),
            "scope": {"desk": [desk]},
            "expected_chunks": 3,
        },
        headers=grid_key,
    )
    assert opened.status_code == 201, opened.text
    job = opened.json()
    assert job["state"] == "OPEN" and job["chunks_expected"] == 3 and job["scope"] == {"desk": [desk]}
    job_id = job["job_id"]
    chunks = {
        "a": (_arrow(_rows(ns, day, desk, book, range(0, 4))), ARROW),
        "b": (_parquet(_rows(ns, day, desk, book, range(4, 7))), PARQUET),
        "c": (_csv(_rows(ns, day, desk, book, range(7, 10))), CSV),
    }
    for chunk_id, (body, kind) in chunks.items():
        put = client.put(
            f"/api/v1/jobs/{job_id}/chunks/{chunk_id}",
            content=body,
            headers={**grid_key, "Content-Type": kind},
        )
        assert put.status_code == 200, put.text
        assert put.json()["chunk_id"] == chunk_id
    assert put.json()["rows"] == 3 and "pnl_vector" not in put.json()["columns"]  # CSV carries no vectors
    status = client.get(f"/api/v1/jobs/{job_id}", headers=grid_key).json()
    assert status["state"] == "OPEN" and status["chunks_received"] == 3 and status["rows"] == 10

    before = _report(client, login, ns, day)
    assert before["rows"] == []  # staged chunks are invisible until the commit
    commit = client.post(f"/api/v1/jobs/{job_id}/commit", headers=grid_key)
    assert commit.status_code == 200, commit.text
    assert commit.json()["rows"] == 10 and commit.json()["replaced"] == 0
    version = commit.json()["version"]
    after = _report(client, login, ns, day)
    assert after["version"] == version and after["columns"] == ["desk", "book", "pv_sum", "pv_count"]
    # values 1..10 (value = i + 1 for trade i) sum to 55 over 10 trades
    assert after["rows"] == [[desk, book, 55.0, 10]]
    # a trader of another desk sees none of it; the RATES trader sees it all
    fx = client.post(
        "/api/v1/reports/run",
        json={
            "report": {
                "rows": ["desk"],
                "measures": ["pv"],
                "namespace": ns,
                "business_date": day.isoformat(),
            }
        },
        headers=login("trader_fx"),
    )
    assert fx.json()["rows"] == []

    # a retried commit returns the same version without writing again
    again = client.post(f"/api/v1/jobs/{job_id}/commit", headers=grid_key).json()
    assert again["already_committed"] is True and again["version"] == version
    done = client.get(f"/api/v1/jobs/{job_id}", headers=grid_key).json()
    assert done["state"] == "COMMITTED" and done["version"] == version and done["chunks_received"] == 3
    # a committed job takes no more chunks (409)
    late = client.put(
        f"/api/v1/jobs/{job_id}/chunks/d", content=chunks["a"][0], headers={**grid_key, "Content-Type": ARROW}
    )
    assert late.status_code == 409 and late.json()["error"] == "conflict"
    assert "riskstream_commit_seconds_count" in client.get("/metrics").text


def test_rerun_replaces_instead_of_adding(
    client: TestClient, login: Login, grid_key: dict[str, str], rates_book: tuple[str, str]
) -> None:
    ns, day = "APIRERUN", date(2031, 4, 4)
    desk, book = rates_book
    versions = []
    for scale, ids in ((1.0, range(0, 6)), (10.0, range(0, 4))):
        job_id = client.post(
            "/api/v1/jobs", json={"namespace": ns, "business_date": day.isoformat()}, headers=grid_key
        ).json()["job_id"]
        body = _parquet(_rows(ns, day, desk, book, ids, scale))
        put = client.put(
            f"/api/v1/jobs/{job_id}/chunks/0", content=body, headers={**grid_key, "Content-Type": PARQUET}
        )
        assert put.status_code == 200, put.text
        versions.append(client.post(f"/api/v1/jobs/{job_id}/commit", headers=grid_key).json())
    assert versions[1]["replaced"] == 6 and versions[1]["version"] > versions[0]["version"]
    # second run only: 10 × (1 + 2 + 3 + 4) = 100 over 4 trades — not 21 + 100 over 10
    assert _report(client, login, ns, day)["rows"] == [[desk, book, 100.0, 4]]


@pytest.mark.parametrize(
    ("mutate", "field", "value"),
    [
        (
            lambda t: t.set_column(
                t.schema.get_field_index("book"), "book", pa.array(["NO-SUCH-BOOK"] * t.num_rows)
            ),
            "book",
            "NO-SUCH-BOOK",
        ),
        (
            lambda t: t.set_column(
                t.schema.get_field_index("value"),
                "value",
                pa.array([1.0, float("inf")] + [1.0] * (t.num_rows - 2)),
            ),
            "value",
            "inf",
        ),
        (lambda t: t.drop_columns(["trade_id"]), "trade_id", None),
        (
            lambda t: t.set_column(
                t.schema.get_field_index("namespace"), "namespace", pa.array(["OTHER"] * t.num_rows)
            ),
            "namespace",
            "OTHER",
        ),
        (
            lambda t: t.set_column(
                t.schema.get_field_index("value"), "value", pa.array(["abc"] * t.num_rows)
            ),
            "value",
            "string",
        ),
    ],
    ids=["unknown-book", "non-finite-value", "missing-trade-id", "wrong-namespace", "value-not-a-number"],
)
def test_a_bad_chunk_is_422_naming_field_and_value_and_the_job_stays_open(
    client: TestClient,
    grid_key: dict[str, str],
    rates_book: tuple[str, str],
    mutate: Callable[[pa.Table], pa.Table],
    field: str,
    value: Any,
) -> None:
    ns, day = "APIBAD", date(2031, 5, 5)
    desk, book = rates_book
    job_id = client.post(
        "/api/v1/jobs", json={"namespace": ns, "business_date": day.isoformat()}, headers=grid_key
    ).json()["job_id"]
    bad = client.put(
        f"/api/v1/jobs/{job_id}/chunks/0",
        content=_arrow(mutate(_rows(ns, day, desk, book, range(3)))),
        headers={**grid_key, "Content-Type": ARROW},
    )
    assert bad.status_code == 422, bad.text
    body = bad.json()
    assert body["error"] == "invalid" and body["field"] == field, body
    if value is not None:
        assert body["value"] == value
    status = client.get(f"/api/v1/jobs/{job_id}", headers=grid_key).json()
    assert status["state"] == "OPEN" and status["chunks_received"] == 0
    # the job goes on: a good chunk is taken, and an abort drops it
    good = client.put(
        f"/api/v1/jobs/{job_id}/chunks/0",
        content=_arrow(_rows(ns, day, desk, book, range(3))),
        headers={**grid_key, "Content-Type": ARROW},
    )
    assert good.status_code == 200
    aborted = client.delete(f"/api/v1/jobs/{job_id}", headers=grid_key)
    assert aborted.status_code == 200 and aborted.json()["state"] == "ABORTED"


def test_unreadable_bodies_and_unknown_jobs(client: TestClient, grid_key: dict[str, str]) -> None:
    job_id = client.post(
        "/api/v1/jobs", json={"namespace": "APIBODY", "business_date": "2031-06-06"}, headers=grid_key
    ).json()["job_id"]
    garbage = client.put(
        f"/api/v1/jobs/{job_id}/chunks/0",
        content=b"\x00not parquet",
        headers={**grid_key, "Content-Type": PARQUET},
    )
    assert (
        garbage.status_code == 422
        and garbage.json()["field"] == "body"
        and garbage.json()["value"] == PARQUET
    )
    wrong_type = client.put(
        f"/api/v1/jobs/{job_id}/chunks/0",
        content=b"{}",
        headers={**grid_key, "Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415
    bad_id = client.put(
        f"/api/v1/jobs/{job_id}/chunks/..bad", content=b"x", headers={**grid_key, "Content-Type": CSV}
    )
    assert bad_id.status_code == 422 and "chunk_id" in bad_id.json()["field"]
    empty_commit = client.post(f"/api/v1/jobs/{job_id}/commit", headers=grid_key)
    assert empty_commit.status_code == 409
    for reply in (
        client.get("/api/v1/jobs/no-such-job", headers=grid_key),
        client.post("/api/v1/jobs/no-such-job/commit", headers=grid_key),
        client.delete("/api/v1/jobs/no-such-job", headers=grid_key),
        client.put(
            "/api/v1/jobs/no-such-job/chunks/0", content=b"a", headers={**grid_key, "Content-Type": CSV}
        ),
    ):
        assert reply.status_code == 404 and reply.json()["error"] == "not_found"
    twice = client.post(
        "/api/v1/jobs",
        json={"namespace": "APIBODY", "business_date": "2031-06-06", "job_id": job_id},
        headers=grid_key,
    )
    assert twice.status_code == 409
    for payload, field, value in (
        ({"namespace": "lower", "business_date": "2031-06-06"}, "namespace", "lower"),
        ({"namespace": "APIBODY", "business_date": "06/06/2031"}, "business_date", "06/06/2031"),
        (
            {"namespace": "APIBODY", "business_date": "2031-06-06", "scope": {"region": ["EU"]}},
            "scope",
            "region",
        ),
        ({"namespace": "APIBODY", "business_date": "2031-06-06", "expected_chunks": 0}, "expected_chunks", 0),
    ):
        reply = client.post("/api/v1/jobs", json=payload, headers=grid_key)
        assert reply.status_code == 422 and field in reply.json()["field"], reply.text
        assert reply.json()["value"] == value


def test_jobs_need_the_jobs_write_scope(client: TestClient, login: Login) -> None:
    no_scope = {"X-API-Key": _ctx(client).store.catalog.create_api_key("head_trading", "reader-test", [])}
    for headers in (login("head_trading"), login("middle_office"), no_scope):
        for reply in (
            client.post(
                "/api/v1/jobs", json={"namespace": "APINOPE", "business_date": "2031-07-07"}, headers=headers
            ),
            client.get("/api/v1/jobs/any", headers=headers),
            client.put("/api/v1/jobs/any/chunks/0", content=b"a", headers={**headers, "Content-Type": CSV}),
            client.post("/api/v1/jobs/any/commit", headers=headers),
            client.delete("/api/v1/jobs/any", headers=headers),
        ):
            assert reply.status_code == 403, reply.text
            assert reply.json()["error"] == "forbidden" and SCOPE_JOBS_WRITE in reply.json()["reason"]
    assert client.post("/api/v1/jobs", json={}).status_code == 401
