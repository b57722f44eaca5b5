#!/usr/bin/env bash
# `lungate drain`: a libiscsi client (qemu-io writing with FUA through the
# entry point) moves off the drained gateway with no failed command: the
# gateway asks it to log out (Async Message, event 1), libiscsi logs out
# (its commands complete first) and logs in again through the entry point,
# which sends it to another gateway; the peers see the gateway draining;
# every acknowledged write verifies.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:cluster-drain
cl_three_on_ceph

ini=$(cl_pick_on 2)
out=$LG_TMP/qio.out
cl_write_loop "$ini" 100 "$out"
for ((t = 0; t < 300; t++)); do
	(($(cl_acked "$out") >= 15)) && break
	pid_alive "$QIO_PID" || fail "qemu-io ended early: $(tail -n 5 "$out")"
	sleep 0.1
done
[[ $(cl_serving "$ini") == 2 ]] || fail "$ini is not served by gateway 2 but by '$(cl_serving "$ini")'"
res=$("$LUNGATE" drain --control "${CL_SOCKS[2]}" 2>&1) || fail "lungate drain failed: $res"
log "lungate drain: $res"
grep -q "drained: 1 client(s) logged out, 0 disconnected" <<<"$res" ||
	fail "the client did not log out when asked: $res"
cl_wait_view 1 "$CL_NET.11:3260=alive $CL_NET.12:3260=draining $CL_NET.13:3260=alive" 10
rc=0
wait "$QIO_PID" || rc=$?
forget_pid "$QIO_PID"
((rc == 0)) || fail "qemu-io failed (status $rc): $(tail -n 5 "$out")"
after=$(cl_acked "$out")
((after == 100)) || fail "only $after of 100 writes were acknowledged"
now=$(cl_serving "$ini")
[[ -z $now ]] || fail "qemu-io ended but $ini still has a session on gateway $now"
grep -q "msg=\"login\" initiator=$ini " "${CL_LOGS[1]}" "${CL_LOGS[3]}" ||
	fail "$ini did not log in on another gateway after the drain"
cl_verify_acked "$ini" "$out"
# the drained gateway takes no new client
cl_login_round "$LG_TMP/pick.names" "$LG_TMP/after"
! awk '$2 == 2' "$LG_TMP/after" | grep -q . || fail "a new login was served by the draining gateway"
