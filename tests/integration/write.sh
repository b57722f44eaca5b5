#!/usr/bin/env bash
# Writes with QEMU's iSCSI driver land in the image file, exactly where they
# were aimed and nowhere else: `qemu-io` pattern writes (one with FUA), a
# multi-MiB write of random data, then a whole-image `qemu-img convert` into
# the LUN. A read-only LUN refuses writes and its file stays unchanged.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd qemu-io qemu-img cmp

IQN=$LG_IQN_PREFIX:write
IMG=$LG_TMP/disk.img
EXPECT=$LG_TMP/expect.img
make_random_image "$IMG" 64
cp "$IMG" "$EXPECT"
start_lungate --image "$IMG" --iqn "$IQN"
URL=$(iscsi_url 0)

SRC=$LG_TMP/src.bin
make_random_image "$SRC" 3 4608           # 3 MiB + 9 sectors of random data
fill_bytes 0xab 65536 >"$LG_TMP/ab.bin"
fill_bytes 0x11 131072 >"$LG_TMP/11.bin"
fill_bytes 0x5a 1536 >"$LG_TMP/5a.bin"

out=$(run qemu-io -f raw \
	-c 'write -P 0xab 1M 64k' \
	-c 'write -f -P 0x11 8M 128k' \
	-c 'write -P 0x5a 3584 1536' \
	-c "write -s $SRC 16M $(file_size "$SRC")" \
	-c flush \
	-c 'read -P 0xab 1M 64k' \
	-c 'read -P 0x11 8M 128k' \
	"$URL" 2>&1) || fail "qemu-io writes failed: $out"
printf '%s\n' "$out"
if grep -qi 'fail\|error' <<<"$out"; then
	fail "qemu-io reported a failure"
fi
splice_file "$EXPECT" $((1 << 20)) "$LG_TMP/ab.bin"
splice_file "$EXPECT" $((8 << 20)) "$LG_TMP/11.bin"
splice_file "$EXPECT" 3584 "$LG_TMP/5a.bin"
splice_file "$EXPECT" $((16 << 20)) "$SRC"
cmp "$EXPECT" "$IMG" ||
	fail "the image file is not the original with exactly the four written ranges replaced"

# A whole new image written through iSCSI replaces the file's content.
NEW=$LG_TMP/new.img
make_random_image "$NEW" 64
run qemu-img convert -n -f raw -O raw "$NEW" "$URL" || fail "qemu-img convert into $URL failed"
cmp "$NEW" "$IMG" || fail "after qemu-img convert into the LUN, the file differs from the written image"
msg=$(run qemu-img compare -f raw -F raw "$NEW" "$URL" 2>&1) || fail "read-back after the whole write: $msg"
assert_alive
stop_lungate

# Read-only: the write fails and the file does not change.
RO=$LG_TMP/ro.img
make_random_image "$RO" 16
cp "$RO" "$LG_TMP/ro.orig"
start_lungate --image "$RO" --iqn "$IQN-ro" --readonly
ROURL=$(iscsi_url 0 "$IQN-ro")
if out=$(run qemu-io -f raw -c 'write -P 0xcd 0 64k' -c flush "$ROURL" 2>&1); then
	fail "writing to a --readonly LUN succeeded: $out"
fi
log "write to the read-only LUN failed as it should: $out"
cmp "$LG_TMP/ro.orig" "$RO" || fail "the --readonly image file changed"
msg=$(run qemu-img compare -f raw -F raw "$RO" "$ROURL" 2>&1) || fail "reading the read-only LUN: $msg"
assert_alive
stop_lungate
log "PASS"
