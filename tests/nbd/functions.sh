# shellcheck shell=bash
# Helpers of the NBD backstore tests (tests/nbd/*.sh but boot.sh): sourced.
#
# They build on tests/integration/functions.sh (free ports, starting and
# stopping the gateway by pid, the EXIT trap that ends every process a test
# started and prints the gateway's log on failure) and add: configs with nbd,
# qcow2 and user storage objects, NBD servers of the test's own (nbdkit,
# qemu-nbd) started and killed by pid, the gateway's qemu-nbd children found by
# parent pid, and qemu-io wrappers that check success, or failure with the
# expected SCSI sense within a time bound.
#
# Environment (set by tests/nbd/CMakeLists.txt):
#   LUNGATE   the lungate binary      FREEPORT  tests/integration's freeport helper

# shellcheck source=../integration/functions.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/functions.sh"

require_cmd qemu-img qemu-io qemu-nbd nbdkit cmp sha256sum ps

# Commands the EXIT trap runs (with errexit off) before lg_cleanup ends every
# process and prints the logs; e.g. to thaw a server the test froze.
NBD_EXIT_HOOKS=()
nbd_on_exit() {
	local rc=$? h
	[[ $BASHPID == "$$" ]] || exit "$rc" # see lg_cleanup
	set +e
	for h in "${NBD_EXIT_HOOKS[@]}"; do
		eval "$h"
	done
	(exit "$rc")
	lg_cleanup
}
trap nbd_on_exit EXIT

