"""``riskstream serve``: the risk service (API, live pipeline, dashboard) on one port."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigurationError
from ._app import app
from ._common import err_console, out_console


class _JsonFormatter(logging.Formatter):
    """One JSON object per log record: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _json_logs(level: int = logging.INFO) -> None:
    """Structured logs: riskstream's and uvicorn's loggers write JSON lines to stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter())
    for name in ("riskstream", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level if name == "riskstream" else logging.WARNING)
        logger.propagate = False


def serve(
    *,
    portfolio: Path,
    store: Path,
    bus: str,
    host: str,
    port: int,
    live: bool,
    rate: float,
    workers: int,
    duration: float | None,
    banner: bool = True,
    rate_limit: int = 60,
    seconds_per_day: float = 86_400.0,
) -> None:
    """Run the service until Ctrl-C (or for ``duration`` seconds), printing its URL and the demo logins."""
    import socket

    import uvicorn

    from ..api import ApiConfig, create_app
    from ..store import DEMO_USERS

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigurationError(
                "port", port, f"cannot listen on {host}:{port}: {exc.strerror}"
            ) from None
    url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"
    config = ApiConfig(
        portfolio=portfolio,
        store=store,
        bus=bus,
        live=live,
        rate=rate,
        workers=workers,
        public_url=url,
        rate_limit_per_minute=rate_limit,
        seconds_per_day=seconds_per_day,
    )
    _json_logs()
    # the live pipeline's threads and the event loop share the GIL: hand it over every 0.5 ms, not 5 ms, so a
    # request or a socket write waits less behind a risk worker's Python work
    sys.setswitchinterval(0.0005)
    with err_console.status("starting the risk service…"):
        application = create_app(config)
    # no access log: WebSocket URLs carry ?access_token= (the service's own logs are JSON lines on stderr)
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            log_config=None,
            # per-message deflate would compress every snapshot once per socket: CPU the fan-out cannot spare
            ws_per_message_deflate=False,
        )
    )
    if banner:
        out_console.print(
            f"\n[bold]riskstream dashboard:[/] [link={url}]{url}[/link]   (API docs: {url}/docs)"
        )
        out_console.print(
            "[yellow]development identity provider — demo logins, not for production[/]; password: [bold]demo[/]"
        )
        for user, what in DEMO_USERS.items():
            out_console.print(f"  [bold]{user:<16}[/] {what}")
        out_console.print("Ctrl-C stops it.\n")
    if duration is not None:

        def stop_later() -> None:
            time.sleep(duration)
            server.should_exit = True

        threading.Thread(target=stop_later, daemon=True).start()
    server.run()


@app.command("serve")
def serve_command(
    portfolio: Annotated[
        Path, typer.Option("--portfolio", help="Portfolio folder (riskstream sample-portfolio).")
    ] = Path(".riskstream/sample"),
    store: Annotated[Path, typer.Option("--store", help="Risk store root (riskstream store demo).")] = Path(
        ".riskstream/store"
    ),
    bus: Annotated[str, typer.Option("--bus", help="memory | kafka://mock | kafka://HOST:PORT")] = "memory",
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    live: Annotated[bool, typer.Option("--live/--no-live", help="Run the live pipeline in-process.")] = True,
    rate: Annotated[float, typer.Option(help="Synthetic ticks per second.")] = 1_000.0,
    workers: Annotated[int, typer.Option(help="Risk worker threads.")] = 2,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    rate_limit: Annotated[
        int, typer.Option(help="Reports, stress runs and back-tests each user may start per minute.")
    ] = 60,
    seconds_per_day: Annotated[
        float,
        typer.Option(
            help="Synthetic feed: one day's market variance every this many seconds (86400: real time)."
        ),
    ] = 86_400.0,
) -> None:
    """Serve the API and the dashboard: live risk, reports, risk jobs, stress tests and back-tests."""
    serve(
        portfolio=portfolio,
        store=store,
        bus=bus,
        host=host,
        port=port,
        live=live,
        rate=rate,
        workers=workers,
        duration=duration,
        rate_limit=rate_limit,
        seconds_per_day=seconds_per_day,
    )
