"""Resolve a merge conflict in ``src/govern/__init__.py``: union the ``_LAZY`` maps of the
given revisions (default HEAD and MERGE_HEAD) and regenerate the file (maintainers only).

    python scripts/merge_exports.py [REV ...]
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_exports


def lazy_at(rev: str) -> dict[str, str]:
    text = subprocess.run(
        ["git", "show", f"{rev}:src/govern/__init__.py"], check=True, capture_output=True, text=True
    ).stdout
    for node in ast.parse(text).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "_LAZY":
            return {str(k): str(v) for k, v in ast.literal_eval(node.value).items()}  # type: ignore[arg-type]
    return {}


def main() -> int:
    revs = sys.argv[1:] or ["HEAD", "MERGE_HEAD"]
    merged: dict[str, str] = {}
    for rev in revs:
        merged.update(lazy_at(rev))
    sync_exports.INIT.write_text(sync_exports.render(merged), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
