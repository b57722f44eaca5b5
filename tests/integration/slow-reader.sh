#!/usr/bin/env bash
# An initiator that queues sixteen 1 MiB READs and then stops reading fills
# the socket, and the gateway must neither wait for it holding a lock others
# need nor lose a byte:
# - cached reads are sent straight from the page cache (the image's
#   mapping), with the LUN locked against atomic writes until the kernel has
#   the data; when the socket is full, what is left is copied and sent from
#   the copy, the LUN let go.  Raw image, and a fresh client of a
#   copy-on-write LUN (whose reads are the base's).
# - qcow2 reads are answered by the NBD connection's thread when the socket
#   takes the answer at once; when it does not, a worker sends the rest.
# Each case checks every read byte for byte, that the gateway logged the
# path under test, and that a WRITE ATOMIC afterwards completes and reads
# back (a read that left the LUN or the connection locked would hold it off).
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd cat qemu-img qemu-nbd
[[ -x ${SLOW_READER:-} ]] || fail "SLOW_READER (lg-slow-reader) is not set"

IQN=$LG_IQN_PREFIX:slow-reader
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 64
cp "$IMG" "$LG_TMP/disk.orig"

# check WHAT IMAGE LOGGED: one stalled round against the gateway started
# last, whose log must then say LOGGED
check() {
	cat "$IMG" >/dev/null # in the page cache, so that reads take the mapped path
	local out
	out=$(run "$SLOW_READER" "127.0.0.1:$PORT" "$IQN" 0 "$2" 16 1048576 500) ||
		fail "$1: lg-slow-reader failed: $out"
	[[ $out == ok ]] || fail "$1: lg-slow-reader said: $out"
	grep -q "$3" "$LG_LOG" ||
		fail "$1: the gateway never logged '$3': the test did not stall the path it tests"
	assert_alive
	log "$1: stalled reads arrive whole, and nothing is left locked"
}
COPIED='socket full or busy; the rest of a cached read is sent from a copy'

start_lungate --log-level debug --image "$IMG" --iqn "$IQN"
check "raw image" "$LG_TMP/disk.orig" "$COPIED"
stop_lungate

cp "$LG_TMP/disk.orig" "$IMG"
mkdir -p "$LG_TMP/overlays"
start_lungate --log-level debug --image "$IMG" --iqn "$IQN" --cow "$LG_TMP/overlays"
check "copy-on-write, fresh client" "$LG_TMP/disk.orig" "$COPIED"
cmp -s "$IMG" "$LG_TMP/disk.orig" || fail "the cow LUN's base changed"
stop_lungate

QCOW=$LG_TMP/disk.qcow2
qemu-img convert -f raw -O qcow2 "$LG_TMP/disk.orig" "$QCOW" || fail "qemu-img convert -O qcow2 failed"
config_one_lun "$LG_TMP/qcow2.json" "$IQN" qcow2 q "$QCOW"
start_lungate --log-level debug -c "$LG_TMP/qcow2.json"
check "qcow2 through qemu-nbd" "$LG_TMP/disk.orig" "a worker sends the rest of a read's answer"
stop_lungate
log "ok"
