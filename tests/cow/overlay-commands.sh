#!/usr/bin/env bash
# The offline overlay lifecycle: `lungate overlay list|reset|commit|gc -c CONFIG`.
#  - list shows every client with its allocation;
#  - reset of one client (while the client is logged in, refused: its overlay
#    stays) makes that client read the base again and leaves the others; reset
#    --all resets every client;
#  - commit writes a client's merged view to a new file: byte for byte the
#    base plus that client's writes; it never overwrites an existing file; the
#    new file, served as the base of a fresh cow LUN, reads the same over iSCSI;
#  - gc --days 0 --dry-run removes nothing; gc --days 1 keeps overlays used
#    today; gc --days 0 removes idle overlays but not one in use.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
make_random_image "$BASE" 16
base_sha=$(sha "$BASE")
cow_config "$CFG" "$BASE" "$OV"
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
has_overlay() { [[ -f $OV/$1.cow ]]; }

qio "$P1" -c 'write -P 0x31 0 64k' -c flush
qio "$P2" -c 'write -P 0x32 0 64k' -c 'write -P 0x33 8M 4k' -c flush
qio "$P3" -c 'write -P 0x34 1M 1536' -c 'write -P 0x35 15M 128k' -c flush

overlay list
((RC == 0)) || fail "overlay list failed"
for who in "$P1" "$P2" "$P3"; do
	grep -qF " $who " <<<"$OUT" || fail "overlay list does not show $who"
done
grep -F " $P2 " <<<"$OUT" | grep -q ' 128.0 KiB ' || fail "overlay list: pc2 should have 128.0 KiB allocated"

# ---- reset ----
# pc1 logged in: reset must refuse and keep the overlay.
session_open "$P1"
overlay reset c "$P1"
((RC != 0)) || fail "overlay reset of a logged-in client succeeded"
grep -qi 'in use' <<<"$OUT" || fail "overlay reset of a logged-in client does not say it is in use: $OUT"
has_overlay "$P1" || fail "overlay reset removed the overlay of a logged-in client"
session_cmd 'read -P 0x31 0 64k'
session_close

overlay reset c "$P1"
((RC == 0)) || fail "overlay reset c pc1 failed"
has_overlay "$P1" && fail "overlay reset c pc1 left $OV/$P1.cow"
expect_disk "$P1" "the base after reset" "$BASE"
qio "$P2" -c 'read -P 0x32 0 64k' -c 'read -P 0x33 8M 4k'   # untouched by pc1's reset

overlay reset c "$(ini nobody)"
((RC == 0)) || fail "overlay reset of a client without an overlay failed"

# ---- commit ----
NEW=$LG_TMP/committed.img
cp "$BASE" "$LG_TMP/expect3.img"
patch_image "$LG_TMP/expect3.img" $((1 << 20)) 1536 0x34 $((15 << 20)) 131072 0x35
overlay commit c "$P3" "$NEW"
((RC == 0)) || fail "overlay commit c pc3 failed"
cmp "$LG_TMP/expect3.img" "$NEW" || fail "the committed image is not the base with pc3's writes"
[[ $(sha "$BASE") == "$base_sha" ]] || fail "commit changed the base file"
echo "not an image" >"$LG_TMP/existing.img"
overlay commit c "$P3" "$LG_TMP/existing.img"
((RC != 0)) || fail "overlay commit overwrote an existing file"
[[ $(cat "$LG_TMP/existing.img") == "not an image" ]] || fail "overlay commit changed an existing file"
overlay commit c "$(ini nobody)" "$LG_TMP/nobody.img"
((RC != 0)) || fail "overlay commit of a client without an overlay succeeded"
[[ ! -e $LG_TMP/nobody.img ]] || fail "a failed commit left $LG_TMP/nobody.img"
# pc3's overlay is still there after a commit.
qio "$P3" -c 'read -P 0x34 1M 1536'

# The new image as the base of a fresh cow LUN: a new client reads it.
stop_lungate
CFG2=$LG_TMP/cow2.json
cow_config "$CFG2" "$NEW" "$LG_TMP/overlays2"
start_lungate -c "$CFG2"
expect_disk "$(ini pc4)" "the committed image, served as a new base" "$LG_TMP/expect3.img"
stop_lungate
start_lungate -c "$CFG"

overlay reset c --all
((RC == 0)) || fail "overlay reset --all failed"
[[ -z $(find "$OV" -name '*.cow') ]] || fail "overlay reset --all left overlays: $(ls "$OV")"
expect_disk "$P2" "the base after reset --all" "$BASE"

# ---- gc ----
qio "$P1" -c 'write -P 0x41 0 4k' -c flush
qio "$P2" -c 'write -P 0x42 0 4k' -c flush
session_open "$P3"
session_cmd 'write -P 0x43 0 4k'
session_cmd 'flush'
sleep 1.1    # every overlay's last use is now at least a second ago

overlay gc --days 0 --dry-run
((RC == 0)) || fail "gc --dry-run failed"
grep -qF "$P1" <<<"$OUT" || fail "gc --days 0 --dry-run does not name pc1: $OUT"
grep -qF "$P2" <<<"$OUT" || fail "gc --days 0 --dry-run does not name pc2: $OUT"
for who in "$P1" "$P2" "$P3"; do
	has_overlay "$who" || fail "gc --dry-run removed the overlay of $who"
done

overlay gc --days 1
for who in "$P1" "$P2" "$P3"; do
	has_overlay "$who" || fail "gc --days 1 removed the overlay of $who, used today"
done

overlay gc --days 0
has_overlay "$P1" && fail "gc --days 0 kept pc1's idle overlay"
has_overlay "$P2" && fail "gc --days 0 kept pc2's idle overlay"
has_overlay "$P3" || fail "gc --days 0 removed pc3's overlay while pc3 was logged in"
session_cmd 'read -P 0x43 0 4k'
session_close
expect_disk "$P1" "the base after gc" "$BASE"
qio "$P3" -c 'read -P 0x43 0 4k'

assert_alive
stop_lungate
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"
log "PASS"
