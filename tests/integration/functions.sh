# shellcheck shell=bash
# Shared helpers of the integration tests: sourced by every test script.
#
# A test starts the real gateway on 127.0.0.1 (and [::1]) on a free port, drives
# it with real clients (libiscsi-bin, qemu-utils) and checks what they see.
# Every process a test starts is recorded and ended by pid in the EXIT trap; on
# failure the trap prints each gateway's log. Exit 77 (skip) is kept for a
# prerequisite that cannot exist on this machine (no ::1); a missing package is
# a failure, since scripts/deps.sh installs every one.
#
# Environment (set by tests/integration/CMakeLists.txt):
#   LUNGATE   the lungate binary      FREEPORT  the freeport helper
#   HOSTILE   the hostile client      SRCDIR    this folder

set -euo pipefail

# Sourced once, however many helper files source it (tests/rbd's use both
# tests/nbd's and tests/cow's).
[[ -z ${LG_FUNCTIONS_LOADED:-} ]] || return 0
LG_FUNCTIONS_LOADED=1

: "${LUNGATE:?LUNGATE must name the lungate binary}"
: "${FREEPORT:?FREEPORT must name the freeport helper}"

LG_TEST=$(basename "$0" .sh)
LG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/lungate-it-$LG_TEST.XXXXXX")
LG_PIDS=()          # every background process this test started
LG_LOGS=()          # every gateway log, printed on failure
LG_PID=             # the gateway started last
LG_LOG=             # its stderr
PORT=               # its port
LG_IQN_PREFIX=iqn.2025-10.org.lungate.test
# shellcheck disable=SC2034 # used by the test scripts
LG_INITIATOR=$LG_IQN_PREFIX:initiator-$LG_TEST

# Seconds any one client command may take before it counts as hung.
LG_CMD_TIMEOUT=${LG_CMD_TIMEOUT:-120}

log() { printf '%s: %s\n' "$LG_TEST" "$*" >&2; }

# fail MESSAGE...: end the test as failed.
fail() {
	printf '%s: FAIL: %s\n' "$LG_TEST" "$*" >&2
	exit 1
}

# skip MESSAGE...: end the test as skipped; only for a prerequisite that cannot exist.
skip() {
	printf '%s: SKIP: %s\n' "$LG_TEST" "$*" >&2
	exit 77
}

# require_cmd NAME...: every NAME must be installed (scripts/deps.sh installs them).
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			fail "$c is not installed: run scripts/deps.sh"
	done
}

# require_ipv6_loopback: skip unless this machine has ::1.
require_ipv6_loopback() {
	grep -qi '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null ||
		skip "this machine has no IPv6 loopback address ::1"
}

# run CMD...: run a client with a time limit, so a hung gateway fails the test.
# While a gateway runs, a client still running when the gateway dies is ended
# at once (clients like libiscsi's retry a lost target for a long time).
run() {
	local gw=${LG_PID:-} cmd watch rc=0
	if [[ -z $gw ]] || ! pid_alive "$gw"; then
		timeout --kill-after=10 "$LG_CMD_TIMEOUT" "$@"
		return
	fi
	timeout --kill-after=10 "$LG_CMD_TIMEOUT" "$@" &
	cmd=$!
	{
		while pid_alive "$gw" && pid_alive "$cmd"; do
			sleep 0.2
		done
		if pid_alive "$cmd"; then
			kill -TERM "$cmd"
		fi
	} </dev/null >/dev/null 2>&1 &
	watch=$!
	wait "$cmd" || rc=$?
	kill "$watch" 2>/dev/null || true
	wait "$watch" 2>/dev/null || true
	if ! pid_alive "$gw"; then
		exit_status "$gw"
		log "lungate (pid $gw) is gone: it ended while '$1' ran ($EXIT_HOW)"
	fi
	return "$rc"
}

# exit_status PID: reap a child that has ended and say in EXIT_HOW how it
# ended ("exit status N", "killed by signal NAME", or "already reaped").
exit_status() {
	local rc=0
	wait "$1" 2>/dev/null || rc=$?
	if ((rc == 127)); then
		EXIT_HOW="already reaped"
	elif ((rc > 128 && rc < 160)); then
		EXIT_HOW="killed by signal $(kill -l $((rc - 128)))"
	else
		EXIT_HOW="exit status $rc"
	fi
}

# pid_alive PID: true while PID exists and is not a zombie.
pid_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# forget_pid PID: drop PID from the list the trap cleans up.
forget_pid() {
	local p keep=()
	for p in "${LG_PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	LG_PIDS=("${keep[@]}")
}

# bg_start CMD...: start CMD (an executable, with the time limit of run) in the
# background and record its pid (in BG_PID).
bg_start() {
	timeout --kill-after=10 "$LG_CMD_TIMEOUT" "$@" &
	BG_PID=$!
	LG_PIDS+=("$BG_PID")
}

