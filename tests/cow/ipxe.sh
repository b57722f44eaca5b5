#!/bin/bash
# cow.ipxe: iPXE in QEMU sanboots the project's demo disk (`lungate demo-disk`)
# as the base of a per-initiator cow LUN; the boot program counts its boots in
# LBA 32. Client A boots twice and sees its own earlier write (count=1, then
# count=2); client B then boots the same LUN and sees the base's 0 (count=1).
# The base file never changes (SHA-256). Offline, `lungate overlay commit`
# writes A's and B's disks out: A's holds count 2 and B's count 1, and each
# differs from a fresh demo disk only in the counter. Three boots, ~9 s each.
#
# Uses the boot tests' harness (tests/boot/functions.sh and ipxe-boot.sh).
. "$(dirname "$0")/../boot/functions.sh"
require_qemu

base=$tmp/demo.img
ref=$tmp/reference.img
ov=$tmp/overlays
cfg=$tmp/cow.json
iqn=$IQN_PREFIX:cow-boot
"$LUNGATE" demo-disk "$base" 16 >/dev/null || fail "lungate demo-disk $base 16 failed"
"$LUNGATE" demo-disk "$ref" 16 >/dev/null || fail "lungate demo-disk $ref 16 failed"
base_sha=$(sha256sum "$base" | cut -d' ' -f1)
cat >"$cfg" <<EOF
{"storage_objects": [
  {"plugin": "fileio", "name": "demo", "dev": "$base"},
  {"plugin": "cow", "name": "room", "base": "/backstores/fileio/demo",
   "overlay_dir": "$ov", "per_initiator": true}],
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

boot_as cow-a 1 1
boot_as cow-a 2 2      # A's own earlier write is there
boot_as cow-b 1 1      # B starts from the base
stop_gateway

[ "$(sha256sum "$base" | cut -d' ' -f1)" = "$base_sha" ] ||
    fail "the base demo disk changed (its SHA-256 differs)"
[ "$(counter_of "$base")" = 0 ] || fail "the base's boot counter is not 0"

# Each client's disk, written out by `lungate overlay commit`.
"$LUNGATE" overlay commit -c "$cfg" room "$IQN_PREFIX:cow-a" "$tmp/a.img" ||
    fail "overlay commit of cow-a failed"
"$LUNGATE" overlay commit -c "$cfg" room "$IQN_PREFIX:cow-b" "$tmp/b.img" ||
    fail "overlay commit of cow-b failed"
[ "$(counter_of "$tmp/a.img")" = 2 ] || fail "cow-a's disk has boot counter $(counter_of "$tmp/a.img"), expected 2"
[ "$(counter_of "$tmp/b.img")" = 1 ] || fail "cow-b's disk has boot counter $(counter_of "$tmp/b.img"), expected 1"
differs_only_in_counter "$tmp/a.img" "$ref"
differs_only_in_counter "$tmp/b.img" "$ref"
[ "$(find "$ov" -name '*.cow' | wc -l)" = 2 ] || fail "expected two overlay files in $ov: $(ls "$ov")"
echo "PASS: A booted twice (count 1, 2), B once (count 1), base unchanged"
