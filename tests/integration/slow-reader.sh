#!/usr/bin/env bash
# Cached reads are sent straight from the page cache (the image's mapping),
# with the LUN locked against atomic writes until the kernel has the data.
# An initiator that queues sixteen 1 MiB READs and then stops reading fills
# the socket: the gateway must not wait for it with the LUN locked, but copy
# what is left and send it from the copy.  Checked here, for a raw image and
# for a fresh client of a copy-on-write LUN (whose reads are the base's):
# every read matches the image byte for byte, the gateway logs that it took
# the copying path, and a WRITE ATOMIC afterwards completes and reads back
# (a read that left the LUN locked would hold it off).
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd cat
[[ -x ${SLOW_READER:-} ]] || fail "SLOW_READER (lg-slow-reader) is not set"

IQN=$LG_IQN_PREFIX:slow-reader
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 64
cp "$IMG" "$LG_TMP/disk.orig"

# check WHAT IMAGE: one stalled round against the gateway started last
check() {
	cat "$IMG" >/dev/null # in the page cache, so that reads take the mapped path
	local out
	out=$(run "$SLOW_READER" "127.0.0.1:$PORT" "$IQN" 0 "$2" 16 1048576 500) ||
		fail "$1: lg-slow-reader failed: $out"
	[[ $out == ok ]] || fail "$1: lg-slow-reader said: $out"
	grep -q 'socket full' "$LG_LOG" ||
		fail "$1: the gateway never found the socket full; the test did not stall it"
	assert_alive
	log "$1: stalled reads arrive whole, and the LUN is not left locked"
}

start_lungate --log-level debug --image "$IMG" --iqn "$IQN"
check "raw image" "$LG_TMP/disk.orig"
stop_lungate

cp "$LG_TMP/disk.orig" "$IMG"
mkdir -p "$LG_TMP/overlays"
start_lungate --log-level debug --image "$IMG" --iqn "$IQN" --cow "$LG_TMP/overlays"
check "copy-on-write, fresh client" "$LG_TMP/disk.orig"
cmp -s "$IMG" "$LG_TMP/disk.orig" || fail "the cow LUN's base changed"
stop_lungate
log "ok"
