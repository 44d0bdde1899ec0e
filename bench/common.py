"""Shared helpers: timing, peak memory, JSON lines, throwaway databases."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def emit(name: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    """Print one figure as a JSON line and return it."""
    row = {"figure": name, "value": round(value, 4), "unit": unit, **extra}
    print(json.dumps(row), flush=True)
    return row


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Best wall time of ``repeat`` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def timed_cpu(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU time (``time.process_time``) of one run, in seconds.

    The CPU time is the companion figure where the machine is shared and wall time noisy;
    it leaves out time spent waiting (disk, other processes), so it never replaces wall time.
    """
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


@contextlib.contextmanager
def peak_memory() -> Iterator[dict[str, float]]:
    """Peak Python heap allocation inside the block, in MB (tracemalloc)."""
    out: dict[str, float] = {}
    tracemalloc.start()
    try:
        yield out
    finally:
        out["mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/bench.db"


@contextlib.contextmanager
def postgres_url() -> Iterator[str | None]:
    """A throwaway PostgreSQL server (scripts/pg.sh), or None when its binaries are missing."""
    if not Path("/usr/lib/postgresql/15/bin/initdb").exists():
        yield None
        return
    import socket

    with tempfile.TemporaryDirectory(prefix="govern-bench-pg.") as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103  (the unprivileged server user must enter it)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        pg = ROOT / "scripts" / "pg.sh"
        url = subprocess.run(
            [str(pg), "start", f"{tmp}/pg", str(port)], check=True, capture_output=True, text=True
        ).stdout.strip()
        try:
            yield url
        finally:
            subprocess.run([str(pg), "stop", f"{tmp}/pg"], check=False)


def python() -> str:
    return sys.executable