# Where unix sockets go: $LG_TMP unless its path is too long for sun_path.
# shellcheck disable=SC2034 # used by the test scripts
NBD_SOCK_DIR=$LG_TMP
if ((${#LG_TMP} > 70)); then
	# shellcheck disable=SC2034 # used by the test scripts
	NBD_SOCK_DIR=$(mktemp -d /tmp/lg-nbd.XXXXXX)
	# shellcheck disable=SC2016 # expanded when the hook runs
	NBD_EXIT_HOOKS+=('rm -rf "$NBD_SOCK_DIR"')
fi

# Seconds a failing command may take before the failure counts as a hang: the
# backstore's "timeout" in these tests is 2 s and stalls are checked every
# second; the rest is slack for AddressSanitizer builds on a busy machine.
NBD_FAIL_SECS=${NBD_FAIL_SECS:-12}
# Seconds the gateway may take to use a server again once it is back (the
# reconnect backoff is at most 5 s).
NBD_RECOVER_SECS=${NBD_RECOVER_SECS:-20}

# ---- configuration ----

# so_qcow2 NAME IMAGE [EXTRA-JSON]: a "qcow2" storage object.
so_qcow2() {
	printf '{"plugin": "qcow2", "name": "%s", "dev": "%s"%s}' "$1" "$2" "${3:+, $3}"
}

# so_nbd NAME URI [EXTRA-JSON]: an "nbd" storage object.
so_nbd() {
	printf '{"plugin": "nbd", "name": "%s", "uri": "%s"%s}' "$1" "$2" "${3:+, $3}"
}

# so_user NAME IMAGE SIZE: rtslib-fb's tcmu "user" object with config qcow/PATH,
# with the keys targetcli saves for one.
so_user() {
	printf '{"plugin": "user", "name": "%s", "config": "qcow/%s", "size": %s, "wwn": "%s", "hw_max_sectors": 128, "control": "", "alua_tpgs": []}' \
		"$1" "$2" "$3" "6a1b2c3d-0000-4000-8000-00000000$(printf '%04x' "$RANDOM")"
}

# write_config FILE IQN LUNS STORAGE-OBJECT-JSON...: a config with those
# storage objects and one target IQN (generated ACLs) whose LUN i is the i-th
# word of LUNS ("/backstores/<plugin>/<name>").
write_config() {
	local file=$1 iqn=$2 luns=$3 sep='' so lun i=0
	shift 3
	{
		printf '{"storage_objects": [\n'
		for so in "$@"; do
			printf '%s  %s' "$sep" "$so"
			sep=$',\n'
		done
		printf '],\n "targets": [{"wwn": "%s", "fabric": "iscsi", "tpgs": [{"tag": 1, "enable": true,\n' "$iqn"
		printf '   "attributes": {"generate_node_acls": 1, "authentication": 0, "demo_mode_write_protect": 0},\n'
		printf '   "luns": ['
		sep=''
		for lun in $luns; do
			printf '%s\n     {"index": %d, "storage_object": "%s"}' "$sep" "$i" "$lun"
			sep=,
			i=$((i + 1))
		done
		printf ']}]}]}\n'
	} >"$file"
}

# ---- NBD servers of the test's own ----

# start_nbdkit PORT ARGS...: `nbdkit -f -i 127.0.0.1 -p PORT ARGS...` in the
# background (NBDKIT_PID; its log in $LG_TMP/nbdkit.PORT.TRY.log), once it accepts.
# The port may still be held for a moment by a server just killed: retried.
start_nbdkit() {
	local port=$1 try log
	shift
	for ((try = 0; try < 20; try++)); do
		log=$LG_TMP/nbdkit.$port.$try.log
		nbdkit -f -i 127.0.0.1 -p "$port" "$@" </dev/null >"$log" 2>&1 &
		NBDKIT_PID=$!
		LG_PIDS+=("$NBDKIT_PID")
		if wait_port "$NBDKIT_PID" 127.0.0.1 "$port" 10; then
			log "nbdkit (pid $NBDKIT_PID) serves on 127.0.0.1:$port: $*"
			return 0
		fi
		if pid_alive "$NBDKIT_PID"; then
			fail "nbdkit (pid $NBDKIT_PID) did not accept on 127.0.0.1:$port within 10 s: $(cat "$log")"
		fi
		wait "$NBDKIT_PID" 2>/dev/null || true
		forget_pid "$NBDKIT_PID"
		grep -qi 'in use' "$log" || fail "nbdkit failed to start: $(cat "$log")"
		sleep 0.5
	done
	fail "nbdkit could not bind 127.0.0.1:$port in 10 s"
}

# start_qemu_nbd SOCKET ARGS...: `qemu-nbd -k SOCKET ARGS...` in the background
# (QEMU_NBD_PID), once the socket accepts.
start_qemu_nbd() {
	local sock=$1 i
	shift
	rm -f "$sock"
	qemu-nbd -k "$sock" "$@" </dev/null >"$LG_TMP/qemu-nbd.log" 2>&1 &
	QEMU_NBD_PID=$!
	LG_PIDS+=("$QEMU_NBD_PID")
	for ((i = 0; i < 100; i++)); do
		[[ -S $sock ]] && break
		pid_alive "$QEMU_NBD_PID" || fail "qemu-nbd $* exited: $(cat "$LG_TMP/qemu-nbd.log")"
		sleep 0.1
	done
	[[ -S $sock ]] || fail "qemu-nbd (pid $QEMU_NBD_PID) made no socket $sock in 10 s"
	log "qemu-nbd (pid $QEMU_NBD_PID) serves on $sock: $*"
}

# kill9 PID: SIGKILL a process this test started, and reap it.
kill9() {
	kill -KILL "$1" 2>/dev/null || fail "pid $1 was not running when it was to be killed"
	wait "$1" 2>/dev/null || true
	forget_pid "$1"
}

# ---- the gateway's own qemu-nbd ----

# children PID: the pids of PID's child processes, one a line.
children() {
	ps -o pid= --ppid "$1" | tr -d ' '
}

# qemu_nbd_children [PID]: the gateway's children that are qemu-nbd, one a line.
qemu_nbd_children() {
	local p
	for p in $(children "${1:-$LG_PID}"); do
		[[ $(cat "/proc/$p/comm" 2>/dev/null) == qemu-nbd ]] && echo "$p"
	done
	return 0
}

# cmdline PID: the command line of PID, arguments separated by spaces.
cmdline() {
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null
}

# child_for IMAGE [PID]: the pid of the gateway's qemu-nbd serving IMAGE.
child_for() {
	local p
	for p in $(qemu_nbd_children "${2:-$LG_PID}"); do
		[[ " $(cmdline "$p")" == *" $1 "* ]] && { echo "$p"; return 0; }
	done
	return 1
}

# unix_listen_paths PID: the paths of the unix sockets PID has open, one a line.
unix_listen_paths() {
	local inodes
	inodes=$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null |
		sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | sort -u)
	[[ -n $inodes ]] || return 0
	awk -v list=" $(tr '\n' ' ' <<<"$inodes")" \
		'NR > 1 && NF >= 8 && index(list, " " $7 " ") { print $8 }' /proc/net/unix | sort -u
}

# wait_gone SECONDS PID...: every PID must have ended (zombie or gone) within
# SECONDS. (After the gateway is gone its orphans are reparented, and whether
# PID 1 of a container reaps them is not the gateway's business.)
wait_gone() {
	local secs=$1 p i left
	shift
	for ((i = 0; i <= secs * 10; i++)); do
		left=
		for p in "$@"; do
			pid_alive "$p" && left+=" $p"
		done
		[[ -z $left ]] && return 0
		sleep 0.1
	done
	for p in $left; do
		fail "pid $p ($(cmdline "$p")) is still running $secs s later"
	done
}

# wait_reaped SECONDS PID...: every PID (a child of the running gateway) must
# be gone from the process table, zombie included, within SECONDS: the
# gateway has waited for it.
wait_reaped() {
	local secs=$1 p i left
	shift
	for ((i = 0; i <= secs * 10; i++)); do
		left=
		for p in "$@"; do
			[[ -d /proc/$p ]] && left+=" $p"
		done
		[[ -z $left ]] && return 0
		sleep 0.1
	done
	for p in $left; do
		fail "pid $p ($(cmdline "$p")) still exists $secs s later, state $(ps -o stat= -p "$p") (not reaped by the gateway?)"
	done
}

# ---- clients ----

# lun_url LUN: the iscsi:// URL of LUN of $IQN on the gateway started last.
lun_url() {
	iscsi_url "$1" "$IQN"
}

# qio_ok WHAT URL QEMU-IO-ARGS...: qemu-io (raw, read-write) on URL must succeed
# with no error or failed verification. Output in QIO_OUT.
qio_ok() {
	local what=$1 url=$2
	shift 2
	QIO_OUT=$(run qemu-io -f raw "$url" "$@" 2>&1) ||
		fail "$what: qemu-io on $url failed: $QIO_OUT"
	if grep -Eqi 'verification failed|failed|error' <<<"$QIO_OUT"; then
		fail "$what: qemu-io on $url reported a failure: $QIO_OUT"
	fi
}

# qio_ro_ok WHAT URL QEMU-IO-ARGS...: the same, read-only (for the NBD side).
qio_ro_ok() {
	local what=$1 url=$2
	shift 2
	QIO_OUT=$(run qemu-io -r -f raw "$url" "$@" 2>&1) ||
		fail "$what: qemu-io -r on $url failed: $QIO_OUT"
	if grep -Eqi 'verification failed|failed|error' <<<"$QIO_OUT"; then
		fail "$what: qemu-io -r on $url reported a failure: $QIO_OUT"
	fi
}

# qio_sense WHAT KEYS ASCQS URL QEMU-IO-ARGS...: qemu-io on URL must report a
# failed command within NBD_FAIL_SECS (not hang), and the SCSI sense it got
# (libiscsi prints "SENSE KEY:...(K) ASCQ:...(0xAAQQ)") must have a key in
# KEYS and an ASC/ASCQ in ASCQS (space-separated; ASCQS "" accepts any).
# Sets QIO_OUT, QIO_KEY, QIO_ASCQ, QIO_SECS.
qio_sense() {
	local what=$1 keys=$2 ascqs=$3 url=$4 start end rc=0
	shift 4
	start=$(date +%s%N)
	QIO_OUT=$(timeout --kill-after=5 "$((NBD_FAIL_SECS + 20))" qemu-io -f raw "$url" "$@" 2>&1) || rc=$?
	end=$(date +%s%N)
	QIO_SECS=$(((end - start) / 1000000000))
	((rc != 124 && rc != 137)) || fail "$what: qemu-io hung (killed after $((NBD_FAIL_SECS + 20)) s): $QIO_OUT"
	grep -Eqi 'failed|error' <<<"$QIO_OUT" ||
		fail "$what: qemu-io succeeded but the command should have failed: $QIO_OUT"
	((QIO_SECS <= NBD_FAIL_SECS)) ||
		fail "$what: the failure took $QIO_SECS s (more than $NBD_FAIL_SECS s): $QIO_OUT"
	local re='SENSE KEY:.*[(]([0-9]+)[)] ASCQ:.*[(](0x[0-9a-fA-F]+)[)]'
	if [[ $QIO_OUT =~ $re ]]; then
		QIO_KEY=${BASH_REMATCH[1]}
		QIO_ASCQ=${BASH_REMATCH[2],,}
	else
		fail "$what: qemu-io failed without a SCSI sense (a status other than CHECK CONDITION, or a lost connection?): $QIO_OUT"
	fi
	[[ " $keys " == *" $QIO_KEY "* ]] ||
		fail "$what: sense key $QIO_KEY, expected one of: $keys ($QIO_OUT)"
	[[ -z $ascqs || " ${ascqs,,} " == *" $QIO_ASCQ "* ]] ||
		fail "$what: ASC/ASCQ $QIO_ASCQ, expected one of: $ascqs ($QIO_OUT)"
	log "$what: failed as expected in ${QIO_SECS}s with sense key $QIO_KEY, ASC/ASCQ $QIO_ASCQ"
}

# poll_ok WHAT SECONDS URL QEMU-IO-ARGS...: retry qemu-io until it succeeds
# with no error (at most SECONDS); then require it to succeed twice more in a
# row (every connection of the backstore is back, not just one).
poll_ok() {
	local what=$1 secs=$2 url=$3 start out ok=0
	shift 3
	start=$SECONDS
	while ((SECONDS - start < secs)); do
		assert_alive
		if out=$(timeout --kill-after=5 30 qemu-io -f raw "$url" "$@" 2>&1) &&
			! grep -Eqi 'verification failed|failed|error' <<<"$out"; then
			ok=1
			break
		fi
		sleep 0.5
	done
	((ok)) || fail "$what: still failing $secs s later: $out"
	log "$what: works again after $((SECONDS - start)) s"
	qio_ok "$what (again)" "$url" "$@"
	qio_ok "$what (and again)" "$url" "$@"
}

# read_lun URL FILE: the whole LUN through iSCSI into FILE (qemu-img convert).
read_lun() {
	rm -f "$2"
	run qemu-img convert -f raw -O raw "$1" "$2" 2>&1 || fail "qemu-img convert from $1 failed"
}

# same_file WHAT EXPECTED GOT: the files must be equal byte for byte.
same_file() {
	local diff
	if ! diff=$(cmp "$2" "$3" 2>&1); then
		fail "$1: $3 differs from $2 ($diff; first differing bytes: $(cmp -l "$2" "$3" 2>/dev/null | head -n 3 | tr '\n' ' '))"
	fi
}

# patch_raw FILE OFFSET LENGTH BYTE...: overwrite the ranges of FILE with BYTE
# (what a client that wrote them should see), independently of the gateway.
patch_raw() {
	local file=$1 chunk=$LG_TMP/chunk.bin
	shift
	while (($# >= 3)); do
		fill_bytes "$(($3))" "$2" >"$chunk"
		splice_file "$file" "$1" "$chunk"
		shift 3
	done
	rm -f "$chunk"
}

# image_equals WHAT FORMAT IMAGE RAW: IMAGE (read by qemu as FORMAT) holds
# exactly RAW's bytes, and passes qemu-img check where FORMAT has one.
image_equals() {
	local out
	if [[ $2 == qcow2 || $2 == vdi ]]; then
		out=$(qemu-img check -f "$2" "$3" 2>&1) || fail "$1: qemu-img check $3: $out"
	fi
	out=$(qemu-img compare -f "$2" -F raw "$3" "$4" 2>&1) ||
		fail "$1: $3 ($2) does not hold the expected bytes: $out"
}

# sha FILE: its SHA-256.
sha() {
	sha256sum "$1" | cut -d' ' -f1
}
