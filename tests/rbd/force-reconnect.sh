#!/usr/bin/env bash
# A running client is never handed a different disk on per-client RBD clones
# either (issue 14): QEMU's iSCSI driver writes to its clone; `overlay reset
# --force` logs it out and removes the clone; libiscsi reconnects at once and
# every read fails (NOT READY, manual intervention required) instead of
# returning the base snapshot's bytes, because the fence is kept in the new
# clone's image metadata (lungate.boot); once it has logged out, a new
# session (a new boot) reads the base.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=../ops/functions.sh
source "$(dirname "$0")/../ops/functions.sh"

IQN=$LG_IQN_PREFIX:rbd-fence
rbd_cluster
rbd_clone_setup c
start_lungate -c "$CFG" --control "$SOCK"
P1=$(ini pc1)

session_open "$P1"
session_cmd 'write -P 0xaa 0 64k'
session_cmd flush
ctl_ok overlay reset c "$P1" --force
grep -q "boots again" <<<"$OUT" || fail "overlay reset --force does not say the client's disk fails until it boots again: $OUT"
for try in 1 2; do
	session_try 'read -P 0xaa 0 64k'
	grep -q 'verification failed' <<<"$TRY_OUT" &&
		fail "after a forced reset, the running client read the base snapshot instead of its data: $TRY_OUT"
	grep -q 'read failed' <<<"$TRY_OUT" || fail "after a forced reset, a read did not fail (try $try): $TRY_OUT"
done
wait_log "msg=\"disk fenced\" target=$IQN lun=0 storage=c initiator=$P1 isid="
[[ $(run rbd image-meta get "clients/lungate.c+$P1" lungate.boot 2>/dev/null) == "1 "*" 1 0 "* ]] ||
	fail "the new clone's metadata does not record the fence: $(run rbd image-meta list "clients/lungate.c+$P1" 2>&1)"
session_quit
expect_disk "$P1" "the base snapshot after a forced reset and a new boot" "$BASE"
log "ok"
