"""The pivot grid: a real Perspective client (perspective-python's AsyncClient) over a real WebSocket to the
service under uvicorn sees, for every demo user, exactly the rows `run_report` gives that user — checked against
the reports and, independently, against the store's Delta table — and nothing without a valid token.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import perspective
import pyarrow.compute as pc
import pytest
import uvicorn
from deltalake import DeltaTable
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from riskstream.api import STATIC_DIR
from riskstream.api._grid import DIFF_DIMENSIONS, RISK_DIMENSIONS, registry
from riskstream.query import load_report, run_report
from riskstream.store import DEMO_USERS, SAMPLE_MEASURES

ROOT = Path(__file__).resolve().parents[2]
VENDOR = STATIC_DIR / "vendor"
# what the demo catalog masks for the junior prime-brokerage role (store/_catalog.py `_PB_MASKED`)
PB_MASKED = {"counterparty", "sector", "region"}


# -- a real server -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_url(app: Any) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread (no lifespan: the app is the session's)."""
    extra = app.state.ctx.config.extra
    extra["grid_refresh_s"] = 0.5
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn stopped"
        time.sleep(0.02)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()
    extra.pop("grid_refresh_s", None)


@pytest.fixture(scope="module")
def token(app: Any) -> Callable[[str], str]:
    return lambda user: str(app.state.ctx.auth.dev_token(user))


class GridSession:
    """A perspective-python AsyncClient speaking to /grid/ws over a `websockets` connection."""

    def __init__(self, ws: Any):
        self.ws = ws

        async def send(message: bytes) -> None:
            await ws.send(message)

        self.client = perspective.AsyncClient(send)
        self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            await self.client.handle_response(message)

    async def columns(self, name: str) -> dict[str, list[Any]]:
        table = await self.client.open_table(name)
        view = await table.view()
        try:
            data: dict[str, list[Any]] = await view.to_columns()
            return data
        finally:
            await view.delete()

    async def close(self) -> None:
        self._pump.cancel()
        await self.ws.close()


async def open_grid(base_url: str, token: str) -> GridSession:
    ws = await connect(f"ws://{base_url}/grid/ws?access_token={token}", max_size=None)
    return GridSession(ws)


async def read_tables(base_url: str, token: str) -> dict[str, dict[str, list[Any]]]:
    grid = await open_grid(base_url, token)
    try:
        assert sorted(await grid.client.get_hosted_table_names()) == ["diff", "risk"]
        return {name: await grid.columns(name) for name in ("risk", "diff")}
    finally:
        await grid.close()


# -- what the user should see --------------------------------------------------------------------------------


def _rows(columns: dict[str, list[Any]], names: list[str]) -> Counter[tuple[Any, ...]]:
    def plain(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and v != v) else v

    return Counter(zip(*(map(plain, columns[n]) for n in names), strict=True))


def expected_risk(store: Any, user: str, masked: set[str]) -> Counter[tuple[Any, ...]]:
    """The latest date's pivot for ``user`` (masked dimensions not asked: the DSL refuses them), melted to one row
    per cell and measure with masked columns null, as the grid's ``risk`` table documents."""
    dims = [d for d in RISK_DIMENSIONS if d not in masked]
    report = load_report(
        {"kind": "pivot", "rows": dims, "measures": list(SAMPLE_MEASURES), "business_date": "latest"}
    )
    wide = run_report(store, report, user).to_pandas()
    long = wide.melt(id_vars=dims, value_vars=[f"{m}_sum" for m in SAMPLE_MEASURES], var_name="measure")
    long = long.dropna(subset=["value"])
    long["measure"] = long["measure"].str.removesuffix("_sum")
    for d in masked:
        long[d] = None
    long = long.astype(object).where(long.notna(), None)
    return _rows(long.to_dict("list"), [*RISK_DIMENSIONS, "measure", "value"])


