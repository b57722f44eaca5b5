#!/usr/bin/env bash
# NBD servers that die: an external nbdkit (file plugin) behind an nbd object
# (LUN 0), and the gateway's own qemu-nbd behind a qcow2 object (LUN 1).
#
#  - SIGKILL of nbdkit: reads and writes on LUN 0 fail with SCSI sense
#    (HARDWARE ERROR or MEDIUM ERROR) within NBD_FAIL_SECS s, again and again
#    while it is down, and the log names the storage object and the server;
#    LUN 1 keeps working; once nbdkit is back on the same port, LUN 0 works
#    again within NBD_RECOVER_SECS s (polled) with the data written before;
#  - SIGKILL of the gateway's qemu-nbd: the gateway reaps it (no zombie),
#    starts a new one, and LUN 1 works again within NBD_RECOVER_SECS s with
#    the data flushed before; I/O right after the kill either fails with sense
#    or returns the right data;
#  - the gateway stays up, exits 0 on SIGTERM, no qemu-nbd is left, and the
#    qcow2 passes qemu-img check and holds exactly what was written.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:faults-kill
RAW=$LG_TMP/disk.raw
DISK=$LG_TMP/nbdkit.raw
QCOW=$LG_TMP/disk.qcow2
make_random_image "$RAW" 8
cp "$RAW" "$DISK"
run qemu-img convert -f raw -O qcow2 "$RAW" "$QCOW" || fail "qemu-img convert -O qcow2"

P0=$(free_port)
start_nbdkit "$P0" file "$DISK"
CFG=$LG_TMP/faults-kill.json
write_config "$CFG" "$IQN" "/backstores/nbd/ext /backstores/qcow2/own" \
	"$(so_nbd ext "nbd://127.0.0.1:$P0" '"timeout": 2')" \
	"$(so_qcow2 own "$QCOW" '"timeout": 2')"
start_lungate -c "$CFG"
L0=$(lun_url 0)
L1=$(lun_url 1)

# ---- the external server dies ----
qio_ok "LUN 0 before the kill" "$L0" -c 'write -P 0xb1 1M 64k' -c flush -c 'read -P 0xb1 1M 64k'
kill9 "$NBDKIT_PID"
for i in 1 2 3; do
	qio_sense "read $i from LUN 0 with its server dead" "3 4" "" "$L0" -c 'read 0 4096'
done
qio_sense "write to LUN 0 with its server dead" "3 4" "" "$L0" -c 'write -P 0xb2 0 4096'
qio_sense "large write to LUN 0 with its server dead" "3 4" "" "$L0" -c 'write -P 0xb2 0 1M' 
assert_alive
grep -q 'storage ext: .*nbd://127.0.0.1:'"$P0" "$LG_LOG" ||
	fail "the gateway's log does not name storage ext and nbd://127.0.0.1:$P0"
qio_ok "LUN 1 while LUN 0's server is dead" "$L1" -c 'read 0 64k'

start_nbdkit "$P0" file "$DISK"
poll_ok "LUN 0 after nbdkit is back" "$NBD_RECOVER_SECS" "$L0" -c 'read -P 0xb1 1M 64k'
qio_ok "LUN 0 writes after nbdkit is back" "$L0" -c 'write -P 0xb3 2M 64k' -c flush \
	-c 'read -P 0xb3 2M 64k'

# ---- the gateway's own qemu-nbd dies ----
qio_ok "LUN 1 before the kill" "$L1" -c 'write -P 0xc1 3M 64k' -c flush
old=$(child_for "$QCOW") || fail "no qemu-nbd child of the gateway serves $QCOW"
kill -KILL "$old"
# Right after: an error with sense, or (if the gateway was already back) the right data.
out=$(timeout --kill-after=5 "$((NBD_FAIL_SECS + 20))" qemu-io -f raw "$L1" -c 'read -P 0xc1 3M 64k' 2>&1) || true
if grep -qi 'verification failed' <<<"$out"; then
	fail "LUN 1 returned wrong data right after its qemu-nbd was killed: $out"
elif grep -qi 'failed\|error' <<<"$out"; then
	grep -q 'SENSE KEY:.*([34]) ASCQ:' <<<"$out" ||
		fail "LUN 1 failed without MEDIUM or HARDWARE ERROR sense right after its qemu-nbd was killed: $out"
	log "LUN 1 right after the kill: $(grep 'SENSE KEY' <<<"$out" | head -n 1)"
fi
poll_ok "LUN 1 after its qemu-nbd was killed" "$NBD_RECOVER_SECS" "$L1" -c 'read -P 0xc1 3M 64k'
wait_reaped 5 "$old"
new=$(child_for "$QCOW") || fail "no new qemu-nbd serves $QCOW after the old one was killed"
[[ $new != "$old" ]] || fail "qemu-nbd pid $old was killed but is still the child"
[[ $(qemu_nbd_children | wc -l) == 1 ]] || fail "more than one qemu-nbd child: $(qemu_nbd_children | tr '\n' ' ')"
grep -q "storage own: .*$old" "$LG_LOG" ||
	fail "the gateway's log does not say that qemu-nbd pid $old of storage own exited"
qio_ok "LUN 1 writes after the restart" "$L1" -c 'write -P 0xc2 4M 64k' -c flush \
	-c 'read -P 0xc2 4M 64k'
log "qemu-nbd $old was killed; the gateway runs qemu-nbd $new"

assert_alive
mapfile -t kids < <(qemu_nbd_children)
stop_lungate
wait_gone 5 "${kids[@]}"
cp "$RAW" "$LG_TMP/expect0.raw"
patch_raw "$LG_TMP/expect0.raw" $((1 << 20)) 65536 0xb1 $((2 << 20)) 65536 0xb3
same_file "nbdkit's file" "$LG_TMP/expect0.raw" "$DISK"
cp "$RAW" "$LG_TMP/expect1.raw"
patch_raw "$LG_TMP/expect1.raw" $((3 << 20)) 65536 0xc1 $((4 << 20)) 65536 0xc2
image_equals "the qcow2" qcow2 "$QCOW" "$LG_TMP/expect1.raw"
log "PASS"
