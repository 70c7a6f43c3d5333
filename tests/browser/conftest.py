"""Fixtures of the dashboard's browser tests: a real risk service with its live pipeline, and headless Chromium.

``dashboard_url``: a 2,000-position sample bank and a demo store built once per session through the CLI, served by
uvicorn (in a thread, on a free port) with the live pipeline running, ready when ``/readyz`` says so.
``browser``: Debian's Chromium driven by Playwright (no downloaded browser). ``page``: a fresh browser context per
test at 1,600 × 950; uncaught script errors on the page fail the test. ``sign_in(page, user)``: the login screen.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from riskstream.api import ApiConfig, create_app

POSITIONS = 2_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIEWPORT = {"width": 1600, "height": 950}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
            return bool(json.load(resp).get("ready"))
    except OSError:
        return False


@pytest.fixture(scope="session")
def bank(make_demo: Callable[[str, int], tuple[Path, Path]]) -> tuple[Path, Path]:
    return make_demo("dashboard-bank", POSITIONS)


@pytest.fixture(scope="module")
def dashboard_url(bank: tuple[Path, Path]) -> Iterator[str]:
    """Base URL of a real service (live pipeline on) serving the dashboard."""
    portfolio, store = bank
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(ApiConfig(portfolio=portfolio, store=store, live=True, public_url=url))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="dashboard-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 90
    while not _ready(url):
        if not thread.is_alive():
            pytest.fail("the risk service stopped while starting (see the captured log)")
        if time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail(f"the risk service at {url} was not ready within 90 s (GET /readyz)")
        time.sleep(0.25)
    yield url
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="session")
def browser(chromium_launch: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(**chromium_launch)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, dashboard_url: str) -> Iterator[Any]:
    """A fresh page on the dashboard; an uncaught script error on it fails the test."""
    context = browser.new_context(viewport=VIEWPORT, base_url=dashboard_url)
    context.set_default_timeout(20_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"uncaught script errors on the page: {errors}"


@pytest.fixture
def sign_in() -> Callable[..., None]:
    """``sign_in(page, user, password="demo")``: the login screen, as a user fills it in."""

    def fill(pg: Any, user: str, password: str = "demo") -> None:
        pg.goto("/")
        pg.wait_for_selector(f'[data-testid="login-user"] option[value="{user}"]', state="attached")
        pg.select_option('[data-testid="login-user"]', user)
        pg.fill('[data-testid="login-password"]', password)
        pg.click('[data-testid="login-button"]')

    return fill


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder of the screenshots (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
