#!/usr/bin/env bash
# Whole-image reads with QEMU's iSCSI driver: `qemu-img info` gives the size,
# `qemu-img convert` from iscsi:// yields the image byte for byte, and
# `qemu-img compare` finds them identical (and does notice a changed byte).
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd qemu-img cmp

IQN=$LG_IQN_PREFIX:qemu-img
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 64
size=$(file_size "$IMG")
start_lungate --image "$IMG" --iqn "$IQN"
URL=$(iscsi_url 0)

info=$(run qemu-img info -f raw "$URL" 2>&1) || fail "qemu-img info $URL failed: $info"
printf '%s\n' "$info"
grep -q "^virtual size: .*($size bytes)\$" <<<"$info" || fail "qemu-img info does not show $size bytes"

OUT=$LG_TMP/out.raw
run qemu-img convert -p -f raw -O raw "$URL" "$OUT" || fail "qemu-img convert from $URL failed"
[[ $(file_size "$OUT") == "$size" ]] || fail "converted image has $(file_size "$OUT") bytes, want $size"
cmp "$IMG" "$OUT" || fail "the image read through iSCSI differs from the file"

msg=$(run qemu-img compare -f raw -F raw "$IMG" "$URL" 2>&1) || fail "qemu-img compare: $msg"
grep -q 'Images are identical' <<<"$msg" || fail "qemu-img compare said: $msg"

# Control: a copy with one byte changed near the end must differ.
COPY=$LG_TMP/copy.raw
cp "$IMG" "$COPY"
off=$((size - 777))
byte=$(od -An -tu1 -j "$off" -N1 "$IMG")
fill_bytes $((byte ^ 0xff)) 1 | dd of="$COPY" bs=1 seek="$off" conv=notrunc status=none
rc=0
msg=$(run qemu-img compare -f raw -F raw "$COPY" "$URL" 2>&1) || rc=$?
((rc == 1)) || fail "qemu-img compare of a changed copy returned $rc, want 1: $msg"
# qemu-img reports the 512-byte sector the first difference is in.
grep -q "offset $((off / 512 * 512))" <<<"$msg" || fail "qemu-img compare did not find the changed byte at $off: $msg"

# A second, concurrent-free read after the first session ended works the same.
rm -f "$OUT"
run qemu-img convert -f raw -O raw "$URL" "$OUT" || fail "second qemu-img convert failed"
cmp "$IMG" "$OUT" || fail "second read differs from the file"

assert_alive
stop_lungate
log "PASS"
