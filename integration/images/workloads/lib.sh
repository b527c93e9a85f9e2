# shellcheck shell=bash
# Shared by the workload entrypoints (sourced, never run on its own).
#
# An entrypoint runs its service the way the official image does, then
# exercises it over loopback. The verdict is the only line on stdout,
#   capshim-workload: OK <name>
#   capshim-workload: FAIL <name>: <step>: <reason>
# so a caller can read it without parsing the service's chatter, which goes
# to stderr. The exit code is 0 for OK and 1 for FAIL.

: "${WORKLOAD:?set WORKLOAD before sourcing lib.sh}"

STEP_LOG=$(mktemp /tmp/capshim-step.XXXXXX)
SERVICE_PID=""
SERVICE_NAME=""
SERVICE_LOG=""

log() { printf 'capshim-workload %s: %s\n' "$WORKLOAD" "$*" >&2; }

# oneline squeezes text into one short line, so the verdict stays one line
# whatever the service printed.
oneline() { tr '\n\t\r' '   ' | tr -s ' ' | sed 's/^ //; s/ $//' | cut -c1-300; }

# last_line prints the last non-blank line of a file (nothing if absent).
last_line() {
	if [ -f "$1" ]; then grep -v '^[[:space:]]*$' "$1" | tail -n 1 || true; fi
}

# log_reason FILE prints the line of a service log that best says why it
# failed: the first error-like line (the cause; later ones tend to be
# consequences), else the last line.
log_reason() {
	local first
	[ -f "$1" ] || return 0
	first=$(grep -m 1 -i -E 'emerg|alert|crit|fatal|panic|error|denied|not permitted' "$1" || true)
	if [ -n "$first" ]; then echo "$first"; else last_line "$1"; fi
}

ok() {
	printf 'capshim-workload: OK %s\n' "$WORKLOAD"
	exit 0
}

fail() {
	printf 'capshim-workload: FAIL %s: %s\n' "$WORKLOAD" "$(printf '%s' "$*" | oneline)"
	exit 1
}

# A service left running when the script ends early is stopped, so that
# the same script also behaves outside a PID namespace (where its end
# would not take the service with it).
cleanup() {
	if [ -n "$SERVICE_PID" ] && alive "$SERVICE_PID"; then
		kill -TERM "$SERVICE_PID" 2>/dev/null || true
	fi
	rm -f "$STEP_LOG"
}
trap cleanup EXIT

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# step WHAT CMD...: runs CMD with its output on stderr; when it fails, the
# verdict names WHAT and the last line CMD printed.
step() {
	local what=$1 rc=0
	shift
	log "step: $what"
	"$@" >"$STEP_LOG" 2>&1 || rc=$?
	cat "$STEP_LOG" >&2
	if [ "$rc" != 0 ]; then
		fail "$what: $(last_line "$STEP_LOG") (exit $rc)"
	fi
}

# as_user USER CMD...: runs CMD as USER with USER's groups, as gosu does in
# the official images (setpriv is util-linux's equivalent).
as_user() {
	local user=$1
	shift
	HOME=$(getent passwd "$user" | cut -d: -f6) setpriv --reuid="$user" --regid="$user" --init-groups "$@"
}

# check_loopback: the container runs with --network none, so loopback is
# all there is. The runtime brings lo up in a new network namespace; this
# says so plainly when it did not, instead of a refused connection later.
check_loopback() {
	local flags
	log "step: loopback is up"
	flags=$(cat /sys/class/net/lo/flags 2>/dev/null) || fail "loopback: no /sys/class/net/lo"
	if (((flags & 1) == 0)); then
		fail "loopback: lo is down (flags $flags)"
	fi
}

# start_service NAME LOG CMD...: starts CMD in the background with its
# output in LOG, as the official images run their service in the
# foreground (here the script stays in front to exercise it).
start_service() {
	SERVICE_NAME=$1 SERVICE_LOG=$2
	shift 2
	log "step: start $SERVICE_NAME"
	"$@" >"$SERVICE_LOG" 2>&1 &
	SERVICE_PID=$!
}

# service_died WHAT: fails with the service's exit code and last log line.
service_died() {
	local rc=0
	wait "$SERVICE_PID" || rc=$?
	SERVICE_PID=""
	cat "$SERVICE_LOG" >&2
	fail "$1: $SERVICE_NAME exited (code $rc): $(log_reason "$SERVICE_LOG")"
}

# wait_until WHAT SECONDS CMD...: polls CMD until it succeeds; fails early
# when the service died, else after SECONDS.
wait_until() {
	local what=$1 secs=$2 deadline
	shift 2
	log "step: $what"
	deadline=$((SECONDS + secs))
	while :; do
		if "$@" >"$STEP_LOG" 2>&1; then
			return 0
		fi
		if [ -n "$SERVICE_PID" ] && ! alive "$SERVICE_PID"; then
			service_died "$what"
		fi
		if ((SECONDS >= deadline)); then
			cat "$STEP_LOG" >&2
			fail "$what: not within ${secs}s: $(last_line "$STEP_LOG") $(log_reason "$SERVICE_LOG")"
		fi
		sleep 0.2
	done
}

# wait_service_exit SECONDS: the service was asked to stop; it must be gone
# within SECONDS and have exited 0.
wait_service_exit() {
	local secs=$1 deadline rc=0
	log "step: $SERVICE_NAME stops"
	deadline=$((SECONDS + secs))
	while alive "$SERVICE_PID"; do
		if ((SECONDS >= deadline)); then
			fail "stop: $SERVICE_NAME still running after ${secs}s"
		fi
		sleep 0.2
	done
	wait "$SERVICE_PID" || rc=$?
	SERVICE_PID=""
	if [ "$rc" != 0 ]; then
		cat "$SERVICE_LOG" >&2
		fail "stop: $SERVICE_NAME exited with code $rc: $(log_reason "$SERVICE_LOG")"
	fi
}

# procs_of NAME prints "PID UID" for each process whose name is NAME.
procs_of() {
	local s name uid
	for s in /proc/[0-9]*/status; do
		name=$(sed -n 's/^Name:[[:space:]]*//p' "$s" 2>/dev/null) || continue
		[ "$name" = "$1" ] || continue
		uid=$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "$s" 2>/dev/null) || continue
		s=${s#/proc/}
		printf '%s %s\n' "${s%/status}" "$uid"
	done
}
