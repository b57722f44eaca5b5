#!/usr/bin/env bash
# A server that stops answering altogether (nbdkit frozen with SIGSTOP: its
# TCP port still accepts connections, nothing answers on them), behind an nbd
# object with "timeout": 2 and two connections (LUN 0); LUN 1 is a healthy
# nbdkit.
#
#  - while it is frozen, every read on LUN 0 fails with SCSI sense within
#    NBD_FAIL_SECS s (the first after the timeout, later ones while the
#    gateway tries to reconnect), LUN 1 keeps working, the gateway stays up;
#  - after SIGCONT, LUN 0 works again within NBD_RECOVER_SECS s;
#  - frozen again, the gateway still stops on SIGTERM (exit 0 within 10 s):
#    a reconnect stuck in the NBD handshake must not keep it from stopping.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:stall
DISK=$LG_TMP/disk.raw
make_random_image "$DISK" 8
P0=$(free_port)
start_nbdkit "$P0" file "$DISK"
FROZEN=$NBDKIT_PID
P1=$(free_port)
start_nbdkit "$P1" memory 8M

# Never leave a frozen nbdkit behind, whatever happens.
thaw() { kill -CONT "$FROZEN" 2>/dev/null || true; }
NBD_EXIT_HOOKS+=(thaw)

CFG=$LG_TMP/stall.json
write_config "$CFG" "$IQN" "/backstores/nbd/frozen /backstores/nbd/fine" \
	"$(so_nbd frozen "nbd://127.0.0.1:$P0" '"timeout": 2, "connections": 2')" \
	"$(so_nbd fine "nbd://127.0.0.1:$P1" '"timeout": 2')"
start_lungate -c "$CFG"
L0=$(lun_url 0)
L1=$(lun_url 1)

qio_ok "LUN 0 before the freeze" "$L0" -c 'write -P 0xd1 1M 64k' -c flush -c 'read -P 0xd1 1M 64k'

kill -STOP "$FROZEN"
for i in 1 2 3; do
	qio_sense "read $i from the frozen server" "3 4" "" "$L0" -c "read $((i * 4096)) 4096"
done
qio_ok "LUN 1 while LUN 0's server is frozen" "$L1" -c 'write -P 0xd2 0 4096' -c 'read -P 0xd2 0 4096'
assert_alive
kill -CONT "$FROZEN"
poll_ok "LUN 0 after the server thawed" "$NBD_RECOVER_SECS" "$L0" -c 'read -P 0xd1 1M 64k'

# Frozen again: once a connection has timed out and the gateway is trying to
# reconnect (TCP connects, the handshake gets no answer), SIGTERM must still
# stop it.
kill -STOP "$FROZEN"
qio_sense "read from the frozen server (again)" "3 4" "" "$L0" -c 'read 0 4096'
sleep 1
kill -TERM "$LG_PID"
for ((i = 0; i < 100; i++)); do
	pid_alive "$LG_PID" || break
	sleep 0.1
done
if pid_alive "$LG_PID"; then
	log "lungate (pid $LG_PID) threads: $(cat /proc/"$LG_PID"/task/*/wchan 2>/dev/null | tr '\0' ' ')"
	thaw
	fail "lungate (pid $LG_PID) did not exit within 10 s of SIGTERM while its NBD server was frozen"
fi
rc=0
wait "$LG_PID" || rc=$?
forget_pid "$LG_PID"
((rc == 0)) || fail "lungate exited with status $rc after SIGTERM (expected 0)"
thaw
log "PASS"
