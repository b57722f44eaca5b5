#!/usr/bin/env bash
# Failover with QEMU's own iSCSI driver (libiscsi's reconnect): qemu-io writes
# with FUA through the entry point to its RBD clone; its gateway is killed
# (kill -9); libiscsi reconnects through the entry point, is redirected to a
# live gateway once the dead one's heartbeat stops, which takes the clone's
# lock over, and the writes go on: no command fails and every acknowledged
# write reads back.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:cluster-failover
cl_three_on_ceph

ini=$(cl_pick_on 3)
out=$LG_TMP/qio.out
cl_write_loop "$ini" 120 "$out"
for ((t = 0; t < 300; t++)); do
	(($(cl_acked "$out") >= 20)) && break
	pid_alive "$QIO_PID" || fail "qemu-io ended early: $(tail -n 5 "$out")"
	sleep 0.1
done
[[ $(cl_serving "$ini") == 3 ]] || fail "$ini is not served by gateway 3 but by '$(cl_serving "$ini")'"
before=$(cl_acked "$out")
cl_stop 3 KILL
log "gateway 3 killed after $before acknowledged writes"
rc=0
wait "$QIO_PID" || rc=$?
forget_pid "$QIO_PID"
((rc == 0)) || fail "qemu-io failed (status $rc): $(tail -n 5 "$out")"
after=$(cl_acked "$out")
((after == 120)) || fail "only $after of 120 writes were acknowledged: $(grep -iv '^wrote\|^[0-9]' "$out" | head -n 5)"
now=$(cl_serving "$ini")
log "after the kill: $after writes acknowledged; $ini reconnected to gateway $now"
cl_verify_acked "$ini" "$out"
