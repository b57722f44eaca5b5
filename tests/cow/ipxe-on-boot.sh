#!/bin/bash
# cow.ipxe-on-boot: "reset": "on_boot" with real boots.  iPXE in QEMU sanboots
# the project's demo disk as the base of a per-initiator cow LUN; the boot
# program counts its boots in LBA 32.  Client A boots twice and starts clean
# each time (count=1, then count=1 again: its first boot's write is gone);
# the maintainer (named in "maintainers") boots twice and keeps its layer
# (count=1, then 2).  The gateway logs A's reset at its second boot and none
# of the maintainer's.  The base file never changes.  Four boots, ~9 s each, and a
# minute switched off between the first and the second.
#
# Uses the boot tests' harness (tests/boot/functions.sh and ipxe-boot.sh).
. "$(dirname "$0")/../boot/functions.sh"
require_qemu

base=$tmp/demo.img
ov=$tmp/overlays
cfg=$tmp/cow.json
iqn=$IQN_PREFIX:cow-on-boot
"$LUNGATE" demo-disk "$base" 16 >/dev/null || fail "lungate demo-disk $base 16 failed"
base_sha=$(sha256sum "$base" | cut -d' ' -f1)
cat >"$cfg" <<EOF
{"storage_objects": [
  {"plugin": "fileio", "name": "demo", "dev": "$base"},
  {"plugin": "cow", "name": "room", "base": "/backstores/fileio/demo",
   "overlay_dir": "$ov", "per_initiator": true, "reset": "on_boot",
   "maintainers": ["$IQN_PREFIX:teacher"]}],
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

boot_as pc-a 1 1
boot_as teacher 1 1
# The boot program ends the VM: iPXE's connection is lost without a Logout,
# and an iPXE login within 60 s of that is a reconnect of a running DOS (the
# boot rule's limit: iPXE gives the gateway nothing else to go by).  So the
# PCs stay off for longer than that before they boot again.
sleep 62
boot_as pc-a 2 1       # a clean disk at every boot
boot_as teacher 2 2    # the maintainer keeps its layer
grep -F 'msg="overlay reset"' "$gw_log" | grep -F "initiator=$IQN_PREFIX:pc-a " |
    grep -q 'policy=on_boot' || fail "the gateway logged no on_boot reset of pc-a"
grep -F 'msg="overlay reset"' "$gw_log" | grep -qF "initiator=$IQN_PREFIX:teacher " &&
    fail "the gateway reset the maintainer's layer"
stop_gateway
[ "$(sha256sum "$base" | cut -d' ' -f1)" = "$base_sha" ] ||
    fail "the base demo disk changed (its SHA-256 differs)"
echo "PASS: pc-a booted clean twice (count 1, 1), the maintainer kept its layer (count 1, 2)"