def expected_diff(store: Any, user: str) -> tuple[list[str], Counter[tuple[Any, ...]]]:
    report = load_report(
        {
            "kind": "diff",
            "rows": list(DIFF_DIMENSIONS),
            "measures": list(SAMPLE_MEASURES),
            "left": {"business_date": "previous"},
            "right": {"business_date": "latest"},
        }
    )
    table = run_report(store, report, user).table
    return table.column_names, _rows(table.to_pydict(), table.column_names)


@pytest.fixture(scope="module")
def raw_latest(demo_dirs: tuple[Path, Path]) -> pd.DataFrame:
    """The store's EOD rows of its two business dates, read straight from the Delta table (no entitlements)."""
    table = DeltaTable(str(demo_dirs[1] / "tables" / "risk_results")).to_pyarrow_table(
        columns=["business_date", "namespace", "desk", "measure", "value"]
    )
    table = table.filter(pc.equal(table["namespace"], "EOD"))
    return table.to_pandas()


def visible_desks(user: str, all_desks: set[str]) -> set[str]:
    # the demo catalog's roles (store/_catalog.py seed_demo): a trader sees their desk, pb_junior PRIME
    if user in ("head_trading", "middle_office"):
        return all_desks
    if user == "pb_junior":
        return {"PRIME"}
    return {d for d in all_desks if "trader_" + d.lower().replace("-", "_") == user}


# -- tests ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", sorted(DEMO_USERS))
def test_each_user_sees_exactly_their_report_rows(
    user: str, app: Any, base_url: str, token: Callable[[str], str], raw_latest: pd.DataFrame
) -> None:
    store = app.state.ctx.store
    masked = set(store.catalog.principal(user).masked_columns)
    if user == "pb_junior":
        assert masked == PB_MASKED
    tables = asyncio.run(read_tables(base_url, token(user)))
    risk, diff = tables["risk"], tables["diff"]

    # the risk table is the user's pivot, row for row (as a multiset), masked columns null
    assert list(risk) == [*RISK_DIMENSIONS, "measure", "value"]
    got = _rows(risk, [*RISK_DIMENSIONS, "measure", "value"])
    assert got == expected_risk(store, user, masked)
    for column in masked:
        assert set(risk[column]) == {None}, f"{column} must be null for {user}"
    for column in set(RISK_DIMENSIONS) - masked:
        assert None not in set(risk[column]), f"{column} of {user} holds nulls"

    # zero leaks, checked against the Delta table itself: the desks are the user's, and each (desk, measure)
    # total equals the raw rows' sum on the latest date
    all_desks = set(raw_latest["desk"])
    desks = visible_desks(user, all_desks)
    assert desks, user
    assert set(risk["desk"]) == desks
    latest = raw_latest["business_date"].max()
    raw = raw_latest[(raw_latest["business_date"] == latest) & raw_latest["desk"].isin(desks)]
    raw_sums = raw.groupby(["desk", "measure"])["value"].sum()
    grid_sums = pd.DataFrame(risk).groupby(["desk", "measure"])["value"].sum()
    pd.testing.assert_series_equal(
        grid_sums.sort_index(), raw_sums.sort_index(), check_names=False, rtol=1e-9
    )

    # the diff table is the user's day-over-day diff report, row for row
    names, expected = expected_diff(store, user)
    assert list(diff) == names
    assert _rows(diff, names) == expected
    assert set(diff["desk"]) == desks
    previous = raw_latest[(raw_latest["business_date"] < latest) & raw_latest["desk"].isin(desks)]
    pv_change = (
        raw[raw["measure"] == "pv"]["value"].sum() - previous[previous["measure"] == "pv"]["value"].sum()
    )
    assert sum(v for v in diff["pv_sum_change"] if v is not None) == pytest.approx(pv_change, rel=1e-9)


