#!/bin/bash
# rbd.ipxe: iPXE in QEMU sanboots the project's demo disk (`lungate demo-disk`)
# from per-client RBD clones: the demo disk is an RBD image with snapshot v1,
# the base of a cow object with "overlay_pool".  The boot program counts its
# boots in LBA 32: client A boots twice (count 1, then 2: its clone keeps its
# write), client B once (count 1: it starts from the snapshot).  Then `rbd
# export` of A's and B's clones holds count 2 and 1 and differs from a fresh
# demo disk only in the counter; the snapshot and the image are unchanged.
# A's disk committed as a new RBD image and snapshot is the base client C
# boots: count 3.  Four boots, ~9 s each, plus the cluster's start (~5 s).
#
# Uses the boot tests' harness (tests/boot/functions.sh and ipxe-boot.sh) and
# tests/rbd/ceph.sh.
. "$(dirname "$0")/../boot/functions.sh"
. "$(dirname "$0")/ceph.sh"
require_qemu
rbd_ipxe_exit() {
    local rc=$?
    ceph_stop
    (exit $rc)
    cleanup
}
trap rbd_ipxe_exit EXIT

base=$tmp/demo.img
ref=$tmp/reference.img
cfg=$tmp/rbd.json
iqn=$IQN_PREFIX:rbd-boot
"$LUNGATE" demo-disk "$base" 16 >/dev/null || fail "lungate demo-disk $base 16 failed"
"$LUNGATE" demo-disk "$ref" 16 >/dev/null || fail "lungate demo-disk $ref 16 failed"
ceph_start "$tmp/ceph" || fail "the test's Ceph cluster did not start (logs in $tmp/ceph/log)"
echo "ceph: ready in ${CEPH_START_SECS}s"
timeout 60 ceph osd pool create clients 8 8 >/dev/null 2>&1 || fail "ceph osd pool create failed"
timeout 60 ceph osd pool application enable clients rbd >/dev/null 2>&1 || fail "pool application enable failed"
timeout 60 rbd import --no-progress "$base" rbd/demo >/dev/null 2>&1 || fail "rbd import failed"
timeout 60 rbd snap create rbd/demo@v1 >/dev/null 2>&1 || fail "rbd snap create failed"
cat >"$cfg" <<EOF
{"storage_objects": [
  {"plugin": "rbd", "name": "demo", "pool": "rbd", "image": "demo", "snapshot": "v1",
   "conf": "$CEPH_CONF"},
  {"plugin": "cow", "name": "room", "base": "/backstores/rbd/demo",
   "overlay_pool": "clients", "per_initiator": true}],
 "targets": [{"wwn": "$iqn", "tpgs": [{"tag": 1,
   "attributes": {"generate_node_acls": 1},
   "luns": [{"index": 0, "storage_object": "/backstores/cow/room"}]}]}]}
EOF

start_gateway -c "$cfg"

# boot_as CLIENT RUN COUNT: boot as initiator IQN_PREFIX:CLIENT; the boot
# program must read COUNT-1 from LBA 32 and write COUNT.
boot_as() {
    local who=$1 name=$1-$2 n=$3
    boot "$name" "$(ipxe_script "$who" "sanboot $(iscsi_uri 0 "$iqn")")" ||
        fail "boot $2 of $who failed (see the logs above)"
    expect "$name" '^drive parameters \(AH=48h\): OK sectors=32768 bytes-per-sector=512$'
    expect "$name" '^program read-back \(LBA 0\.\.7\): OK'
    expect "$name" '^last sector: OK lba=32767$'
    expect "$name" "^boot counter \(LBA 32\): OK read count=$((n - 1))$"
    expect "$name" "^boot counter read-back: OK count=$n$"
    expect "$name" "^LUNGATE-BOOT OK count=$n$"
    grep -q "msg=\"login\" initiator=$IQN_PREFIX:$who " "$gw_log" ||
        fail "boot $2 of $who: the gateway logged no login of $IQN_PREFIX:$who"
    echo "boot $2 of $who: count=$n"
}

boot_as rbd-a 1 1
boot_as rbd-a 2 2      # A's own earlier write is in its clone
boot_as rbd-b 1 1      # B starts from the snapshot
stop_gateway

# export_of IMAGE FILE: the image's bytes, read by the rbd CLI.
export_of() {
    rm -f "$2"
    timeout 60 rbd export --no-progress "$1" "$2" >/dev/null 2>&1 || fail "rbd export $1 failed"
}
export_of "clients/lungate.room+$IQN_PREFIX:rbd-a" "$tmp/a.img"
export_of "clients/lungate.room+$IQN_PREFIX:rbd-b" "$tmp/b.img"
[ "$(counter_of "$tmp/a.img")" = 2 ] || fail "rbd-a's clone has boot counter $(counter_of "$tmp/a.img"), expected 2"
[ "$(counter_of "$tmp/b.img")" = 1 ] || fail "rbd-b's clone has boot counter $(counter_of "$tmp/b.img"), expected 1"
differs_only_in_counter "$tmp/a.img" "$ref"
differs_only_in_counter "$tmp/b.img" "$ref"
export_of rbd/demo@v1 "$tmp/snap.img"
cmp -s "$tmp/snap.img" "$base" || fail "the base snapshot rbd/demo@v1 changed"
export_of rbd/demo "$tmp/head.img"
cmp -s "$tmp/head.img" "$base" || fail "the base image rbd/demo changed"

# A's disk committed as the next base (a new RBD image and snapshot): a new
# client C boots it with A's data (count 3)
"$LUNGATE" overlay commit -c "$cfg" room "$IQN_PREFIX:rbd-a" rbd:rbd/demo2@v1 ||
    fail "overlay commit of rbd-a to rbd:rbd/demo2@v1 failed"
sed -i 's/"image": "demo", "snapshot": "v1"/"image": "demo2", "snapshot": "v1"/' "$cfg"
start_gateway -c "$cfg"
boot_as rbd-c 1 3
stop_gateway
echo "PASS: A booted twice (count 1, 2), B once (count 1), base unchanged; C booted A's committed disk (count 3)"
