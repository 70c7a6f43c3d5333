"""``riskstream stream``: the real-time pipeline on a bus; ``riskstream demo``: the same on embedded defaults.

Both start the feed(s) producing to ``marketdata.ticks``, N risk workers (threads) and the aggregator, and print
the firm and desk VaR/ES once a second (a rich table, or JSON lines with ``as_of``, ``node``, ``var``, ``es``).
A worker process on its own: ``riskstream worker --bus kafka://HOST:PORT ...`` (the same as ``python -m
riskstream.engine._worker``).
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..bus import open_bus
from ..domain import RiskSnapshot
from ..engine._stream_config import StreamConfig
from ..engine._worker import WorkerConfig
from ..errors import ConfigurationError
from ._app import app
from ._common import err_console, load, money, out_console

SOURCES = ("replay", "synthetic", "kafka")


def run_pipeline(
    *,
    bus_url: str,
    portfolio: Path,
    source: str,
    workers: int,
    duration: float,
    checkpoint_dir: Path | None,
    as_json: bool,
    window: int,
    rate: float,
    replay_store: Path | None = None,
    replay_days: int = 0,
    speed: float | None = None,
) -> None:
    """Feeds → workers → aggregator on ``bus_url`` for ``duration`` seconds, printing firm and desk VaR/ES."""
    from ..engine._live import LivePipeline, live_feeds

    if source not in (*SOURCES, "both"):
        raise ConfigurationError("source", source, f"one of {', '.join(SOURCES)}")
    if workers < 1:
        raise ConfigurationError("workers", workers, "must be ≥ 1")
    loaded = load(portfolio)
    replay = None
    if replay_store is not None:
        from ..store import RiskStore

        replay = RiskStore.open(replay_store).read_market_history()
    feeds = [] if source == "kafka" else live_feeds(source, loaded.history, rate, replay, replay_days, speed)
    latest: dict[str, RiskSnapshot] = {}
    lock = threading.Lock()

    def keep(snaps: list[RiskSnapshot]) -> None:
        with lock:
            for s in snaps:
                latest[s.node] = s

    bus = open_bus(bus_url, partitions=4)
    pipeline = LivePipeline(
        bus,
        loaded.portfolio,
        loaded.snapshot,
        loaded.history,
        feeds=feeds,
        workers=workers,
        window=window,
        trigger_ms=250.0,
        publish_ms=500.0,
        checkpoint_dir=checkpoint_dir or Path(tempfile.mkdtemp(prefix="riskstream-ckpt-")),
        on_snapshots=keep,
    )
    pipeline.start()
    started = time.monotonic()
    try:
        while time.monotonic() - started < duration and pipeline.running:
            time.sleep(min(1.0, max(0.0, duration - (time.monotonic() - started))))
            with lock:
                rows = sorted(latest.values(), key=lambda s: (s.node.count("/"), s.node))
            _print(rows, pipeline.var_name, pipeline.es_name, as_json)
    finally:
        pipeline.stop()
        bus.close()
    pipeline.check()


def _print(rows: list[RiskSnapshot], var_name: str, es_name: str, as_json: bool) -> None:
    if as_json:
        for s in rows:
            line = {
                "as_of": datetime.fromtimestamp(s.as_of_us / 1e6, UTC).isoformat(),
                "node": s.node,
                "var": s.measures[var_name],
                "es": s.measures[es_name],
                "window": s.sequence,
            }
            sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        return
    if not rows:
        err_console.print("waiting for the first window…")
        return
    as_of = datetime.fromtimestamp(rows[0].as_of_us / 1e6, UTC).strftime("%H:%M:%S")
    table = Table(title=f"{var_name} / {es_name} — {as_of} UTC", title_justify="left")
    table.add_column("node")
    table.add_column("VaR", justify="right")
    table.add_column("ES", justify="right")
    for s in rows:
        table.add_row(s.node, money(s.measures[var_name]), money(s.measures[es_name]))
    out_console.print(table)


@app.command("stream")
def stream_command(
    portfolio: Annotated[
        Path, typer.Option("--portfolio", help="Portfolio directory (see sample-portfolio).")
    ],
    bus: Annotated[str, typer.Option("--bus", help="memory | kafka://mock | kafka://HOST:PORT")] = "memory",
    source: Annotated[
        str, typer.Option(help="replay | synthetic | kafka (external producers only)")
    ] = "replay",
    workers: Annotated[int, typer.Option(help="Risk worker threads.")] = 1,
    duration: Annotated[float, typer.Option(help="Seconds to run.")] = 10.0,
    checkpoint_dir: Annotated[
        Path | None, typer.Option("--checkpoint-dir", help="Checkpoint folder (default: a temporary one).")
    ] = None,
    window: Annotated[int, typer.Option(help="Historical scenarios.")] = 500,
    rate: Annotated[float, typer.Option(help="Synthetic ticks per second.")] = 1_000.0,
    replay_store: Annotated[
        Path | None,
        typer.Option(
            "--replay-store", help="Replay the market history of this risk store (default: portfolio's)."
        ),
    ] = None,
    replay_days: Annotated[
        int, typer.Option(help="Replay this many daily closes before the last one, then the last.")
    ] = 0,
    speed: Annotated[
        float | None,
        typer.Option(help="Replay speed (1 = real time, 86400 = a day per second; default: at once)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Run feeds, risk workers and the aggregator on a bus; print firm and desk VaR/ES once a second."""
    run_pipeline(
        bus_url=bus,
        portfolio=portfolio,
        source=source,
        workers=workers,
        duration=duration,
        checkpoint_dir=checkpoint_dir,
        as_json=as_json,
        window=window,
        rate=rate,
        replay_store=replay_store,
        replay_days=replay_days,
        speed=speed,
    )


