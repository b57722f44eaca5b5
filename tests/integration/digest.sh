#!/usr/bin/env bash
# HeaderDigest=CRC32C with a real client: QEMU's iSCSI driver asked for
# header digests (libiscsi offers HeaderDigest=CRC32C alone) writes a random
# image through the gateway and reads it back byte for byte, and the gateway
# logs the session with header digests on. (No client at hand offers
# DataDigest=CRC32C, libiscsi never does: tests/unit/test_pdu.c feeds data
# digests through the receive state machine, tests/unit/test_digest.c checks
# the CRC32C vectors.)
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd qemu-img cmp

IQN=$LG_IQN_PREFIX:digest
IMG=$LG_TMP/disk.img
SRC=$LG_TMP/src.img
truncate -s 32M "$IMG"
make_random_image "$SRC" 32
start_lungate -v --image "$IMG" --iqn "$IQN"

# json: filename of the LUN through QEMU's iscsi driver with header digests.
JSON="json:{\"driver\": \"raw\", \"file\": {\"driver\": \"iscsi\", \"transport\": \"tcp\",
  \"portal\": \"127.0.0.1:$PORT\", \"target\": \"$IQN\", \"lun\": 0, \"header-digest\": \"crc32c\"}}"

run qemu-img convert -n -f raw -O raw "$SRC" "$JSON" ||
	fail "qemu-img convert to the LUN with header digests failed"
cmp "$SRC" "$IMG" || fail "the image written with header digests differs from its source"
OUT=$LG_TMP/out.img
run qemu-img convert -f raw -O raw "$JSON" "$OUT" ||
	fail "qemu-img convert from the LUN with header digests failed"
cmp "$SRC" "$OUT" || fail "the image read with header digests differs from its source"

n=$(grep -c 'level=info login: initiator=.* target=.*digests=CRC32C/None' "$LG_LOG" || true)
((n == 2)) || fail "want 2 logins with HeaderDigest=CRC32C in the gateway log, found $n"
if grep -q 'digest error' "$LG_LOG"; then
	fail "the gateway saw digest errors: $(grep -m3 'digest error' "$LG_LOG")"
fi
assert_alive
stop_lungate
log "PASS"
