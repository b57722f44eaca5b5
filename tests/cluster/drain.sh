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

cl_writing_on 2 100
ini=$INI out=$LG_TMP/qio.out
res=$("$LUNGATE" drain --control "${CL_SOCKS[2]}" 2>&1) || fail "lungate drain failed: $res"
log "lungate drain: $res"
grep -q "drained: 1 client(s) logged out, 0 disconnected" <<<"$res" ||
	fail "the client did not log out when asked: $res"
cl_wait_view 1 "$CL_NET.11:3260=alive $CL_NET.12:3260=draining $CL_NET.13:3260=alive" 10
cl_writes_done 100
now=$(cl_serving "$ini")
[[ -z $now ]] || fail "qemu-io ended but $ini still has a session on gateway $now"
grep -q "msg=\"login\" initiator=$ini " "${CL_LOGS[1]}" "${CL_LOGS[3]}" ||
	fail "$ini did not log in on another gateway after the drain"
cl_verify_acked "$ini" "$out"
# the drained gateway takes no new client
cl_login_round "$LG_TMP/pick.names" "$LG_TMP/after"
! awk '$2 == 2' "$LG_TMP/after" | grep -q . || fail "a new login was served by the draining gateway"
