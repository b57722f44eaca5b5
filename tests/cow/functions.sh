# shellcheck shell=bash
# Helpers of the cow overlay tests (tests/cow/*.sh but ipxe.sh): sourced.
#
# They build on tests/integration/functions.sh (free ports, starting and
# stopping the gateway by pid, the EXIT trap that ends every process a test
# started and prints the gateway's log on failure) and add: a per-initiator
# cow config, qemu-io / qemu-img as a named initiator, and helpers to read a
# client's whole disk and compare it with an expected image.
#
# Environment (set by tests/cow/CMakeLists.txt):
#   LUNGATE   the lungate binary        FREEPORT  the freeport helper
#   COW_CLIENT  lg-cow-client (libiscsi) BINDSRC   libbindsrc.so (LD_PRELOAD)

# shellcheck source=../integration/functions.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/functions.sh"

: "${COW_CLIENT:?COW_CLIENT must name the lg-cow-client helper}"
: "${BINDSRC:?BINDSRC must name libbindsrc.so}"

require_cmd qemu-io qemu-img cmp sha256sum

IQN=$LG_IQN_PREFIX:cow
# shellcheck disable=SC2034 # used by the test scripts
COW_BLOCK=65536

# cow_config FILE BASE-FILE OVERLAY-DIR [EXTRA-JSON]: write a config with a
# fileio storage object "base" over BASE-FILE and a per-initiator cow storage
# object "c" over it (EXTRA-JSON: more members of the cow object, such as
# '"quota": 262144'), served as LUN 0 of $IQN with generated ACLs.
cow_config() {
	local file=$1 base=$2 dir=$3 extra=${4:-}
	[[ -z $extra ]] || extra=", $extra"
	cat >"$file" <<-EOF
		{"storage_objects": [
		  {"plugin": "fileio", "name": "base", "dev": "$base"},
		  {"plugin": "cow", "name": "c", "base": "/backstores/fileio/base",
		   "overlay_dir": "$dir", "per_initiator": true$extra}],
		 "targets": [{"wwn": "$IQN", "tpgs": [{"tag": 1,
		   "attributes": {"generate_node_acls": 1},
		   "luns": [{"index": 0, "storage_object": "/backstores/cow/c"}]}]}]}
	EOF
}

# ini NAME: the full initiator name of a test client.
ini() {
	printf '%s:%s' "$LG_IQN_PREFIX" "$1"
}

# image_opts INITIATOR: qemu's --image-opts for LUN 0 of $IQN on the gateway
# started last, as INITIATOR (commas doubled, as QemuOpts wants).
image_opts() {
	printf 'driver=iscsi,transport=tcp,portal=127.0.0.1:%s,target=%s,lun=0,initiator-name=%s' \
		"$PORT" "$IQN" "${1//,/,,}"
}

# qio INITIATOR QEMU-IO-ARGS...: run qemu-io as INITIATOR; fail the test if it
# fails or reports a failed pattern verification or I/O error (qemu-io 7.2
# exits 1 on those, but older ones exit 0). Output in QIO_OUT.
qio() {
	local who=$1
	shift
	QIO_OUT=$(run qemu-io --image-opts "$(image_opts "$who")" "$@" 2>&1) ||
		fail "qemu-io as $who failed ($*): $QIO_OUT"
	if grep -Eqi 'verification failed|failed:|error' <<<"$QIO_OUT"; then
		fail "qemu-io as $who reported a failure ($*): $QIO_OUT"
	fi
}

# qio_fails INITIATOR QEMU-IO-ARGS...: qemu-io as INITIATOR must report a failure.
qio_fails() {
	local who=$1
	shift
	if QIO_OUT=$(run qemu-io --image-opts "$(image_opts "$who")" "$@" 2>&1) &&
		! grep -Eqi 'verification failed|failed|error' <<<"$QIO_OUT"; then
		fail "qemu-io as $who succeeded but should have failed ($*): $QIO_OUT"
	fi
}

# read_disk INITIATOR FILE: the whole disk as INITIATOR sees it, into FILE.
read_disk() {
	rm -f "$2"
	run qemu-img convert --image-opts "$(image_opts "$1")" -O raw "$2" 2>&1 ||
		fail "qemu-img convert of $1's disk failed"
}

# expect_disk INITIATOR EXPECTED-FILE WHAT: INITIATOR's disk equals the file.
expect_disk() {
	local got=$LG_TMP/got.img diff
	read_disk "$1" "$got"
	if ! diff=$(cmp "$3" "$got" 2>&1); then
		fail "$1's disk is not $2 ($diff; first differing bytes: $(cmp -l "$3" "$got" 2>/dev/null | head -n 3 | tr '\n' ' '))"
	fi
	rm -f "$got"
}

# patch_image FILE OFFSET LENGTH BYTE [OFFSET LENGTH BYTE]...: overwrite those
# ranges of FILE with those bytes (what a client that wrote them should see).
patch_image() {
	"$COW_CLIENT" fill "$@" || fail "could not patch $1"
}

# sha FILE: its SHA-256.
sha() {
	sha256sum "$1" | cut -d' ' -f1
}

# overlay_files DIR: the names of the overlay files in DIR, one a line, sorted.
overlay_files() {
	find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort
}

# kill9_lungate [PID]: end the gateway with SIGKILL (a crash) and reap it.
kill9_lungate() {
	local pid=${1:-$LG_PID}
	kill -KILL "$pid" 2>/dev/null || fail "lungate (pid $pid) was not running when it was to be killed"
	wait "$pid" 2>/dev/null || true
	forget_pid "$pid"
}

