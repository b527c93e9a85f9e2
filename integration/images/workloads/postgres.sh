#!/bin/bash
# Entrypoint of the postgres test image, as the official image's: as root
# it creates PGDATA and the socket directory and gives them to postgres,
# drops to postgres, runs initdb and starts the server. Here the server
# listens on 127.0.0.1 and its unix socket; the script runs
# `psql -c 'select 1'` over both and stops the server.
set -euo pipefail
WORKLOAD=postgres
# shellcheck source=SCRIPTDIR/lib.sh
. /usr/local/lib/capshim-workload/lib.sh

export PGDATA=${PGDATA:-/var/lib/postgresql/data}
export LANG=${LANG:-C.UTF-8}
bindir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d | sort | tail -n 1)
[ -n "$bindir" ] || fail "no /usr/lib/postgresql/*/bin in the image"
export PATH="$bindir:$PATH"
SOCKDIR=/var/run/postgresql

# select1 ARGS...: psql with ARGS must print 1 for `select 1`.
# shellcheck disable=SC2317 # run through step, which shellcheck cannot follow
select1() {
	local got
	got=$(psql -X -A -t -U postgres -d postgres "$@" -c 'select 1')
	echo "$got"
	[ "$got" = 1 ]
}

check_loopback
step "create PGDATA $PGDATA" mkdir -p "$PGDATA"
# Like the official entrypoint: these chmods may fail on odd volumes, and
# a failure is not fatal there (initdb says what it needs).
chmod 00700 "$PGDATA" 2>/dev/null || log "chmod 00700 $PGDATA failed (ignored, as the official entrypoint does)"
step "create $SOCKDIR" mkdir -p "$SOCKDIR"
chmod 03775 "$SOCKDIR" 2>/dev/null || log "chmod 03775 $SOCKDIR failed (ignored, as the official entrypoint does)"
step "chown PGDATA to postgres" find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
step "chown $SOCKDIR to postgres" find "$SOCKDIR" \! -user postgres -exec chown postgres '{}' +
step "drop to postgres (setpriv)" as_user postgres true
step "initdb as postgres" as_user postgres initdb --username=postgres --pgdata="$PGDATA"
if ! as_user postgres pg_ctl --pgdata="$PGDATA" --wait --timeout=60 --log=/tmp/postgres.log \
	--options="-c listen_addresses=127.0.0.1 -c unix_socket_directories=$SOCKDIR" start >&2; then
	cat /tmp/postgres.log >&2 || true
	fail "start postgres (pg_ctl start): $(log_reason /tmp/postgres.log)"
fi
step "psql -c 'select 1' over 127.0.0.1" select1 -h 127.0.0.1
step "psql -c 'select 1' over the unix socket" as_user postgres bash -c "$(declare -f select1); select1 -h $SOCKDIR"
step "stop postgres (pg_ctl stop)" as_user postgres pg_ctl --pgdata="$PGDATA" --mode=fast --wait --timeout=60 stop
ok