async def _close_code(url: str) -> tuple[int | None, str | None]:
    async with connect(url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    rcvd = closed.value.rcvd
    return (rcvd.code, rcvd.reason) if rcvd else (None, None)


def test_unauthenticated_socket_is_closed_with_4401(base_url: str) -> None:
    for url in (f"ws://{base_url}/grid/ws", f"ws://{base_url}/grid/ws?access_token=not.a.jwt"):
        code, reason = asyncio.run(_close_code(url))
        assert code == 4401, (url, code, reason)
        assert reason


def test_user_without_role_is_refused(
    app: Any, base_url: str, token: Callable[[str], str], client: Any
) -> None:
    """A catalog user whose groups grant no role: 4403 on the socket, 403 on /grid/tables, no server made."""
    user = "grid_no_role"
    app.state.ctx.store.catalog.add_user(user, ["grp-grid-no-role"])
    code, reason = asyncio.run(_close_code(f"ws://{base_url}/grid/ws?access_token={token(user)}"))
    assert code == 4403, (code, reason)
    response = client.get("/grid/tables", headers={"Authorization": f"Bearer {token(user)}"})
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert user not in registry(app.state.ctx).users()


def test_tables_endpoint_lists_the_callers_tables(
    client: Any, login: Callable[[str], dict[str, str]]
) -> None:
    response = client.get("/grid/tables")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"

    store = client.app.state.ctx.store
    body = client.get("/grid/tables", headers=login("pb_junior")).json()
    assert [t["name"] for t in body] == ["risk", "diff"]
    risk, diff = body
    assert risk["rows"] == sum(expected_risk(store, "pb_junior", PB_MASKED).values())
    assert diff["rows"] == sum(expected_diff(store, "pb_junior")[1].values())
    assert risk["version"] == store.results_version()
    assert date.fromisoformat(risk["business_date"]) == max(
        store.scan().to_table(columns=["business_date"])[0].to_pylist()
    )


def test_grid_follows_the_store_version_and_idle_servers_expire(
    app: Any, base_url: str, token: Callable[[str], str], demo_dirs: tuple[Path, Path]
) -> None:
    """A commit (here to a namespace of its own, so the EOD figures stay as they are) reloads the tables of an
    open socket within the refresh period; a user's server is dropped once idle, and rebuilt on the next socket."""
    store = app.state.ctx.store
    reg = registry(app.state.ctx)
    user = "trader_fx"

    async def scenario() -> None:
        grid = await open_grid(base_url, token(user))
        try:
            table = await grid.client.open_table("risk")
            view = await table.view()
            updates: list[int] = []
            await view.on_update(lambda *_: updates.append(1))
            before = reg.grid(user).version
            assert before == store.results_version()

            rows = DeltaTable(str(demo_dirs[1] / "tables" / "risk_results")).to_pyarrow_table()
            rows = (
                rows.filter(pc.equal(rows["desk"], "FX")).slice(0, 8).drop_columns(["job_id", "committed_at"])
            )
            rows = rows.set_column(
                rows.schema.get_field_index("namespace"),
                "namespace",
                pc.cast(
                    pc.replace_substring(rows["namespace"], "EOD", "GRIDTEST"),
                    rows.schema.field("namespace").type,
                ),
            )
            job = store.open_job("GRIDTEST", rows["business_date"][0].as_py())
            store.put_chunk(job, rows, "c0")
            committed = await asyncio.to_thread(store.commit, job)

            deadline = time.monotonic() + 15
            while reg.grid(user).version != committed.version or not updates:
                assert time.monotonic() < deadline, "the grid did not reload after the commit"
                await asyncio.sleep(0.1)
            assert _rows(await view.to_columns(), [*RISK_DIMENSIONS, "measure", "value"]) == expected_risk(
                store, user, set()
            )
            await view.delete()
        finally:
            await grid.close()

    asyncio.run(scenario())
    deadline = time.monotonic() + 10
    while reg.grid(user).sockets:  # the server side of the socket ends shortly after the client's close
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert user in reg.users()
    assert user in reg.sweep(now=time.monotonic() + reg.idle_s + 1)
    assert user not in reg.users()
    tables = asyncio.run(read_tables(base_url, token(user)))
    assert len(tables["risk"]["value"]) == sum(expected_risk(store, user, set()).values())


def test_vendor_step_produced_what_the_pages_import() -> None:
    """`make web` (a prerequisite of `make test`) copies the npm builds; the browser packages' version is the
    Python server's."""
    manifest_path = VENDOR / "manifest.json"
    assert manifest_path.is_file(), f"{manifest_path} is missing: run `make web`"
    manifest = json.loads(manifest_path.read_text())
    for name, file in manifest["entries"].items():
        assert (VENDOR / file).is_file(), f"vendor entry {name}: {file} is missing: run `make web`"
    for package in ("client", "server", "viewer", "viewer-datagrid"):
        assert manifest["versions"][f"@perspective-dev/{package}"] == perspective.__version__
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())
    for package in ("client", "viewer", "viewer-datagrid"):
        assert (
            lock["packages"][f"node_modules/@perspective-dev/{package}"]["version"] == perspective.__version__
        )
    assert manifest["versions"]["chart.js"].startswith("4.")

    # every /vendor URL of grid.js and of the dashboard page exists
    grid_js = (STATIC_DIR / "grid.js").read_text()
    urls = {
        "/vendor/@perspective-dev" + tail for tail in re.findall(r"\$\{VENDOR\}(/[^`]+)`", grid_js)
    } | set(re.findall(r'"(/vendor/[^"]+)"', (STATIC_DIR / "index.html").read_text()))
    assert len(urls) >= 4, urls
    for url in urls:
        assert (STATIC_DIR / url.lstrip("/")).is_file(), f"{url} is missing: run `make web`"
    # the viewer fetches its WebAssembly next to its module
    assert (VENDOR / "@perspective-dev/viewer/dist/wasm/perspective-viewer.wasm").is_file()


