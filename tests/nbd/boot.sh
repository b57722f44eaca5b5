#!/bin/bash
# nbd.boot: iPXE sanboots the demo disk converted to qcow2 and served by the
# gateway's own qemu-nbd (plugin "qcow2"). The boot program must report every
# step OK and count=1; after the gateway stops (exit 0, its qemu-nbd gone),
# the qcow2 passes qemu-img check and, converted back to raw, holds boot
# counter 1 (read by lungate-boot-tool and by od) and differs from a fresh
# demo disk in the counter's bytes only.
# Uses tests/boot's harness (functions.sh, ipxe-boot.sh); one boot, ~9 s.
# shellcheck source=../boot/functions.sh
. "$(dirname "$0")/../boot/functions.sh"
require_qemu
command -v qemu-img >/dev/null || missing "qemu-img not found: apt-get install qemu-utils"

raw=$tmp/demo.raw
ref=$tmp/reference.raw
qcow=$tmp/demo.qcow2
back=$tmp/back.raw
iqn=$IQN_PREFIX:nbd-boot
"$LUNGATE" demo-disk "$raw" 16 >/dev/null || fail "lungate demo-disk $raw 16 failed"
"$LUNGATE" demo-disk "$ref" 16 >/dev/null || fail "lungate demo-disk $ref 16 failed"
qemu-img convert -f raw -O qcow2 "$raw" "$qcow" || fail "qemu-img convert -O qcow2 $raw failed"
rm -f "$raw"

cat >"$tmp/config.json" <<EOF
{"storage_objects": [{"plugin": "qcow2", "name": "demo", "dev": "$qcow"}],
 "targets": [{"wwn": "$iqn", "tpgs": [{"tag": 1,
   "attributes": {"generate_node_acls": 1},
   "luns": [{"index": 0, "storage_object": "/backstores/qcow2/demo"}]}]}]}
EOF
start_gateway -c "$tmp/config.json"

kids=$(ps -o pid= --ppid "$gw_pid" | tr -d ' ')
n=0
for p in $kids; do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = qemu-nbd ] && n=$((n + 1))
done
[ $n = 1 ] || fail "expected one qemu-nbd child of the gateway, found $n (children: $kids)"

script=$(ipxe_script nbd-boot "sanboot $(iscsi_uri 0 "$iqn")")
boot boot1 "$script" || fail "sanboot of the qcow2 demo disk failed (see the logs above)"
expect boot1 '^lungate boot program: boot drive 0x80$'
expect boot1 '^int13 extensions \(AH=41h\): OK '
expect boot1 '^drive parameters \(AH=48h\): OK sectors=32768 bytes-per-sector=512$'
expect boot1 '^program read-back \(LBA 0\.\.7\): OK'
expect boot1 '^last sector: OK lba=32767$'
expect boot1 '^multi-sector read: OK lba=32640 sectors=64 bytes=32768 '
expect boot1 '^boot counter \(LBA 32\): OK read count=0$'
expect boot1 '^boot counter write \(AH=43h\): OK count=1$'
expect boot1 '^boot counter read-back: OK count=1$'
expect boot1 '^BOOT COUNT 1$'
expect boot1 '^LUNGATE-BOOT OK count=1$'

stop_gateway
for p in $kids; do
    if kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" | cut -c1)" != Z ]; then
        fail "qemu-nbd (pid $p) still runs after the gateway stopped"
    fi
done

out=$(qemu-img check -f qcow2 "$qcow" 2>&1) || fail "qemu-img check $qcow: $out"
qemu-img convert -f qcow2 -O raw "$qcow" "$back" || fail "qemu-img convert of $qcow back to raw failed"
count=$("$LUNGATE_BOOT_TOOL" counter "$back") || fail "lungate-boot-tool counter $back failed"
[ "$count" = 1 ] || fail "lungate-boot-tool: boot counter in the qcow2 is $count after one boot, expected 1"
count=$(counter_of "$back")
[ "$count" = 1 ] || fail "od: boot counter in the qcow2 is $count after one boot, expected 1"
differs_only_in_counter "$back" "$ref"
echo "PASS: sanboot from a qcow2 LUN, counter 1 in the qcow2 on the host"
