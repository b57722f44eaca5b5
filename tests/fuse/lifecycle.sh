#!/usr/bin/env bash
# Mount and unmount in every way: a mount left stale by a crash (kill -9:
# "Transport endpoint is not connected") is recovered by the next lungate
# mount and the next serve --fuse; a missing mountpoint is created; a mounted
# one is refused; fusermount3 -u ends a foreground lungate mount (status 0);
# SIGTERM unmounts the gateway's view even with a file held open in it.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

BASE=$LG_TMP/base.img
PLAIN=$LG_TMP/plain.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/fuse.json
MP=$LG_TMP/mnt # does not exist yet: lungate creates it
make_random_image "$BASE" 8
make_random_image "$PLAIN" 1
fv_config "$CFG" "$BASE" "$PLAIN" "$OV"
PC1=$(ini pc1)

# stale after a crash of lungate mount, recovered by lungate mount
start_mount "$CFG" "$MP"
[[ -d $MP ]] || fail "the mountpoint was not created"
kill -KILL "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
forget_pid "$MOUNT_PID"
if out=$(stat -f "$MP" 2>&1); then
	fail "after kill -9 of lungate mount, $MP is not stale: $out"
fi
grep -q 'Transport endpoint is not connected' <<<"$out" || fail "stat of the stale mount: $out"
start_mount "$CFG" "$MP"
grep -q 'stale FUSE mount' "$MOUNT_LOG" || fail "lungate mount did not report the stale mount it recovered"
expect_same "$(base_file "$MP")" "$BASE" "the base image"

# a second mount on a mounted mountpoint is refused
if out=$("$LUNGATE" mount -c "$CFG" "$MP" --foreground 2>&1); then
	fail "a second lungate mount on $MP succeeded: $out"
fi
grep -q 'already has a FUSE file system mounted' <<<"$out" || fail "second mount: $out"
no_sanitizer_report "the refused second mount" "$out"

# fusermount3 -u ends a foreground mount with status 0
fusermount3 -u "$MP" || fail "fusermount3 -u $MP failed"
for ((i = 0; i < 100; i++)); do
	pid_alive "$MOUNT_PID" || break
	sleep 0.1
done
pid_alive "$MOUNT_PID" && fail "lungate mount did not end within 10 s of fusermount3 -u"
rc=0
wait "$MOUNT_PID" || rc=$?
forget_pid "$MOUNT_PID"
((rc == 0)) || fail "lungate mount exited with status $rc after fusermount3 -u"

# stale after a crash of the gateway, recovered by serve --fuse
start_gateway "$CFG" "$MP"
qio "$PC1" -c 'write -P 0x42 0 64k' -c flush
kill -KILL "$LG_PID"
wait "$LG_PID" 2>/dev/null || true
forget_pid "$LG_PID"
if out=$(ls "$MP" 2>&1); then
	fail "after kill -9 of the gateway, $MP is not stale: $out"
fi
start_gateway "$CFG" "$MP"
grep -q 'stale FUSE mount' "$LG_LOG" || fail "serve --fuse did not report the stale mount it recovered"
[[ $(bytes_at "$(client_file "$MP" "$PC1")" 0 4) == 42424242 ]] || fail "pc1's file lacks its write after the restart"

# SIGTERM with a file held open inside the view: the gateway still ends with 0
exec {held}<"$(client_file "$MP" "$PC1")"
cd "$MP/$IQN/0" || fail "cannot cd into the view" # a shell inside the view, too
stop_gateway "$MP"
cd "$LG_TMP" || fail "cannot cd back"
exec {held}<&-
if [[ ! -d $MP ]] || fv_is_mounted "$MP"; then
	fail "$MP is not a plain folder again"
fi
log "PASS"
