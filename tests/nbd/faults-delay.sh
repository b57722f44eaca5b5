#!/usr/bin/env bash
# A stalled NBD server (nbdkit's delay filter: every read takes 20 s) behind
# an nbd storage object with "timeout": 2 (LUN 0); LUN 1 is a healthy nbdkit.
#
#  - writes, which the filter does not delay, work;
#  - a read fails with SCSI sense (MEDIUM ERROR or HARDWARE ERROR) within
#    NBD_FAIL_SECS s, long before the server would have answered, and the
#    gateway's log names the storage object, the server and the timeout;
#  - while a read on LUN 0 is stalled, LUN 1 answers at once;
#  - after the stalled server is killed and a prompt one started on the same
#    port and file, LUN 0 works again within NBD_RECOVER_SECS s with the data
#    written before;
#  - LUN 2 is a server whose every read takes 1 s (default timeout): 16
#    reads queued at once by one initiator complete in well under 16 s, so
#    the LUN has many NBD commands in flight, not one at a time;
#  - the gateway stays up and exits 0 on SIGTERM.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:faults-delay
DISK=$LG_TMP/disk.raw
make_random_image "$DISK" 8
P0=$(free_port)
start_nbdkit "$P0" --filter=delay file "$DISK" delay-read=20
SLOW_PID=$NBDKIT_PID
P1=$(free_port)
start_nbdkit "$P1" memory 8M
P2=$(free_port)
start_nbdkit "$P2" --filter=delay memory 8M delay-read=1

CFG=$LG_TMP/faults-delay.json
write_config "$CFG" "$IQN" "/backstores/nbd/slow /backstores/nbd/fast /backstores/nbd/lazy" \
	"$(so_nbd slow "nbd://127.0.0.1:$P0" '"timeout": 2')" \
	"$(so_nbd fast "nbd://127.0.0.1:$P1" '"timeout": 2')" \
	"$(so_nbd lazy "nbd://127.0.0.1:$P2")"
start_lungate -c "$CFG"
L0=$(lun_url 0)
L1=$(lun_url 1)
L2=$(lun_url 2)

# Many commands in flight on one LUN: 16 reads of 1 s each.
reads=()
for ((i = 0; i < 16; i++)); do reads+=(-c "aio_read -P 0 $((i << 16)) 4096"); done
start=$SECONDS
qio_ok "16 concurrent reads of 1 s each" "$L2" "${reads[@]}" -c aio_flush
((SECONDS - start <= 8)) ||
	fail "16 concurrent 1-second reads took $((SECONDS - start)) s: the LUN serialises its NBD commands"
[[ $(grep -c '^read 4096/4096' <<<"$QIO_OUT") == 16 ]] || fail "not all 16 reads completed: $QIO_OUT"
log "16 concurrent 1-second reads took $((SECONDS - start)) s"

start=$SECONDS
qio_ok "write to the slow-reading LUN" "$L0" -c 'write -P 0x91 1M 64k' -c flush
((SECONDS - start <= NBD_FAIL_SECS)) || fail "an undelayed write took $((SECONDS - start)) s"

qio_sense "read from a server that stalls 20 s" "3 4" "" "$L0" -c 'read 0 4096'
grep -q 'storage slow: .*nbd://127.0.0.1:'"$P0"'.*timeout' "$LG_LOG" ||
	fail "the gateway's log does not name storage slow, nbd://127.0.0.1:$P0 and the timeout"
assert_alive

# A stalled read on LUN 0 does not hold up LUN 1.
timeout --kill-after=5 60 qemu-io -f raw "$L0" -c 'read 64k 4096' >/dev/null 2>&1 &
STALLED=$!
LG_PIDS+=("$STALLED")
sleep 0.5
start=$(date +%s%N)
qio_ok "LUN 1 while LUN 0 stalls" "$L1" -c 'write -P 0x92 0 64k' -c 'read -P 0x92 0 64k'
ms=$((($(date +%s%N) - start) / 1000000))
((ms < 5000)) || fail "LUN 1 took $ms ms while LUN 0 was stalled"
if wait "$STALLED"; then
	fail "a read from the stalled server succeeded"
fi
forget_pid "$STALLED"

# The stall ends: a prompt server on the same port and file.
kill9 "$SLOW_PID"
start_nbdkit "$P0" file "$DISK"
poll_ok "LUN 0 after the stalled server was replaced" "$NBD_RECOVER_SECS" "$L0" \
	-c 'read -P 0x91 1M 64k'
qio_ok "LUN 0 reads and writes" "$L0" -c 'write -P 0x93 2M 64k' -c 'read -P 0x93 2M 64k' -c flush

assert_alive
stop_lungate
qio_ro_ok "the file holds both writes" "$DISK" -c 'read -P 0x91 1M 64k' -c 'read -P 0x93 2M 64k'
log "PASS"
