"""A worker process that kills itself (SIGKILL) at a chosen step and phase.

``python -m tests.dsr.victim URL REQUEST_ID EXPORT_DIR SEQ PHASE [ROWS_PER_TRANSACTION]``;
PHASE is ``executed`` (inside the step's transaction, before commit) or ``committed`` (right
after commit).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import uuid
from pathlib import Path

from govern import dsr
from govern.config import load_settings
from govern.db import create_engine
from govern.keys import attach


def main() -> None:
    url, rid, out, seq, phase = sys.argv[1:6]
    budget = int(sys.argv[6]) if len(sys.argv) > 6 else dsr.DEFAULT_ROWS_PER_TRANSACTION

    def die(at: int, when: str) -> None:
        if at == int(seq) and when == phase:
            os.kill(os.getpid(), signal.SIGKILL)

    engine = create_engine(url)
    attach(engine, load_settings())  # GOVERN_KEK comes from the environment
    # an already expired lease, so that the test's resuming worker can take over at once
    dsr.process_request(
        engine,
        uuid.UUID(rid),
        export_dir=Path(out),
        worker="victim",
        lease=dt.timedelta(seconds=-1),
        on_step=die,
        rows_per_transaction=budget,
    )
    sys.exit(3)  # reached only when the kill point was never hit


if __name__ == "__main__":
    main()
