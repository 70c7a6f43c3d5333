"""The dashboard in headless Chromium against the real service with its live pipeline (conftest.py).

What a user does, per role: the head of trading watches the firm's VaR move, drills to a book (charts and
contributors appear), opens the pivot grid and the day-over-day report; a desk's trader sees only that desk, in the
tree and in the stress table; the junior prime-brokerage user sees the masked columns blank in the pivot; a wrong
password and an expired session land on the login screen; an API error's reason shows in a toast. Screenshots go to
test-artifacts/ (gitignored).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from riskstream.refdata import BOOKS, DESKS

pytestmark = pytest.mark.integration

#: A money figure as the dashboard prints it: whole units with thousands separators.
MONEY = re.compile(r"^-?\d{1,3}(,\d{3})*$")
GRID_ROWS = "perspective-viewer regular-table tbody tr"


def _number(text: str) -> float:
    assert MONEY.match(text), f"not a formatted amount: {text!r}"
    return float(text.replace(",", ""))


def _flat_grid(page: Any, columns: list[str]) -> list[dict[str, str]]:
    """Show the pivot grid flat with ``columns`` (as a user would in the viewer's settings) and read its cells."""
    page.locator("perspective-viewer").first.evaluate(
        "(v, columns) => v.restore({group_by: [], split_by: [], columns, sort: [], filter: []})", columns
    )
    header = page.locator("perspective-viewer regular-table thead tr").last
    expect(header).to_contain_text(columns[-1])
    names = [t.strip() for t in header.locator("th, td").all_inner_texts()]
    rows = page.locator(GRID_ROWS)
    expect(rows.first).to_be_visible()
    out = []
    for i in range(min(rows.count(), 25)):
        cells = [t.strip() for t in rows.nth(i).locator("th, td").all_inner_texts()]
        out.append(dict(zip(names, cells, strict=False)))
    return out


def test_head_of_trading_watches_live_var_drills_and_pivots(
    page: Any, sign_in: Callable[..., None], artifacts: Path
) -> None:
    sign_in(page, "head_trading")
    expect(page.get_by_test_id("whoami")).to_have_text("logged in as head_trading (head_of_trading)")
    expect(page.get_by_test_id("dev-strip")).to_be_visible()

    # Live: the firm's VaR arrives over /ws/live and moves (the aggregator publishes every 500 ms).
    firm_var = page.locator('tr[data-node="FIRM"] [data-testid="var"]')
    expect(firm_var).to_have_text(MONEY)
    first = firm_var.inner_text()
    assert _number(first) > 0
    expect(firm_var).not_to_have_text(first, timeout=20_000)
    expect(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
    desks = page.locator('tr[data-level="desk"]')
    assert sorted(desks.evaluate_all("rows => rows.map(r => r.dataset.node)")) == [
        f"FIRM/{d}" for d in sorted(DESKS)
    ]

    # Drill: open RATES, select its first book; the detail's charts and contributors fill in.
    page.locator('tr[data-node="FIRM/RATES"] [data-testid="toggle"]').click()
    book = page.locator('tr[data-level="book"][data-node^="FIRM/RATES/"]').first
    book_id = book.get_attribute("data-node")
    assert book_id is not None and book_id.split("/")[-1] in BOOKS["RATES"]
    book.click()
    expect(page.get_by_test_id("detail-title")).to_have_text(book_id.split("/")[-1])
    expect(page.get_by_test_id("detail")).to_have_attribute("data-node", book_id)
    for table in ("contributors-positions", "contributors-factors"):
        expect(page.get_by_test_id(table).locator('[data-testid="contributor"]').first).to_be_visible()
        assert page.get_by_test_id(table).locator('[data-testid="contributor"]').count() > 1
    for chart in ("chart-series", "chart-distribution"):
        expect(page.get_by_test_id(chart)).to_have_attribute("data-ready", "1")
        assert int(page.get_by_test_id(chart).get_attribute("data-points") or 0) > 0
    # The distribution's VaR is the book's VaR (same aggregator, positive loss): within 10 % of the tree's
    # figure read a moment apart while the market moves.
    dist_var = float(page.get_by_test_id("chart-distribution").get_attribute("data-var") or "nan")
    tree_var = _number(page.locator(f'tr[data-node="{book_id}"] [data-testid="var"]').inner_text())
    assert dist_var == pytest.approx(tree_var, rel=0.10)
    page.screenshot(path=str(artifacts / "dashboard-head_trading.png"))

    # Pivot: the Perspective grid renders this user's rows; all columns are present for the head of trading.
    page.get_by_test_id("tab-pivot").click()
    expect(page.get_by_test_id("grid")).to_have_attribute("data-ready", "1")
    expect(page.locator(GRID_ROWS).first).to_be_visible()
    # rows desk → book, virtualised: the total and the first desk in view
    expect(page.locator("perspective-viewer regular-table tbody")).to_contain_text("TOTAL")
    expect(page.locator("perspective-viewer regular-table tbody")).to_contain_text(sorted(DESKS)[0])
    cells = _flat_grid(page, ["desk", "counterparty", "value"])
    assert any(row["counterparty"] for row in cells), cells[:3]

    # The standard day-over-day report: one row per desk.
    report = page.get_by_test_id("diff-table")
    expect(report).to_have_attribute("data-ready", "1")
    assert report.get_attribute("data-report") == "day_over_day"
    rows = report.locator('[data-testid="report-row"]')
    assert sorted(rows.locator("td:first-child").all_inner_texts()) == sorted(DESKS)
    changes = report.locator("td.num").all_inner_texts()
    assert any("," in c for c in changes), changes[:5]

    # The grid's day-over-day table.
    page.get_by_test_id("grid-table-diff").click()
    expect(page.locator('perspective-viewer[data-table="diff"]')).to_have_count(1)
    expect(page.locator(GRID_ROWS).first).to_be_visible()
    page.screenshot(path=str(artifacts / "dashboard-head_trading-pivot.png"))


def test_trader_sees_only_their_desk(page: Any, sign_in: Callable[..., None], artifacts: Path) -> None:
    sign_in(page, "trader_rates")
    expect(page.get_by_test_id("whoami")).to_have_text("logged in as trader_rates (trader:RATES)")
    expect(page.locator('tr[data-node="FIRM/RATES"] [data-testid="var"]')).to_have_text(MONEY)
    expect(page.locator('tr[data-node="FIRM"]')).to_have_count(0)
    page.get_by_test_id("expand-all").click()
    ids = page.locator("tr[data-node]").evaluate_all("rows => rows.map(r => r.dataset.node)")
    assert ids and all(i == "FIRM/RATES" or i.startswith("FIRM/RATES/") for i in ids), ids
    assert {i.split("/")[2] for i in ids if i.count("/") >= 2} == set(BOOKS["RATES"])

    # Stress: the heat-table holds the same nodes only.
    page.get_by_test_id("tab-stress").click()
    stress = page.get_by_test_id("stress-table")
    # every scenario revalues the whole book on a cold cache: seconds, more on a busy machine
    expect(stress).to_have_attribute("data-ready", "1", timeout=60_000)
    stress_ids = stress.locator('[data-testid="stress-row"]').evaluate_all(
        "rows => rows.map(r => r.dataset.node)"
    )
    assert stress_ids and set(stress_ids) <= set(ids), stress_ids
    assert (
        _number(stress.locator("tbody td.num").first.inner_text()) != 0
        or stress.locator("td.neg").count() > 0
    )
    page.screenshot(path=str(artifacts / "dashboard-trader_rates-stress.png"))

    # Nowhere in the page: another desk's node or book (a few more live snapshots first).
    page.get_by_test_id("tab-live").click()
    page.wait_for_timeout(1_500)
    html = page.content()
    for desk, books in BOOKS.items():
        if desk == "RATES":
            continue
        assert f"FIRM/{desk}" not in html
        for b in books:
            assert b not in html, b


def test_junior_prime_brokerage_sees_masked_columns_blank(page: Any, sign_in: Callable[..., None]) -> None:
    sign_in(page, "pb_junior")
    expect(page.get_by_test_id("whoami")).to_have_text("logged in as pb_junior (pb_junior_risk)")
    page.get_by_test_id("tab-pivot").click()
    expect(page.get_by_test_id("grid")).to_have_attribute("data-ready", "1")
    expect(page.locator(GRID_ROWS).first).to_be_visible()
    cells = _flat_grid(page, ["desk", "counterparty", "sector", "region", "value"])
    assert cells
    for row in cells:
        assert row["desk"] == "PRIME", row
        assert row["counterparty"] == row["sector"] == row["region"] == "", row
        assert MONEY.match(row["value"].split(".")[0]), row
    report = page.get_by_test_id("diff-table")
    expect(report).to_have_attribute("data-ready", "1")
    assert report.locator('[data-testid="report-row"] td:first-child').all_inner_texts() == ["PRIME"]


def test_backtest_view_and_api_errors_in_a_toast(
    page: Any, sign_in: Callable[..., None], artifacts: Path
) -> None:
    sign_in(page, "middle_office")
    page.get_by_test_id("tab-backtest").click()
    light = page.get_by_test_id("traffic-light")
    expect(light).to_have_attribute("data-zone", re.compile("^(green|yellow|red)$"))
    expect(page.get_by_test_id("kupiec")).to_contain_text("p-value")
    expect(page.get_by_test_id("christoffersen")).to_contain_text("p-value")
    chart = page.get_by_test_id("chart-backtest")
    expect(chart).to_have_attribute("data-ready", "1")
    # sp500 from 2000 with a 500-day window: thousands of daily forecasts (riskstream.risk back-test data).
    assert int(chart.get_attribute("data-points") or 0) > 1_000
    page.screenshot(path=str(artifacts / "dashboard-middle_office-backtest.png"))

    # The service refuses a 10-day window (ge=50): its reason shows in a toast, the page stays signed in.
    page.fill("#bt-window", "10")
    page.get_by_test_id("backtest-run").click()
    expect(page.get_by_test_id("toast").first).to_contain_text("window")
    expect(page.get_by_test_id("app")).to_be_visible()


def test_wrong_password_and_expired_session_land_on_login(page: Any, sign_in: Callable[..., None]) -> None:
    sign_in(page, "head_trading", password="not-the-password")
    error = page.get_by_test_id("login-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("invalid username or password")
    expect(page.get_by_test_id("app")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('riskstream.token')") is None
    expect(page.get_by_test_id("dev-banner")).to_contain_text("not for production")

    # A token the service does not accept (401) sends the user back to the login screen with the reason.
    page.evaluate("sessionStorage.setItem('riskstream.token', 'not-a-token')")
    page.reload()
    expect(page.get_by_test_id("login")).to_be_visible()
    expect(page.get_by_test_id("login-error")).to_contain_text("Session ended")
    expect(page.get_by_test_id("app")).to_be_hidden()
