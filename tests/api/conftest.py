"""Fixtures of the service tests: a demo bank and risk store built once per test process, the app over them.

``demo_dirs``: a 2,000-position sample bank and a demo store (demo users and roles, market history, EOD jobs
for the last two business days), built through the CLI as a user would. ``api_ctx``/``app``: the service over
them with the live pipeline off (``live_app`` runs it). ``login(user)``: headers with a development-IdP token.
Tests that write to the store use their own namespace or business date, so they never disturb the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from riskstream.api import ApiConfig, build_context, create_app

POSITIONS = 2_000


@pytest.fixture(scope="session")
def demo_dirs(make_demo: Callable[[str, int], tuple[Path, Path]]) -> tuple[Path, Path]:
    return make_demo("api-demo", POSITIONS)


@pytest.fixture(scope="session")
def api_config(demo_dirs: tuple[Path, Path]) -> ApiConfig:
    portfolio, store = demo_dirs
    return ApiConfig(portfolio=portfolio, store=store, live=False)


@pytest.fixture(scope="session")
def app(api_config: ApiConfig):  # type: ignore[no-untyped-def]
    return create_app(ctx=build_context(api_config))


@pytest.fixture(scope="session")
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def login(app) -> Callable[[str], dict[str, str]]:  # type: ignore[no-untyped-def]
    """``login(user)`` → Authorization headers with a token from the development identity provider."""
    cache: dict[str, dict[str, str]] = {}

    def headers(user: str) -> dict[str, str]:
        if user not in cache:
            cache[user] = {"Authorization": f"Bearer {app.state.ctx.auth.dev_token(user)}"}
        return cache[user]

    return headers


@pytest.fixture(scope="session")
def app_with_auth(app):  # type: ignore[no-untyped-def]
    """``app_with_auth(AuthConfig(...))`` → a new app over the same demo store with other authentication settings
    (its own Authenticator and keys; the live pipeline off)."""
    from riskstream.api import ApiContext
    from riskstream.api._auth import Authenticator
    from riskstream.api._metrics import ApiMetrics
    from riskstream.api._ratelimit import RateLimiter
    from riskstream.query._session import session

    base = app.state.ctx

    def build(auth_config):  # type: ignore[no-untyped-def]
        auth = Authenticator(auth_config, base.store.catalog, public_url=base.config.public_url)
        # a provisioning change reaches reports at once, not after the query layer's principal cache
        auth.on_provision.append(lambda user: session(base.store).forget_principals())
        ctx = ApiContext(
            config=base.config,
            store=base.store,
            loaded=base.loaded,
            live=None,
            auth=auth,
            metrics=ApiMetrics(),
            limiter=RateLimiter(base.config.rate_limit_per_minute),
        )
        return create_app(ctx=ctx)

    return build
