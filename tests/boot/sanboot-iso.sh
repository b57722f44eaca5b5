#!/bin/bash
# boot.sanboot-iso: an ISO built with xorriso around the boot program (El
# Torito, no emulation), served by lungate as a 512-byte-block disk. iPXE finds
# the ISO9660 volume and the El Torito catalog itself, presents a 2048-byte
# CD-ROM through int 13h, and the boot program reads it (volume descriptor,
# last sector, 32 KiB read), writes nothing and ends with count=none.
. "$(dirname "$0")/functions.sh"
require_qemu
command -v xorriso >/dev/null || missing "xorriso not found: apt-get install xorriso"

root=$tmp/isoroot
iso=$tmp/demo.iso
iqn=$IQN_PREFIX:iso
mkdir -p "$root"
"$LUNGATE_BOOT_TOOL" bootprog "$root/boot.bin" || fail "cannot write the boot program"
echo "lungate boot test ISO" >"$root/README.TXT"
load=$((($(stat -c %s "$root/boot.bin") + 511) / 512)) # in 512-byte units
xorriso -as mkisofs -quiet -o "$iso" -V LUNGATE_BOOT_TEST \
    -b boot.bin -c boot.cat -no-emul-boot -boot-load-size "$load" "$root" ||
    fail "xorriso could not build $iso"
# The boot program checks the last 64 KiB of the medium: append that region.
"$LUNGATE_BOOT_TOOL" append-pattern "$iso" || fail "cannot append the pattern region"
size=$(stat -c %s "$iso")
cp "$iso" "$tmp/reference.iso"

start_gateway --image "$iso" --iqn "$iqn"
boot iso "$(ipxe_script sanboot-iso "sanboot $(iscsi_uri 0 "$iqn")")" ||
    fail "sanboot of the ISO failed (see the logs above)"
expect iso "^drive parameters \(AH=48h\): OK sectors=$((size / 2048)) bytes-per-sector=2048$"
expect iso '^iso9660 volume descriptor \(CD sector 16\): OK'
expect iso "^last sector: OK lba=$((size / 2048 - 1))$"
expect iso "^multi-sector read: OK lba=$((size / 2048 - 32)) sectors=16 bytes=32768 "
expect iso '^boot counter: SKIP \(2048-byte sectors'
expect iso '^drive 0x81: not present$'
expect iso '^LUNGATE-BOOT OK count=none$'

stop_gateway
cmp -s "$iso" "$tmp/reference.iso" || fail "$iso changed while served (nothing should write to it)"
echo "PASS: ISO sanbooted as a 2048-byte CD-ROM and read back"
