#!/usr/bin/env bash
# Per-client layers in Ceph: a cow object whose base is an rbd snapshot and
# which has "overlay_pool" gives every initiator its own RBD clone (format 2)
# of that snapshot, created at its first login, named from the initiator name
# by an escaping that no name escapes from.
#
#  - client A writes and reads its writes back, again in a new session;
#    client B sees the base; the base image and snapshot are unchanged;
#  - `rbd ls` shows the two clones with their escaped names, `rbd info` a
#    format 2 clone of the base snapshot; the last use is in image-meta;
#  - a hostile initiator name gets a clone of its own, named with escapes;
#  - a clone whose parent is another snapshot is refused, the log says so;
#  - "quota" counts the clone's own RBD objects: past it, writes fail with
#    DATA PROTECT and the log names the client; after a restart too.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=../cow/functions.sh
source "$(dirname "$0")/../cow/functions.sh"

IQN=$LG_IQN_PREFIX:rbd-clones
rbd_cluster
rbd_clone_setup clones
start_lungate -c "$CFG"

A=$(ini pc-A)
B=$(ini pc-b)
qio "$A" -c 'write -P 0xa1 0 64k' -c 'write -P 0xa2 9M 4096' -c flush -c 'read -P 0xa1 0 64k'
qio "$A" -c 'read -P 0xa1 0 64k' -c 'read -P 0xa2 9M 4096'
cp "$BASE" "$LG_TMP/a.raw"
patch_raw "$LG_TMP/a.raw" 0 65536 0xa1 $((9 << 20)) 4096 0xa2
expect_disk "$A" "$A's writes over the base" "$LG_TMP/a.raw"
expect_disk "$B" "the base" "$BASE"

clones=$(rbd ls clients) || fail "rbd ls clients failed"
log "clones: $(tr '\n' ' ' <<<"$clones")"
want_a="lungate.clones+${A,,}"
grep -qxF "$want_a" <<<"$clones" || fail "no clone $want_a in pool clients: $clones"
grep -qxF "lungate.clones+${B,,}" <<<"$clones" || fail "no clone of $B in pool clients: $clones"
info=$(rbd info "clients/$want_a" 2>&1) || fail "rbd info: $info"
grep -q 'format: 2' <<<"$info" || fail "$want_a is not format 2: $info"
grep -q 'parent: rbd/golden@v1' <<<"$info" || fail "$want_a is not a clone of rbd/golden@v1: $info"
meta=$(rbd image-meta get "clients/$want_a" lungate.last_use) || fail "no lungate.last_use on $want_a: $meta"
[[ $meta =~ ^[0-9]+$ ]] || fail "lungate.last_use of $want_a is '$meta', want a time (no session is live)"

rbd_export golden@v1 "$LG_TMP/snap.raw"
same_file "the base snapshot after the clients wrote" "$BASE" "$LG_TMP/snap.raw"
rbd_export golden "$LG_TMP/head.raw"
same_file "the base image after the clients wrote" "$BASE" "$LG_TMP/head.raw"

# a hostile name: '/', '@' and '+' are escaped (%XX), never a pool, snapshot
# or storage object separator; '%' itself is escaped too, so the mapping is
# one to one
H1="$LG_IQN_PREFIX:../x/y@z+w"
qio "$H1" -c 'write -P 0xc1 0 4096' -c flush
clones=$(rbd ls clients)
grep -qxF "lungate.clones+${LG_IQN_PREFIX,,}:..%2fx%2fy%40z%2bw" <<<"$clones" ||
	fail "the clone of $H1 is not named with %XX escapes: $clones"
(($(wc -l <<<"$clones") == 3)) || fail "three clients, but not three clones: $clones"
expect_disk "$B" "the base, after $H1 wrote" "$BASE"

# a clone of another snapshot is refused
stop_lungate
run rbd snap create rbd/golden@v2 >/dev/null 2>&1
run rbd clone --rbd-default-clone-format 2 rbd/golden@v2 "clients/lungate.clones+${B,,}-odd" >/dev/null 2>&1 ||
	fail "rbd clone of v2 failed"
start_lungate -c "$CFG"
qio_fails "$B-odd" -c 'read 0 4096'
grep -q "is a clone of rbd/golden@v2, not of the configured base rbd/golden@v1" "$LG_LOG" ||
	fail "the log does not say that the clone of $B-odd has another parent"

# quota: 8 MiB, two 4 MiB RBD objects of the clone's own
CFGQ=$LG_TMP/quota.json
write_config "$CFGQ" "$IQN" "/backstores/cow/clones" \
	"$(so_rbd golden golden '"snapshot": "v1"')" \
	'{"plugin": "cow", "name": "clones", "base": "/backstores/rbd/golden", "overlay_pool": "clients", "per_initiator": true, "quota": 8388608}'
start_lungate -c "$CFGQ"
Q=$(ini quota-q)
client_write() { # NAME OFFSET LENGTH BYTE: lg-cow-client's verdict in OUT, status in RC
	RC=0
	OUT=$(run "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$1" write "$2" "$3" "$4" 2>&1) || RC=$?
}
expect_space_error() { # WHAT
	((RC == 3)) || fail "$1: expected CHECK CONDITION (status 3 of lg-cow-client), got status $RC: $OUT"
	grep -q 'sense key=0x07 asc=0x27 ascq=0x07' <<<"$OUT" ||
		fail "$1: expected DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT (key 7, 27h/07h): $OUT"
}
qio "$Q" -c 'write -P 0x71 1M 4096' -c 'write -P 0x72 5M 4096' -c flush
client_write "$Q" $((9 << 20)) 512 0x73
expect_space_error "a write into a third RBD object past the 8 MiB quota"
grep -q "msg=\"overlay quota reached; write refused\" storage=clones initiator=$Q quota=8388608" "$LG_LOG" ||
	fail "the log has no quota line naming $Q"
client_write "$Q" $((6 << 20)) 512 0x74
((RC == 0)) || fail "a write inside an object the clone holds failed at the quota: $OUT"
stop_lungate
start_lungate -c "$CFGQ"
client_write "$Q" $((13 << 20)) 512 0x75
expect_space_error "a third object after a restart (the allocation read back from Ceph)"
cp "$BASE" "$LG_TMP/q.raw"
patch_raw "$LG_TMP/q.raw" $((1 << 20)) 4096 0x71 $((5 << 20)) 4096 0x72 $((6 << 20)) 512 0x74
expect_disk "$Q" "the quota client's writes (the refused ones left no trace)" "$LG_TMP/q.raw"
stop_lungate
log "PASS"
