"""Regenerate ``src/govern/__init__.py`` from its ``_LAZY`` map (run after adding a public name).

    python scripts/sync_exports.py          # rewrite the file
    python scripts/sync_exports.py --check  # exit 1 when the file is out of date

The ``_LAZY`` map (name -> module, "" for a submodule) is the single source: the
``TYPE_CHECKING`` imports that type checkers read, and the sorted ``__all__``, follow from it.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

INIT = Path(__file__).resolve().parent.parent / "src" / "govern" / "__init__.py"

HEADER = '''"""govern: data governance and GDPR consent for SQLAlchemy services.

Everything public is importable from here; submodules load on first use so that
``import govern`` stays fast (Alembic, APScheduler and friends load only when needed)::

    import govern

    settings = govern.load_settings()
    engine = govern.create_engine(settings.database_url.get_secret_value())
    govern.migrations.upgrade(settings.database_url.get_secret_value())

This file is generated from ``_LAZY`` by ``scripts/sync_exports.py``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any
'''

FOOTER = """

def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'govern' has no attribute {name!r}")
    if module == "":
        value: Any = importlib.import_module(f"govern.{name}")
    else:
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
"""


def _isort_key(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[0].isupper() else 2), name


def read_lazy() -> dict[str, str]:
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "_LAZY":
            value = ast.literal_eval(node.value)  # type: ignore[arg-type]
            assert isinstance(value, dict)
            return {str(k): str(v) for k, v in value.items()}
    raise SystemExit("no _LAZY map in src/govern/__init__.py")


def render(lazy: dict[str, str]) -> str:
    by_module: dict[str, list[str]] = defaultdict(list)
    for name, module in lazy.items():
        by_module[module].append(name)
    lines = [HEADER, "if TYPE_CHECKING:"]
    subs = sorted(by_module.pop("", []))
    if subs:
        by_module["govern"] = subs
    for module in sorted(by_module):
        names = sorted(by_module[module], key=_isort_key)
        one = f"    from {module} import {', '.join(names)}"
        if len(one) <= 100:
            lines.append(one)
        else:
            lines.append(f"    from {module} import (")
            lines += [f"        {n}," for n in names]
            lines.append("    )")
    lines.append("")
    lines.append('__version__ = "0.1.0"')
    lines.append("")
    lines.append("_LAZY: dict[str, str] = {")
    for name in sorted(lazy, key=lambda n: (lazy[n], _isort_key(n))):
        lines.append(f'    "{name}": "{lazy[name]}",')
    lines.append("}")
    lines.append("")
    lines.append("__all__ = [")
    for name in sorted([*lazy, "__version__"], key=_isort_key):
        lines.append(f'    "{name}",')
    lines.append("]")
    return "\n".join(lines) + "\n" + FOOTER


def main() -> int:
    text = render(read_lazy())
    if "--check" in sys.argv:
        if INIT.read_text(encoding="utf-8") != text:
            print("src/govern/__init__.py is out of date: run python scripts/sync_exports.py")
            return 1
        return 0
    INIT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
