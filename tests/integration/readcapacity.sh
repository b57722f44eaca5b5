#!/usr/bin/env bash
# READ CAPACITY(16) through `iscsi-readcapacity16`: (last LBA + 1) x block
# length is the image file's size, for a size that is no power of two, and for
# a read-only LUN too; `-s` prints the same total.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd iscsi-readcapacity16

check_capacity() { # IMAGE URL
	local img=$1 url=$2 out lba bs total size short
	size=$(file_size "$img")
	out=$(run iscsi-readcapacity16 -i "$LG_INITIATOR" "$url" 2>&1) ||
		fail "iscsi-readcapacity16 $url failed (status $?): $out"
	printf '%s\n' "$out"
	lba=$(sed -n 's/^RETURNED LOGICAL BLOCK ADDRESS:\([0-9]*\)$/\1/p' <<<"$out")
	bs=$(sed -n 's/^LOGICAL BLOCK LENGTH IN BYTES:\([0-9]*\)$/\1/p' <<<"$out")
	total=$(sed -n 's/^Total size:\([0-9]*\)$/\1/p' <<<"$out")
	[[ -n $lba && -n $bs && -n $total ]] || fail "unexpected iscsi-readcapacity16 output: $out"
	((bs == 512 || bs == 1024 || bs == 2048 || bs == 4096)) || fail "block length $bs is not 512, 1024, 2048 or 4096"
	(((lba + 1) * bs == size)) ||
		fail "READ CAPACITY(16): ($lba + 1) x $bs = $(((lba + 1) * bs)) bytes, but the image has $size"
	((total == size)) || fail "iscsi-readcapacity16 total $total != image size $size"
	grep -q '^P_TYPE:0 PROT_EN:0$' <<<"$out" || fail "READ CAPACITY(16) claims protection information"
	short=$(run iscsi-readcapacity16 -i "$LG_INITIATOR" -s "$url" 2>&1) ||
		fail "iscsi-readcapacity16 -s failed: $short"
	[[ $short == "$size" ]] || fail "iscsi-readcapacity16 -s printed '$short', want $size"
}

IQN=$LG_IQN_PREFIX:capacity
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 64 12288   # 64 MiB + 12 KiB: a multiple of 4096, no power of two
start_lungate --image "$IMG" --iqn "$IQN"
check_capacity "$IMG" "$(iscsi_url 0)"
stop_lungate

IMG2=$LG_TMP/small.img
make_random_image "$IMG2" 3 4096    # another size, served read-only
start_lungate --image "$IMG2" --iqn "$IQN-ro" --readonly
check_capacity "$IMG2" "$(iscsi_url 0 "$IQN-ro")"
stop_lungate
log "PASS"
