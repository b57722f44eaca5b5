#!/usr/bin/env bash
# The FUSE view of a running gateway (serve --fuse --fuse-writable): clients
# write through iSCSI, and each client's file under the mountpoint shows its
# data at the same offsets; base.img is the base and another client's file
# is the base too; disk.img is the plain LUN.  Names, sizes, permissions and
# times are right, and fdisk / qemu-img info / stat work on the files.  While
# a client is logged in its file is read-only (EROFS), and what it writes
# shows within seconds even through a file that was open already; base.img
# is always read-only; a client with no session is written through FUSE into
# its overlay (iSCSI sees it, the base does not change).  After the gateway
# stops (the view unmounted), `lungate mount` shows the same content.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd fdisk sha256sum od

BASE=$LG_TMP/base.img
PLAIN=$LG_TMP/plain.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/fuse.json
MP=$LG_TMP/mnt
make_random_image "$BASE" 32
make_random_image "$PLAIN" 8
base_sha=$(sha "$BASE")
fv_config "$CFG" "$BASE" "$PLAIN" "$OV"
start_gateway "$CFG" "$MP" --fuse-writable

PC1=$(ini pc1)
PC2=$(ini pc2)
LAB=$(ini 'lab/pc%9') # a '/' and a '%' in the name: lab%2fpc%259.img
qio "$PC1" -c 'write -P 0x5a 512 512' -c 'write -P 0x5b 1M 64k' -c 'write -P 0x5c 4160k 128k' -c flush
qio "$PC2" -c 'read 0 512'
qio "$LAB" -c 'write -P 0x33 0 4k' -c flush

cp "$BASE" "$LG_TMP/exp1.img"
patch_bytes "$LG_TMP/exp1.img" 512 512 0x5a
patch_bytes "$LG_TMP/exp1.img" $((1 << 20)) 65536 0x5b
patch_bytes "$LG_TMP/exp1.img" $((4160 << 10)) 131072 0x5c
cp "$BASE" "$LG_TMP/explab.img"
patch_bytes "$LG_TMP/explab.img" 0 4096 0x33

# the tree
listing=$(ls "$(client_dir "$MP")" | LC_ALL=C sort | tr '\n' ' ')
want="$(basename "$(client_file "$MP" "$LAB")") $(basename "$(client_file "$MP" "$PC1")") $(basename "$(client_file "$MP" "$PC2")") "
[[ $listing == "$want" ]] || fail "clients/ lists '$listing', expected '$want'"
[[ $(ls "$MP/$IQN") == $'0\n1' ]] || fail "$IQN/ should hold the LUNs 0 and 1: $(ls "$MP/$IQN")"
[[ $(ls "$MP/$IQN/0") == $'base.img\nclients' ]] || fail "LUN 0 should hold base.img and clients/: $(ls "$MP/$IQN/0")"
[[ $(ls "$MP/$IQN/1") == disk.img ]] || fail "LUN 1 should hold disk.img: $(ls "$MP/$IQN/1")"

# contents
expect_same "$(client_file "$MP" "$PC1")" "$LG_TMP/exp1.img" "pc1's writes over the base"
expect_same "$(client_file "$MP" "$PC2")" "$BASE" "the base (pc2 wrote nothing)"
expect_same "$(client_file "$MP" "$LAB")" "$LG_TMP/explab.img" "lab/pc%9's write over the base"
expect_same "$(base_file "$MP")" "$BASE" "the base image"
expect_same "$(disk_file "$MP")" "$PLAIN" "the plain LUN's image"

# sizes, permissions, times
for f in "$(client_file "$MP" "$PC1")" "$(client_file "$MP" "$PC2")" "$(base_file "$MP")"; do
	[[ $(stat -c %s "$f") == $((32 << 20)) ]] || fail "$f: size $(stat -c %s "$f"), expected 32 MiB"
done
[[ $(stat -c %s "$(disk_file "$MP")") == $((8 << 20)) ]] || fail "disk.img: size is not 8 MiB"
[[ $(stat -c %A "$(client_file "$MP" "$PC1")") == -rw-r--r-- ]] ||
	fail "pc1's file (no live session, --fuse-writable): mode $(stat -c %A "$(client_file "$MP" "$PC1")"), expected -rw-r--r--"
