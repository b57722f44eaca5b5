#!/usr/bin/env bash
# A FAT file system seen through the FUSE view, the way an admin looks at
# what a FreeDOS client saved: the base is a partitioned disk with an empty
# FAT partition (sfdisk + mformat); one client writes a copy of it with a
# file added (mcopy) onto the LUN with qemu-img convert; mtype on that
# client's file under the mountpoint shows the file, and on base.img and on
# another client's file it is absent.  fdisk -l, mdir and qemu-img info work
# on the files, and after the gateway stops, `lungate mount` shows the same.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd sfdisk fdisk mformat mcopy mtype mdir

BASE=$LG_TMP/base.img
PLAIN=$LG_TMP/plain.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/fuse.json
MP=$LG_TMP/mnt
PART=$((1 << 20)) # the FAT partition starts at sector 2048

truncate -s 32M "$BASE"
printf 'start=2048, type=6\n' | sfdisk -q "$BASE" || fail "sfdisk could not partition the base"
MTOOLS_SKIP_CHECK=1 mformat -i "$BASE@@$PART" -v LGBASE :: || fail "mformat failed"
make_random_image "$PLAIN" 1
fv_config "$CFG" "$BASE" "$PLAIN" "$OV"
export MTOOLS_SKIP_CHECK=1

# the client's disk: the base with one file more
cp "$BASE" "$LG_TMP/copy.img"
printf 'saved by pc1 at lesson 3\n' >"$LG_TMP/hello.txt"
mcopy -i "$LG_TMP/copy.img@@$PART" "$LG_TMP/hello.txt" ::HELLO.TXT || fail "mcopy failed"

start_gateway "$CFG" "$MP"
PC1=$(ini pc1)
PC2=$(ini pc2)
run qemu-img convert -n -f raw "$LG_TMP/copy.img" --target-image-opts "$(image_opts "$PC1")" ||
	fail "qemu-img convert onto the LUN as pc1 failed"
qio "$PC2" -c 'read 0 512' # pc2 logs in once: it gets an (empty) overlay

f1=$(client_file "$MP" "$PC1")
f2=$(client_file "$MP" "$PC2")
fb=$(base_file "$MP")

# check_view: what the three files show
check_view() {
	local out
	out=$(mtype -i "$f1@@$PART" ::HELLO.TXT 2>&1) || fail "mtype on pc1's file failed: $out"
	[[ $out == "saved by pc1 at lesson 3" ]] || fail "mtype on pc1's file shows '$out'"
	if out=$(mtype -i "$fb@@$PART" ::HELLO.TXT 2>&1); then
		fail "HELLO.TXT is on base.img: $out"
	fi
	grep -q 'not found' <<<"$out" || fail "mtype on base.img: '$out', expected 'not found'"
	if out=$(mtype -i "$f2@@$PART" ::HELLO.TXT 2>&1); then
		fail "HELLO.TXT is on pc2's file: $out"
	fi
	grep -q 'not found' <<<"$out" || fail "mtype on pc2's file: '$out', expected 'not found'"
	out=$(mdir -i "$f1@@$PART" ::) || fail "mdir on pc1's file failed: $out"
	if ! grep -q 'LGBASE' <<<"$out" || ! grep -q 'HELLO' <<<"$out"; then
		fail "mdir on pc1's file: $out"
	fi
	out=$(fdisk -l "$f1" 2>&1) || fail "fdisk -l on pc1's file failed: $out"
	grep -Eq "$(basename "$f1")1 +2048 +65535 +63488 +31M +6 FAT16" <<<"$out" ||
		fail "fdisk -l on pc1's file does not show the FAT partition: $out"
	out=$(qemu-img info -f raw "$f1" 2>&1) || fail "qemu-img info on pc1's file failed: $out"
	grep -q 'virtual size: 32 MiB (33554432 bytes)' <<<"$out" || fail "qemu-img info: $out"
	cmp -s "$f1" "$LG_TMP/copy.img" || fail "pc1's file is not the image it wrote"
	cmp -s "$fb" "$BASE" || fail "base.img is not the base"
}
check_view
stop_gateway "$MP"

start_mount "$CFG" "$MP"
check_view
stop_mount "$MP"
log "PASS"
