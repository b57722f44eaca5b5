#!/bin/bash
# boot.sanboot-disk: iPXE sanboots a demo disk served by lungate (one image as
# LUN 0). The boot program must report every step OK and count=1; a second
# boot of the same served disk must see count=2 (its write landed), and after
# the gateway stops the image on the host must hold count 2 and nothing else
# changed. The second boot runs examples/boot.ipxe.
. "$(dirname "$0")/functions.sh"
require_qemu

disk=$tmp/demo.img
ref=$tmp/reference.img
iqn=$IQN_PREFIX:demo
"$LUNGATE" demo-disk "$disk" 16 || fail "lungate demo-disk $disk 16 failed"
"$LUNGATE" demo-disk "$ref" 16 >/dev/null || fail "lungate demo-disk $ref 16 failed"

start_gateway --image "$disk" --iqn "$iqn"

# Boot 1 with a minimal script, boot 2 with examples/boot.ipxe.
for n in 1 2; do
    if [ $n = 1 ]; then
        script=$(ipxe_script sanboot-disk "sanboot $(iscsi_uri 0 "$iqn")")
    else
        script=$(example_script boot.ipxe "$iqn")
    fi
    boot "boot$n" "$script" || fail "boot $n of the demo disk failed (see the logs above)"
    expect "boot$n" '^lungate boot program: boot drive 0x80$'
    expect "boot$n" '^int13 extensions \(AH=41h\): OK '
    expect "boot$n" '^drive parameters \(AH=48h\): OK sectors=32768 bytes-per-sector=512$'
    expect "boot$n" '^program read-back \(LBA 0\.\.7\): OK'
    expect "boot$n" '^last sector: OK lba=32767$'
    expect "boot$n" '^multi-sector read: OK lba=32640 sectors=64 bytes=32768 '
    expect "boot$n" "^boot counter \(LBA 32\): OK read count=$((n - 1))$"
    expect "boot$n" "^boot counter write \(AH=43h\): OK count=$n$"
    expect "boot$n" "^boot counter read-back: OK count=$n$"
    expect "boot$n" "^BOOT COUNT $n$"
    expect "boot$n" '^drive 0x81: not present$'
    expect "boot$n" "^LUNGATE-BOOT OK count=$n$"
done

stop_gateway
count=$(counter_of "$disk")
[ "$count" = 2 ] || fail "boot counter in $disk is $count after two boots, expected 2"
differs_only_in_counter "$disk" "$ref"
echo "PASS: two sanboots, counter 2 in the image on the host"
