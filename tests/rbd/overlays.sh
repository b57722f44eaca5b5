#!/usr/bin/env bash
# The overlay lifecycle commands on per-client RBD clones (a cow object with
# "overlay_pool"), as `lungate overlay list|reset|commit|gc -c CONFIG` beside
# a running gateway:
#  - list shows every client's clone (rbd:POOL/IMAGE) with its allocation;
#  - reset of a logged-in client is refused (its clone stays); once it has
#    logged out, reset removes the clone and the client reads the base again;
#    the others keep theirs; reset --all removes every idle clone;
#  - commit writes a client's disk to a new file: the base plus its writes;
#    or to a new flat RBD image and snapshot, never over an existing one;
#  - gc --days 0 --dry-run removes nothing; gc --days 0 removes idle clones
#    but not one in use;
#  - the reset policy ("after_idle") resets an idle client's clone at login.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=../cow/functions.sh
source "$(dirname "$0")/../cow/functions.sh"

IQN=$LG_IQN_PREFIX:rbd-overlays
rbd_cluster
rbd_clone_setup c
start_lungate -c "$CFG"
P1=$(ini pc1)
P2=$(ini pc2)
P3=$(ini pc3)

# overlay CMD ARGS...: `lungate overlay CMD -c CFG ARGS...`; output in OUT, status in RC.
overlay() {
	local cmd=$1
	shift
	RC=0
	OUT=$(run "$LUNGATE" overlay "$cmd" -c "$CFG" "$@" 2>&1) || RC=$?
	log "overlay $cmd $*: status $RC: $OUT"
}
has_clone() { rbd ls clients | grep -qxF "lungate.c+${1,,}"; }

qio "$P1" -c 'write -P 0x31 0 64k' -c flush
qio "$P2" -c 'write -P 0x32 0 64k' -c 'write -P 0x33 8M 4k' -c flush
qio "$P3" -c 'write -P 0x34 1M 1536' -c 'write -P 0x35 15M 128k' -c flush

overlay list
((RC == 0)) || fail "overlay list failed"
for who in "$P1" "$P2" "$P3"; do
	grep -qF " $who " <<<"$OUT" || fail "overlay list does not show $who"
done
grep -qF "rbd:clients/lungate.c+${P2,,}" <<<"$OUT" || fail "overlay list does not show pc2's clone"

# ---- reset ----
session_open "$P1"
overlay reset c "$P1"
((RC != 0)) || fail "overlay reset of a logged-in client succeeded"
grep -qi 'in use' <<<"$OUT" || fail "overlay reset of a logged-in client does not say it is in use: $OUT"
has_clone "$P1" || fail "overlay reset removed the clone of a logged-in client"
session_cmd 'read -P 0x31 0 64k'
session_close

overlay reset c "$P1"
((RC == 0)) || fail "overlay reset c pc1 failed"
has_clone "$P1" && fail "overlay reset c pc1 left its clone"
expect_disk "$P1" "the base after reset" "$BASE"
qio "$P2" -c 'read -P 0x32 0 64k' -c 'read -P 0x33 8M 4k'   # untouched by pc1's reset

# ---- commit ----
NEW=$LG_TMP/committed.img
cp "$BASE" "$LG_TMP/expect3.img"
patch_raw "$LG_TMP/expect3.img" $((1 << 20)) 1536 0x34 $((15 << 20)) 131072 0x35
overlay commit c "$P3" "$NEW"
((RC == 0)) || fail "overlay commit c pc3 failed"
cmp "$LG_TMP/expect3.img" "$NEW" || fail "the committed image is not the base with pc3's writes"
# to a new RBD image and snapshot: the next base, flat (no parent)
overlay commit c "$P3" rbd:rbd/golden2@v1
((RC == 0)) || fail "overlay commit c pc3 rbd:rbd/golden2@v1 failed"
rbd_export golden2@v1 "$LG_TMP/golden2.raw"
same_file "the committed RBD snapshot rbd/golden2@v1" "$LG_TMP/expect3.img" "$LG_TMP/golden2.raw"
info=$(rbd info rbd/golden2)
grep -q 'parent:' <<<"$info" && fail "the committed image has a parent: $info"
overlay commit c "$P3" rbd:rbd/golden2@v2
((RC != 0)) || fail "overlay commit overwrote the existing RBD image rbd/golden2"
grep -q 'exists' <<<"$OUT" || fail "overlay commit onto an existing image does not say it exists: $OUT"
overlay commit c "$(ini nobody)" "$LG_TMP/nobody.img"
((RC != 0)) || fail "overlay commit of a client without a clone succeeded"
qio "$P3" -c 'read -P 0x34 1M 1536'

overlay reset c --all
((RC == 0)) || fail "overlay reset --all failed"
[[ -z $(rbd ls clients) ]] || fail "overlay reset --all left clones: $(rbd ls clients | tr '\n' ' ')"
expect_disk "$P2" "the base after reset --all" "$BASE"

# ---- gc ----
qio "$P1" -c 'write -P 0x41 0 4k' -c flush
qio "$P2" -c 'write -P 0x42 0 4k' -c flush
session_open "$P3"
session_cmd 'write -P 0x43 0 4k'
session_cmd 'flush'
sleep 1.1    # every clone's last use is now at least a second ago
overlay gc --days 0 --dry-run
((RC == 0)) || fail "gc --dry-run failed"
grep -qF "$P1" <<<"$OUT" || fail "gc --days 0 --dry-run does not name pc1: $OUT"
for who in "$P1" "$P2" "$P3"; do
	has_clone "$who" || fail "gc --dry-run removed the clone of $who"
done
overlay gc --days 0
has_clone "$P1" && fail "gc --days 0 kept pc1's idle clone"
has_clone "$P2" && fail "gc --days 0 kept pc2's idle clone"
has_clone "$P3" || fail "gc --days 0 removed pc3's clone while pc3 was logged in"
session_cmd 'read -P 0x43 0 4k'
session_close
expect_disk "$P1" "the base after gc" "$BASE"
qio "$P3" -c 'read -P 0x43 0 4k'
assert_alive
stop_lungate

# the reset policy: a client back after 2 s idle starts again from the base
write_config "$CFG" "$IQN" "/backstores/cow/c" \
	"$(so_rbd golden golden '"snapshot": "v1"')" \
	'{"plugin": "cow", "name": "c", "base": "/backstores/rbd/golden", "overlay_pool": "clients", "per_initiator": true, "reset": {"after_idle": 2}}'
start_lungate -c "$CFG"
P5=$(ini pc5)
qio "$P5" -c 'write -P 0x51 0 4k' -c flush
qio "$P5" -c 'read -P 0x51 0 4k' # back at once: kept
sleep 3.1
expect_disk "$P5" "the base after 3 s idle with reset after_idle 2" "$BASE"
grep -q "msg=\"overlay reset\" storage=c initiator=$P5 .*policy=after_idle:2" "$LG_LOG" ||
	fail "the log does not say that pc5's clone was reset by the policy"
stop_lungate
rbd_export golden@v1 "$LG_TMP/snap.raw"
same_file "the base snapshot" "$BASE" "$LG_TMP/snap.raw"
log "PASS"
