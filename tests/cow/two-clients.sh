#!/usr/bin/env bash
# Two initiators write different data to the same LBAs of one per-initiator
# cow LUN: each reads back exactly its own disk (the base with its own writes),
# a third initiator reads the base, and the base file never changes (SHA-256,
# also after the gateway stops). Initiator names that differ only in case are
# one client: IQN.2025-10...:PC1 sees pc1's disk, and no overlay file is made
# for it. Each client gets one overlay file in overlay_dir, named after it.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
make_random_image "$BASE" 16
base_sha=$(sha "$BASE")
cow_config "$CFG" "$BASE" "$OV"
start_lungate -c "$CFG"

PC1=$(ini pc1)
PC2=$(ini pc2)
PC3=$(ini pc3)
PC1_UPPER=${PC1^^}                       # IQN.2025-10.ORG.LUNGATE.TEST:PC1

# Same LBAs, different data: a sector inside a block, a whole block, and a
# range that straddles two blocks.
qio "$PC1" -c 'write -P 0x11 512 512' -c 'write -P 0x12 1M 64k' -c 'write -P 0x13 4160k 128k' -c flush
qio "$PC2" -c 'write -P 0x21 512 512' -c 'write -P 0x22 1M 64k' -c 'write -P 0x23 4160k 128k' -c flush

# What each should see, built independently of the gateway.
for who in 1 2; do
	cp "$BASE" "$LG_TMP/expect$who.img"
	patch_image "$LG_TMP/expect$who.img" 512 512 0x${who}1 $((1 << 20)) 65536 0x${who}2 \
		$((4160 << 10)) 131072 0x${who}3
done

qio "$PC1" -c 'read -P 0x11 512 512' -c 'read -P 0x12 1M 64k' -c 'read -P 0x13 4160k 128k'
qio "$PC2" -c 'read -P 0x21 512 512' -c 'read -P 0x22 1M 64k' -c 'read -P 0x23 4160k 128k'
expect_disk "$PC1" "pc1's writes over the base" "$LG_TMP/expect1.img"
expect_disk "$PC2" "pc2's writes over the base" "$LG_TMP/expect2.img"
expect_disk "$PC3" "the base" "$BASE"
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed while clients wrote"

# Case-insensitive names: the upper-case spelling is pc1.
expect_disk "$PC1_UPPER" "pc1's disk (names differ only in case)" "$LG_TMP/expect1.img"
qio "$PC1_UPPER" -c 'write -P 0x14 8M 4k' -c flush
qio "$PC1" -c 'read -P 0x14 8M 4k'
qio "$PC2" -c 'read -P 0x21 512 512'

files=$(overlay_files "$OV")
log "overlay files: $(tr '\n' ' ' <<<"$files")"
[[ $(wc -l <<<"$files") == 3 ]] || fail "expected 3 overlay files (pc1, pc2, pc3), found: $files"
for who in pc1 pc2 pc3; do
	grep -qx "iqn.2025-10.org.lungate.test:$who.cow" <<<"$files" ||
		fail "no overlay file iqn.2025-10.org.lungate.test:$who.cow in $OV: $files"
done

assert_alive
stop_lungate
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed (SHA-256 differs after the gateway stopped)"

# The writes are still there after a clean restart.
start_lungate -c "$CFG"
qio "$PC1" -c 'read -P 0x11 512 512' -c 'read -P 0x14 8M 4k' -c 'read -P 0x13 4160k 128k'
qio "$PC2" -c 'read -P 0x21 512 512' -c 'read -P 0x22 1M 64k' -c 'read -P 0x23 4160k 128k'
stop_lungate
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed after the restart"
log "PASS"
