#!/usr/bin/env bash
# Start-up against servers that accept a connection but never answer its NBD
# handshake; lungate must not hang there ("timeout": 2 on both objects).
#
#  1. A read-only qemu-nbd with its default --shared=1 (serves one client at a
#     time; later connections wait, unanswered, until the first one leaves):
#     the gateway comes up within 30 s, with as many connections as the
#     server takes, and LUN 0 reads as the image byte for byte.
#  2. A frozen nbdkit (SIGSTOP before the gateway starts): within 20 s the
#     gateway either exits non-zero naming the storage object, or serves.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:handshake
RAW=$LG_TMP/disk.raw
QCOW=$LG_TMP/disk.qcow2
SOCK=$NBD_SOCK_DIR/qemu-nbd.sock
make_random_image "$RAW" 8
run qemu-img convert -f raw -O qcow2 "$RAW" "$QCOW" || fail "qemu-img convert -O qcow2"

# ---- 1: qemu-nbd -r with one client at a time ----
start_qemu_nbd "$SOCK" -r -f qcow2 "$QCOW"
CFG=$LG_TMP/one-client.json
write_config "$CFG" "$IQN" "/backstores/nbd/single" \
	"$(so_nbd single "nbd+unix:///?socket=$SOCK" '"timeout": 2')"
start_lungate -c "$CFG"
read_lun "$(lun_url 0)" "$LG_TMP/got.raw"
same_file "LUN 0 behind a one-client qemu-nbd" "$RAW" "$LG_TMP/got.raw"
stop_lungate

# ---- 2: a frozen nbdkit ----
P0=$(free_port)
start_nbdkit "$P0" file "$RAW"
FROZEN=$NBDKIT_PID
# shellcheck disable=SC2016 # expanded when the hook runs
NBD_EXIT_HOOKS+=('kill -CONT "$FROZEN" 2>/dev/null')
kill -STOP "$FROZEN"
CFG=$LG_TMP/frozen.json
write_config "$CFG" "$IQN" "/backstores/nbd/frozen" \
	"$(so_nbd frozen "nbd://127.0.0.1:$P0" '"timeout": 2')"
PORT=$(free_port)
LG_LOG=$LG_TMP/frozen.log
LG_LOGS+=("$LG_LOG")
log "starting: lungate serve -c $CFG --listen 127.0.0.1:$PORT (its NBD server is frozen)"
"$LUNGATE" serve -c "$CFG" --listen "127.0.0.1:$PORT" </dev/null >"$LG_LOG" 2>&1 &
LG_PID=$!
LG_PIDS+=("$LG_PID")
for ((i = 0; i < 200; i++)); do
	pid_alive "$LG_PID" || break
	port_open 127.0.0.1 "$PORT" && break
	sleep 0.1
done
if pid_alive "$LG_PID" && ! port_open 127.0.0.1 "$PORT"; then
	log "lungate (pid $LG_PID) threads: $(cat /proc/"$LG_PID"/task/*/wchan 2>/dev/null | tr '\0' ' ')"
	fail "lungate neither started nor gave up within 20 s while its NBD server was frozen"
fi
if pid_alive "$LG_PID"; then
	log "lungate serves although its NBD server is frozen"
	kill -CONT "$FROZEN"
	stop_lungate
else
	rc=0
	wait "$LG_PID" || rc=$?
	forget_pid "$LG_PID"
	((rc != 0)) || fail "lungate exited with status 0 without serving"
	grep -q 'frozen' "$LG_LOG" || fail "lungate's error does not name storage object frozen: $(cat "$LG_LOG")"
	log "lungate gave up with status $rc: $(tail -n 1 "$LG_LOG")"
fi
log "PASS"
