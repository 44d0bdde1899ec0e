"""Issue 2: migrating all four domains, a full down-and-up, and ``import govern``."""

from __future__ import annotations

import subprocess
from typing import Any

from bench.common import emit, postgres_url, python, sqlite_url, timed


def _migrate_figures(backend: str, url: str) -> list[dict[str, Any]]:
    from govern import migrations
    from govern.db import DOMAINS

    rows = [emit(f"migrate_up_all_{backend}", timed(lambda: migrations.upgrade(url)), "s")]

    def down_and_up() -> None:
        for d in reversed(DOMAINS):
            migrations.downgrade(url, d, "base", cascade=True)
        migrations.upgrade(url)

    rows.append(emit(f"migrate_down_up_all_{backend}", timed(down_and_up), "s"))
    return rows


def run() -> list[dict[str, Any]]:
    rows = []
    with sqlite_url() as url:
        rows += _migrate_figures("sqlite", url)
    with postgres_url() as pg:
        if pg is not None:
            rows += _migrate_figures("postgresql", pg)
    # A fresh interpreter per sample: import time is only honest cold.
    samples = []
    for _ in range(7):
        out = subprocess.run(
            [
                python(),
                "-c",
                "import time;t=time.perf_counter();import govern;print(time.perf_counter()-t)",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        samples.append(float(out.stdout))
    samples.sort()
    rows.append(emit("import_govern", samples[len(samples) // 2] * 1000, "ms", target_max=150))
    return rows
