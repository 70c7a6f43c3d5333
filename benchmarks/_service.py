"""A risk service in a subprocess for the service benchmarks: sample bank and demo store (generated once, kept
in ``RISKSTREAM_BENCH_DIR`` or a temporary folder), ``riskstream serve`` on a free port, tokens for users."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def demo_data(positions: int = 10_000) -> tuple[Path, Path]:
    root = Path(os.environ.get("RISKSTREAM_BENCH_DIR") or tempfile.mkdtemp(prefix="riskstream-bench-"))
    portfolio, store = root / f"bank-{positions}", root / f"store-{positions}"
    if not (portfolio / "positions.parquet").exists():
        subprocess.run(
            [BIN / "riskstream", "sample-portfolio", "--positions", str(positions), "--out", str(portfolio)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    if not (store / "catalog.db").exists():
        subprocess.run(
            [
                BIN / "riskstream",
                "store",
                "demo",
                "--store",
                str(store),
                "--portfolio",
                str(portfolio),
                "--quiet",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return portfolio, store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def service(portfolio: Path, store: Path, *args: str, ready_s: float = 180.0) -> Iterator[str]:
    """``riskstream serve`` in a subprocess; yields its base URL once ``/readyz`` answers 200."""
    port = free_port()
    proc = subprocess.Popen(
        [
            BIN / "riskstream",
            "serve",
            "--portfolio",
            str(portfolio),
            "--store",
            str(store),
            "--port",
            str(port),
            *list(args),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the service exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not become ready")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def token(url: str, user: str) -> str:
    r = httpx.post(
        f"{url}/auth/dev/token",
        data={"grant_type": "password", "username": user, "password": "demo"},
        timeout=10,
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))
