#!/usr/bin/env bash
# Addresses that move (keepalived, VRRP): the entry point and each gateway's
# service address are VRRP addresses.  The client is at home on gateway 1,
# which also holds the entry point; gateway 1 is killed (kill -9) while
# qemu-io writes: keepalived moves the entry point and gateway 1's address to
# gateway 2, libiscsi reconnects through the entry point to a live gateway,
# no command fails and every acknowledged write verifies.  A login to the
# dead gateway's own address (what an iBFT written by iPXE holds) is served
# by the survivor now holding it, or redirected by it to the client's new home.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

require_cmd keepalived
IQN=$LG_IQN_PREFIX:cluster-vrrp
cl_net_vrrp
cl_ceph
rbd_clone_setup cc
cl_start_vrrp "$CFG"

cl_writing_on 1 120
ini=$INI out=$LG_TMP/qio.out
cl_stop 1 KILL
log "gateway 1 killed after $(cl_acked "$out") acknowledged writes"
cl_wait_holder "$CL_ENTRY" 2
cl_wait_holder "$CL_NET.11" 2
log "the entry point and gateway 1's address moved to gateway 2"
cl_writes_done 120
grep -q "msg=\"login\" initiator=$ini " "${CL_LOGS[2]}" "${CL_LOGS[3]}" ||
	fail "$ini did not log in on a live gateway after the kill"
cl_verify_acked "$ini" "$out"

# an OS whose iBFT names gateway 1's address directly (iPXE writes the
# redirected address there): it is answered there now
ip netns exec "$(cl_ns cli)" timeout 60 iscsi-inq -i "$ini" "iscsi://$CL_NET.11:3260/$IQN/0" >"$LG_TMP/direct.out" 2>&1 ||
	fail "a login to the dead gateway's address failed: $(tail -n 3 "$LG_TMP/direct.out")"
log "ok"
