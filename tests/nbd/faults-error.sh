#!/usr/bin/env bash
# Errors from the NBD server (nbdkit's error filter) become SCSI sense, fast,
# and the LUN works again once the server stops failing. Three nbdkit servers
# (file plugin over raw copies, so data outlives each phase), one LUN each:
#
#  LUN 0: reads fail with EIO while a trigger file exists, writes fail with
#         ENOSPC while another exists: READ -> MEDIUM ERROR / UNRECOVERED READ
#         ERROR (03/11 00), WRITE -> DATA PROTECT / SPACE ALLOCATION FAILED
#         WRITE PROTECT (07/27 07); a whole-disk qemu-img convert fails instead
#         of hanging; writes still work while only reads fail; other LUNs are
#         unaffected; removing the trigger makes the LUN work again; a failed
#         write changed nothing.
#  LUN 1: every command fails with ESHUTDOWN while a trigger exists (the
#         server says it is going away): HARDWARE ERROR / LOGICAL UNIT
#         COMMUNICATION FAILURE (04/08 00), the gateway drops and remakes its
#         connections, and the LUN works again after the trigger is gone.
#  LUN 2: a flaky server, 25% of reads fail: every read either returns the
#         right data or fails with 03/11 00, never wrong data or a hang.
#
# The gateway stays up throughout and exits 0 on SIGTERM; each file then
# holds exactly the writes that succeeded; and (checked last) the gateway's
# log has a warning naming the storage object and the server for the failed
# commands of LUNs 0 and 2.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:faults-error
RAW=$LG_TMP/disk.raw
make_random_image "$RAW" 16
for i in 0 1 2; do cp "$RAW" "$LG_TMP/f$i.raw"; done
INJ_R=$LG_TMP/inject-read
INJ_W=$LG_TMP/inject-write
INJ_S=$LG_TMP/inject-shutdown

P0=$(free_port)
start_nbdkit "$P0" --filter=error file "$LG_TMP/f0.raw" \
	error-pread=EIO error-pread-rate=100% "error-pread-file=$INJ_R" \
	error-pwrite=ENOSPC error-pwrite-rate=100% "error-pwrite-file=$INJ_W"
P1=$(free_port)
start_nbdkit "$P1" --filter=error file "$LG_TMP/f1.raw" \
	error=ESHUTDOWN error-rate=100% "error-file=$INJ_S"
P2=$(free_port)
start_nbdkit "$P2" --filter=error file "$LG_TMP/f2.raw" error-pread=EIO error-pread-rate=25%

CFG=$LG_TMP/faults-error.json
write_config "$CFG" "$IQN" "/backstores/nbd/e0 /backstores/nbd/e1 /backstores/nbd/e2" \
	"$(so_nbd e0 "nbd://127.0.0.1:$P0" '"timeout": 2')" \
	"$(so_nbd e1 "nbd://127.0.0.1:$P1" '"timeout": 2')" \
	"$(so_nbd e2 "nbd://127.0.0.1:$P2" '"timeout": 2')"
start_lungate -c "$CFG"
L0=$(lun_url 0)
L1=$(lun_url 1)
L2=$(lun_url 2)

qio_ok "LUN 0 before any fault" "$L0" -c 'read 0 64k'
qio_ok "LUN 1 before any fault" "$L1" -c 'read 0 64k'

# ---- LUN 0: read errors ----
touch "$INJ_R"
qio_sense "read with EIO injected" 3 0x1100 "$L0" -c 'read 0 4096'
qio_sense "large read with EIO injected" 3 0x1100 "$L0" -c 'read 1M 1M'
start=$SECONDS
if out=$(run qemu-img convert -f raw -O raw "$L0" "$LG_TMP/got.raw" 2>&1); then
	fail "qemu-img convert of LUN 0 succeeded while every read failed"
fi
((SECONDS - start <= NBD_FAIL_SECS)) ||
	fail "qemu-img convert took $((SECONDS - start)) s to fail (more than $NBD_FAIL_SECS s): $out"
grep -q 'SENSE KEY:.*(3) ASCQ:.*(0x1100)' <<<"$out" ||
	fail "qemu-img convert did not fail with MEDIUM ERROR / UNRECOVERED READ ERROR: $out"
assert_alive
# Writes are not injected: they still work, and the other LUNs are unaffected.
qio_ok "write to LUN 0 while reads fail" "$L0" -c 'write -P 0x61 2M 64k' -c flush
qio_ok "LUN 1 while LUN 0 fails" "$L1" -c 'read 0 1M' -c 'write -P 0x71 0 4096'
rm -f "$INJ_R"
poll_ok "LUN 0 reads after the read errors stopped" "$NBD_RECOVER_SECS" "$L0" \
	-c 'read -P 0x61 2M 64k' -c 'read 0 1M'