lg_cleanup() {
	local rc=$? p i
	# A background subshell (run's watcher) that gets SIGTERM before it has
	# reset the traps it was forked with runs them: 'exit 143', then this.
	# Only the test's own shell may clean up; in a subshell this ended the
	# test's gateway and deleted $LG_TMP under the running test.
	[[ $BASHPID == "$$" ]] || exit "$rc"
	trap - EXIT
	# Only our own children: pid_max is 32768 here and the hostile tests
	# fork thousands of processes, so a recorded pid that has ended may
	# belong to another test's gateway by now.
	local mine=()
	for p in "${LG_PIDS[@]}"; do
		[[ $(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ') == "$$" ]] && mine+=("$p")
	done
	LG_PIDS=("${mine[@]}")
	for p in "${LG_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${LG_PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			pid_alive "$p" || break
			sleep 0.1
		done
		if pid_alive "$p"; then
			# timeout(1) passes SIGTERM on to its command and waits; a
			# command that ignores it (iscsi-perf retrying a gone gateway)
			# would outlive a killed timeout: kill its children first
			pkill -KILL -P "$p" 2>/dev/null || true
			kill -KILL "$p" 2>/dev/null || true
		fi
		wait "$p" 2>/dev/null || true
	done
	if ((rc != 0 && rc != 77)); then
		for p in "${LG_LOGS[@]}"; do
			if [[ ! -s $p ]]; then
				log "gateway log $p is $([[ -e $p ]] && echo empty || echo missing)$([[ -d $LG_TMP ]] || echo ", and so is the test's folder")"
				continue
			fi
			printf '%s: ---- gateway log %s (last 200 lines) ----\n' "$LG_TEST" "$p" >&2
			tail -n 200 "$p" >&2
			printf '%s: ---- end of gateway log ----\n' "$LG_TEST" >&2
		done
	fi
	if [[ -n ${LG_KEEP_TMP:-} ]]; then
		log "kept $LG_TMP"
	else
		rm -rf "$LG_TMP"
	fi
	exit "$rc"
}
trap lg_cleanup EXIT
# A command of the script that fails outside a condition ends the test (set
# -e): name it, or the test ends with no word of why (seen in CI: powercut's
# `n=$((n + $(grep -c ...)))` when grep counted 0).  Not inherited by
# functions or subshells (no set -E): a failing function is named at its call.
lg_err_report() {
	[[ $- == *e* ]] || return 0 # (exit traps run with set +e: their failures are no news)
	printf '%s: FAIL: line %s: `%s` failed (status %s)\n' "$LG_TEST" "$2" "$3" "$1" >&2
}
trap 'lg_err_report "$?" "$LINENO" "$BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port: print a port free on 127.0.0.1 and ::1.
free_port() {
	"$FREEPORT" || fail "freeport found no free port"
}

# port_open HOST PORT: true if HOST:PORT accepts a TCP connection now.
port_open() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_port PID HOST PORT [SECONDS]: wait until HOST:PORT accepts, while PID lives.
wait_port() {
	local pid=$1 host=$2 port=$3 secs=${4:-30} i
	for ((i = 0; i < secs * 10; i++)); do
		port_open "$host" "$port" && return 0
		pid_alive "$pid" || return 1
		sleep 0.1
	done
	return 1
}

# start_lungate SERVE-ARGS...: start `lungate serve SERVE-ARGS... --listen 127.0.0.1:PORT`
# on a new free port (PORT), wait until it accepts, and set LG_PID and LG_LOG.
# LG_LISTEN_V6=1 also listens on [::1]:PORT; LG_SECOND_PORT=1 also on a second
# portal 127.0.0.1:PORT2; LG_NO_LISTEN=1 gives no --listen at all (the config's
# portals are used) and waits on 127.0.0.1:$PORT as set by the caller.
# LG_STDOUT=FILE keeps the gateway's stdout there, apart from its log (stderr).
start_lungate() {
	local listen=()
	for _ in 1 2 3; do
		if [[ -z ${LG_NO_LISTEN:-} ]]; then
			PORT=$(free_port)
			listen=(--listen "127.0.0.1:$PORT")
			[[ -z ${LG_LISTEN_V6:-} ]] || listen+=(--listen "[::1]:$PORT")
			if [[ -n ${LG_SECOND_PORT:-} ]]; then
				PORT2=$(free_port)
				[[ $PORT2 != "$PORT" ]] || PORT2=$(free_port)
				listen+=(--listen "127.0.0.1:$PORT2")
			fi
		fi
		LG_LOG=$LG_TMP/lungate.${#LG_LOGS[@]}.log
		LG_LOGS+=("$LG_LOG")
		log "starting: lungate serve $* ${listen[*]}"
		if [[ -n ${LG_STDOUT:-} ]]; then # stdout (the iPXE lines) apart from the log
			"$LUNGATE" serve "$@" "${listen[@]}" </dev/null >"$LG_STDOUT" 2>"$LG_LOG" &
		else
			"$LUNGATE" serve "$@" "${listen[@]}" </dev/null >"$LG_LOG" 2>&1 &
		fi
		LG_PID=$!
		LG_PIDS+=("$LG_PID")
		if wait_port "$LG_PID" 127.0.0.1 "$PORT" 30; then
			if [[ -n ${LG_LISTEN_V6:-} ]] && ! wait_port "$LG_PID" ::1 "$PORT" 10; then
				fail "lungate (pid $LG_PID) accepts on 127.0.0.1:$PORT but not on [::1]:$PORT"
			fi
			if [[ -n ${LG_SECOND_PORT:-} ]] && ! wait_port "$LG_PID" 127.0.0.1 "$PORT2" 10; then
				fail "lungate (pid $LG_PID) accepts on 127.0.0.1:$PORT but not on its second portal 127.0.0.1:$PORT2"
			fi
			return 0
		fi
		if pid_alive "$LG_PID"; then
			fail "lungate (pid $LG_PID) did not accept connections on 127.0.0.1:$PORT within 30 s"
		fi
		local rc=0
		wait "$LG_PID" || rc=$?
		forget_pid "$LG_PID"
		# Another test may have taken the port between freeport and bind: retry.
		if [[ -z ${LG_NO_LISTEN:-} ]] && grep -qi 'in use' "$LG_LOG"; then
			log "port $PORT was taken meanwhile; trying another"
			continue
		fi
		fail "lungate exited with status $rc before accepting connections on 127.0.0.1:$PORT"
	done
	fail "could not start lungate on a free port in 3 attempts"
}

# config_one_lun FILE IQN PLUGIN NAME DEV: a saveconfig.json with one target
# (demo-mode ACLs, no authentication) whose LUN 0 is the storage object
# PLUGIN/NAME on DEV.
config_one_lun() {
	cat >"$1" <<JSON
{
  "storage_objects": [ { "plugin": "$3", "name": "$4", "dev": "$5" } ],
  "targets": [ {
    "wwn": "$2", "fabric": "iscsi",
    "tpgs": [ { "tag": 1, "enable": true,
      "attributes": { "generate_node_acls": 1, "authentication": 0, "demo_mode_write_protect": 0 },
      "luns": [ { "index": 0, "storage_object": "/backstores/$3/$4" } ] } ]
  } ]
}
JSON
}

# stop_lungate [PID]: send SIGTERM and require exit status 0 within 30 s.
stop_lungate() {
	local pid=${1:-$LG_PID} i rc=0
	if ! kill -TERM "$pid" 2>/dev/null; then
		exit_status "$pid"
		fail "lungate (pid $pid) was no longer running when it was to be stopped ($EXIT_HOW)"
	fi
	for ((i = 0; i < 300; i++)); do
		pid_alive "$pid" || break
		sleep 0.1
	done
	if pid_alive "$pid"; then
		fail "lungate (pid $pid) did not exit within 30 s of SIGTERM"
	fi
	wait "$pid" || rc=$?
	forget_pid "$pid"
	((rc == 0)) || fail "lungate (pid $pid) exited with status $rc after SIGTERM (expected 0)"
	log "lungate (pid $pid) stopped with status 0"
}

# assert_alive [PID]: the gateway must still be running.
assert_alive() {
	local pid=${1:-$LG_PID}
	pid_alive "$pid" || fail "lungate (pid $pid) is no longer running"
}

# make_random_image FILE MIB [EXTRA-BYTES]: FILE of MIB MiB (+ EXTRA) of random bytes.
make_random_image() {
	local file=$1 mib=$2 extra=${3:-0}
	head -c "$((mib * 1048576 + extra))" /dev/urandom >"$file"
}

# file_size FILE: its size in bytes.
file_size() {
	stat -c %s "$1"
}

# fill_bytes BYTE COUNT: COUNT copies of BYTE (0..255) on stdout.
fill_bytes() {
	head -c "$2" /dev/zero | tr '\0' "\\$(printf '%03o' "$1")"
}

# splice_file DEST OFFSET SRC: overwrite DEST at byte OFFSET with SRC's content.
splice_file() {
	dd if="$3" of="$1" bs=4096 seek="$2" oflag=seek_bytes conv=notrunc status=none
}

# iscsi_url [LUN] [IQN] [HOST] [PORT]: the URL of a LUN of the gateway started last.
iscsi_url() {
	printf 'iscsi://%s:%s/%s/%s' "${3:-127.0.0.1}" "${4:-$PORT}" "${2:-$IQN}" "${1:-0}"
}

# count_established PORT [STATES]: server-side TCP sockets on PORT (IPv4 and
# IPv6) in one of STATES (hex codes of /proc/net/tcp; default 01, established).
count_established() {
	local hexport
	hexport=$(printf '%04X' "$1")
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		awk -v p=":$hexport" -v states=" ${2:-01} " '
			substr($2, length($2) - 4) == p && index(states, " " $4 " ") { n++ }
			END { print n + 0 }'
}
