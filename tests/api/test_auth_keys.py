"""API keys (catalog + X-API-Key + the `riskstream apikey` CLI), WebSocket tokens, signing keys kept on disk, and
the development identity provider's refusal to run in production."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from riskstream.api import SCOPE_JOBS_WRITE
from riskstream.api._auth import AuthConfig, Authenticator
from riskstream.cli import app as cli
from riskstream.errors import AuthenticationError, ConfigurationError, InvalidFieldError, StoreError
from riskstream.store import Catalog

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new SQLite file, or a new schema (dropped afterwards) on the machine's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    schema = f"apikeys_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_api_key_life_cycle_in_the_catalog(catalog_url: str) -> None:
    with Catalog(catalog_url) as catalog:
        catalog.define_role("middle_office", row_filter=None)
        catalog.map_group("grp-middle_office", "middle_office")
        catalog.add_user("engine", ["grp-middle_office"])
        key = catalog.create_api_key("engine", "grid-01", [SCOPE_JOBS_WRITE])
        prefix, key_id, secret = key.split("_", 2)
        assert prefix == "rsk" and len(secret) >= 40  # token_urlsafe(32): 43 characters, 256 bits
        with catalog.engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT * FROM api_keys").mappings().one()
        assert secret not in json.dumps(dict(stored), default=str)  # only the hash is kept
        record = catalog.verify_api_key(key)
        assert record is not None and (record.key_id, record.user, record.scopes, record.active) == (
            key_id,
            "engine",
            (SCOPE_JOBS_WRITE,),
            True,
        )
        assert catalog.verify_api_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert catalog.verify_api_key(f"rsk_{key_id}") is None and catalog.verify_api_key("nonsense") is None
        assert [k.key_id for k in catalog.api_keys("engine")] == [key_id]
        revoked = catalog.revoke_api_key(key_id)
        assert not revoked.active and catalog.revoke_api_key(key_id).revoked_at == revoked.revoked_at
        assert catalog.api_keys(include_revoked=False) == []
        with pytest.raises(StoreError, match="nope"):
            catalog.revoke_api_key("nope")
        with pytest.raises(InvalidFieldError, match="ghost"):
            catalog.create_api_key("ghost", "x")


def test_api_keys_through_the_cli_and_the_service(client: TestClient, api_config: Any) -> None:
    runner = CliRunner()
    store = str(api_config.store)
    made = runner.invoke(
        cli, ["apikey", "create", "--store", store, "--user", "middle_office", "--name", "grid-7", "--json"]
    )
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    key, key_id = created["key"], created["key_id"]
    assert created["scopes"] == [SCOPE_JOBS_WRITE]  # the default scope of `apikey create`

    me = client.get("/auth/me", headers={"X-API-Key": key})
    assert me.status_code == 200, me.text
    assert {k: me.json()[k] for k in ("user", "method", "scopes", "roles")} == {
        "user": "middle_office",
        "method": "apikey",
        "scopes": [SCOPE_JOBS_WRITE],
        "roles": ["middle_office"],
    }
    wrong = client.get("/auth/me", headers={"X-API-Key": key[:-2] + "zz"})
    assert wrong.status_code == 401 and wrong.json()["reason"] == "not authenticated: unknown API key"

    listed = runner.invoke(cli, ["apikey", "list", "--store", store, "--user", "middle_office", "--json"])
    assert listed.exit_code == 0 and key_id in [k["key_id"] for k in json.loads(listed.stdout)]
    assert key not in listed.stdout
    table = runner.invoke(cli, ["apikey", "list", "--store", store])
    assert table.exit_code == 0 and key_id in table.stdout

    revoked = runner.invoke(cli, ["apikey", "revoke", "--store", store, key_id])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    after = client.get("/auth/me", headers={"X-API-Key": key})  # keys are checked on every request: no cache
    assert after.status_code == 401 and f"API key {key_id} was revoked" in after.json()["reason"]

    unknown = runner.invoke(cli, ["apikey", "create", "--store", store, "--user", "ghost", "--name", "x"])
    assert unknown.exit_code != 0


def test_api_keys_can_be_switched_off(app_with_auth: Any, api_config: Any) -> None:
    runner = CliRunner()
    made = runner.invoke(
        cli,
        [
            "apikey",
            "create",
            "--store",
            str(api_config.store),
            "--user",
            "head_trading",
            "--name",
            "n",
            "--json",
        ],
    )
    key = json.loads(made.stdout)["key"]
    with TestClient(app_with_auth(AuthConfig(api_keys=False))) as c:
        reply = c.get("/auth/me", headers={"X-API-Key": key})
    assert reply.status_code == 401 and "not accepted" in reply.json()["reason"]


def _whoami_app(app_with_auth: Any) -> FastAPI:
    app: FastAPI = app_with_auth(AuthConfig())

    async def whoami(websocket: WebSocket) -> None:
        try:
            who = websocket.app.state.ctx.auth.authenticate(websocket)
        except AuthenticationError as exc:
            await websocket.close(code=4401, reason=exc.reason)
            return
        await websocket.accept()
        await websocket.send_json({"user": who.user, "groups": list(who.groups), "method": who.method})
        await websocket.close()

    # first, ahead of the dashboard's static files mounted at /
    app.router.routes.insert(0, WebSocketRoute("/test/whoami", whoami))
    return app


def test_websocket_access_token(app_with_auth: Any) -> None:
    app = _whoami_app(app_with_auth)
    token = app.state.ctx.auth.dev_token("trader_fx")
    with TestClient(app) as c:
        with c.websocket_connect(f"/test/whoami?access_token={token}") as ws:
            assert ws.receive_json() == {"user": "trader_fx", "groups": ["grp-trader:FX"], "method": "oidc"}
        with c.websocket_connect("/test/whoami", headers={"Authorization": f"Bearer {token}"}) as ws:
            assert ws.receive_json()["user"] == "trader_fx"
        for url, reason in (
            ("/test/whoami", "no credentials"),
            ("/test/whoami?access_token=not-a-token", "malformed token"),
        ):
            with pytest.raises(WebSocketDisconnect) as closed, c.websocket_connect(url) as ws:
                ws.receive_json()
            assert closed.value.code == 4401 and reason in closed.value.reason
        # HTTP requests do not take tokens from the URL (they would end up in access logs)
        assert c.get(f"/auth/me?access_token={token}").status_code == 401


def test_signing_keys_kept_in_key_dir_survive_a_restart(tmp_path: Path, app: FastAPI) -> None:
    catalog = app.state.ctx.store.catalog
    first = Authenticator(AuthConfig(key_dir=tmp_path / "keys"), catalog)
    token = first.dev_token("trader_credit")
    second = Authenticator(AuthConfig(key_dir=tmp_path / "keys"), catalog)
    assert second.verify_token(token).user == "trader_credit"
    assert (tmp_path / "keys" / "dev_idp_key.pem").stat().st_mode & 0o777 == 0o600
    fresh = Authenticator(AuthConfig(), catalog)  # no key_dir: new keys, old tokens refused
    with pytest.raises(AuthenticationError, match="unknown signing key"):
        fresh.verify_token(token)


def test_dev_idp_refuses_production(monkeypatch: pytest.MonkeyPatch, app: FastAPI) -> None:
    catalog = app.state.ctx.store.catalog
    monkeypatch.setenv("RISKSTREAM_ENV", "production")
    with pytest.raises(ConfigurationError, match="RISKSTREAM_ENV=production"):
        Authenticator(AuthConfig(), catalog)
    external = Authenticator(AuthConfig(dev_idp=False, issuer="https://idp.example.test"), catalog)
    assert external.dev_idp is None
    with pytest.raises(ConfigurationError, match="dev_idp"):
        external.dev_token("trader_fx")


def test_auth_config_refuses_symmetric_or_no_algorithms() -> None:
    for algorithms in (("HS256",), ("none",), ()):
        with pytest.raises(ConfigurationError, match="algorithms"):
            AuthConfig(algorithms=algorithms)