# ---- LUN 0: write errors (ENOSPC) ----
touch "$INJ_W"
qio_sense "write with ENOSPC injected" 7 0x2707 "$L0" -c 'write -P 0x62 4M 64k'
qio_sense "FUA write with ENOSPC injected" 7 0x2707 "$L0" -c 'write -f -P 0x62 5M 4096'
qio_ok "reads while writes fail" "$L0" -c 'read -P 0x61 2M 64k'
rm -f "$INJ_W"
poll_ok "LUN 0 writes after the write errors stopped" "$NBD_RECOVER_SECS" "$L0" \
	-c 'write -P 0x63 6M 64k' -c flush
qio_ok "read-back after recovery" "$L0" -c 'read -P 0x63 6M 64k' -c 'read -P 0x61 2M 64k'

# ---- LUN 1: the server says it is shutting down ----
touch "$INJ_S"
qio_sense "read with ESHUTDOWN injected" 4 0x0800 "$L1" -c 'read 0 4096'
qio_sense "write with ESHUTDOWN injected" 4 0x0800 "$L1" -c 'write -P 0x72 64k 4096'
assert_alive
qio_ok "LUN 0 while LUN 1's server shuts down" "$L0" -c 'read -P 0x63 6M 64k'
grep -q 'storage e1: .*nbd://127.0.0.1:'"$P1"'.*shutting down' "$LG_LOG" ||
	fail "the gateway's log does not say that e1's server (nbd://127.0.0.1:$P1) is shutting down"
rm -f "$INJ_S"
poll_ok "LUN 1 after the server stopped shutting down" "$NBD_RECOVER_SECS" "$L1" \
	-c 'read -P 0x71 0 4096' -c 'write -P 0x73 128k 4096' -c flush

# ---- LUN 2: a flaky server ----
qio_ok "write to the flaky LUN (only reads fail)" "$L2" -c 'write -P 0x81 0 1M' -c flush
# flaky_reads HOW VERB FAILED-LINE: 40 reads of 16 KiB (VERB read: one at a
# time; aio_read: all in flight at once, started asynchronously on the NBD
# connections and answered from their completions) must each return the
# data or fail with MEDIUM ERROR, and some of each.
flaky_reads() {
	local how=$1 verb=$2 failed=$3 cmds=() out good bad sense
	for ((i = 0; i < 40; i++)); do cmds+=(-c "$verb -P 0x81 $((i * 16384)) 16384"); done
	[[ $verb == aio_read ]] && cmds+=(-c aio_flush)
	out=$(timeout --kill-after=5 "$((NBD_FAIL_SECS * 4))" qemu-io -f raw "$L2" "${cmds[@]}" 2>&1) || true
	good=$(grep -c '^read 16384/16384 bytes' <<<"$out" || true)
	bad=$(grep -c "^$failed failed: Input/output error" <<<"$out" || true)
	sense=$(grep -c 'SENSE KEY:.*(3) ASCQ:.*(0x1100)' <<<"$out" || true)
	! grep -qi 'verification failed' <<<"$out" || fail "the flaky LUN ($how) returned wrong data: $out"
	((good + bad == 40)) || fail "the flaky LUN ($how): $good reads good and $bad failed of 40: $out"
	((good > 0 && bad > 0)) || fail "the flaky LUN ($how): $good good and $bad failed reads at a 25% error rate: $out"
	((sense == bad)) || fail "the flaky LUN ($how): $bad reads failed but $sense with MEDIUM ERROR 11 00: $out"
	log "flaky LUN ($how): $good reads good, $bad failed with MEDIUM ERROR / UNRECOVERED READ ERROR"
}
flaky_reads "one at a time" read read
flaky_reads "40 in flight" aio_read readv

assert_alive
stop_lungate
cp "$RAW" "$LG_TMP/expect0.raw"
patch_raw "$LG_TMP/expect0.raw" $((2 << 20)) 65536 0x61 $((6 << 20)) 65536 0x63
same_file "f0 (failed writes must have changed nothing)" "$LG_TMP/expect0.raw" "$LG_TMP/f0.raw"
cp "$RAW" "$LG_TMP/expect1.raw"
patch_raw "$LG_TMP/expect1.raw" 0 4096 0x71 131072 4096 0x73
same_file "f1" "$LG_TMP/expect1.raw" "$LG_TMP/f1.raw"

# Last, as it is about the log only: the server's errors were logged, naming
# the storage object and the server (the issue: "every error names the LUN
# and the server").
for e in "e0:$P0" "e2:$P2"; do
	IFS=: read -r so port <<<"$e"
	grep -Eq "level=(warn|error).*(storage|LUN)[^a-z]*$so\b.*127\.0\.0\.1:$port" "$LG_LOG" ||
		fail "no warning or error in the gateway's log names storage $so and nbd://127.0.0.1:$port, whose server failed commands with errors"
done
log "PASS"
