#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL 15 server for govern's tests.
#   scripts/pg.sh start DIR PORT   -> prints the database URL on stdout
#   scripts/pg.sh stop DIR
# The server refuses to run as root, so as root it runs as the unprivileged `postgres`
# user (created here if missing); it listens on 127.0.0.1 only and lives in DIR.
set -euo pipefail
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:?start|stop}
dir=${2:?directory}

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$PGUSER_OS" -- "$@"
  else
    "$@"
  fi
}

PGUSER_OS=${PGUSER_OS:-postgres}
if [ "$(id -u)" = 0 ] && ! id "$PGUSER_OS" >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
fi
if [ ! -x "$PGBIN/initdb" ]; then
  echo "PostgreSQL 15 server binaries not found in $PGBIN (apt-get install postgresql-15)" >&2
  exit 2
fi

case "$cmd" in
  start)
    port=${3:?port}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" -U govern --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
    echo "postgresql+psycopg://govern@127.0.0.1:$port/postgres"
    ;;
  stop)
    [ -d "$dir/data" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
