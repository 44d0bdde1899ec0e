"""``govern keys reencrypt`` killed midway (a real process, SIGKILL) and run again finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select, text

from govern.config import Settings
from govern.crypto import aead
from govern.db import create_engine, transaction
from govern.domains.core import Subject
from govern.keys import count_sealed_by, list_keys
from govern.keys.models import DataKey

ROWS = 6000
PAUSED = ("--batch-size", "50", "--pause", "0.1", "--json")


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERN_")}
    env["GOVERN_DATABASE_URL"] = settings.database_url.get_secret_value()
    env["GOVERN_KEK"] = settings.kek.get_secret_value()  # type: ignore[union-attr]
    return env


def _govern(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govern", *argv],
        env=_env(settings),
        capture_output=True,
        text=True,
        check=False,
    )


def test_killed_reencrypt_resumes_and_retire_follows(  # type: ignore[no-untyped-def]
    engine, settings: Settings, tmp_path: Path
) -> None:
    with transaction(engine) as s:
        s.add_all(
            Subject(id=uuid.UUID(int=i + 1), external_ref=f"ref-{i}", email=f"u{i}@example.com")
            for i in range(ROWS)
        )
    with transaction(engine) as s:
        old = s.scalars(select(DataKey.id).where(DataKey.state == "primary")).one()
    assert _govern(settings, "keys", "rotate").returncode == 0

    # 240 batches with a 100 ms pause between them: the run would last some 24 seconds and
    # the kill comes after about four batches, however fast the machine re-seals (without a
    # pause the run takes a fraction of a second, and a busy machine's poll could miss it).
    err_path = tmp_path / "reencrypt.err"
    with err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "govern", "keys", "reencrypt", *PAUSED],
            env=_env(settings),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    old_header = aead.header(aead.DATA, old)
    left = 2 * ROWS
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                left = sum(count_sealed_by(conn, [old]).values())
            if left < 2 * ROWS - 200:
                break
            time.sleep(0.01)
        assert proc.poll() is None, (
            f"reencrypt ended (status {proc.returncode}) before it could be killed: "
            + err_path.read_text()[-2000:]
        )
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with engine.connect() as conn:
        left = sum(count_sealed_by(conn, [old]).values())
    assert 0 < left < 2 * ROWS  # killed midway: some batches committed, some not

    refused = _govern(settings, "keys", "retire", str(old))
    assert refused.returncode == 2
    assert "still seals" in refused.stderr

    done = _govern(settings, "keys", "reencrypt", "--json")
    assert done.returncode == 0, done.stderr
    assert left == json.loads(done.stdout)["values"]

    retired = _govern(settings, "keys", "retire", str(old), "--json")
    assert retired.returncode == 0, retired.stderr
    assert json.loads(retired.stdout)["key"]["state"] == "retired"

    fresh = create_engine(settings.database_url.get_secret_value())
    from govern.keys import attach

    attach(fresh, settings)
    try:
        with transaction(fresh) as s:
            emails = set(s.scalars(select(Subject.email)))
            assert {f"u{i}@example.com" for i in range(ROWS)} == emails
            assert next(k.state for k in list_keys(s) if k.id == old) == "retired"
        with fresh.connect() as conn:
            heads = conn.execute(
                select(func.count())
                .select_from(text("subjects"))
                .where(func.substr(text("email"), 1, 5) == old_header)
            ).scalar_one()
        assert heads == 0
    finally:
        fresh.dispose()
    scan = _govern(settings, "scan", "encryption", "--json")
    assert scan.returncode == 0, scan.stdout
