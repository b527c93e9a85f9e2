#!/bin/bash
# Entrypoint of the redis test image, as the official image's: as root it
# gives /data to redis (only what redis does not own yet) and drops to
# redis, then runs redis-server. Here the server listens on 127.0.0.1 in
# the background; the script pings it, writes and reads a key, saves to
# /data, and shuts it down.
set -euo pipefail
WORKLOAD=redis
# shellcheck source=SCRIPTDIR/lib.sh
. /usr/local/lib/capshim-workload/lib.sh

# shellcheck disable=SC2317 # run through step, which shellcheck cannot follow
cli() { redis-cli -h 127.0.0.1 -p 6379 "$@"; }

# expect WANT CMD...: CMD must print exactly WANT.
# shellcheck disable=SC2317 # run through step, which shellcheck cannot follow
expect() {
	local want=$1 got
	shift
	got=$("$@")
	echo "$got"
	[ "$got" = "$want" ]
}

check_loopback
step "create /data" mkdir -p /data
step "chown /data to redis" find /data \! -user redis -exec chown redis '{}' +
step "drop to redis (setpriv)" as_user redis true
# The official entrypoint tightens the default umask the same way.
if [ "$(umask)" = 0022 ]; then umask 0077; fi
start_service "redis-server" /tmp/redis.log as_user redis redis-server \
	--bind 127.0.0.1 --port 6379 --dir /data --daemonize no --save '' --appendonly no
wait_until "redis-cli ping answers PONG" 20 expect PONG cli ping
step "SET a key" expect OK cli set capshim ok
step "GET it back" expect ok cli get capshim
step "SAVE to /data" expect OK cli save
step "dump.rdb in /data belongs to redis" expect redis stat -c %U /data/dump.rdb
step "redis-cli shutdown" cli shutdown nosave
wait_service_exit 20
ok
