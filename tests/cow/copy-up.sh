#!/usr/bin/env bash
# Sub-block writes copy the rest of their 64 KiB cow block up from the base:
# a 512-byte write in the middle of a block, one in the first and one in the
# last sector of a block, a 1 KiB write that straddles two blocks, and one in
# the disk's last sector. The client's whole disk must equal the base file
# with exactly those sectors replaced (compared byte for byte with a copy of
# the base patched by dd), before and after a restart, and the overlay must
# hold only the touched blocks.
#
# Then concurrent sub-block writes to the same fresh blocks (lg-cow-client
# race: 16 writes of 512 bytes in flight per block, over 192 blocks, for four
# clients) must all land: a copy-up racing another write to its block would
# lose one of them.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
EXPECT=$LG_TMP/expect.img
SIZE_MIB=16
make_random_image "$BASE" $SIZE_MIB
base_sha=$(sha "$BASE")
cp "$BASE" "$EXPECT"
cow_config "$CFG" "$BASE" "$OV"
start_lungate -c "$CFG"
PC=$(ini copyup)

last=$((SIZE_MIB * 1048576 - 512))
# offset length byte: block 5 middle, block 9 first sector, block 12 last
# sector, straddling blocks 20/21, the disk's last sector.
writes=(
	"$((5 * COW_BLOCK + 7 * 512)) 512 0x61"
	"$((9 * COW_BLOCK)) 512 0x62"
	"$((13 * COW_BLOCK - 512)) 512 0x63"
	"$((21 * COW_BLOCK - 512)) 1024 0x64"
	"$last 512 0x65"
)
args=()
for w in "${writes[@]}"; do
	read -r off len byte <<<"$w"
	args+=(-c "write -P $byte $off $len")
	patch_image "$EXPECT" "$off" "$len" "$byte"
done
qio "$PC" "${args[@]}" -c flush
expect_disk "$PC" "the base with five sub-block writes" "$EXPECT"

# Only the six touched blocks are allocated: 384 KiB.
out=$("$LUNGATE" overlay list -c "$CFG" 2>&1) || fail "overlay list failed: $out"
log "$out"
grep -F "$PC" <<<"$out" | grep -q ' 384.0 KiB ' ||
	fail "the overlay of $PC should hold 6 blocks (384.0 KiB): $out"

stop_lungate
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"
start_lungate -c "$CFG"
expect_disk "$PC" "the base with five sub-block writes, after a restart" "$EXPECT"

# Copy-up races: lg-cow-client sends 16 sub-block writes into each of 192
# fresh blocks at once (libiscsi async), so that the gateway's workers copy
# up a block while other writes to it are in flight; every write must land
# and the rest of each block must be the base. Four clients, fresh overlays.
for r in 1 2 3 4; do
	out=$(run "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$(ini race$r)" race "$BASE" 32 192 2>&1) ||
		fail "concurrent sub-block writes to the same blocks lost data (a copy-up raced a write): $out"
	log "${out##*$'\n'}"
done
expect_disk "$PC" "the base with five sub-block writes (untouched by the other clients)" "$EXPECT"

stop_lungate
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"
log "PASS"
