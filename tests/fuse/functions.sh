# shellcheck shell=bash
# Helpers of the FUSE view tests (tests/fuse/*.sh): sourced.
#
# They build on tests/integration/functions.sh (free ports, starting and
# stopping the gateway by pid, the EXIT trap that ends every process a test
# started and prints the gateway's log on failure) and add: a config with a
# per-initiator cow LUN and a plain LUN, qemu-io / qemu-img as a named
# initiator, a client that stays logged in, and mounts that the EXIT trap
# always unmounts (fusermount3 -u -z), even when the test fails.
#
# Environment (set by tests/fuse/CMakeLists.txt):
#   LUNGATE   the lungate binary      FREEPORT  the freeport helper

# shellcheck source=../integration/functions.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/functions.sh"

require_cmd qemu-io qemu-img fusermount3 cmp stat mountpoint

[[ -c /dev/fuse ]] || skip "this machine has no /dev/fuse"

IQN=$LG_IQN_PREFIX:fuse
FV_MOUNTS=()        # every mountpoint this test used: unmounted by the trap
FV_FIFOS=()         # fds of live clients' command pipes, closed by the trap

# fv_cleanup: unmount (lazily, so a dead or stuck daemon cannot block it),
# then the common cleanup (processes by pid, logs, the temporary folder).
fv_cleanup() {
	local rc=$? mp fd
	[[ $BASHPID == "$$" ]] || exit "$rc" # see lg_cleanup
	for fd in "${FV_FIFOS[@]}"; do
		eval "exec $fd>&-" 2>/dev/null || true
	done
	for mp in "${FV_MOUNTS[@]}"; do
		if fv_is_mounted "$mp"; then
			fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
		fi
	done
	# lg_cleanup takes the test's status from $? (set -e is on: no bare "exit 1")
	if ((rc == 0)); then
		true
		lg_cleanup
	else
		(exit "$rc") || lg_cleanup
	fi
}
trap fv_cleanup EXIT

# fv_is_mounted DIR: true if a FUSE file system (live or stale) is mounted on DIR.
fv_is_mounted() {
	local abs
	abs=$(realpath -m "$1")
	awk -v mp="$abs" '$2 == mp && $3 ~ /^fuse/ { found = 1 } END { exit !found }' /proc/self/mounts
}

# fv_config FILE BASE PLAIN OVERLAY-DIR [EXTRA-COW-JSON]: a config with LUN 0 a
# per-initiator cow over BASE (overlays in OVERLAY-DIR) and LUN 1 the plain
# image PLAIN, target $IQN, generated ACLs.
fv_config() {
	local file=$1 base=$2 plain=$3 dir=$4 extra=${5:-}
	[[ -z $extra ]] || extra=", $extra"
	cat >"$file" <<-EOF
		{"storage_objects": [
		  {"plugin": "fileio", "name": "base", "dev": "$base"},
		  {"plugin": "fileio", "name": "plain", "dev": "$plain"},
		  {"plugin": "cow", "name": "c", "base": "/backstores/fileio/base",
		   "overlay_dir": "$dir", "per_initiator": true$extra}],
		 "targets": [{"wwn": "$IQN", "tpgs": [{"tag": 1,
		   "attributes": {"generate_node_acls": 1},
		   "luns": [{"index": 0, "storage_object": "/backstores/cow/c"},
		            {"index": 1, "storage_object": "/backstores/fileio/plain"}]}]}]}
	EOF
}

# ini NAME: the full initiator name of a test client.
ini() {
	printf '%s:%s' "$LG_IQN_PREFIX" "$1"
}

# image_opts INITIATOR [LUN]: qemu's --image-opts for a LUN of $IQN on the
# gateway started last, as INITIATOR (commas doubled, as QemuOpts wants).
image_opts() {
	printf 'driver=iscsi,transport=tcp,portal=127.0.0.1:%s,target=%s,lun=%s,initiator-name=%s' \
		"$PORT" "$IQN" "${2:-0}" "${1//,/,,}"
}

# qio INITIATOR QEMU-IO-ARGS...: run qemu-io on LUN 0 as INITIATOR; fail the
# test if it fails or reports an error. Output in QIO_OUT.
qio() {
	local who=$1
	shift
	QIO_OUT=$(run qemu-io --image-opts "$(image_opts "$who")" "$@" 2>&1) ||
		fail "qemu-io as $who failed ($*): $QIO_OUT"
	if grep -Eqi 'verification failed|failed:|error' <<<"$QIO_OUT"; then
		fail "qemu-io as $who reported a failure ($*): $QIO_OUT"
	fi
}

