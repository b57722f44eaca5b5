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

cl_writing_on 3 120
ini=$INI out=$LG_TMP/qio.out
n_before=$(cl_acked "$out")
cl_stop 3 KILL
log "gateway 3 killed after $n_before acknowledged writes"
cl_writes_done 120
after=$(cl_acked "$out")
grep -q "msg=\"login\" initiator=$ini " "${CL_LOGS[1]}" "${CL_LOGS[2]}" ||
	fail "$ini did not log in on a live gateway after the kill"
log "after the kill: all $after writes acknowledged"
cl_verify_acked "$ini" "$out"
