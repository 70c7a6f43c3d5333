"""Reports and historical series over HTTP: every answer equals `run_report` called directly as the same user,
for every demo user and standard report, and no row or masked value reaches a user it is not for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient

from riskstream.api import ApiConfig, build_context, create_app
from riskstream.api._routes_store import ReportSpec, standard_reports, table_rows
from riskstream.errors import AccessDeniedError
from riskstream.query import AGGREGATIONS, load_report, run_report
from riskstream.risk import var_es_reference
from riskstream.store import DEMO_USERS

Login = Callable[[str], dict[str, str]]

#: desk each demo trader's role admits (store catalog demo roles: ``grp-trader:<DESK>``)
TRADER_DESK = {
    "trader_credit": "CREDIT",
    "trader_eq_cash": "EQ-CASH",
    "trader_eq_deriv": "EQ-DERIV",
    "trader_fx": "FX",
    "trader_prime": "PRIME",
    "trader_rates": "RATES",
    "pb_junior": "PRIME",
}
MASKED = ("counterparty", "sector", "region")  # pb_junior's masked columns (catalog demo role)


def _store(client: TestClient) -> Any:
    return client.app.state.ctx.store  # type: ignore[attr-defined]


def _canon(rows: list[list[Any]]) -> list[list[Any]]:
    """Rows sorted by their non-float cells (engines may group in any order)."""
    return sorted(rows, key=lambda r: tuple("" if isinstance(v, float) else str(v) for v in r))


def _same_rows(got: list[list[Any]], want: list[list[Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(_canon(got), _canon(want), strict=True):
        assert len(g) == len(w)
        for a, b in zip(g, w, strict=True):
            if isinstance(b, float):
                assert a == pytest.approx(b, rel=1e-9, abs=1e-6)
            else:
                assert a == b


def _direct(client: TestClient, dsl: dict[str, Any], user: str, as_of: Any = None) -> dict[str, Any]:
    result = run_report(_store(client), load_report(dsl), user, as_of=as_of)
    return {
        "columns": result.table.column_names,
        "rows": table_rows(result.table),
        "route": result.route,
        "version": result.version,
        "business_date": None if result.business_date is None else result.business_date.isoformat(),
    }


def _desks_of(body: dict[str, Any]) -> set[str]:
    if "desk" not in body["columns"]:
        return set()
    i = body["columns"].index("desk")
    return {r[i] for r in body["rows"] if r[i] is not None}


def test_standard_reports_are_listed_with_their_dsl(client: TestClient, login: Login) -> None:
    listing = client.get("/api/v1/reports", headers=login("trader_rates"))
    assert listing.status_code == 200
    names = [r["name"] for r in listing.json()]
    assert names == sorted(standard_reports())
    assert {"desk_book_risk", "trader_risk", "day_over_day", "drill_desks", "hierarchy_var"} <= set(names)
    kinds = {r["name"]: r["kind"] for r in listing.json()}
    assert kinds["day_over_day"] == "diff" and kinds["hierarchy_var"] == "hierarchy"
    assert kinds["drill_desks"] == "drill" and kinds["desk_book_risk"] == "pivot"
    for name in names:
        one = client.get(f"/api/v1/reports/{name}", headers=login("trader_rates")).json()
        assert one["title"] and one["description"]
        assert load_report(one["report"]).name == name  # the DSL given is the one that runs
    missing = client.get("/api/v1/reports/no_such_report", headers=login("trader_rates"))
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert client.get("/api/v1/reports/no_such_report/run", headers=login("trader_rates")).status_code == 404


def test_unauthenticated_is_401(client: TestClient) -> None:
    for r in (
        client.get("/api/v1/reports"),
        client.get("/api/v1/reports/desk_book_risk/run"),
        client.post("/api/v1/reports/run", json={"report": {"rows": ["desk"], "measures": ["pv"]}}),
        client.get("/api/v1/history/FIRM"),
    ):
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated"


@pytest.mark.parametrize("user", sorted(DEMO_USERS))
def test_every_standard_report_equals_run_report_for_every_user(
    client: TestClient, login: Login, user: str
) -> None:
    store = _store(client)
    all_desks = set(pc.unique(store.scan().to_table(columns=["desk"]).column("desk")).to_pylist())
    for name, entry in standard_reports().items():
        reply = client.get(f"/api/v1/reports/{name}/run", headers=login(user))
        try:
            want = _direct(client, entry["report"], user)
        except AccessDeniedError as exc:
            assert reply.status_code == 403, (name, user, reply.text)
            assert reply.json()["error"] == "forbidden" and str(exc) == reply.json()["reason"]
            continue
        assert reply.status_code == 200, (name, user, reply.text)
        body = reply.json()
        assert body["name"] == name and body["kind"] == entry["kind"]
        for key in ("columns", "route", "version", "business_date"):
            assert body[key] == want[key], (name, user, key)
        _same_rows(body["rows"], want["rows"])
        # zero leaks: a desk-filtered user sees their desk's rows only; the head of trading sees every desk
        desks = _desks_of(body)
        if user in TRADER_DESK:
            assert desks <= {TRADER_DESK[user]}, (name, user, desks)
        elif name in ("desk_book_risk", "trader_risk", "hierarchy_var"):
            assert desks == all_desks
        assert not set(body["columns"]) & set(MASKED) or user != "pb_junior"


def test_masked_columns_are_refused_for_pb_junior_and_served_to_the_head_of_trading(
    client: TestClient, login: Login
) -> None:
    """A masked column used as a dimension or filter is refused (403), never answered as a column of nulls that
    would look like data; users without the mask get it."""
    for column in MASKED:
        for dsl in (
            {"rows": ["desk", column], "measures": ["pv"]},
            {"rows": ["desk"], "columns": [column], "measures": ["pv"]},
            {"rows": ["desk"], "measures": ["pv"], "filters": {column: {"ne": "x"}}},
        ):
            refused = client.post("/api/v1/reports/run", json={"report": dsl}, headers=login("pb_junior"))
            assert refused.status_code == 403, refused.text
            assert column in refused.json()["reason"]
            with pytest.raises(AccessDeniedError):
                run_report(_store(client), load_report(dsl), "pb_junior")
            served = client.post("/api/v1/reports/run", json={"report": dsl}, headers=login("head_trading"))
            assert served.status_code == 200
    # pb_junior's answers never carry a masked value: its standard reports hold no masked column at all
    body = client.get("/api/v1/reports/trader_risk/run", headers=login("pb_junior")).json()
    assert body["rows"] and not set(body["columns"]) & set(MASKED)
    assert (
        client.get("/api/v1/reports/counterparty_exposure/run", headers=login("pb_junior")).status_code == 403
    )


def test_posted_report_and_as_of_equal_run_report(client: TestClient, login: Login) -> None:
    store = _store(client)
    dsl = {
        "name": "rates_books",
        "rows": ["book"],
        "columns": ["instrument_type"],
        "measures": ["pv", {"measure": "pv", "agg": "es", "confidence": 0.975}],
        "filters": {"desk": "RATES"},
    }
    latest = store.results_version()
    for user in ("trader_rates", "head_trading", "trader_fx"):
        for as_of in (None, latest - 1, str(latest)):
            payload: dict[str, Any] = {"report": dsl}
            if as_of is not None:
                payload["as_of"] = as_of
            reply = client.post("/api/v1/reports/run", json=payload, headers=login(user))
            assert reply.status_code == 200, reply.text
            want = _direct(client, dsl, user, None if as_of is None else int(as_of))
            assert reply.json()["version"] == want["version"]
            assert reply.json()["columns"] == want["columns"]
            _same_rows(reply.json()["rows"], want["rows"])
    # a trader of another desk gets no RATES row
    assert (
        client.post("/api/v1/reports/run", json={"report": dsl}, headers=login("trader_fx")).json()["rows"]
        == []
    )
    # an ISO timestamp (after the last commit: the latest table)
    stamped = client.post(
        "/api/v1/reports/run",
        json={"report": dsl, "as_of": "2999-01-01T00:00:00"},
        headers=login("trader_rates"),
    )
    assert stamped.status_code == 200 and stamped.json()["version"] == latest


def test_standard_report_on_another_business_date(client: TestClient, login: Login) -> None:
    dsl = dict(standard_reports()["desk_book_risk"]["report"])
    dates = sorted(set(_store(client).scan().to_table(columns=["business_date"]).column(0).to_pylist()))
    first = dates[0].isoformat()  # the demo store holds two EOD dates
    reply = client.get(
        f"/api/v1/reports/desk_book_risk/run?business_date={first}", headers=login("trader_eq_cash")
    )
    assert reply.status_code == 200 and reply.json()["business_date"] == first
    _same_rows(
        reply.json()["rows"], _direct(client, {**dsl, "business_date": first}, "trader_eq_cash")["rows"]
    )
    refused = client.get(
        "/api/v1/reports/day_over_day/run?business_date=latest", headers=login("head_trading")
    )
    assert refused.status_code == 422 and refused.json()["field"] == "business_date"


@pytest.mark.parametrize(
    ("payload", "field", "value"),
    [
        ({"report": {"rows": ["desk"], "measures": [{"measure": "pv", "agg": "median"}]}}, "agg", "median"),
        ({"report": {"rows": ["nonsense"], "measures": ["pv"]}}, "rows", "nonsense"),
        ({"report": {"rows": ["desk"], "measures": ["pv"], "kind": "cube"}}, "kind", "cube"),
        (
            {"report": {"rows": ["desk"], "measures": ["pv"], "business_date": "yesterday"}},
            "business_date",
            "yesterday",
        ),
        ({"report": {"rows": ["desk"], "measures": ["pv"]}, "as_of": 10**6}, "as_of", 10**6),
        ({"report": {"rows": ["desk"], "measures": ["pv"]}, "as_of": "not-a-time"}, "as_of", "not-a-time"),
        (
            {"report": {"rows": ["desk"], "measures": ["pv"], "filters": {"business_date": "abc"}}},
            "filters",
            None,
        ),
        (
            {"report": {"rows": ["desk"], "measures": ["pv"], "filters": {"desk": {"like": "R%"}}}},
            "like",
            None,
        ),
        ({"report": {"kind": "diff", "rows": ["desk"], "measures": ["pv"]}}, "left", None),
        ({"report": {"rows": ["desk"], "measures": []}}, "measures", None),
    ],
)
def test_bad_reports_are_422_naming_field_and_value(
    client: TestClient, login: Login, payload: dict[str, Any], field: str, value: Any
) -> None:
    reply = client.post("/api/v1/reports/run", json=payload, headers=login("trader_rates"))
    assert reply.status_code == 422, reply.text
    body = reply.json()
    assert body["error"] == "invalid" and field in body["field"]
    if value is not None:
        assert body["value"] == value


def test_report_spec_aggregations_match_the_dsl() -> None:
    spec = ReportSpec.model_json_schema()["$defs"]["MeasureModel"]["properties"]["agg"]
    assert tuple(spec["enum"]) == tuple(AGGREGATIONS)


def test_history_equals_reports_and_hand_summed_vectors(client: TestClient, login: Login) -> None:
    store = _store(client)
    reply = client.get("/api/v1/history/FIRM/RATES?measure=pv&days=5", headers=login("trader_rates"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    rows = store.scan().to_table(
        columns=["business_date", "desk", "measure", "value", "pnl_vector", "namespace"],
        filter=(pc.field("desk") == "RATES")
        & (pc.field("measure") == "pv")
        & (pc.field("namespace") == "EOD"),
    )
    dates = sorted({d.isoformat() for d in rows.column("business_date").to_pylist()})
    assert body["dates"] == dates[-5:]
    for i, day in enumerate(body["dates"]):
        mask = pc.equal(rows.column("business_date").cast("string"), day)
        part = rows.filter(mask)
        assert body["value"][i] == pytest.approx(sum(part.column("value").to_pylist()), rel=1e-9)
        # VaR/ES of the desk from the element-wise sum of its trades' vectors (riskstream.risk.var_es)
        # (the plain-Python reference `var_es_reference`: empirical quantile, Acerbi–Tasche ES)
        summed = np.sum(np.array(part.column("pnl_vector").to_pylist(), dtype=float), axis=0).tolist()
        var99, _ = var_es_reference(summed, 0.99)
        _, es975 = var_es_reference(summed, 0.975)
        assert body["var"][i] == pytest.approx(var99, rel=1e-9) and var99 > 0
        assert body["es"][i] == pytest.approx(es975, rel=1e-9) and es975 > 0
    # the same figures as the history's report for that date, run directly
    want = _direct(
        client,
        {
            "rows": ["namespace"],
            "measures": ["pv", {"measure": "pv", "agg": "var", "confidence": 0.99}],
            "filters": {"desk": "RATES"},
            "business_date": body["dates"][-1],
        },
        "trader_rates",
    )
    assert body["value"][-1] == pytest.approx(want["rows"][0][1]) and body["var"][-1] == pytest.approx(
        want["rows"][0][2]
    )


def test_history_only_for_visible_nodes(client: TestClient, login: Login) -> None:
    # the firm aggregates every desk: not visible to a desk trader nor to pb_junior; a node of another desk neither
    for user in ("trader_rates", "pb_junior"):
        assert client.get("/api/v1/history/FIRM", headers=login(user)).status_code == 404
    assert client.get("/api/v1/history/FIRM/FX", headers=login("trader_rates")).status_code == 404
    assert client.get("/api/v1/history/FIRM/NO-SUCH-DESK", headers=login("head_trading")).status_code == 404
    firm = client.get("/api/v1/history/FIRM?days=2", headers=login("head_trading"))
    assert firm.status_code == 200 and len(firm.json()["dates"]) == 2
    book = _store(client).catalog.books()
    prime_book = sorted(b for b, d in book.items() if d == "PRIME")[0]
    node = client.get(f"/api/v1/history/FIRM/PRIME/{prime_book}", headers=login("pb_junior"))
    assert node.status_code == 200 and node.json()["value"]
    bad = client.get("/api/v1/history/FIRM?days=0", headers=login("head_trading"))
    assert bad.status_code == 422 and "days" in bad.json()["field"] and bad.json()["value"] == "0"


def test_query_metrics_are_recorded(client: TestClient, login: Login) -> None:
    client.get("/api/v1/reports/drill_desks/run", headers=login("middle_office"))
    text = client.get("/metrics").text
    assert 'riskstream_query_seconds_count{kind="drill",route="/api/v1/reports/{name}/run"}' in text


def test_reports_are_rate_limited(api_config: ApiConfig, login: Login) -> None:
    ctx = build_context(replace(api_config, rate_limit_per_minute=2))
    app = create_app(ctx=ctx)
    headers = {"Authorization": f"Bearer {ctx.auth.dev_token('trader_rates')}"}
    with TestClient(app) as c:
        codes = [c.get("/api/v1/reports/drill_desks/run", headers=headers).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = c.get("/api/v1/reports/drill_desks/run", headers=headers)
        assert limited.json()["error"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
        # listing is cheap and not limited
        assert c.get("/api/v1/reports", headers=headers).status_code == 200
