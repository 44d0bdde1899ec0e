#!/usr/bin/env bash
# Install everything and run govern's whole test suite on SQLite and on a real PostgreSQL 15.
#   ./scripts/test.sh [pytest args...]
# Starts a throwaway PostgreSQL server (as an unprivileged user, loopback only, in a temporary
# folder) and stops it afterwards, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/system-deps.sh

python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -U pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'

echo "== lint and types"
.venv/bin/ruff check --output-format concise src tests bench scripts migrations
.venv/bin/ruff format --check -q src tests bench scripts migrations
.venv/bin/mypy

pgroot=$(mktemp -d /tmp/govern-pg.XXXXXX)
chmod 755 "$pgroot"
cleanup() { scripts/pg.sh stop "$pgroot/pg"; rm -rf "$pgroot"; }
trap cleanup EXIT
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=$(scripts/pg.sh start "$pgroot/pg" "$port")

echo "== tests (SQLite and PostgreSQL at 127.0.0.1:$port)"
GOVERNTEST_POSTGRES_URL="$url" GOVERNTEST_REQUIRE_POSTGRES=1 \
  .venv/bin/python -m pytest --cov --cov-report=term "$@"
