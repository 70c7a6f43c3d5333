"""``riskstream apikey``: API keys of catalog users (grid engines writing risk jobs send them as ``X-API-Key``).

A key is printed once, when it is created; the catalog keeps only its SHA-256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ._app import app
from ._common import out_console, print_json

apikey_app = typer.Typer(help="API keys for grid engines and other services.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")

StoreOpt = Annotated[Path, typer.Option("--store", help="Store root directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _catalog(root: Path) -> Any:
    from ..store import RiskStore

    return RiskStore.open(root).catalog


def _record(key: Any) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "user": key.user,
        "name": key.name,
        "scopes": list(key.scopes),
        "created_at": key.created_at.isoformat(timespec="seconds"),
        "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat(timespec="seconds"),
    }


@apikey_app.command("create")
def create_command(
    store: StoreOpt,
    user: Annotated[str, typer.Option("--user", help="The catalog user the key acts as.")],
    name: Annotated[str, typer.Option("--name", help="What the key is for (e.g. the engine's host).")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="A scope the key carries (repeat); jobs:write by default."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key for USER and print it — the only time it is shown."""
    from ..api._identity import SCOPE_JOBS_WRITE

    catalog = _catalog(store)
    try:
        key = catalog.create_api_key(user, name, scope if scope else [SCOPE_JOBS_WRITE])
        record = catalog.verify_api_key(key)
    finally:
        catalog.close()
    if as_json:
        print_json({"key": key, **_record(record)})
        return
    typer.echo(key)
    typer.echo(
        f"API key {record.key_id} of {record.user} ({', '.join(record.scopes) or 'no scope'}): send it as the "
        "X-API-Key header; it is not shown again.",
        err=True,
    )


@apikey_app.command("list")
def list_command(
    store: StoreOpt,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's keys.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Hide revoked keys.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List keys (never the keys themselves: id, user, name, scopes, created, revoked)."""
    catalog = _catalog(store)
    try:
        keys = [_record(k) for k in catalog.api_keys(user, include_revoked=not active)]
    finally:
        catalog.close()
    if as_json:
        print_json(keys)
        return
    table = Table(title="API keys", title_justify="left")
    for column in ("key id", "user", "name", "scopes", "created", "revoked"):
        table.add_column(column)
    for k in keys:
        table.add_row(
            k["key_id"], k["user"], k["name"], " ".join(k["scopes"]), k["created_at"], k["revoked_at"] or ""
        )
    out_console.print(table)


@apikey_app.command("revoke")
def revoke_command(
    store: StoreOpt,
    key_id: Annotated[str, typer.Argument(help="The key's id (second part of rsk_<id>_..., or from list).")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key: requests carrying it are refused from now on."""
    catalog = _catalog(store)
    try:
        record = _record(catalog.revoke_api_key(key_id))
    finally:
        catalog.close()
    if as_json:
        print_json(record)
    else:
        typer.echo(f"API key {record['key_id']} of {record['user']} revoked at {record['revoked_at']}")
