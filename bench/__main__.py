"""Run benchmarks: ``python -m bench`` (all) or ``python -m bench migrate crypto``.

Each ``bench/bench_<name>.py`` has ``run() -> list[dict]`` and prints one JSON line per
figure through :func:`bench.common.emit`; peers are measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name[6:] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {available()}")
    args = parser.parse_args()
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available()}")
    for name in names:
        importlib.import_module(f"bench.bench_{name}").run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