@app.command("demo")
def demo_command(
    headless: Annotated[
        bool,
        typer.Option("--headless", help="Print firm and desk VaR/ES to the terminal instead of serving."),
    ] = False,
    duration: Annotated[
        float | None,
        typer.Option(help="Seconds to run (default: headless 10 s; the dashboard until Ctrl-C)."),
    ] = None,
    bus: Annotated[str, typer.Option("--bus", help="memory | kafka://mock | kafka://HOST:PORT")] = "memory",
    portfolio: Annotated[
        Path,
        typer.Option("--portfolio", help="Portfolio folder; the sample bank is generated there if missing."),
    ] = Path(".riskstream/sample"),
    store: Annotated[
        Path, typer.Option("--store", help="Risk store root; a demo store is written there if missing.")
    ] = Path(".riskstream/store"),
    positions: Annotated[int, typer.Option(help="Positions of a generated sample bank.")] = 2_000,
    window: Annotated[int, typer.Option(help="Historical scenarios.")] = 500,
    port: Annotated[int, typer.Option(help="Dashboard port.")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    as_json: Annotated[bool, typer.Option("--json", help="Headless: JSON lines instead of a table.")] = False,
    seconds_per_day: Annotated[
        float,
        typer.Option(help="Dashboard: the synthetic market moves a day's variance every this many seconds."),
    ] = 300.0,
) -> None:
    """The whole system on embedded defaults: sample bank, demo risk store, replay + synthetic feeds, risk
    workers and aggregator on the bus, and the API with the dashboard (``--headless``: the terminal only)."""
    if not (portfolio / "positions.parquet").exists():
        from ..marketdata import Universe, synthetic_history
        from ..refdata import sample_bank, write_portfolio

        with err_console.status(f"generating the sample bank ({positions:,} positions) in {portfolio}…"):
            universe = Universe.default()
            history = synthetic_history(universe, 0)
            write_portfolio(portfolio, sample_bank(positions, 0, universe=universe, history=history))
    if headless:
        run_pipeline(
            bus_url=bus,
            portfolio=portfolio,
            source="both",
            workers=2,
            duration=10.0 if duration is None else duration,
            checkpoint_dir=None,
            as_json=as_json,
            window=window,
            rate=1_000.0,
        )
        return
    if not (store / "catalog.db").exists() and not (store / "store.yaml").exists():
        from ._store import demo_command as store_demo

        store_demo(store=store, portfolio=portfolio, days=2, window=250, chunks=4, quiet=False)
    from ._serve import serve

    serve(
        portfolio=portfolio,
        store=store,
        bus=bus,
        host=host,
        port=port,
        live=True,
        rate=1_000.0,
        workers=2,
        duration=duration,
        seconds_per_day=seconds_per_day,
    )


@app.command("worker")
def worker_command(
    bus: Annotated[
        str, typer.Option("--bus", help="kafka://HOST:PORT[,HOST:PORT] (or kafka://mock, memory)")
    ],
    portfolio: Annotated[
        Path, typer.Option("--portfolio", help="Portfolio directory (see sample-portfolio).")
    ],
    checkpoint_dir: Annotated[
        Path, typer.Option("--checkpoint-dir", help="Checkpoint folder shared by the group's workers.")
    ] = Path(".riskstream/checkpoints"),
    group: Annotated[str, typer.Option(help="Consumer group of the risk workers.")] = "risk-workers",
    own: Annotated[
        str | None,
        typer.Option(
            help="Own these positions partitions (e.g. 0,1) by manual assignment instead of the group."
        ),
    ] = None,
    mode: Annotated[str, typer.Option(help="live | simulation")] = "live",
    trigger_ms: Annotated[float, typer.Option(help="Live: close a window every this many ms.")] = 200.0,
    checkpoint_every_s: Annotated[float, typer.Option(help="Live: checkpoint every this many s.")] = 5.0,
    window_us: Annotated[int, typer.Option(help="Simulation: window length, µs of event time.")] = 1_000_000,
    start_us: Annotated[int, typer.Option(help="Simulation: session start, µs since the epoch.")] = 0,
    end_us: Annotated[int | None, typer.Option(help="Simulation: session end, µs since the epoch.")] = None,
    checkpoint_every: Annotated[
        int, typer.Option(help="Simulation: checkpoint every this many windows.")
    ] = 10,
    window: Annotated[int, typer.Option(help="Historical scenarios.")] = 500,
    session_timeout_ms: Annotated[
        int | None,
        typer.Option(help="Kafka group session timeout (how soon a dead worker's partitions move)."),
    ] = None,
    registry_url: Annotated[
        str, typer.Option(help="Schema Registry URL (mock:// = in-process).")
    ] = "mock://",
    until_end: Annotated[
        bool, typer.Option("--until-end", help="Simulation: stop after the last window.")
    ] = False,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Run one risk worker: consume ticks and position events, publish snapshots and vectors, checkpoint.

    Equivalent to ``python -m riskstream.engine._worker``. SIGTERM or Ctrl-C checkpoints every owned partition
    and leaves the group; prints the worker's counters as one JSON line at the end.
    """
    from ..engine._worker import partition_list, serve, stop_on_signals

    if mode not in ("live", "simulation"):
        raise ConfigurationError("mode", mode, "must be 'live' or 'simulation'")
    config = WorkerConfig(
        group=group,
        checkpoint_dir=checkpoint_dir,
        mode=mode,  # type: ignore[arg-type]
        window_us=window_us,
        start_us=start_us,
        end_us=end_us,
        trigger_ms=trigger_ms,
        checkpoint_every_windows=checkpoint_every,
        checkpoint_every_s=checkpoint_every_s,
        stream=StreamConfig(window=window, slow_every_s=0.0),
        assigned=partition_list(own) if own else None,
    )
    with stop_on_signals() as stop:
        stats = serve(
            bus,
            portfolio,
            config,
            registry_url=registry_url,
            session_timeout_ms=session_timeout_ms,
            until_end=until_end,
            timeout_s=duration,
            stop=stop,
        )
    sys.stdout.write(json.dumps(stats) + "\n")
