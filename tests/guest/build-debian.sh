#!/usr/bin/env bash
# build-debian.sh - the Debian 12 guest that every test needing a real Linux
# client uses (the iBFT boot, reconnects, forced resets, power cuts; later
# failover, boot policies): a diskless Debian whose initramfs logs in to its
# root disk with open-iscsi through the iBFT that iPXE's sanhook publishes.
#
#   build-debian.sh            print the cache folder, building it first if needed
#
# The folder (/var/cache/lungate-tests/debian12-HASH, HASH of this file, so a
# changed recipe builds anew; LUNGATE_GUEST_CACHE overrides the parent) holds
#   root.img     ext4, label lgroot, the whole root file system (no partitions)
#   vmlinuz      the guest's kernel
#   initrd.img   its initramfs (ISCSI_AUTO=true, e1000 + iscsi_tcp + iscsi_ibft)
# Tests serve root.img as it is (read-only: every client writes to its own
# layer) and hand the guest their own probe, a shell script, through QEMU's
# fw_cfg (-fw_cfg name=opt/lgtest,file=PROBE; tests/guest/functions.sh).  Two
# units run it: "PROBE early" before open-iscsi's units and the switch-root
# relogin, and "PROBE late" once the system is up.  Needs root (debootstrap,
# chroot) and Debian's mirror as apt has it; about 3-6 minutes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
parent=${LUNGATE_GUEST_CACHE:-/var/cache/lungate-tests}
hash=$(sha256sum "$here/build-debian.sh" | cut -c1-12)
out=$parent/debian12-$hash
if [ -f "$out/done" ]; then
    echo "$out"
    exit 0
fi
((EUID == 0)) || { echo "build-debian.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
# one builder at a time (the Debian 12 and 13 stages of scripts/test share it)
mkdir -p "$parent"
exec 9>"$parent/debian12.lock"
flock 9
if [ -f "$out/done" ]; then
    echo "$out"
    exit 0
fi
for t in debootstrap mkfs.ext4; do
    command -v "$t" >/dev/null || { echo "build-debian.sh: $t missing (scripts/deps.sh installs it)" >&2; exit 1; }
done

# the mirror apt uses here (deb822 or one-line sources)
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$parent"
work=$(mktemp -d "$parent/.build.XXXXXX")
root=$work/root
mounted=()
cleanup() {
    local m
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# lungate's runtime libraries (and the sanitizers' of the ASan+UBSan build,
# qemu-nbd for qcow2 LUNs): tests/powercut runs the freshly built gateway
# inside the guest, from a disk of the test's own
gateway_libs=libjansson4,libisal2,libnettle8,libnbd0,libfuse3-3,libsystemd0,libmicrohttpd12,librbd1,qemu-utils,libasan8,libubsan1
echo "build-debian.sh: debootstrap bookworm from $mirror into $root" >&2
debootstrap --variant=minbase \
    --include=linux-image-amd64,open-iscsi,initramfs-tools,systemd-sysv,udev,kmod,ifupdown,isc-dhcp-client,e2fsprogs,procps,"$gateway_libs" \
    bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 40 "$work/debootstrap.log" >&2; exit 1; }

echo lgguest >"$root/etc/hostname"
echo 'LABEL=lgroot / ext4 defaults,errors=remount-ro 0 1' >"$root/etc/fstab"
printf 'auto lo\niface lo inet loopback\n' >"$root/etc/network/interfaces"
# the initramfs logs in through the iBFT
echo 'ISCSI_AUTO=true' >"$root/etc/iscsi/iscsi.initramfs"
printf 'e1000\niscsi_tcp\niscsi_ibft\n' >>"$root/etc/initramfs-tools/modules"
# agetty's vhangup would cut the probe off the serial console
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
ln -sf /dev/null "$root/etc/systemd/system/getty@tty1.service"

mkdir -p "$root/usr/local/sbin"
cat >"$root/usr/local/sbin/lgtest" <<'PROBE'
#!/bin/sh
# lgtest STAGE: run the test's probe, which QEMU hands in through fw_cfg
modprobe qemu_fw_cfg 2>/dev/null
f=/sys/firmware/qemu_fw_cfg/by_name/opt/lgtest/raw
if [ -r "$f" ]; then
    cat "$f" >"/run/lgtest-$1.sh"
    exec sh "/run/lgtest-$1.sh" "$1"
fi
echo "LGTEST no probe ($1)" >/dev/ttyS0
PROBE
chmod 755 "$root/usr/local/sbin/lgtest"
cat >"$root/etc/systemd/system/lgtest-early.service" <<'UNIT'
[Unit]
Description=lungate test probe, early (before open-iscsi takes the session over)
DefaultDependencies=no
After=systemd-remount-fs.service
Before=iscsid.service iscsid.socket open-iscsi.service sysinit.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lgtest early
StandardOutput=tty
TTYPath=/dev/ttyS0
[Install]
WantedBy=sysinit.target
UNIT
cat >"$root/etc/systemd/system/lgtest.service" <<'UNIT'
[Unit]
Description=lungate test probe
After=multi-user.target open-iscsi.service iscsid.service
[Service]
Type=simple
ExecStart=/usr/local/sbin/lgtest late
StandardOutput=tty
TTYPath=/dev/ttyS0
[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root/etc/systemd/system/sysinit.target.wants" "$root/etc/systemd/system/multi-user.target.wants"
ln -sf ../lgtest-early.service "$root/etc/systemd/system/sysinit.target.wants/lgtest-early.service"
ln -sf ../lgtest.service "$root/etc/systemd/system/multi-user.target.wants/lgtest.service"

for m in proc sys dev; do
    mount --bind "/$m" "$root/$m"
    mounted+=("$root/$m")
done
chroot "$root" update-initramfs -u >"$work/initramfs.log" 2>&1 ||
    { tail -n 40 "$work/initramfs.log" >&2; exit 1; }
for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}"; done
mounted=()

mkdir -p "$work/out"
cp "$(readlink -f "$root/vmlinuz")" "$work/out/vmlinuz"
cp "$(readlink -f "$root/initrd.img")" "$work/out/initrd.img"
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
mkfs.ext4 -q -L lgroot -d "$root" "$work/out/root.img" 1536M
rm -rf "$out"
mv "$work/out" "$out"
touch "$out/done"
for old in "$parent"/debian12-*; do # guests of older recipes
    [ "$old" = "$out" ] || rm -rf "$old"
done
echo "$out"
