"""Live risk endpoints: the hierarchy, each node's latest VaR/ES and limit use, intraday series, P&L distribution,
contributors, alerts — and ``/ws/live``, the push stream of snapshots and alerts.

Every answer holds only nodes the caller may see (`riskstream.api._entitle`); asking for a node one may not see
answers 404, the same as a node that does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..errors import AccessDeniedError, AuthenticationError, RiskstreamError
from ..store import Principal
from ._context import ApiContext, context
from ._deps import Ctx, Entitled
from ._entitle import NodeAccess
from ._errors import NotFoundError
from ._live import LiveService, iso_time

__all__ = ["router"]

router = APIRouter(tags=["live risk"])

NodeId = Annotated[str, Path(description="Node id: FIRM, FIRM/<desk>, FIRM/<desk>/<book>, …/<trader>.")]


class TreeNodeOut(BaseModel):
    id: str
    name: str
    level: str = Field(description="firm, desk, book or trader")
    parent: str | None
    positions: int


class HierarchyOut(BaseModel):
    levels: list[str]
    nodes: list[TreeNodeOut]


class NodeFigures(BaseModel):
    node: str
    var: float | None = Field(description="VaR, positive loss, 1 day, reporting currency")
    es: float | None = Field(description="Expected shortfall, positive loss")
    pv: float | None
    limit: float | None
    utilisation: float | None = Field(description="VaR ÷ limit")
    state: str | None = Field(description="ok, warning or breach (None: no limit on the node)")
    window: int
    as_of_us: int = Field(description="Event time of the newest tick reflected, µs since the epoch (UTC)")


class AlertOut(BaseModel):
    node: str
    measure: str
    state: str
    value: float | None
    limit: float | None
    utilisation: float | None
    as_of: str
    message: str


class LiveOut(BaseModel):
    as_of: str | None
    nodes: list[NodeFigures]
    alerts: list[AlertOut]


class SeriesOut(BaseModel):
    node: str
    t: list[str]
    var: list[float]
    es: list[float]


class DistributionOut(BaseModel):
    node: str
    edges: list[float]
    counts: list[int]
    var: float
    es: float
    confidence: float
    es_confidence: float
    scenarios: int
    mean: float


class ContributionOut(BaseModel):
    id: str
    var: float | None
    es: float | None
    share: float | None = Field(description="Component ES ÷ node ES")


class ContributorsOut(BaseModel):
    node: str
    var: float | None
    es: float | None
    positions: list[ContributionOut]
    factors: list[ContributionOut]
    unexplained: ContributionOut | None


def node_access(ctx: ApiContext) -> NodeAccess:
    """The hierarchy of the service's portfolio (the live service's, or built once for a store-only service)."""
    if ctx.live is not None:
        access: NodeAccess = ctx.live.access
        return access
    cached = ctx.extras.get("node_access")
    if cached is None:
        cached = ctx.extras["node_access"] = NodeAccess.of_positions(ctx.loaded.portfolio.positions)
    return cached


def _live(ctx: ApiContext) -> LiveService:
    if ctx.live is None:
        raise NotFoundError("live pipeline", "this service runs with live risk off")
    live: LiveService = ctx.live
    return live


@router.get("/api/v1/hierarchy", response_model=HierarchyOut, summary="The nodes the caller may see.")
def hierarchy(ctx: Ctx, principal: Entitled) -> dict[str, Any]:
    access = node_access(ctx)
    visible = access.visible(principal)
    return {
        "levels": ["desk", "book", "trader"],
        "nodes": [n.__dict__ for n in access.nodes if n.id in visible],
    }


@router.get("/api/v1/live", response_model=LiveOut, summary="Latest figures of every visible node, alerts.")
def live_all(
    ctx: Ctx, principal: Entitled, alerts: Annotated[int, Query(ge=0, le=1000)] = 50
) -> dict[str, Any]:
    live = _live(ctx)
    visible = live.access.visible(principal)
    nodes = live.nodes(visible)
    as_of = max((n["as_of_us"] for n in nodes), default=None)
    return {
        "as_of": None if as_of is None else iso_time(as_of),
        "nodes": sorted(nodes, key=lambda n: (n["node"].count("/"), n["node"])),
        "alerts": live.recent_alerts(visible, alerts),
    }


@router.get("/api/v1/live/alerts", response_model=list[AlertOut], summary="Recent alerts, newest first.")
def live_alerts(
    ctx: Ctx, principal: Entitled, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    live = _live(ctx)
    return live.recent_alerts(live.access.visible(principal), limit)


@router.get("/api/v1/live/nodes/{node:path}/series", response_model=SeriesOut, summary="Intraday VaR/ES.")
def live_series(
    ctx: Ctx, principal: Entitled, node: NodeId, points: Annotated[int, Query(ge=1, le=100_000)] = 1_000
) -> dict[str, Any]:
    live = _live(ctx)
    return live.node_series(node, live.access.visible(principal), points)


@router.get(
    "/api/v1/live/nodes/{node:path}/distribution",
    response_model=DistributionOut,
    summary="Histogram of the node's scenario P&L (positive = gain) with VaR and ES.",
)
def live_distribution(
    ctx: Ctx, principal: Entitled, node: NodeId, bins: Annotated[int, Query(ge=5, le=500)] = 50
) -> dict[str, Any]:
    live = _live(ctx)
    return live.distribution(node, live.access.visible(principal), bins)


@router.get(
    "/api/v1/live/nodes/{node:path}/contributors",
    response_model=ContributorsOut,
    summary="Top contributors by component ES: positions and risk factors.",
)
def live_contributors(
    ctx: Ctx, principal: Entitled, node: NodeId, top: Annotated[int, Query(ge=1, le=100)] = 10
) -> dict[str, Any]:
    live = _live(ctx)
    return live.contributors(node, live.access.visible(principal), top)


@router.get(
    "/api/v1/live/nodes/{node:path}", response_model=NodeFigures, summary="One node's latest figures."
)
def live_node(ctx: Ctx, principal: Entitled, node: NodeId) -> dict[str, Any]:
    live = _live(ctx)
    return live.node(node, live.access.visible(principal))


@router.websocket("/ws/live")
async def live_socket(ws: WebSocket) -> None:
    """Snapshots and alerts of the caller's visible nodes as JSON text messages.

    Authenticate with ``?access_token=<JWT>`` (browsers cannot set headers on a WebSocket) or an
    ``Authorization`` header. Messages: ``{"type": "hello", "user", "nodes": [ids]}`` and the current figures as
    a first ``snapshot``; then ``{"type": "snapshot", "as_of", "sent_us", "nodes": [...]}`` for every batch the
    pipeline publishes (only nodes that changed) and ``{"type": "alert", ...}``. Close codes: 4401 not
    authenticated, 4403 no entitlement, 4404 live risk off.
    """
    ctx = context(ws)
    await ws.accept()
    try:
        who = ctx.auth.authenticate(ws)
        principal: Principal = await run_in_threadpool(ctx.auth.principal, who)
    except AuthenticationError as exc:
        await ws.close(code=4401, reason=str(exc)[:120])
        return
    except AccessDeniedError as exc:
        await ws.close(code=4403, reason=str(exc)[:120])
        return
    if ctx.live is None:
        await ws.close(code=4404, reason="live risk is off in this service")
        return
    live: LiveService = ctx.live
    visible = live.access.visible(principal)
    client = live.hub.add(visible)
    ctx.metrics.ws_clients.inc()
    try:
        await ws.send_text(json.dumps({"type": "hello", "user": who.user, "nodes": sorted(visible)}))
        current = live.nodes(visible)
        if current:
            await ws.send_text(
                json.dumps(
                    {
                        "type": "snapshot",
                        "as_of": iso_time(max(n["as_of_us"] for n in current)),
                        "sent_us": 0,
                        "nodes": current,
                    },
                    separators=(",", ":"),
                )
            )

        async def pump() -> None:
            while True:
                text = await client.queue.get()
                await ws.send_text(text)
                ctx.metrics.ws_messages.labels("live").inc()

        async def drain() -> None:
            while True:
                await ws.receive_text()  # clients send nothing we need; this notices the close

        tasks = [asyncio.create_task(pump()), asyncio.create_task(drain())]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in done:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, RiskstreamError):
                t.result()
    except WebSocketDisconnect:
        pass
    finally:
        live.hub.remove(client)
        ctx.metrics.ws_clients.dec()
