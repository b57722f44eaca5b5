#!/usr/bin/env bash
# External NBD servers behind "nbd" storage objects: a qemu-nbd of the test's
# own on a unix socket (nbd+unix:///?socket=PATH) serving a qcow2, as LUN 0,
# and nbdkit's memory plugin on 127.0.0.1 (nbd://127.0.0.1:PORT), as LUN 1;
# LUN 2 is a read-only nbdkit export (nbdkit -r).
#
#  - each LUN reads as the server's data (the raw image; 64 MiB of zeroes);
#  - writes through iSCSI are what the server holds (qemu-io on the NBD URI
#    itself), and writes made directly on the server are what iSCSI reads (the
#    gateway caches nothing); WRITE SAME / zeroing through iSCSI reads back as
#    zeroes on the server;
#  - FUA writes land as well;
#  - the whole LUN through iSCSI equals the whole export read over NBD;
#  - the read-only export is a write-protected LUN (qemu will not open it
#    read-write) that reads fine;
#  - the gateway exits 0 on SIGTERM and leaves servers it did not start
#    running; qemu-nbd's qcow2 then holds exactly the expected bytes.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:external
RAW=$LG_TMP/disk.raw
QCOW=$LG_TMP/disk.qcow2
SOCK=$NBD_SOCK_DIR/qemu-nbd.sock
make_random_image "$RAW" 16
run qemu-img convert -f raw -O qcow2 "$RAW" "$QCOW" || fail "qemu-img convert -O qcow2"
SIZE=$(file_size "$RAW")

# Servers: qemu-nbd with room for the gateway's connections and ours.
start_qemu_nbd "$SOCK" -f qcow2 --shared=8 --persistent "$QCOW"
QN_PID=$QEMU_NBD_PID
QN_URI="nbd+unix:///?socket=$SOCK"
NK_PORT=$(free_port)
start_nbdkit "$NK_PORT" memory 64M
NK_PID=$NBDKIT_PID
NK_URI="nbd://127.0.0.1:$NK_PORT"
RO_PORT=$(free_port)
start_nbdkit "$RO_PORT" -r memory 8M

CFG=$LG_TMP/external.json
write_config "$CFG" "$IQN" "/backstores/nbd/qn /backstores/nbd/nk /backstores/nbd/ro" \
	"$(so_nbd qn "$QN_URI")" "$(so_nbd nk "$NK_URI")" "$(so_nbd ro "nbd://127.0.0.1:$RO_PORT")"
start_lungate -c "$CFG"
grep -q "storage qn: .*$SIZE bytes, read-write" "$LG_LOG" ||
	fail "the gateway did not log the qemu-nbd export's size and mode"
grep -q "storage nk: .*$((64 << 20)) bytes, read-write" "$LG_LOG" ||
	fail "the gateway did not log the nbdkit export's size and mode"
[[ -z $(qemu_nbd_children) ]] || fail "the gateway started a qemu-nbd of its own for an nbd object"

# Reads: each LUN is its server's data.
read_lun "$(lun_url 0)" "$LG_TMP/got.raw"
same_file "LUN 0 (qemu-nbd) through iSCSI" "$RAW" "$LG_TMP/got.raw"
truncate -s 64M "$LG_TMP/zero.raw"
read_lun "$(lun_url 1)" "$LG_TMP/got.raw"
same_file "LUN 1 (nbdkit memory) through iSCSI" "$LG_TMP/zero.raw" "$LG_TMP/got.raw"
rm -f "$LG_TMP/got.raw"

# Writes through iSCSI land on the servers.
LAST0=$((SIZE - 512))
LAST1=$(((64 << 20) - 4096))
qio_ok "writes to LUN 0" "$(lun_url 0)" -c 'write -P 0x31 0 512' -c 'write -P 0x32 65000 70000' \
	-c 'write -P 0x33 5M 1M' -c "write -P 0x34 $LAST0 512" -c flush
