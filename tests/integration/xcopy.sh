#!/usr/bin/env bash
# EXTENDED COPY (LID1) between two LUNs of one target, sent to a third: the
# blocks land in the destination's file and nowhere else, RECEIVE COPY
# RESULTS reports the copy; a byte-granular copy (segment 0Ah, with byte
# offsets) changes exactly its bytes; a copy within one LUN that overlaps itself moves
# the data like memmove; a copy onto a read-only LUN is refused (DATA
# PROTECT) and one to a designator no LUN of the session has is aborted
# (COPY ABORTED), both leaving the files untouched; a copy onto a LUN another
# initiator holds with a persistent Write Exclusive reservation, or from one
# it holds Exclusive Access, is a RESERVATION CONFLICT.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd cmp dd
[[ -x ${XCOPY_CLIENT:-} ]] || fail "XCOPY_CLIENT (lg-xcopy-client) is not set"
[[ -x ${PRCLIENT:-} ]] || fail "PRCLIENT (lungate_it_prclient) is not set"

IQN=$LG_IQN_PREFIX:xcopy
A=$LG_TMP/a.img
B=$LG_TMP/b.img
C=$LG_TMP/c.img
RO=$LG_TMP/ro.img
for f in "$A" "$B" "$C" "$RO"; do make_random_image "$f" 16; done
cp "$B" "$LG_TMP/b.expect"
cp "$RO" "$LG_TMP/ro.orig"
CFG=$LG_TMP/xcopy.json
cat >"$CFG" <<JSON
{
  "storage_objects": [
    { "plugin": "fileio", "name": "a", "dev": "$A" },
    { "plugin": "fileio", "name": "b", "dev": "$B" },
    { "plugin": "fileio", "name": "c", "dev": "$C" },
    { "plugin": "fileio", "name": "ro", "dev": "$RO", "readonly": true }
  ],
  "targets": [ {
    "wwn": "$IQN", "fabric": "iscsi",
    "tpgs": [ { "tag": 1, "enable": true,
      "attributes": { "generate_node_acls": 1, "authentication": 0, "demo_mode_write_protect": 0 },
      "luns": [
        { "index": 0, "storage_object": "/backstores/fileio/a" },
        { "index": 1, "storage_object": "/backstores/fileio/b" },
        { "index": 2, "storage_object": "/backstores/fileio/c" },
        { "index": 3, "storage_object": "/backstores/fileio/ro" }
      ] } ]
  } ]
}
JSON
start_lungate -c "$CFG"

# xcopy CMD-LUN SRC-LUN SRC-LBA DST-LUN DST-LBA NBLOCKS LIST-ID
xcopy() { run "$XCOPY_CLIENT" "127.0.0.1:$PORT" "$IQN" "$@"; }

# 3000 blocks (1.5 MiB: two chunks) from LUN 0 at block 100 to LUN 1 at block 7000, sent to LUN 2
out=$(xcopy 2 0 100 1 7000 3000 7) || fail "lg-xcopy-client failed: $out"
log "$out"
grep -qx 'xcopy: GOOD' <<<"$out" || fail "EXTENDED COPY failed: $out"
grep -qx 'status=1 segments=1 bytes=1536000' <<<"$out" ||
	fail "COPY STATUS does not report one segment of 1536000 bytes completed: $out"
dd if="$A" of="$LG_TMP/chunk" bs=512 skip=100 count=3000 status=none
splice_file "$LG_TMP/b.expect" $((7000 * 512)) "$LG_TMP/chunk"
cmp "$LG_TMP/b.expect" "$B" || fail "LUN 1's file is not its old data with LUN 0's blocks 100-3099 at block 7000"

# Within LUN 1, overlapping forwards: blocks 0-2999 to 1000-3999.
dd if="$B" of="$LG_TMP/chunk" bs=512 count=3000 status=none
splice_file "$LG_TMP/b.expect" $((1000 * 512)) "$LG_TMP/chunk"
out=$(xcopy 1 1 0 1 1000 3000 8) || fail "lg-xcopy-client failed: $out"
grep -qx 'xcopy: GOOD' <<<"$out" || fail "overlapping EXTENDED COPY failed: $out"
cmp "$LG_TMP/b.expect" "$B" || fail "an overlapping copy within LUN 1 did not move the blocks as memmove would"

