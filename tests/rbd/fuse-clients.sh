#!/usr/bin/env bash
# The FUSE view's clients/ folder for per-client RBD clones (a cow object with
# "overlay_pool"), as for overlay files (tests/fuse/live.sh, offline.sh):
#
#  - clients write through iSCSI; clients/<initiator>.img of each shows
#    exactly its disk (its writes over the base snapshot), one that only
#    read shows the base, a hostile initiator name shows as its escaped file
#    name; no file for a client without a clone or for another spelling;
#  - while a client is logged in its file is read-only (EROFS) and what it
#    writes shows through a file opened before; with no session and
#    --fuse-writable a write through FUSE lands in its clone (iSCSI reads it
#    back); the base image and snapshot never change;
#  - `lungate mount` refuses while a gateway holds a clone, and otherwise
#    shows the same files, read-only.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=../fuse/functions.sh
source "$(dirname "$0")/../fuse/functions.sh"

IQN=$LG_IQN_PREFIX:rbd-fuse-clients
rbd_cluster
rbd_clone_setup fc
MP=$LG_TMP/mnt
mkdir -p "$MP"
start_gateway "$CFG" "$MP" --fuse-writable

A=$(ini pc-a)
B=$(ini pc-b)
H=$(ini 'lab/pc%9@x+y') # '/' and '%' in the file name as %2f and %25
qio "$A" -c 'write -P 0xa1 0 64k' -c 'write -P 0xa2 9M 4096' -c 'write -P 0xa3 16380k 4k' -c flush
qio "$B" -c 'read 0 4k'
qio "$H" -c 'write -P 0xc1 4M 8k' -c flush
cp "$BASE" "$LG_TMP/a.raw"
patch_raw "$LG_TMP/a.raw" 0 65536 0xa1 $((9 << 20)) 4096 0xa2 $((16380 << 10)) 4096 0xa3
cp "$BASE" "$LG_TMP/h.raw"
patch_raw "$LG_TMP/h.raw" $((4 << 20)) 8192 0xc1

want=$(printf '%s\n' "${A}.img" "${B}.img" "$(basename "$(client_file "$MP" "$H")")" | sort)
listing=$(ls "$(client_dir "$MP")") || fail "ls clients/ failed"
[[ $listing == "$want" ]] || fail "clients/ lists '$listing', expected '$want'"
[[ $(ls "$MP/$IQN/0") == $'base.img\nclients' ]] || fail "LUN 0 should hold base.img and clients/: $(ls "$MP/$IQN/0")"
[[ $(client_file "$MP" "$H") == */clients/"${LG_IQN_PREFIX}":lab%2fpc%259@x+y.img ]] || fail "the hostile name's file is $(client_file "$MP" "$H")"

fa=$(client_file "$MP" "$A")
fb=$(client_file "$MP" "$B")
fh=$(client_file "$MP" "$H")
expect_same "$fa" "$LG_TMP/a.raw" "$A's writes over the base"
out=$(qemu-img compare -f raw -F raw "$LG_TMP/a.raw" "$fa" 2>&1) || fail "qemu-img compare of $A's file: $out"
expect_same "$fb" "$BASE" "the base (client $B only read)"
expect_same "$fh" "$LG_TMP/h.raw" "$H's write over the base"
expect_same "$(base_file "$MP")" "$BASE" "base.img, the base snapshot"
[[ $(stat -c %s "$fa") == $((16 << 20)) ]] || fail "$fa: size $(stat -c %s "$fa"), expected 16 MiB"
[[ $(stat -c %A "$fa") == -rw-r--r-- ]] || fail "$A's file (no live session, --fuse-writable): mode $(stat -c %A "$fa")"
[[ ! -e $(client_file "$MP" "${A^^}") ]] || fail "the upper-case spelling of $A shows a file"
[[ ! -e $(client_dir "$MP")/nobody.img ]] || fail "a client with no clone shows a file"
[[ $(rbd ls clients | wc -l) == 3 ]] || fail "looking at clients/ made or lost clones: $(rbd ls clients)"

# a live client's file is read-only, and shows what the client writes
live_client "$A"
live_write_shows "$fa" "$BASE" $((12 << 20)) "$A"
live_client_end
patch_raw "$LG_TMP/a.raw" $((12 << 20)) 65536 0x77
wait_mode "$fa" -rw-r--r--
expect_same "$fa" "$LG_TMP/a.raw" "$A's disk after its live write"

# no session: written through FUSE into the clone
fill_bytes 0x44 8192 | dd of="$fb" bs=4096 seek=3 conv=notrunc status=none ||
	fail "writing $B's file (no live session, --fuse-writable) failed"
qio "$B" -c 'read -P 0x44 12k 8k'
cp "$BASE" "$LG_TMP/b.raw"
patch_raw "$LG_TMP/b.raw" 12288 8192 0x44
expect_same "$fb" "$LG_TMP/b.raw" "$B's FUSE write over the base"
stop_gateway "$MP"

# lungate mount: refused while a gateway holds a clone
start_lungate -c "$CFG"
live_client "$A"
if out=$(timeout 60 "$LUNGATE" mount -c "$CFG" "$MP" --foreground 2>&1); then
	fail "lungate mount succeeded while a gateway holds $A's clone: $out"
fi
grep -q 'in use by a running gateway' <<<"$out" || fail "lungate mount's refusal does not say why: $out"
no_sanitizer_report "the refused lungate mount" "$out"
fv_is_mounted "$MP" && fail "the refused lungate mount left $MP mounted"
live_client_end
stop_lungate

# ... and without a gateway shows the same disks, read-only
start_mount "$CFG" "$MP"
expect_same "$fa" "$LG_TMP/a.raw" "lungate mount: $A's disk"
expect_same "$fb" "$LG_TMP/b.raw" "lungate mount: $B's disk"
expect_same "$fh" "$LG_TMP/h.raw" "lungate mount: $H's disk"
[[ $(stat -c %A "$fa") == -r--r--r-- ]] || fail "a read-only lungate mount shows $A's file as $(stat -c %A "$fa")"
if out=$(fill_bytes 0x01 4096 | dd of="$fa" conv=notrunc status=none 2>&1); then
	fail "writing $A's file through a read-only lungate mount succeeded"
fi
stop_mount "$MP"

rbd_export golden@v1 "$LG_TMP/snap.raw"
same_file "the base snapshot after the clients wrote" "$BASE" "$LG_TMP/snap.raw"
rbd_export golden "$LG_TMP/head.raw"
same_file "the base image after the clients wrote" "$BASE" "$LG_TMP/head.raw"
log "PASS"
