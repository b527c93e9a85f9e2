#!/bin/bash
# Entrypoint of the nginx test image. Like the official image it runs the
# master as root with the workers as an unprivileged user (nginx.conf's
# `user www-data;`), the master not daemonized; then it fetches the page
# over loopback, checks who serves it, and stops nginx.
set -euo pipefail
WORKLOAD=nginx
# shellcheck source=SCRIPTDIR/lib.sh
. /usr/local/lib/capshim-workload/lib.sh

# workers_run_as USER: the master is still root and at least one worker
# runs as USER, i.e. the master really switched its workers' user.
# shellcheck disable=SC2317 # run through step, which shellcheck cannot follow
workers_run_as() {
	local want pid uid master="" workers=0
	want=$(id -u "$1")
	while read -r pid uid; do
		if [ "$pid" = "$SERVICE_PID" ]; then
			master=$uid
		elif [ "$uid" = "$want" ]; then
			workers=$((workers + 1))
		fi
	done < <(procs_of nginx)
	echo "master uid ${master:-none}, $workers worker(s) as $1"
	[ "$master" = 0 ] && [ "$workers" -gt 0 ]
}

check_loopback
step "nginx.conf runs the workers as www-data" grep -qx 'user www-data;' /etc/nginx/nginx.conf
# The image sends nginx's logs to its stdout and stderr, as the official
# image does, so a worker's error ends up in the service log too.
start_service "nginx" /tmp/nginx.log nginx -g 'daemon off;'
# curl gives up after a few seconds: a master whose workers died still
# accepts connections in the kernel, but nobody answers them.
wait_until "nginx listens on 127.0.0.1:80" 20 curl -fsS --max-time 3 -o /dev/null http://127.0.0.1/
step "GET http://127.0.0.1/ returns the page" sh -c 'curl -fsS --max-time 10 http://127.0.0.1/ | grep "Welcome to nginx"'
step "workers run as www-data" workers_run_as www-data
step "nginx -s quit" nginx -s quit
wait_service_exit 20
ok
