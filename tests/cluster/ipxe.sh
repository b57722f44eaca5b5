#!/usr/bin/env bash
# iPXE (QEMU in the clients' namespace) sanboots the project's boot program
# through the entry point: the gateway there redirects the login (0x0101,
# TargetAddress IP:PORT,TPGT) to the client's home gateway, which iPXE
# follows; the boot program counts its boots in its RBD clone, so the second
# boot reads the first one's write (count 2).
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

require_cmd qemu-system-x86_64
IQN=$LG_IQN_PREFIX:cluster-ipxe
cl_net "gw1:$CL_NET.11+$CL_ENTRY" "gw2:$CL_NET.12" "gw3:$CL_NET.13" "cli:$CL_NET.50"
cl_ceph
run ceph osd pool create clients 8 8 >/dev/null 2>&1 || fail "ceph osd pool create clients failed"
run ceph osd pool application enable clients rbd >/dev/null 2>&1 || fail "enabling rbd on pool clients failed"
"$LUNGATE" demo-disk "$LG_TMP/demo.img" 16 >/dev/null || fail "lungate demo-disk failed"
rbd_import "$LG_TMP/demo.img" demo
run rbd snap create rbd/demo@v1 >/dev/null 2>&1 || fail "rbd snap create failed"
write_config "$LG_TMP/base.json" "$IQN" /backstores/cow/room \
	"$(so_rbd demo demo '"snapshot": "v1"')" \
	'{"plugin": "cow", "name": "room", "base": "/backstores/rbd/demo", "overlay_pool": "clients", "per_initiator": true}'
cl_start_three "$LG_TMP/base.json"

# a client whose home is not the gateway holding the entry point, so that
# iPXE must follow the redirect (its INQUIRY login leaves the clone as the
# snapshot made it)
home=2
ini=$(cl_pick_on "$home")
log "booting as $ini (home: gateway $home)"

boot_once() { # RUN COUNT
	local dir=$LG_TMP/boot$1
	mkdir -p "$dir"
	printf '#!ipxe\ndhcp || reboot\nset initiator-iqn %s\nsanboot iscsi:%s::3260::%s || reboot\n' \
		"$ini" "$CL_ENTRY" "$IQN" >"$dir/script.ipxe"
	ip netns exec "$(cl_ns cli)" bash "$(dirname "$0")/../boot/ipxe-boot.sh" --log "$dir/com1.log" \
		"$dir" "$dir/script.ipxe" 240 >"$dir/out" 2>&1 ||
		fail "boot $1 failed: $(tail -n 30 "$dir/out")"
	grep -Eq "^boot counter read-back: OK count=$2$" "$dir/com1.log" ||
		fail "boot $1: the boot program did not count $2: $(grep 'boot counter' "$dir/com1.log")"
	grep -q "login redirected\" initiator=$ini .*to=$CL_NET.1$home:3260,1" "${CL_LOGS[1]}" ||
		fail "boot $1: the entry point did not redirect $ini to gateway $home"
	grep -q "msg=\"login\" initiator=$ini " "${CL_LOGS[home]}" ||
		fail "boot $1: $ini did not log in on its home gateway $home"
	log "boot $1: count $2, served by gateway $home"
}
boot_once 1 1
boot_once 2 2
