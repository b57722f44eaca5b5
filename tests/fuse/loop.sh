#!/usr/bin/env bash
# Read-only loop mounts of the FUSE view's files (mount -o loop,ro): the base
# is an ext4 file system (mkfs.ext4 -d), a client writes another one over it
# through iSCSI; the client's file mounts and shows the client's files, and
# base.img mounts and shows the base's.  Skipped (77) on a machine with no
# loop devices (a container without /dev/loop-control).
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd mkfs.ext4 losetup mount umount

[[ -e /dev/loop-control ]] && losetup -f >/dev/null 2>&1 || skip "this machine has no free loop device"

BASE=$LG_TMP/base.img
PLAIN=$LG_TMP/plain.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/fuse.json
MP=$LG_TMP/mnt
LOOPS=()

mkdir -p "$LG_TMP/base-files" "$LG_TMP/pc1-files" "$LG_TMP/lm"
echo "from the base" >"$LG_TMP/base-files/base.txt"
echo "written by pc1" >"$LG_TMP/pc1-files/pc1.txt"
truncate -s 16M "$BASE" "$LG_TMP/pc1.img"
mkfs.ext4 -q -F -d "$LG_TMP/base-files" "$BASE" || fail "mkfs.ext4 of the base failed"
mkfs.ext4 -q -F -d "$LG_TMP/pc1-files" "$LG_TMP/pc1.img" || fail "mkfs.ext4 of pc1's disk failed"
make_random_image "$PLAIN" 1
fv_config "$CFG" "$BASE" "$PLAIN" "$OV"

# loop mounts end before the trap unmounts the view and stops the gateway
loop_cleanup() {
	local rc=$? m
	[[ $BASHPID == "$$" ]] || exit "$rc" # see lg_cleanup
	for m in "${LOOPS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	if ((rc == 0)); then
		true
		fv_cleanup
	else
		(exit "$rc") || fv_cleanup
	fi
}
trap loop_cleanup EXIT

start_gateway "$CFG" "$MP"
PC1=$(ini pc1)
run qemu-img convert -n -f raw "$LG_TMP/pc1.img" --target-image-opts "$(image_opts "$PC1")" ||
	fail "qemu-img convert onto the LUN as pc1 failed"

# loop_check FILE WANT-FILE WANT-TEXT NOT-FILE
loop_check() {
	local out
	LOOPS+=("$LG_TMP/lm")
	out=$(mount -o loop,ro "$1" "$LG_TMP/lm" 2>&1) || {
		grep -qi 'loop device' <<<"$out" && skip "no usable loop device: $out"
		fail "mount -o loop,ro $1 failed: $out"
	}
	[[ $(cat "$LG_TMP/lm/$2" 2>&1) == "$3" ]] || fail "$1 mounted does not show $2 ('$3'): $(ls "$LG_TMP/lm")"
	[[ ! -e $LG_TMP/lm/$4 ]] || fail "$1 mounted shows $4"
	umount "$LG_TMP/lm" || fail "umount of the loop mount of $1 failed"
}
loop_check "$(client_file "$MP" "$PC1")" pc1.txt "written by pc1" base.txt
loop_check "$(base_file "$MP")" base.txt "from the base" pc1.txt
stop_gateway "$MP"
log "PASS"
