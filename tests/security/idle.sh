#!/usr/bin/env bash
# security.idle: 300 idle TCP connections (and 50 that stop in the middle of a
# login PDU) do not lock out a real client; once they have idled past the
# grace period the gateway closes the oldest of them to make room for new
# ones; then they all go and the gateway still serves.
# shellcheck source=../integration/functions.sh
. "$SRCDIR/functions.sh"
require_cmd iscsi-readcapacity16

img=$LG_TMP/disk.img
make_random_image "$img" 4
IQN=$LG_IQN_PREFIX:idle
start_lungate --image "$img" --iqn "$IQN"
fds=()
for ((i = 0; i < 300; i++)); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" || fail "connection $i was refused"
	fds+=("$fd")
done
for ((i = 0; i < 50; i++)); do # half a BHS, then nothing
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" || fail "connection was refused"
	printf '\x43\x87\x00\x00\x00\x00\x00\x40\x00\x02\x3d\x00\x00\x00' >&"$fd"
	fds+=("$fd")
done
run iscsi-readcapacity16 "iscsi://127.0.0.1:$PORT/$IQN/0" | grep -q '^Total size:4194304$' ||
	fail "a real client could not log in past 350 idle connections"
# once they have idled past the grace period, new connections from the same
# address push the oldest idle ones out
sleep 3
for ((i = 0; i < 5; i++)); do
	run iscsi-readcapacity16 "iscsi://127.0.0.1:$PORT/$IQN/0" | grep -q '^Total size:4194304$' ||
		fail "a real client could not log in past the idle connections (round $i)"
done
n=$(grep -c 'closed to make room' "$LG_LOG" || true)
((n >= 5)) || fail "only $n idle connections were closed to make room"
for fd in "${fds[@]}"; do exec {fd}>&-; done
assert_alive
run iscsi-readcapacity16 "iscsi://127.0.0.1:$PORT/$IQN/0" | grep -q '^Total size:4194304$' ||
	fail "the gateway does not serve after the idle connections went"
stop_lungate
log "PASS"
