#!/bin/bash
# ipxe-boot.sh - boot a QEMU guest with iPXE (Debian's ipxe-qemu ROM) from a
# TFTP directory, let it run an iPXE script, and report what lungate's boot
# program wrote on COM1.
#
# usage: ipxe-boot.sh [--log FILE] DIR SCRIPT TIMEOUT_SECONDS
#
#   DIR      TFTP root served by QEMU's user-mode network; SCRIPT is copied to
#            DIR/boot.ipxe, which the DHCP answer names as the boot file.
#   SCRIPT   an iPXE script (#!ipxe, dhcp, sanboot iscsi:10.0.2.2::PORT::IQN
#            || reboot). The guest reaches the host's 127.0.0.1 as 10.0.2.2.
#   --log    where to keep the COM1 log (default DIR/com1.log, CRs removed);
#            the screen (SeaBIOS, iPXE, boot program) goes to LOG.screen.
#
# The boot program ends the VM through isa-debug-exit at port 0xF4: QEMU exits
# with 33 for LUNGATE-BOOT OK and 35 for LUNGATE-BOOT FAIL. A failed sanboot
# runs `reboot`, which -no-reboot turns into exit status 0.
#
# Prints the COM1 log and a verdict; exits 0 when QEMU exited with 33 and the
# log has "LUNGATE-BOOT OK", 1 otherwise, 2 on bad usage, 77 if QEMU or the
# iPXE ROM is missing (outside CI; in CI, where CI is set, that is a failure).
set -u

log=
if [ "${1:-}" = "--log" ]; then
    log=$2
    shift 2
fi
if [ $# -ne 3 ]; then
    echo "usage: $0 [--log FILE] DIR SCRIPT TIMEOUT_SECONDS" >&2
    exit 2
fi
dir=$1
script=$2
limit=$3
log=${log:-$dir/com1.log}

missing() {
    if [ -n "${CI:-}" ]; then
        echo "ipxe-boot: FAIL: $* (CI must install it)" >&2
        exit 1
    fi
    echo "ipxe-boot: SKIP: $*" >&2
    exit 77
}

qemu=$(command -v qemu-system-x86_64) ||
    missing "qemu-system-x86_64 not found: apt-get install qemu-system-x86 ipxe-qemu"
rom=
for f in /usr/lib/ipxe/qemu/efi-e1000.rom /usr/lib/ipxe/qemu/pxe-e1000.rom \
         /usr/share/qemu/efi-e1000.rom /usr/share/qemu/pxe-e1000.rom; do
    if [ -r "$f" ]; then rom=$f; break; fi
done
[ -n "$rom" ] || missing "no iPXE ROM for e1000: apt-get install ipxe-qemu"
command -v timeout >/dev/null || missing "timeout (coreutils) not found"

[ -d "$dir" ] || { echo "ipxe-boot: $dir is not a directory" >&2; exit 2; }
[ -r "$script" ] || { echo "ipxe-boot: cannot read iPXE script $script" >&2; exit 2; }
case $limit in ''|*[!0-9]*) echo "ipxe-boot: bad timeout '$limit'" >&2; exit 2;; esac

if [ ! "$script" -ef "$dir/boot.ipxe" ]; then
    cp "$script" "$dir/boot.ipxe" || exit 1
fi
screen=$log.screen
rm -f "$log" "$log.raw" "$screen"
: >"$log.raw"
: >"$screen"

# SeaBIOS's serial console (sercon) copies the screen (int 10h: SeaBIOS, iPXE
# and the boot program's screen output) to the port named by fw_cfg
# etc/sercon-port. -nographic would point it at COM1, interleaving every
# character there twice; point it at COM2 instead and keep it as the screen
# log, and leave COM1 to the boot program alone.
printf '\xf8\x02' >"$dir/sercon-port" # 0x2F8, little-endian

# QEMU finds the e1000 option ROM (from ipxe-qemu) by itself. `timeout` kills
# exactly the QEMU it started (by pid) when the limit passes.
start=$(date +%s.%N)
timeout --kill-after=10 "$limit" "$qemu" \
    -no-reboot -m 128 \
    -netdev "user,id=n0,tftp=$dir,bootfile=boot.ipxe" \
    -device e1000,netdev=n0 -boot n \
    -serial "file:$log.raw" -serial "file:$screen" \
    -fw_cfg "name=etc/sercon-port,file=$dir/sercon-port" \
    -device isa-debug-exit,iobase=0xf4,iosize=1 \
    -display none -monitor none \
    </dev/null 2>&1 | grep -v 'fw_cfg item names should be prefixed' >"$dir/qemu.out"
rc=${PIPESTATUS[0]}
end=$(date +%s.%N)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
tr -d '\r' <"$log.raw" >"$log"
rm -f "$log.raw"

echo "----- COM1 log ($log) -----"
cat "$log"
echo "----- end of COM1 log -----"
if [ -s "$dir/qemu.out" ]; then
    echo "----- QEMU output -----"
    cat "$dir/qemu.out"
    echo "----- end of QEMU output -----"
fi
show_screen() {
    echo "----- screen (SeaBIOS, iPXE, boot program), from $screen -----"
    # drop the terminal escapes and carriage returns sercon sends
    sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\r//g' "$screen" |
        grep -v '^[[:space:]]*$'
    echo
    echo "----- end of screen -----"
}

ok=0
[ $rc = 33 ] || show_screen
grep -q '^LUNGATE-BOOT OK' "$log" && ok=1
case $rc in
    33) if [ $ok = 1 ]; then
            echo "ipxe-boot: PASS in ${secs}s (QEMU exit 33, LUNGATE-BOOT OK)"
            exit 0
        fi
        echo "ipxe-boot: FAIL after ${secs}s: QEMU exit 33 but no LUNGATE-BOOT OK line on COM1" ;;
    35) echo "ipxe-boot: FAIL after ${secs}s: the boot program reported a failure (QEMU exit 35)" ;;
    124|137)
        echo "ipxe-boot: FAIL: timed out after ${limit}s (QEMU killed)" ;;
    0)  echo "ipxe-boot: FAIL after ${secs}s: the guest reset without running the boot" \
             "program to its end (sanboot failed and the script ran reboot?)" ;;
    *)  echo "ipxe-boot: FAIL after ${secs}s: QEMU exit status $rc" ;;
esac
exit 1
