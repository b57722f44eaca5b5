#!/bin/bash
# boot.sanhook-two-luns: one target with two LUNs (rtslib-style JSON config).
# iPXE hooks LUN 0 as drive 0x80 and LUN 1 as drive 0x81, then boots 0x80;
# the boot program checks 0x80 (count=1) and reads 0x81 (a smaller demo disk)
# as well. Afterwards LUN 0's image holds count 1 and LUN 1's is untouched.
# The iPXE script is examples/sanhook.ipxe.
. "$(dirname "$0")/functions.sh"
require_qemu

a=$tmp/a.img
b=$tmp/b.img
iqn=$IQN_PREFIX:two
"$LUNGATE" demo-disk "$a" 16 >/dev/null || fail "lungate demo-disk $a 16 failed"
"$LUNGATE" demo-disk "$b" 8 >/dev/null || fail "lungate demo-disk $b 8 failed"
"$LUNGATE" demo-disk "$tmp/ref-a.img" 16 >/dev/null || fail "lungate demo-disk failed"
cp "$b" "$tmp/ref-b.img"

cat >"$tmp/config.json" <<JSON
{
  "storage_objects": [
    {"plugin": "fileio", "name": "d0", "dev": "$a"},
    {"plugin": "fileio", "name": "d1", "dev": "$b"}
  ],
  "targets": [
    {
      "wwn": "$iqn",
      "fabric": "iscsi",
      "tpgs": [
        {
          "tag": 1,
          "enable": true,
          "attributes": {"generate_node_acls": 1, "authentication": 0, "demo_mode_write_protect": 0},
          "portals": [{"ip_address": "127.0.0.1", "port": 3260}],
          "luns": [
            {"index": 0, "storage_object": "/backstores/fileio/d0"},
            {"index": 1, "storage_object": "/backstores/fileio/d1"}
          ]
        }
      ]
    }
  ]
}
JSON

start_gateway -c "$tmp/config.json"
# examples/sanhook.ipxe: sanhook --drive 0x80 LUN 0, sanhook --drive 0x81
# LUN 1, sanboot --drive 0x80.
boot sanhook "$(example_script sanhook.ipxe "$iqn")" ||
    fail "sanhook + sanboot of two LUNs failed (see the logs above)"
expect sanhook '^drive parameters \(AH=48h\): OK sectors=32768 bytes-per-sector=512$'
expect sanhook '^last sector: OK lba=32767$'
expect sanhook '^BOOT COUNT 1$'
expect sanhook '^drive 0x81: OK sectors=16384 bytes-per-sector=512 last-sector=OK multi-sector=OK$'
expect sanhook '^LUNGATE-BOOT OK count=1$'

stop_gateway
count=$(counter_of "$a")
[ "$count" = 1 ] || fail "boot counter in $a (LUN 0) is $count, expected 1"
differs_only_in_counter "$a" "$tmp/ref-a.img"
cmp -s "$b" "$tmp/ref-b.img" || fail "$b (LUN 1, only read) changed"
echo "PASS: two LUNs hooked as 0x80 and 0x81, both read, only 0x80 written"