# Block with offset to block with offset (0Ah): 1000 bytes from byte 100 of
# LUN 0's block 20 to byte 300 of LUN 1's block 9000, byte for byte: the rest
# of the two destination blocks it touches stays as it was.
out=$(xcopy 2 0 20 1 9000 1000 11 100 300) || fail "lg-xcopy-client failed: $out"
grep -qx 'xcopy: GOOD' <<<"$out" || fail "EXTENDED COPY with a 0Ah segment failed: $out"
grep -qx 'status=1 segments=1 bytes=1000' <<<"$out" ||
	fail "COPY STATUS does not report one segment of 1000 bytes completed: $out"
dd if="$A" of="$LG_TMP/chunk" bs=1 skip=$((20 * 512 + 100)) count=1000 status=none
splice_file "$LG_TMP/b.expect" $((9000 * 512 + 300)) "$LG_TMP/chunk"
cmp "$LG_TMP/b.expect" "$B" || fail "LUN 1's file is not its old data with LUN 0's 1000 bytes at byte 9000 * 512 + 300"
out=$(xcopy 2 0 20 1 9000 1000 12 512 0) || fail "lg-xcopy-client failed: $out"
grep -qx 'xcopy: CHECK CONDITION key=0x5 asc=0x26 ascq=0x00' <<<"$out" ||
	fail "a byte offset of a whole block was not refused (INVALID FIELD IN PARAMETER LIST): $out"

cp "$C" "$LG_TMP/c.orig"
out=$(xcopy 2 0 0 3 0 64 9) || fail "lg-xcopy-client failed: $out"
grep -qx 'xcopy: CHECK CONDITION key=0x7 asc=0x27 ascq=0x00' <<<"$out" ||
	fail "a copy onto the read-only LUN 3 was not refused with DATA PROTECT: $out"
out=$(xcopy 2 0 0 -1 0 64 10) || fail "lg-xcopy-client failed: $out"
grep -qx 'xcopy: CHECK CONDITION key=0xa asc=0x0d ascq=0x02' <<<"$out" ||
	fail "a copy to an unknown designator was not aborted (COPY ABORTED, 0D/02): $out"

# Persistent reservations of another initiator: Write Exclusive on LUN 1
# refuses a copy onto it; Exclusive Access on LUN 0 refuses a copy from it.
OTHER=$LG_IQN_PREFIX:pr-holder
pr() { run "$PRCLIENT" "iscsi://127.0.0.1:$PORT/$IQN/$1" "$OTHER" "${@:2}"; }
cp "$B" "$LG_TMP/b.before-pr"
[[ $(pr 1 register 0xabc) == GOOD && $(pr 1 reserve 0xabc 1) == GOOD ]] || fail "reserving LUN 1 (WE) failed"
out=$(xcopy 2 0 0 1 0 64 11) || fail "lg-xcopy-client failed: $out"
grep -qx 'xcopy: status 0x18' <<<"$out" || fail "a copy onto LUN 1, Write Exclusive by another initiator, was not a RESERVATION CONFLICT: $out"
cmp "$LG_TMP/b.before-pr" "$B" || fail "a refused copy changed LUN 1's file"
[[ $(pr 0 register 0xdef) == GOOD && $(pr 0 reserve 0xdef 3) == GOOD ]] || fail "reserving LUN 0 (EA) failed"
out=$(xcopy 2 0 0 2 0 64 12) || fail "lg-xcopy-client failed: $out"
grep -qx 'xcopy: status 0x18' <<<"$out" || fail "a copy from LUN 0, Exclusive Access by another initiator, was not a RESERVATION CONFLICT: $out"
cmp "$LG_TMP/c.orig" "$C" || fail "a refused copy changed LUN 2's file"

cmp "$LG_TMP/ro.orig" "$RO" || fail "the read-only LUN's file changed"
cmp "$LG_TMP/c.orig" "$C" || fail "LUN 2's file (the copy manager, never a copy target) changed"
assert_alive
stop_lungate
log "PASS"
