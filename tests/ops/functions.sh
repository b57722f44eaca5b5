# shellcheck shell=bash
# Helpers of the tests of a running gateway's operation (tests/ops): sourced.
#
# They build on tests/cow/functions.sh (and through it tests/integration's:
# free ports, starting and stopping the gateway by pid, the EXIT trap) and add
# the control socket of the gateway under test and a few waits.
#
# Environment (set by tests/ops/CMakeLists.txt):
#   LUNGATE, FREEPORT, COW_CLIENT, BINDSRC as in tests/cow; SRCDIR this folder

# shellcheck source=../cow/functions.sh
source "$(dirname "${BASH_SOURCE[0]}")/../cow/functions.sh"

require_cmd iscsi-inq iscsi-ls iscsi-perf iscsi-readcapacity16 python3

# The control socket of the gateways these tests start (never the default one).
SOCK=$LG_TMP/control.sock

# ctl ARGS...: `lungate ARGS... --control $SOCK`; output in OUT, status in RC.
ctl() {
	RC=0
	OUT=$(run "$LUNGATE" "$@" --control "$SOCK" 2>&1) || RC=$?
	log "lungate $*: status $RC: $OUT"
}

# ctl_ok ARGS...: ctl, which must succeed.
ctl_ok() {
	ctl "$@"
	((RC == 0)) || fail "lungate $* failed (status $RC): $OUT"
}

# json_get EXPR: evaluate the Python expression EXPR with j = the JSON in $OUT.
json_get() {
	python3 -c 'import json, sys; j = json.loads(sys.stdin.read()); print(eval(sys.argv[1]))' "$1" <<<"$OUT"
}

# wait_log PATTERN [COUNT]: wait until the gateway's log has COUNT (default 1)
# lines matching the extended regular expression PATTERN.
wait_log() {
	local pat=$1 want=${2:-1} i
	for ((i = 0; i < 600; i++)); do
		(($(grep -cE -- "$pat" "$LG_LOG" || true) >= want)) && return 0
		assert_alive
		sleep 0.05
	done
	fail "the gateway did not log '$pat' (x$want) within 30 s"
}

# perf_start INITIATOR URL SECONDS: iscsi-perf reading URL as INITIATOR in the
# background (PERF_PID, output in PERF_OUT) until its session has logged in.
perf_start() {
	local before
	PERF_OUT=$LG_TMP/perf.$1.out
	before=$(grep -c "login: initiator=$1 " "$LG_LOG" || true)
	bg_start iscsi-perf -i "$1" -t "$3" "$2" >"$PERF_OUT" 2>&1
	PERF_PID=$BG_PID
	wait_log "login: initiator=$1 " $((before + 1))
}

# perf_wait: the iscsi-perf started last must end by itself, without an error.
perf_wait() {
	local rc=0
	wait "$PERF_PID" || rc=$?
	forget_pid "$PERF_PID"
	((rc == 0)) || fail "iscsi-perf exited with status $rc: $(tail -c 800 "$PERF_OUT")"
	grep -q 'finished' "$PERF_OUT" || fail "iscsi-perf did not finish: $(tail -c 800 "$PERF_OUT")"
	if grep -Eqi 'error|fail|reconnect' "$PERF_OUT"; then
		fail "iscsi-perf reported a problem: $(grep -Ei 'error|fail|reconnect' "$PERF_OUT" | head -n 3)"
	fi
}