# client_dir MOUNTPOINT: the clients folder of LUN 0.
client_dir() {
	printf '%s/%s/0/clients' "$1" "$IQN"
}

# client_file MOUNTPOINT INITIATOR: the file of a client (a '/' in its name
# shows as %2f, a '%' as %25).
client_file() {
	local name=${2//%/%25}
	printf '%s/%s.img' "$(client_dir "$1")" "${name//\//%2f}"
}

# base_file MOUNTPOINT: LUN 0's base.img.      disk_file MOUNTPOINT: LUN 1's disk.img.
base_file() {
	printf '%s/%s/0/base.img' "$1" "$IQN"
}
disk_file() {
	printf '%s/%s/1/disk.img' "$1" "$IQN"
}

# wait_mounted DIR PID [SECONDS]: wait until DIR shows the view (its target
# folder), while PID lives.
wait_mounted() {
	local dir=$1 pid=$2 secs=${3:-30} i
	for ((i = 0; i < secs * 10; i++)); do
		# statfs asks the daemon: a stale mount's cached entries do not count
		stat -f "$dir" >/dev/null 2>&1 && [[ -d $dir/$IQN ]] && return 0
		pid_alive "$pid" || fail "the process (pid $pid) that was to mount $dir ended"
		sleep 0.1
	done
	fail "$dir did not show the view within $secs s"
}

# wait_unmounted DIR [SECONDS]: wait until no FUSE file system is mounted on DIR.
wait_unmounted() {
	local dir=$1 secs=${2:-30} i
	for ((i = 0; i < secs * 10; i++)); do
		fv_is_mounted "$dir" || return 0
		sleep 0.1
	done
	fail "$dir was still mounted after $secs s"
}

# start_gateway CONFIG MOUNTPOINT [SERVE-ARGS...]: lungate serve -c CONFIG
# --fuse MOUNTPOINT on a free port, and wait for the view.
start_gateway() {
	local cfg=$1 mp=$2
	shift 2
	FV_MOUNTS+=("$mp")
	start_lungate -c "$cfg" --fuse "$mp" "$@"
	wait_mounted "$mp" "$LG_PID"
}

# stop_gateway MOUNTPOINT: SIGTERM, exit status 0, and the view unmounted.
stop_gateway() {
	stop_lungate
	fv_is_mounted "$1" && fail "the gateway exited but $1 is still mounted"
	return 0
}

# start_mount CONFIG MOUNTPOINT [MOUNT-ARGS...]: lungate mount --foreground in
# the background (MOUNT_PID, log in MOUNT_LOG), and wait for the view.
start_mount() {
	local cfg=$1 mp=$2
	shift 2
	FV_MOUNTS+=("$mp")
	MOUNT_LOG=$LG_TMP/mount.${#LG_LOGS[@]}.log
	LG_LOGS+=("$MOUNT_LOG")
	log "starting: lungate mount -c $cfg $mp --foreground $*"
	"$LUNGATE" mount -c "$cfg" "$mp" --foreground "$@" </dev/null >"$MOUNT_LOG" 2>&1 &
	MOUNT_PID=$!
	LG_PIDS+=("$MOUNT_PID")
	wait_mounted "$mp" "$MOUNT_PID"
}

# stop_mount MOUNTPOINT: SIGTERM to MOUNT_PID, exit status 0, unmounted.
stop_mount() {
	stop_lungate "$MOUNT_PID"
	fv_is_mounted "$1" && fail "lungate mount exited but $1 is still mounted"
	return 0
}

# live_client INITIATOR: log INITIATOR in with an interactive qemu-io that
# stays logged in, reading commands from a pipe (LIVE_FD, LIVE_PID); it logs
# out when live_client_end closes the pipe.
live_client() {
	local fifo=$LG_TMP/live.$RANDOM
	mkfifo "$fifo"
	qemu-io --image-opts "$(image_opts "$1")" <"$fifo" >"$LG_TMP/live.out" 2>&1 &
	LIVE_PID=$!
	LG_PIDS+=("$LIVE_PID")
	exec {LIVE_FD}>"$fifo"
	FV_FIFOS+=("$LIVE_FD")
	rm -f "$fifo"
	# logged in once the gateway says so
	local i
	for ((i = 0; i < 300; i++)); do
		grep -q "msg=\"login\" initiator=$1 " "$LG_LOG" && return 0
		pid_alive "$LIVE_PID" || fail "qemu-io as $1 ended: $(cat "$LG_TMP/live.out")"
		sleep 0.1
	done
	fail "qemu-io as $1 did not log in within 30 s"
}

# live_cmd COMMAND: a qemu-io command for the live client.
live_cmd() {
	printf '%s\n' "$1" >&"$LIVE_FD"
}

# live_client_end: quit the live client and wait for it.
live_client_end() {
	live_cmd quit
	exec {LIVE_FD}>&-
	local i
	for ((i = 0; i < 300; i++)); do
		pid_alive "$LIVE_PID" || break
		sleep 0.1
	done
	wait "$LIVE_PID" 2>/dev/null || true
	forget_pid "$LIVE_PID"
}

# wait_mode FILE MODE: FILE's mode (as stat %A shows it) becomes MODE within
# 5 s (attributes are cached for a second).
wait_mode() {
	local i
	for ((i = 0; i < 50; i++)); do
		[[ $(stat -c %A "$1") == "$2" ]] && return 0
		sleep 0.1
	done
	fail "$1: mode $(stat -c %A "$1"), expected $2"
}

# live_write_shows FILE BASE OFFSET WHO: FILE is the file of WHO, the live
# client (live_client): it is read-only (EROFS), and a write of 64 KiB of
# 0x77 at OFFSET that WHO makes shows within 10 s through a descriptor opened
# before it (where the base's bytes were), so no stale cache stays.
live_write_shows() {
	local f=$1 base=$2 at=$3 who=$4 out held got i
	wait_mode "$f" -r--r--r--
	if out=$(fill_bytes 0x01 4096 | dd of="$f" conv=notrunc status=none 2>&1); then
		fail "writing $who's file while $who is logged in succeeded"
	fi
	grep -q 'Read-only file system' <<<"$out" || fail "writing a live client's file: '$out', expected EROFS"
	exec {held}<"$f"
	[[ $(fd_bytes "$held" "$at" 4) == $(bytes_at "$base" "$at" 4) ]] ||
		fail "$who's file at $at is not the base before $who writes there"
	live_cmd "write -P 0x77 $at 64k"
	live_cmd flush
	for ((i = 0; i < 100; i++)); do
		got=$(fd_bytes "$held" "$at" 4)
		[[ $got == 77777777 ]] && break
		sleep 0.1
	done
	[[ $got == 77777777 ]] || fail "$who's write at $at did not show in 10 s through a file open before it (got $got)"
	log "$who's live write showed through an open file after $((i / 10)).$((i % 10)) s"
	exec {held}<&-
}

# expect_same FILE EXPECTED WHAT: FILE's content is EXPECTED's.
expect_same() {
	local diff
	if ! diff=$(cmp "$2" "$1" 2>&1); then
		fail "$1 is not $3 ($diff; first differing bytes: $(cmp -l "$2" "$1" 2>/dev/null | head -n 3 | tr '\n' ' '))"
	fi
}

# patch_bytes FILE OFFSET LENGTH BYTE: overwrite that range of FILE with BYTE.
patch_bytes() {
	fill_bytes "$4" "$3" | dd of="$1" bs=65536 seek="$2" oflag=seek_bytes conv=notrunc status=none
}

# bytes_at FILE OFFSET LENGTH: hex of that range.
bytes_at() {
	od -An -v -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'
}

# fd_bytes FD OFFSET LENGTH: hex of that range read through the open file
# descriptor FD (pread: the same open file, whatever its position).
fd_bytes() {
	perl -e 'open(my $fh, "<&=", $ARGV[0]) or die "fd $ARGV[0]: $!\n";
		defined(sysseek($fh, $ARGV[1], 0)) or die "seek: $!\n";
		defined(sysread($fh, my $b, $ARGV[2])) or die "read: $!\n";
		print unpack("H*", $b), "\n"' "$@"
}

# no_sanitizer_report WHAT TEXT: fail if TEXT (a command's output) holds an
# AddressSanitizer / LeakSanitizer / UBSan report (sanitized builds).
no_sanitizer_report() {
	if grep -Eq 'Sanitizer|runtime error:' <<<"$2"; then
		fail "$1 reported a sanitizer error: $2"
	fi
}

# sha FILE: its SHA-256.
sha() {
	sha256sum "$1" | cut -d' ' -f1
}
