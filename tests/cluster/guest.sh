#!/usr/bin/env bash
# Failover with a real OS: the Debian 12 guest of tests/guest boots diskless
# through the entry point (iPXE sanhook, redirected to its home gateway;
# the initramfs and iscsid log in again through the iBFT, which holds the
# home gateway's address), root on its RBD clone.  While it writes and
# syncs a file a second, its gateway is killed (kill -9): keepalived moves
# that gateway's address to a survivor, open-iscsi logs in there again and
# is served (or redirected to the client's new home) once the dead
# gateway's heartbeat stops; the guest sees no I/O error, is not remounted
# read-only, and every file it wrote reads back after the page cache is
# dropped.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=../guest/functions.sh
source "$(dirname "$0")/../guest/functions.sh"
trap nbd_on_exit EXIT # the cluster's: namespaces, the Ceph cluster, then lg_cleanup

require_cmd keepalived
IQN=$LG_IQN_PREFIX:cluster-guest
cl_net_vrrp
CEPH_OSD_BYTES=$((4 << 30)) cl_ceph
run ceph osd pool create clients 8 8 >/dev/null 2>&1 || fail "ceph osd pool create clients failed"
run ceph osd pool application enable clients rbd >/dev/null 2>&1 || fail "enabling rbd on pool clients failed"
t0=$SECONDS
rbd_import "$GUEST_DIR/root.img" debian
run rbd snap create rbd/debian@v1 >/dev/null 2>&1 || fail "rbd snap create failed"
log "the guest's root imported into RBD in $((SECONDS - t0)) s"
write_config "$LG_TMP/base.json" "$IQN" /backstores/cow/room \
	"$(so_rbd debian debian '"snapshot": "v1"')" \
	'{"plugin": "cow", "name": "room", "base": "/backstores/rbd/debian", "overlay_pool": "clients", "per_initiator": true}'
cl_start_vrrp "$LG_TMP/base.json"

GUEST_SAN=$CL_ENTRY::3260 GUEST_NETNS=$(cl_ns cli) guest_start pc1 loop
PC=$(ini pc1)
guest_wait_line 'loop-start'
home=$(cl_serving "$PC")
[[ -n $home ]] || fail "no gateway serves $PC"
guest_wait_line 'root ' 5
sleep 5 # a few writes acknowledged before the kill
cl_stop "$home" KILL
log "gateway $home (serving $PC) killed"
guest_wait_line 'done' 300
guest_wait_end
guest_has 'loop-end 45'
guest_has 'verify 45 files, 0 bad'
guest_has 'kernel: 0 I/O errors, 0 read-only remounts'
guest_has 'mount rw'
now=$(grep -l "msg=\"login\" initiator=$PC " "${CL_LOGS[@]}" | grep -v "gw$home.log" | head -n 1)
[[ -n $now ]] || fail "$PC did not log in on a live gateway after the kill"
log "ok: the guest carried on on $(basename "$now" .log)"
