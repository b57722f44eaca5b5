#!/usr/bin/env bash
# The FUSE view of rbd LUNs: `lungate serve --fuse` shows an rbd LUN as
# disk.img with the image's bytes, and a write through iSCSI shows through
# it; `lungate mount` (no gateway) shows the same; a cow object with
# "overlay_pool" shows its base snapshot as base.img (its clients' clones
# are in clients/: fuse-clients.sh).
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=../fuse/functions.sh
source "$(dirname "$0")/../fuse/functions.sh"

IQN=$LG_IQN_PREFIX:rbd-fuse
rbd_cluster
run ceph osd pool create clients 8 8 >/dev/null 2>&1 || fail "ceph osd pool create clients failed"
run ceph osd pool application enable clients rbd >/dev/null 2>&1 || fail "enabling rbd on pool clients failed"
SRC=$LG_TMP/src.raw
make_random_image "$SRC" 8
rbd_import "$SRC" disk
run rbd snap create rbd/disk@v1 >/dev/null 2>&1 || fail "rbd snap create failed"
CFG=$LG_TMP/rbd.json
write_config "$CFG" "$IQN" "/backstores/rbd/disk /backstores/cow/room" \
	"$(so_rbd disk disk)" "$(so_rbd golden disk '"snapshot": "v1"')" \
	'{"plugin": "cow", "name": "room", "base": "/backstores/rbd/golden", "overlay_pool": "clients", "per_initiator": true}'
MP=$LG_TMP/mnt
mkdir -p "$MP"
start_gateway "$CFG" "$MP"
cmp "$SRC" "$MP/$IQN/0/disk.img" || fail "disk.img of the rbd LUN is not the image's bytes"
[[ $(stat -c %s "$MP/$IQN/0/disk.img") == $((8 << 20)) ]] || fail "disk.img has the wrong size"
cmp "$SRC" "$MP/$IQN/1/base.img" || fail "base.img of the overlay_pool LUN is not the base snapshot's bytes"
qio_ok "a write through iSCSI" "$(lun_url 0)" -c 'write -P 0x61 1M 64k' -c flush
patch_raw "$SRC" $((1 << 20)) 65536 0x61
for ((i = 0; i < 50; i++)); do
	cmp -s "$SRC" "$MP/$IQN/0/disk.img" && break
	sleep 0.2
done
cmp "$SRC" "$MP/$IQN/0/disk.img" || fail "disk.img does not show a write made through iSCSI"
stop_gateway "$MP"

start_mount "$CFG" "$MP"
cmp "$SRC" "$MP/$IQN/0/disk.img" || fail "lungate mount: disk.img of the rbd LUN is not the image's bytes"
stop_mount "$MP"
log "PASS"