# from_addr ADDR CMD...: run CMD with its connections made from ADDR (in
# 127.0.0.0/8), through the bindsrc shim.
from_addr() {
	local addr=$1
	shift
	LG_BIND_SRC=$addr LD_PRELOAD=$BINDSRC "$@"
}

# logins_of INITIATOR [LOG]: how many logins of INITIATOR LOG ($LG_LOG) shows.
logins_of() { grep -c "msg=\"login\" initiator=$1 " "${2:-$LG_LOG}" || true; }

# wait_login INITIATOR BEFORE [LOG]: wait (10 s at most) until LOG ($LG_LOG)
# shows more than BEFORE logins of INITIATOR; status 1 if it does not.
wait_login() {
	local i
	for ((i = 0; i < 200; i++)); do
		(($(logins_of "$1" "${3:-}") > $2)) && return 0
		sleep 0.05
	done
	return 1
}

# A client session held open for as long as a test needs: qemu-io as an
# initiator, reading its commands from a FIFO. One at a time.
#   session_open NAME        start it and wait until the gateway logs its login
#   session_cmd COMMAND      run one qemu-io command and wait until it is done
#   session_try COMMAND      run one, which may fail; its new output in TRY_OUT
#   session_close            quit; the session must not have reported a failure
#   session_quit             quit (a logout), whatever the session reported
#   session_kill             end it without a logout (after the gateway died)
session_open() {
	local who=$1 before i fifo
	SESSION_N=$((${SESSION_N:-0} + 1))
	fifo=$LG_TMP/session$SESSION_N.fifo
	SESSION_OUT=$LG_TMP/session$SESSION_N.out
	SESSION_WHO=$who
	SESSION_CMDS=0
	mkfifo "$fifo"
	before=$(grep -c "msg=\"login\" initiator=$who " "$LG_LOG" || true)
	# (not bg_start: a redirection of a function call would open the FIFO here)
	timeout --kill-after=10 "$LG_CMD_TIMEOUT" qemu-io --image-opts "$(image_opts "$who")" \
		<"$fifo" >"$SESSION_OUT" 2>&1 &
	SESSION_PID=$!
	LG_PIDS+=("$SESSION_PID")
	exec {SESSION_FD}>"$fifo"
	for ((i = 0; i < 400; i++)); do
		(($(grep -c "msg=\"login\" initiator=$who " "$LG_LOG" || true) > before)) && return 0
		pid_alive "$SESSION_PID" || fail "the session of $who ended at once: $(cat "$SESSION_OUT")"
		sleep 0.05
	done
	fail "the session of $who did not log in within 20 s: $(cat "$SESSION_OUT")"
}

session_cmd() {
	local i
	printf '%s\n' "$1" >&"$SESSION_FD"
	SESSION_CMDS=$((SESSION_CMDS + 1))
	for ((i = 0; i < 600; i++)); do
		# qemu-io prints a prompt (no newline) before each command it reads
		(($(grep -o 'qemu-io> ' "$SESSION_OUT" | wc -l) > SESSION_CMDS)) && break
		pid_alive "$SESSION_PID" || fail "the session of $SESSION_WHO ended during '$1': $(cat "$SESSION_OUT")"
		sleep 0.05
	done
	(($(grep -o 'qemu-io> ' "$SESSION_OUT" | wc -l) > SESSION_CMDS)) ||
		fail "the session of $SESSION_WHO did not finish '$1' within 30 s"
	if grep -Eqi 'verification failed|failed:|error' "$SESSION_OUT"; then
		fail "the session of $SESSION_WHO reported a failure after '$1': $(cat "$SESSION_OUT")"
	fi
}

session_try() {
	local before i
	before=$(wc -c <"$SESSION_OUT")
	printf '%s\n' "$1" >&"$SESSION_FD"
	SESSION_CMDS=$((SESSION_CMDS + 1))
	for ((i = 0; i < 1200; i++)); do
		(($(grep -o 'qemu-io> ' "$SESSION_OUT" | wc -l) > SESSION_CMDS)) && break
		pid_alive "$SESSION_PID" || fail "the session of $SESSION_WHO ended during '$1': $(cat "$SESSION_OUT")"
		sleep 0.05
	done
	(($(grep -o 'qemu-io> ' "$SESSION_OUT" | wc -l) > SESSION_CMDS)) ||
		fail "the session of $SESSION_WHO did not finish '$1' within 60 s: $(cat "$SESSION_OUT")"
	TRY_OUT=$(tail -c +$((before + 1)) "$SESSION_OUT")
	log "$SESSION_WHO: $1: $TRY_OUT"
}

session_quit() {
	printf 'quit\n' >&"$SESSION_FD"
	exec {SESSION_FD}>&-
	wait "$SESSION_PID" || true
	forget_pid "$SESSION_PID"
}

session_close() {
	local rc=0
	printf 'quit\n' >&"$SESSION_FD"
	exec {SESSION_FD}>&-
	wait "$SESSION_PID" || rc=$?
	forget_pid "$SESSION_PID"
	((rc == 0)) || fail "the session of $SESSION_WHO exited with status $rc: $(cat "$SESSION_OUT")"
	if grep -Eqi 'verification failed|failed:|error' "$SESSION_OUT"; then
		fail "the session of $SESSION_WHO reported a failure: $(cat "$SESSION_OUT")"
	fi
}

session_kill() {
	exec {SESSION_FD}>&-
	kill -TERM "$SESSION_PID" 2>/dev/null || true
	wait "$SESSION_PID" 2>/dev/null || true
	forget_pid "$SESSION_PID"
}
