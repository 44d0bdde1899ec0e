"""Regenerate a domain's revision from the models (maintainers only; review the output).

    python scripts/autogenerate_initial.py DOMAIN REV_ID "message" [DEPENDS_ON]

Types are rendered as their storage type (a migration must not change when a govern
column type's Python code does), table ``info`` is dropped, and the file is formatted.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from govern.db import DOMAINS, create_engine
from govern.migrations import alembic_config, upgrade
from govern.migrations.paths import domain_dirs


def main() -> None:
    domain, rev_id, message = sys.argv[1:4]
    depends_on = sys.argv[4] if len(sys.argv) > 4 else None
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/gen.db"
        upgrade(url, [d for d in DOMAINS if d != domain and any(domain_dirs()[d].glob("*.py"))])
        engine = create_engine(url)
        with engine.connect() as conn:
            cfg = alembic_config(url, connection=conn)
            cfg.attributes["autogenerate_domain"] = domain
            heads = list(domain_dirs()[domain].glob("*.py"))
            script = command.revision(
                cfg,
                message=message,
                autogenerate=True,
                head=f"{domain}@head" if heads else "base",
                branch_label=None if heads else domain,
                version_path=str(domain_dirs()[domain]),
                rev_id=rev_id,
                depends_on=depends_on,
            )
            conn.commit()
        engine.dispose()
    path = Path(script.path)  # type: ignore[union-attr]
    text = path.read_text()
    text = re.sub(
        r"govern\.types\.utc\.UTCDateTime\(timezone=True\)", "sa.DateTime(timezone=True)", text
    )
    text = re.sub(r",\n    info=\{.*?\}\n", "\n", text)
    text = re.sub(r"\s*# ### .*? ###", "", text)
    path.write_text(text)
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(path)], check=True)
    print(path)


if __name__ == "__main__":
    main()
