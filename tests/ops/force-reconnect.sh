#!/usr/bin/env bash
# A running client never finds a different disk under it (issue 14), with
# QEMU's iSCSI driver, whose libiscsi reconnects by itself with the same ISID:
#  - the client writes 0xaa; `overlay reset --force` logs it out; libiscsi
#    reconnects at once, and every read after that fails (NOT READY, manual
#    intervention required) instead of returning the base's bytes, and so
#    does a write; the log names the fenced client;
#  - another client, untouched, keeps its disk;
#  - a new qemu-io as the same initiator (a new ISID: the client booted
#    again) reads the clean disk, and writes to it;
#  - a second, plain `overlay reset` of the fenced client keeps the fence;
#  - once the cut-off client has logged out, a new session is a new boot.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
make_random_image "$BASE" 16
cow_config "$CFG" "$BASE" "$OV"
start_lungate -c "$CFG" --control "$SOCK"
P1=$(ini pc1)
P2=$(ini pc2)

qio "$P2" -c 'write -P 0x22 0 64k' -c flush

session_open "$P1"
session_cmd 'write -P 0xaa 0 64k'
session_cmd flush
session_cmd 'read -P 0xaa 0 64k'

ctl_ok overlay reset c "$P1" --force
grep -q "logged out $P1" <<<"$OUT" || fail "overlay reset --force does not say it logged $P1 out: $OUT"
grep -q "boots again" <<<"$OUT" || fail "overlay reset --force does not say the client's disk now fails until it boots again: $OUT"
grep -q "msg=\"overlay fenced\" storage=c initiator=$P1 " "$LG_LOG" || fail "the fence is not logged"

# libiscsi reconnects with its ISID: the disk fails, it is never the base
for try in 1 2 3; do
	session_try 'read -P 0xaa 0 64k'
	grep -q 'verification failed' <<<"$TRY_OUT" &&
		fail "after a forced reset, $P1's running client read other data than it wrote (the base): $TRY_OUT"
	grep -q 'read failed' <<<"$TRY_OUT" ||
		fail "after a forced reset, a read of $P1's running client did not fail (try $try): $TRY_OUT"
done
session_try 'write -P 0xcc 0 64k'
grep -q 'write failed' <<<"$TRY_OUT" || fail "after a forced reset, a write of $P1's running client did not fail: $TRY_OUT"
wait_log "msg=\"disk fenced\" target=$IQN lun=0 storage=c initiator=$P1 isid="
grep -q "msg=\"login\" initiator=$P1 " "$LG_LOG" || fail "no login of $P1 in the log"
(($(grep -c "msg=\"login\" initiator=$P1 " "$LG_LOG") >= 2)) ||
	fail "libiscsi did not reconnect after the forced logout (the test would prove nothing)"

# a plain reset while the fenced client is still around keeps its fence
ctl_ok overlay reset c "$P1"
session_try 'read -P 0xaa 0 64k'
grep -q 'read failed' <<<"$TRY_OUT" || fail "a second (plain) reset lifted the fence of $P1's cut-off client: $TRY_OUT"
# the cut-off client gives up: it logs out (qemu-io's quit)
session_quit
wait_log "msg=\"logout\" initiator=$P1 .* reason=logout" 1

# the other client is untouched
qio "$P2" -c 'read -P 0x22 0 64k'

# the same initiator, booted again (a new qemu-io: a new ISID after a logout):
# the clean disk
expect_disk "$P1" "the base after a forced reset and a new boot" "$BASE"
qio "$P1" -c 'write -P 0x5a 0 64k' -c flush -c 'read -P 0x5a 0 64k'
grep -q "msg=\"overlay reset\".*policy=" "$LG_LOG" && fail "the reset policy reset a disk (none is set)"
log "ok"
