#!/usr/bin/env bash
# An rbd LUN reads and writes byte for byte: an image imported with the rbd
# CLI is read whole through iSCSI (qemu-img convert) and compared; data
# written through iSCSI (qemu-img convert onto the LUN, qemu-io writes with
# FUA and flushes, write-zeroes, discard) is what `rbd export` reads back; a
# snapshot LUN shows the snapshot's bytes and is write protected; a second LUN is the same image through rtslib's tcmu "user" plugin
# with tcmu-runner's rbd string (as ceph-iscsi writes it).  GET LBA STATUS
# (qemu-img map) shows an imported sparse image's holes.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:rbd-convert
rbd_cluster

SRC=$LG_TMP/src.raw
make_random_image "$SRC" 24 # 24 MiB: several 4 MiB objects, one partly written
rbd_import "$SRC" disk
run rbd snap create rbd/disk@v1 >/dev/null 2>&1 || fail "rbd snap create failed"

CFG=$LG_TMP/rbd.json
write_config "$CFG" "$IQN" "/backstores/rbd/disk /backstores/rbd/snap /backstores/user/tcmu" \
	"$(so_rbd disk disk '"osd_op_timeout": 10')" \
	"$(so_rbd snap disk '"snapshot": "v1"')" \
	"{\"plugin\": \"user\", \"name\": \"tcmu\", \"config\": \"rbd/rbd/disk;osd_op_timeout=30;conf=$CEPH_CONF;id=admin\", \"size\": 25165824, \"wwn\": \"6a1b2c3d-0000-4000-8000-000000000001\", \"hw_max_sectors\": 128, \"control\": \"\", \"alua_tpgs\": []}"
start_lungate -c "$CFG"
grep -q 'msg="rbd image opened".*lun=disk image=rbd/disk ' "$LG_LOG" ||
	fail "the log does not say which rbd image LUN disk opened"

# whole-image reads, all three LUNs
read_lun "$(lun_url 0)" "$LG_TMP/got0.raw"
same_file "LUN 0 (rbd/disk) read whole" "$SRC" "$LG_TMP/got0.raw"
read_lun "$(lun_url 1)" "$LG_TMP/got1.raw"
same_file "LUN 1 (rbd/disk@v1) read whole" "$SRC" "$LG_TMP/got1.raw"
read_lun "$(lun_url 2)" "$LG_TMP/got2.raw"
same_file "LUN 2 (user rbd/rbd/disk) read whole" "$SRC" "$LG_TMP/got2.raw"

# a whole new image written through iSCSI
NEW=$LG_TMP/new.raw
make_random_image "$NEW" 24
run qemu-img convert -n -f raw -O raw "$NEW" "$(lun_url 0)" 2>&1 ||
	fail "qemu-img convert onto the rbd LUN failed"
out=$(run qemu-img compare -f raw -F raw "$(lun_url 0)" "$NEW" 2>&1) ||
	fail "the rbd LUN does not hold what qemu-img convert wrote: $out"
rbd_export disk "$LG_TMP/export.raw"
same_file "rbd export after qemu-img convert onto the LUN" "$NEW" "$LG_TMP/export.raw"

# FUA writes, flush, write-zeroes (WRITE SAME), discard (UNMAP) through qemu-io
qio_ok "writes" "$(lun_url 0)" -c 'write -P 0x5a -f 1M 64k' -c 'write -P 0xa5 8388096 1024' \
	-c flush -c 'write -z 12M 4M' -c 'write -z -u 20M 4M' -c 'read -P 0x5a 1M 64k'
patch_raw "$NEW" $((1 << 20)) 65536 0x5a 8388096 1024 0xa5 $((12 << 20)) $((4 << 20)) 0 \
	$((20 << 20)) $((4 << 20)) 0
rbd_export disk "$LG_TMP/export.raw"
same_file "rbd export after qemu-io writes" "$NEW" "$LG_TMP/export.raw"
read_lun "$(lun_url 2)" "$LG_TMP/got2.raw"
same_file "LUN 2 (user) after writes through LUN 0" "$NEW" "$LG_TMP/got2.raw"

# the snapshot did not change, and cannot be written
read_lun "$(lun_url 1)" "$LG_TMP/got1.raw"
same_file "LUN 1 (the snapshot) after writes to the image" "$SRC" "$LG_TMP/got1.raw"
out=$(run qemu-io -f raw "$(lun_url 1)" -c 'write -P 1 0 4096' 2>&1) || true
grep -q 'write protected' <<<"$out" ||
	fail "the snapshot LUN is not write protected (qemu-io: $out)"

# allocation (GET LBA STATUS, from rbd_diff_iterate2): an image with data
# only at 5 MiB shows data there and holes where nothing was ever written
SP=$LG_TMP/sparse.raw
truncate -s 16M "$SP"
make_random_image "$LG_TMP/blob" 0 65536
splice_file "$SP" $((5 << 20)) "$LG_TMP/blob"
rbd_import "$SP" sparse
stop_lungate
write_config "$CFG" "$IQN" "/backstores/rbd/sparse" "$(so_rbd sparse sparse)"
start_lungate -c "$CFG"
map=$(run qemu-img map -f raw --output=json "$(lun_url 0)" 2>&1) || fail "qemu-img map failed: $map"
log "qemu-img map of the sparse rbd LUN: $(tr -d '\n' <<<"$map")"
python3 - "$map" <<'PY' || fail "GET LBA STATUS of the sparse rbd LUN is wrong (see the map above)"
import json, sys
m = json.loads(sys.argv[1])
def data_at(off):
    return next(e["data"] for e in m if e["start"] <= off < e["start"] + e["length"])
assert data_at(5 << 20) and data_at((5 << 20) + 65535), "the written 64 KiB is not data"
assert not data_at(0) and not data_at(12 << 20), "never-written ranges are data"
assert sum(e["length"] for e in m if e["data"]) <= 4 << 20, "more than one object is data"
PY
read_lun "$(lun_url 0)" "$LG_TMP/sparse.got"
same_file "the sparse LUN read whole" "$SP" "$LG_TMP/sparse.got"

stop_lungate
log "PASS"