def test_vendor_files_are_served_with_browser_types(client: Any) -> None:
    for url, kind in (
        ("/grid.js", "javascript"),
        ("/vendor/@perspective-dev/viewer/dist/cdn/perspective-viewer.js", "javascript"),
        ("/vendor/@perspective-dev/viewer/dist/wasm/perspective-viewer.wasm", "application/wasm"),
        ("/vendor/@perspective-dev/viewer/dist/css/themes.css", "text/css"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert kind in response.headers["content-type"], (url, response.headers["content-type"])


@pytest.mark.integration
def test_grid_js_mounts_the_users_tables_in_chromium(
    base_url: str, app: Any, chromium_launch: dict[str, Any]
) -> None:
    """grid.js in a real browser: the viewer and datagrid load from /vendor, connect to /grid/ws as pb_junior
    (the page logs in on the development IdP) and hold the user's rows only, counterparty null."""
    from playwright.sync_api import sync_playwright

    store = app.state.ctx.store
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            for table in ("risk", "diff"):
                page.goto(f"http://{base_url}/grid-test.html?user=pb_junior&table={table}")
                page.wait_for_selector("[data-testid=grid-status][data-state]", timeout=60_000)
                assert page.inner_text("#status") == "ready", (page.inner_text("#status"), errors)
                seen = page.evaluate(
                    """async () => {
                        const viewer = document.querySelector("perspective-viewer");
                        await viewer.flush();
                        const config = await viewer.save();
                        const table = await viewer.getTable();
                        const view = await table.view();
                        const columns = await view.to_columns();
                        await view.delete();
                        return {config, columns};
                    }"""
                )
                columns = seen["columns"]
                assert set(columns["desk"]) == {"PRIME"}
                assert seen["config"]["group_by"] == ["desk", "book"]
                if table == "risk":
                    assert seen["config"]["split_by"] == ["measure"]
                    assert set(columns["counterparty"]) == {None}
                    assert _rows(columns, [*RISK_DIMENSIONS, "measure", "value"]) == expected_risk(
                        store, "pb_junior", PB_MASKED
                    )
                else:
                    assert "pv_sum_change" in seen["config"]["columns"]
                    assert len(columns["desk"]) == sum(expected_diff(store, "pb_junior")[1].values())
                rendered = page.locator("perspective-viewer-datagrid regular-table")
                assert rendered.count() == 1
                assert "PRIME" in rendered.inner_text()
            assert not errors, errors
        finally:
            browser.close()
