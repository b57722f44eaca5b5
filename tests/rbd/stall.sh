#!/usr/bin/env bash
# A stalled cluster never hangs a command: with the only OSD frozen (SIGSTOP,
# by pid: its port accepts, nothing answers), reads and flushed writes on an
# rbd LUN with "osd_op_timeout": 3 fail with SCSI sense (HARDWARE ERROR,
# LOGICAL UNIT COMMUNICATION FAILURE) within RBD_FAIL_SECS, the log names the
# LUN and pool/image (a few lines, not one per command), another LUN on a
# file keeps working; after SIGCONT the LUN works again, with every flushed
# write intact, and the log says it answers again.  Frozen once more, the
# gateway still stops on SIGTERM within RBD_STOP_SECS.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

RBD_TIMEOUT=3
NBD_FAIL_SECS=${RBD_FAIL_SECS:-$((RBD_TIMEOUT + 9))} # + slack for ASan on a busy machine
RBD_STOP_SECS=${RBD_STOP_SECS:-$((2 * RBD_TIMEOUT + 15))}

IQN=$LG_IQN_PREFIX:rbd-stall
rbd_cluster
SRC=$LG_TMP/src.raw
make_random_image "$SRC" 16
rbd_import "$SRC" disk
FILE=$LG_TMP/file.raw
make_random_image "$FILE" 4

CFG=$LG_TMP/rbd.json
write_config "$CFG" "$IQN" "/backstores/rbd/disk /backstores/fileio/local" \
	"$(so_rbd disk disk "\"osd_op_timeout\": $RBD_TIMEOUT, \"mon_op_timeout\": $RBD_TIMEOUT")" \
	"{\"plugin\": \"fileio\", \"name\": \"local\", \"dev\": \"$FILE\"}"
start_lungate -c "$CFG"
L0=$(lun_url 0)
L1=$(lun_url 1)

qio_ok "LUN 0 before the freeze" "$L0" -c 'write -P 0xd1 1M 64k' -c flush -c 'read -P 0xd1 1M 64k'
patch_raw "$SRC" $((1 << 20)) 65536 0xd1

kill -STOP "$CEPH_OSD_PID"
log "froze ceph-osd (pid $CEPH_OSD_PID)"
for i in 1 2 3; do
	qio_sense "read $i while the OSD is frozen" "4" "0x0800" "$L0" -c "read $((i * 4 + 2))M 4096" # objects never read: no cache
done
qio_sense "flushed write while the OSD is frozen" "4" "0x0800" "$L0" -c 'write -P 0xd2 4M 4096' -c flush
qio_ok "the file LUN while the OSD is frozen" "$L1" -c 'write -P 0xd3 0 4096' -c 'read -P 0xd3 0 4096'
assert_alive
n=$(grep -c 'msg="rbd request failed".*lun=disk image=rbd/disk ' "$LG_LOG" || true)
((n >= 1)) || fail "no log line names the failing LUN and image (lun=disk image=rbd/disk)"
((n <= 4)) || fail "$n failure lines for four failed commands in about $((4 * RBD_TIMEOUT)) s: not rate-limited"
log "$n failure log lines while frozen"

kill -CONT "$CEPH_OSD_PID"
log "thawed ceph-osd"
poll_ok "LUN 0 after the OSD thawed" 60 "$L0" -c 'read -P 0xd1 1M 64k' -c 'write -P 0xd4 8M 4096' -c flush
patch_raw "$SRC" $((8 << 20)) 4096 0xd4
grep -q 'msg="rbd image answers again" lun=disk image=rbd/disk' "$LG_LOG" ||
	fail "the log does not say that rbd/disk answers again"
# what the frozen write did is undefined (it may have reached the OSD later);
# everything else must be as written
rbd_export disk "$LG_TMP/export.raw"
bad=$(cmp -l "$SRC" "$LG_TMP/export.raw" | awk -v lo=$((4 << 20)) -v hi=$(((4 << 20) + 4096)) \
	'$1 - 1 < lo || $1 - 1 >= hi { n++ } END { print n + 0 }') || true
((bad == 0)) || fail "the image after the freeze differs from what was written in $bad bytes"

# frozen again: SIGTERM still stops the gateway
kill -STOP "$CEPH_OSD_PID"
qio_sense "read while the OSD is frozen (again)" "4" "0x0800" "$L0" -c 'read 10M 4096'
start=$SECONDS
kill -TERM "$LG_PID"
for ((i = 0; i < RBD_STOP_SECS * 10; i++)); do
	pid_alive "$LG_PID" || break
	sleep 0.1
done
pid_alive "$LG_PID" &&
	fail "lungate (pid $LG_PID) did not exit within $RBD_STOP_SECS s of SIGTERM while the OSD was frozen"
rc=0
wait "$LG_PID" || rc=$?
forget_pid "$LG_PID"
((rc == 0)) || fail "lungate exited with status $rc after SIGTERM (expected 0)"
log "lungate stopped in $((SECONDS - start)) s with the OSD frozen"
kill -CONT "$CEPH_OSD_PID"
log "PASS"
