"""``riskstream job``: open, put, commit, abort and inspect batch risk jobs on a store; ``job sample`` fills one."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigurationError
from ._app import app
from ._common import err_console, print_json, stage_progress

job_app = typer.Typer(
    help="Batch risk jobs: chunks staged durably, committed atomically.", no_args_is_help=True
)
app.add_typer(job_app, name="job")

StoreOpt = Annotated[Path, typer.Option("--store", help="Store root directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store(root: Path) -> Any:
    from ..store import RiskStore

    return RiskStore.open(root)


def _scope(items: list[str]) -> dict[str, list[str]] | None:
    scope: dict[str, list[str]] = {}
    for item in items:
        column, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigurationError("scope", item, "write COLUMN=VALUE[,VALUE...], e.g. desk=RATES")
        scope.setdefault(column.strip(), []).extend(v.strip() for v in values.split(",") if v.strip())
    return scope or None


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigurationError("date", text, "use YYYY-MM-DD") from None


@job_app.command("open")
def open_command(
    store: StoreOpt,
    namespace: Annotated[str, typer.Option(help="EOD, intraday, or another word.")],
    business_date: Annotated[str, typer.Option("--date", help="Business date YYYY-MM-DD.")],
    scope: Annotated[
        list[str] | None, typer.Option(help="COLUMN=VALUE[,VALUE] (desk, book, trader); repeatable.")
    ] = None,
    chunks: Annotated[int | None, typer.Option(help="Expected number of chunks.")] = None,
    job_id: Annotated[str | None, typer.Option("--job-id", help="Job id (default: generated).")] = None,
) -> None:
    """Open a job and print its id."""
    job = _store(store).open_job(namespace, _date(business_date), _scope(scope or []), chunks, job_id)
    typer.echo(job)


@job_app.command("put")
def put_command(
    store: StoreOpt,
    job: Annotated[str, typer.Argument(help="Job id.")],
    files: Annotated[list[Path], typer.Argument(help="Parquet or CSV files, one chunk each.")],
    as_json: JsonOpt = False,
) -> None:
    """Validate and stage chunk files (the chunk id is the file's name without suffix)."""
    s = _store(store)
    receipts = []
    with stage_progress(not as_json, "put") as progress:
        for i, f in enumerate(files):
            progress(f.name, i / len(files))
            receipts.append(s.put_chunk(job, f, chunk_id=f.stem))
    if as_json:
        print_json([{"chunk_id": r.chunk_id, "rows": r.rows} for r in receipts])
    else:
        err_console.print(
            f"{len(receipts)} chunk(s), {sum(r.rows for r in receipts):,} rows staged for {job}"
        )


@job_app.command("commit")
def commit_command(store: StoreOpt, job: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Commit the job atomically (idempotent: a retry returns the same version)."""
    r = _store(store).commit(job)
    doc = {
        "job_id": r.job_id,
        "version": r.version,
        "rows": r.rows,
        "replaced": r.replaced,
        "duration_s": round(r.duration_s, 3),
        "already_committed": r.already_committed,
        "notifications": [{"target": d.target, "ok": d.ok, "error": d.error} for d in r.deliveries],
    }
    if as_json:
        print_json(doc)
    else:
        typer.echo(f"{job} committed: version {r.version}, {r.rows:,} rows ({r.replaced:,} replaced)")


@job_app.command("abort")
def abort_command(store: StoreOpt, job: Annotated[str, typer.Argument()]) -> None:
    """Drop the job's staged chunks."""
    _store(store).abort(job)
    typer.echo(f"{job} aborted")


@job_app.command("status")
def status_command(store: StoreOpt, job: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """State, chunks received/expected, rows and committed version."""
    st = _store(store).status(job)
    if as_json:
        print_json(st.to_dict())
        return
    expected = st.chunks_expected if st.chunks_expected is not None else "?"
    version = "" if st.version is None else f", version {st.version}"
    typer.echo(f"{job}: {st.state}, {st.chunks_received}/{expected} chunks, {st.rows:,} rows{version}")


@job_app.command("sample")
def sample_command(
    store: StoreOpt,
    portfolio: Annotated[Path, typer.Option("--portfolio", help="Portfolio directory (sample-portfolio).")],
    business_date: Annotated[str, typer.Option("--date", help="Business date YYYY-MM-DD.")],
    namespace: Annotated[str, typer.Option()] = "EOD",
    chunks: Annotated[int, typer.Option(help="Number of chunks to send.")] = 10,
    window: Annotated[int, typer.Option(help="Historical scenarios (P&L vector length).")] = 250,
    commit: Annotated[bool, typer.Option("--commit/--no-commit", help="Commit after the last chunk.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Price a portfolio under historical scenarios and send per-trade results as a job's chunks."""
    from ..store import sample_results

    if chunks < 1:
        raise ConfigurationError("chunks", chunks, "must be >= 1")
    s = _store(store)
    with stage_progress(not as_json, "sample job") as progress:
        progress("pricing", 0.0)
        table = sample_results(portfolio, _date(business_date), namespace=namespace, window=window)
        job = s.open_job(namespace, _date(business_date), expected_chunks=chunks)
        size = -(-table.num_rows // chunks)
        for i in range(chunks):
            progress(f"chunk {i + 1}/{chunks}", 0.1 + 0.8 * i / chunks)
            s.put_chunk(job, table.slice(i * size, size), chunk_id=f"{i:05d}")
        result = s.commit(job) if commit else None
    doc = {
        "job_id": job,
        "rows": table.num_rows,
        "chunks": chunks,
        "version": result.version if result else None,
    }
    if as_json:
        print_json(doc)
    else:
        typer.echo(job)
        err_console.print(
            f"{table.num_rows:,} rows in {chunks} chunk(s)"
            + (f", version {doc['version']}" if result else "")
        )