[[ $(stat -c %A "$(base_file "$MP")") == -r--r--r-- ]] || fail "base.img must be -r--r--r--"
[[ $(stat -c %A "$(disk_file "$MP")") == -r--r--r-- ]] ||
	fail "disk.img of a running gateway must be -r--r--r-- (its sessions may write it)"
[[ $(stat -c %A "$(client_dir "$MP")") == dr-xr-xr-x ]] || fail "clients/ must be dr-xr-xr-x"
ov1=$OV/$PC1.cow
[[ $(stat -c %Y "$(client_file "$MP" "$PC1")") == $(stat -c %Y "$ov1") ]] ||
	fail "pc1's file mtime $(stat -c %y "$(client_file "$MP" "$PC1")") is not its overlay's $(stat -c %y "$ov1")"
[[ $(stat -c %Y "$(base_file "$MP")") == $(stat -c %Y "$BASE") ]] || fail "base.img's mtime is not the base file's"

# ordinary tools
info=$(qemu-img info -f raw "$(client_file "$MP" "$PC1")") || fail "qemu-img info failed: $info"
grep -q 'virtual size: 32 MiB' <<<"$info" || fail "qemu-img info: $info"
out=$(fdisk -l "$(client_file "$MP" "$PC1")" 2>&1) || fail "fdisk -l failed: $out"
grep -q '33554432 bytes' <<<"$out" || fail "fdisk -l: $out"

# another spelling of a client's name is not a second file
[[ ! -e $(client_file "$MP" "${PC1^^}") ]] || fail "the upper-case spelling of pc1 shows a file"
[[ ! -e $(client_dir "$MP")/nobody.img ]] || fail "a client with no overlay shows a file"

# base.img is never writable
if out=$(fill_bytes 0x01 4096 | dd of="$(base_file "$MP")" conv=notrunc status=none 2>&1); then
	fail "writing base.img succeeded"
fi
grep -q 'Read-only file system' <<<"$out" || fail "writing base.img: '$out', expected EROFS"

# a live client's file is read-only, and shows what the client writes
live_client "$PC1"
f1=$(client_file "$MP" "$PC1")
live_write_shows "$f1" "$BASE" $((9 << 20)) "$PC1"
[[ $(bytes_at "$f1" $((9 << 20)) 65536) == $(fill_bytes 0x77 65536 | od -An -v -tx1 | tr -d ' \n') ]] ||
	fail "pc1's file does not show pc1's live write at 9 MiB"
live_client_end
patch_bytes "$LG_TMP/exp1.img" $((9 << 20)) 65536 0x77
wait_mode "$f1" -rw-r--r-- # pc1 logged out

# a client with no session is written through FUSE, into its overlay
f2=$(client_file "$MP" "$PC2")
fill_bytes 0x44 8192 | dd of="$f2" bs=4096 seek=3 conv=notrunc status=none ||
	fail "writing pc2's file (no live session, --fuse-writable) failed"
qio "$PC2" -c 'read -P 0x44 12k 8k'
cp "$BASE" "$LG_TMP/exp2.img"
patch_bytes "$LG_TMP/exp2.img" 12288 8192 0x44
expect_same "$f2" "$LG_TMP/exp2.img" "pc2's FUSE write over the base"
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"

# after the gateway: the same content, offline
stop_gateway "$MP"
start_mount "$CFG" "$MP"
expect_same "$(client_file "$MP" "$PC1")" "$LG_TMP/exp1.img" "pc1's disk (offline)"
expect_same "$(client_file "$MP" "$PC2")" "$LG_TMP/exp2.img" "pc2's disk (offline)"
expect_same "$(client_file "$MP" "$LAB")" "$LG_TMP/explab.img" "lab/pc%9's disk (offline)"
expect_same "$(base_file "$MP")" "$BASE" "the base image (offline)"
expect_same "$(disk_file "$MP")" "$PLAIN" "the plain LUN's image (offline)"
[[ $(stat -c %A "$(client_file "$MP" "$PC1")") == -r--r--r-- ]] || fail "an offline mount without --fuse-writable must show -r--r--r--"
stop_mount "$MP"
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"
log "PASS"