qio_ok "writes to LUN 1" "$(lun_url 1)" -c 'write -P 0x41 4096 4096' -c 'write -P 0x42 1000000 300000' \
	-c 'write -P 0x43 40M 2M' -c "write -P 0x44 $LAST1 4096" -c 'write -P 0x45 20M 1M' \
	-c 'write -f -P 0x46 50M 64k' -c flush
qio_ro_ok "qemu-nbd holds the iSCSI writes" "$QN_URI" -c 'read -P 0x31 0 512' \
	-c 'read -P 0x32 65000 70000' -c 'read -P 0x33 5M 1M' -c "read -P 0x34 $LAST0 512"
qio_ro_ok "nbdkit holds the iSCSI writes" "$NK_URI" -c 'read -P 0x41 4096 4096' \
	-c 'read -P 0x42 1000000 300000' -c 'read -P 0x43 40M 2M' -c "read -P 0x44 $LAST1 4096" \
	-c 'read -P 0 0 4096' -c 'read -P 0 8192 991808' -c 'read -P 0x46 50M 64k'

# Zeroing through iSCSI (qemu sends WRITE SAME or plain zero writes).
qio_ok "zeroing on LUN 1" "$(lun_url 1)" -c 'write -z 20M 512k' -c flush
qio_ro_ok "nbdkit holds the zeroes" "$NK_URI" -c 'read -P 0 20M 512k' -c 'read -P 0x45 20992k 512k'

# Writes made on the servers directly are what iSCSI reads.
qio_ok "direct write to qemu-nbd" "$QN_URI" -c 'write -P 0x51 3M 64k' -c flush
qio_ok "direct write to nbdkit" "$NK_URI" -c 'write -P 0x52 30M 64k' -c flush
qio_ok "iSCSI reads qemu-nbd's data" "$(lun_url 0)" -c 'read -P 0x51 3M 64k' -c 'read -P 0x33 5M 1M'
qio_ok "iSCSI reads nbdkit's data" "$(lun_url 1)" -c 'read -P 0x52 30M 64k' -c 'read -P 0x43 40M 2M'

# The read-only export.
grep -q "storage ro: .*read-only" "$LG_LOG" || fail "the gateway did not log storage ro as read-only"
out=$(run qemu-io -f raw "$(lun_url 2)" -c 'write -P 0x55 0 4096' 2>&1) || true
grep -qi 'write protected' <<<"$out" || fail "the read-only export took a write, or failed otherwise: $out"
qio_ro_ok "reads from the read-only export" "$(lun_url 2)" -c 'read -P 0 0 1M'

# The whole LUN equals the whole export.
for lun in 0 1; do
	if ((lun == 0)); then uri=$QN_URI; else uri=$NK_URI; fi
	read_lun "$(lun_url "$lun")" "$LG_TMP/via-iscsi.raw"
	run qemu-img convert -f raw -O raw "$uri" "$LG_TMP/via-nbd.raw" || fail "qemu-img convert from $uri"
	same_file "LUN $lun against its NBD export" "$LG_TMP/via-nbd.raw" "$LG_TMP/via-iscsi.raw"
	rm -f "$LG_TMP/via-iscsi.raw" "$LG_TMP/via-nbd.raw"
done

assert_alive
stop_lungate
pid_alive "$QN_PID" || fail "qemu-nbd (pid $QN_PID), which the gateway did not start, ended with it"
pid_alive "$NK_PID" || fail "nbdkit (pid $NK_PID), which the gateway did not start, ended with it"
# nbdkit still serves: the gateway's connections went away cleanly.
qio_ro_ok "nbdkit after the gateway stopped" "$NK_URI" -c 'read -P 0x44 '"$LAST1"' 4096'

kill -TERM "$QN_PID"
wait "$QN_PID" 2>/dev/null || true
forget_pid "$QN_PID"
cp "$RAW" "$LG_TMP/expect.raw"
patch_raw "$LG_TMP/expect.raw" 0 512 0x31 65000 70000 0x32 $((5 << 20)) $((1 << 20)) 0x33 \
	"$LAST0" 512 0x34 $((3 << 20)) 65536 0x51
image_equals "the qcow2 behind qemu-nbd" qcow2 "$QCOW" "$LG_TMP/expect.raw"
log "PASS"
