"""Helpers shared by commands: loading a portfolio directory, progress bars on stderr, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

err_console = Console(stderr=True)
# piped or redirected output has no terminal width to fit: use a wide one so tables do not wrap
out_console = Console() if Console().is_terminal else Console(width=160)


@contextmanager
def stage_progress(enabled: bool, title: str) -> Iterator[Callable[[str, float], None]]:
    """A rich progress bar on stderr driven by ``(stage, fraction)`` callbacks; a no-op when disabled."""
    if not enabled:
        yield lambda _stage, _fraction: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(title, total=1.0)

        def update(stage: str, fraction: float) -> None:
            bar.update(task, completed=fraction, description=f"{title}: {stage}" if stage else title)

        yield update
        bar.update(task, completed=1.0)


def load(portfolio_dir: Path) -> Any:
    """Load a portfolio directory (instruments, positions, market, history)."""
    from ..refdata import load_portfolio

    return load_portfolio(portfolio_dir)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def money(x: float) -> str:
    """Compact amount for tables: 1.23bn, 45.67M, 8.9k, 512 (the currency is in the table's title)."""
    a = abs(x)
    for size, suffix, digits in ((1e9, "bn", 2), (1e6, "M", 2), (1e3, "k", 1)):
        if a >= size:
            return f"{x / size:,.{digits}f}{suffix}"
    return f"{round(x) + 0:,.0f}" if round(x) != 0 else "0"


def show_rejected(rejected: Any, limit: int = 10) -> None:
    """Summarise records left out of a run (on stderr, so --json stays clean)."""
    if not rejected:
        return
    err_console.print(f"[yellow]{len(rejected)} record(s) left out of the run:[/]")
    for b in list(rejected)[:limit]:
        err_console.print(f"  {b.kind} {b.record_id}: {b.reason}")
    if len(rejected) > limit:
        err_console.print(f"  … and {len(rejected) - limit} more (see --json output)")
