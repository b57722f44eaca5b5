#!/usr/bin/env bash
# NOP-In pings (the TPG attributes nopin_timeout / nopin_response_timeout):
# - on (1 s / 2 s): a client that answers (QEMU's iSCSI driver, through
#   qemu-io idling in `sleep`) keeps its one session through several pings;
#   the same client stopped with SIGSTOP answers nothing and is dropped, and
#   the gateway says why;
# - off (the default, since iPXE never answers): a stopped client is never
#   pinged nor dropped, and finishes its work once continued.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd qemu-io

IQN=$LG_IQN_PREFIX:nopin
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 8

# config NOPIN-ATTRIBUTES: a config serving IMG, with these extra TPG attributes.
config() {
	cat <<EOF
{"storage_objects": [{"plugin": "fileio", "name": "d", "dev": "$IMG"}],
 "targets": [{"wwn": "$IQN", "fabric": "iscsi", "tpgs": [{"tag": 1, "enable": true,
   "attributes": {"authentication": 0, "generate_node_acls": 1, "demo_mode_write_protect": 0$1},
   "portals": [{"ip_address": "127.0.0.1", "port": 3260}],
   "luns": [{"index": 0, "storage_object": "/backstores/fileio/d"}]}]}]}
EOF
}

# qemu_io_start MS: qemu-io logs in, idles MS ms in its event loop, then reads
# block 0 (QPID; its output in $LG_TMP/qemu-io.out).
qemu_io_start() {
	qemu-io -f raw -c "sleep $1" -c "read 0 512" "$(iscsi_url 0)" \
		</dev/null >"$LG_TMP/qemu-io.out" 2>&1 &
	QPID=$!
	LG_PIDS+=("$QPID")
}

# wait_log PATTERN SECONDS [COUNT]: wait until the gateway log has more than
# COUNT (default 0) lines matching PATTERN.
wait_log() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		(($(grep -c "$1" "$LG_LOG") > ${3:-0})) && return 0
		sleep 0.1
	done
	return 1
}

# qemu_io_end: wait for qemu-io and require that its read succeeded.
qemu_io_end() {
	local rc=0
	wait "$QPID" || rc=$?
	forget_pid "$QPID"
	((rc == 0)) || fail "qemu-io exited with status $rc: $(cat "$LG_TMP/qemu-io.out")"
	grep -q '^read 512/512 bytes at offset 0' "$LG_TMP/qemu-io.out" ||
		fail "qemu-io did not read block 0: $(cat "$LG_TMP/qemu-io.out")"
}

config ', "nopin_timeout": 1, "nopin_response_timeout": 2' >"$LG_TMP/on.json"
config '' >"$LG_TMP/off.json"

# --- on: an answering client keeps its session ---
start_lungate -v -c "$LG_TMP/on.json"
qemu_io_start 7000
qemu_io_end
answered=$(grep -c 'NOP-In ping answered' "$LG_LOG" || true)
((answered >= 3)) || fail "expected several answered NOP-In pings in 7 s idle at nopin_timeout 1, saw $answered"
logins=$(grep -c 'level=info login: .*target=' "$LG_LOG" || true)
((logins == 1)) || fail "qemu-io logged in $logins times: its session did not survive the pings"
if grep -q 'did not answer a NOP-In ping' "$LG_LOG"; then
	fail "the gateway dropped a client that answered its pings"
fi
log "an answering client kept its session through $answered pings"

# --- on: a stopped client is dropped, and the log says why ---
qemu_io_start 60000
wait_log 'NOP-In ping answered' 30 "$answered" || fail "no ping answered before the client was stopped"
kill -STOP "$QPID"
wait_log 'did not answer a NOP-In ping within 2 s' 30 ||
	fail "a stopped client was not dropped within 30 s at nopin_timeout 1 / nopin_response_timeout 2"
for ((i = 0; i < 100; i++)); do
	(($(count_established "$PORT") == 0)) && break
	sleep 0.1
done
(($(count_established "$PORT") == 0)) || fail "the connection of the stopped client is still established"
log "a client that stopped answering was dropped: $(grep -m1 'did not answer' "$LG_LOG" | sed 's/.*level=warn //')"
kill -KILL "$QPID" 2>/dev/null || true
wait "$QPID" 2>/dev/null || true
forget_pid "$QPID"
assert_alive
stop_lungate

# --- off: no pings, a stopped client keeps its session ---
start_lungate -v -c "$LG_TMP/off.json"
qemu_io_start 2000
wait_log 'level=info login: .*target=' 30 || fail "qemu-io did not log in"
kill -STOP "$QPID"
sleep 8 # several times nopin_timeout + nopin_response_timeout of the run above
(($(count_established "$PORT") == 1)) || fail "with pings off, the stopped client's connection was dropped"
kill -CONT "$QPID"
qemu_io_end
if grep -q 'NOP-In ping' "$LG_LOG"; then
	fail "the gateway sent NOP-In pings although the TPG does not ask for them"
fi
assert_alive
stop_lungate
log "PASS"
