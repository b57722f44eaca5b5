#!/usr/bin/env bash
# "quota" (bytes per overlay; here 4 cow blocks, 256 KiB): a client may fill
# four blocks; a write that needs a fifth fails with CHECK CONDITION, DATA
# PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT (27h/07h), seen by libiscsi
# (lg-cow-client) and as a failed write by qemu-io; the gateway's log names
# the client and the quota. Nothing else breaks: the client's earlier data
# reads back, writes into its allocated blocks still work, another client has
# its own quota, the gateway keeps running, and after a restart (the
# allocation re-read from the map) the quota still holds.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
QUOTA=$((4 * COW_BLOCK))
make_random_image "$BASE" 8
base_sha=$(sha "$BASE")
cow_config "$CFG" "$BASE" "$OV" "\"quota\": $QUOTA"
start_lungate -c "$CFG"
Q1=$(ini quota1)
Q2=$(ini quota2)

# client_write NAME OFFSET LENGTH BYTE: lg-cow-client's verdict in OUT, status in RC.
client_write() {
	RC=0
	OUT=$(run "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$1" write "$2" "$3" "$4" 2>&1) || RC=$?
}
expect_space_error() { # WHAT
	((RC == 3)) || fail "$1: expected CHECK CONDITION (status 3 of lg-cow-client), got status $RC: $OUT"
	grep -q 'sense key=0x07 asc=0x27 ascq=0x07' <<<"$OUT" ||
		fail "$1: expected DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT (key 7, 27h/07h): $OUT"
}

# Four blocks: a sub-block write, a whole block, and two blocks at once.
qio "$Q1" -c 'write -P 0x91 1000k 512' -c 'write -P 0x92 2M 64k' -c 'write -P 0x93 4M 128k' -c flush
# A fifth block: refused.
client_write "$Q1" $((6 << 20)) 512 0x94
expect_space_error "a write into a fifth block"
qio_fails "$Q1" -c 'write -P 0x95 7M 64k'
log "qemu-io's view of the refused write: $QIO_OUT"
# (the client's name has "quota" in it: leave out its login and logout lines)
quota_lines=$(grep -F "$Q1" "$LG_LOG" | grep -Ev 'msg="(login|logout)"' | grep -i 'quota') ||
	fail "the gateway's log has no line about the quota naming $Q1"
log "gateway: ${quota_lines%%$'\n'*}"

# Nothing else broke.
qio "$Q1" -c 'read -P 0x91 1000k 512' -c 'read -P 0x92 2M 64k' -c 'read -P 0x93 4M 128k'
client_write "$Q1" $((2 << 20)) 4096 0x96      # inside an allocated block
((RC == 0)) || fail "a write inside an already allocated block failed at the quota: $OUT"
qio "$Q1" -c 'read -P 0x96 2M 4k' -c 'read -P 0x92 2052k 60k' -c 'read -P 0x91 1000k 512'
cp "$BASE" "$LG_TMP/expect1.img"
patch_image "$LG_TMP/expect1.img" $((1000 << 10)) 512 0x91 $((2 << 20)) 65536 0x92 $((4 << 20)) 131072 0x93 \
	$((2 << 20)) 4096 0x96
expect_disk "$Q1" "quota1's four blocks over the base (the refused writes left no trace)" "$LG_TMP/expect1.img"

qio "$Q2" -c 'write -P 0xa1 0 256k' -c flush    # another client: its own four blocks
client_write "$Q2" $((256 << 10)) 512 0xa2
expect_space_error "quota2's fifth block"
assert_alive

# After a restart the allocation comes from the map: the quota still holds.
stop_lungate
start_lungate -c "$CFG"
client_write "$Q1" $((6 << 20)) 512 0x94
expect_space_error "a fifth block after a restart"
expect_disk "$Q1" "quota1's disk after a restart" "$LG_TMP/expect1.img"
stop_lungate
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"
log "PASS"
