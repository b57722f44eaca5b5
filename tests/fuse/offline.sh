#!/usr/bin/env bash
# `lungate mount` with no gateway running.  While a gateway holds a client's
# overlay, it refuses and points to `serve --fuse`.  Without --fuse-writable
# every file is read-only (EROFS).  With it, a client's file is written into
# its overlay (the gateway serves the data afterwards; the base never
# changes), disk.img into the plain image, and base.img still refuses.
# Without --foreground it returns once mounted and ends when unmounted.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd sha256sum od pgrep

BASE=$LG_TMP/base.img
PLAIN=$LG_TMP/plain.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/fuse.json
MP=$LG_TMP/mnt
make_random_image "$BASE" 16
make_random_image "$PLAIN" 4
base_sha=$(sha "$BASE")
fv_config "$CFG" "$BASE" "$PLAIN" "$OV"
PC1=$(ini pc1)
PC2=$(ini pc2)
FV_MOUNTS+=("$MP")

# a gateway with pc1 logged in holds pc1's overlay: mount refuses
start_lungate -c "$CFG"
qio "$PC2" -c 'write -P 0x22 0 4k' -c flush
live_client "$PC1"
if out=$("$LUNGATE" mount -c "$CFG" "$MP" --foreground 2>&1); then
	fail "lungate mount succeeded while a gateway holds pc1's overlay: $out"
fi
if ! grep -q 'in use by a running gateway' <<<"$out" || ! grep -q -- '--fuse' <<<"$out"; then
	fail "lungate mount's message does not say a gateway holds the overlays and point to --fuse: $out"
fi
no_sanitizer_report "the refused lungate mount" "$out"
fv_is_mounted "$MP" && fail "the refused lungate mount left $MP mounted"
live_client_end
stop_lungate

# read-only mount: every write fails
start_mount "$CFG" "$MP"
for f in "$(client_file "$MP" "$PC1")" "$(client_file "$MP" "$PC2")" "$(base_file "$MP")" "$(disk_file "$MP")"; do
	[[ $(stat -c %A "$f") == -r--r--r-- ]] || fail "$f: mode $(stat -c %A "$f") in a read-only mount"
	if out=$(fill_bytes 0x01 512 | dd of="$f" conv=notrunc status=none 2>&1); then
		fail "writing $f through a read-only mount succeeded"
	fi
	grep -q 'Read-only file system' <<<"$out" || fail "writing $f: '$out', expected EROFS"
done
stop_mount "$MP"

# writable mount
start_mount "$CFG" "$MP" --fuse-writable
f1=$(client_file "$MP" "$PC1")
wait_mode "$f1" -rw-r--r--
[[ $(stat -c %A "$(disk_file "$MP")") == -rw-r--r-- ]] || fail "disk.img in a writable offline mount is not -rw-r--r--"
[[ $(stat -c %A "$(base_file "$MP")") == -r--r--r-- ]] || fail "base.img in a writable mount is not -r--r--r--"
fill_bytes 0x6b 131072 | dd of="$f1" bs=65536 seek=$((5 << 20)) oflag=seek_bytes conv=notrunc,fsync status=none ||
	fail "writing pc1's file in a writable mount failed"
fill_bytes 0x6c 700 | dd of="$f1" bs=700 seek=1000 oflag=seek_bytes conv=notrunc status=none ||
	fail "an unaligned write to pc1's file failed"
fill_bytes 0x3d 4096 | dd of="$(disk_file "$MP")" bs=4096 seek=1 conv=notrunc status=none ||
	fail "writing disk.img in a writable offline mount failed"
if out=$(fill_bytes 0x01 512 | dd of="$(base_file "$MP")" conv=notrunc status=none 2>&1); then
	fail "writing base.img through a writable mount succeeded"
fi
grep -q 'Read-only file system' <<<"$out" || fail "writing base.img: '$out', expected EROFS"
if out=$(fill_bytes 0x01 512 | dd of="$f1" bs=512 seek=$((16 << 11)) conv=notrunc status=none 2>&1); then
	fail "writing past the end of pc1's disk succeeded"
fi
if out=$(truncate -s 1M "$f1" 2>&1); then
	fail "truncating pc1's disk succeeded"
fi
[[ $(stat -c %s "$f1") == $((16 << 20)) ]] || fail "pc1's disk changed size"
cp "$BASE" "$LG_TMP/exp1.img"
patch_bytes "$LG_TMP/exp1.img" $((5 << 20)) 131072 0x6b
patch_bytes "$LG_TMP/exp1.img" 1000 700 0x6c
expect_same "$f1" "$LG_TMP/exp1.img" "pc1's disk after the FUSE writes"
stop_mount "$MP"
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"
[[ $(bytes_at "$PLAIN" 4096 4) == 3d3d3d3d ]] || fail "the write to disk.img did not reach the plain image"

# the gateway serves what was written offline
start_lungate -c "$CFG"
qio "$PC1" -c 'read -P 0x6b 5M 128k' -c 'read -P 0x6c 1000 700'
qio "$PC2" -c 'read -P 0x22 0 4k'
stop_lungate

# in the background (no --foreground): returns once mounted, ends when unmounted;
# the background process keeps none of the caller's streams, so a pipe that
# takes its output ends (issue 18: `lungate mount ... 2>&1 | tee log` hung);
# its log goes to --log
# shellcheck disable=SC2016 # expanded by the inner bash
out=$(timeout 60 bash -c '"$1" mount -c "$2" "$3" --log "$4" 2>&1 | cat' _ "$LUNGATE" "$CFG" "$MP" "$LG_TMP/daemon.log") ||
	fail "lungate mount -c ... 2>&1 | cat did not return within 60 s, or failed: $out"
grep -qF "logs to $LG_TMP/daemon.log" <<<"$out" || fail "lungate mount does not say where it logs: $out"
fv_is_mounted "$MP" || fail "lungate mount returned but $MP is not mounted"
expect_same "$f1" "$LG_TMP/exp1.img" "pc1's disk (background mount)"
pgrep -f "lungate mount -c $CFG $MP --log " >/dev/null || fail "no background lungate mount process"
fusermount3 -u "$MP" || fail "fusermount3 -u $MP failed"
for ((i = 0; i < 100; i++)); do
	pgrep -f "lungate mount -c $CFG $MP --log " >/dev/null || break
	sleep 0.1
done
pgrep -f "lungate mount -c $CFG $MP --log " >/dev/null && fail "the background lungate mount did not end after fusermount3 -u"
grep -q 'was unmounted' "$LG_TMP/daemon.log" || fail "the background mount did not log its unmount: $(cat "$LG_TMP/daemon.log")"
no_sanitizer_report "the background lungate mount" "$(cat "$LG_TMP/daemon.log")"
log "PASS"
