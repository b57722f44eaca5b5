#!/usr/bin/env bash
# Benchmark (not a test): the first sequential read, dd bs=1M, of a client's
# image through lungate's FUSE view, when the base is in the page cache and
# the client is fresh (no data of its own, nothing of its file cached yet).
#
#   bench/fuse-read.sh [LUNGATE-BINARY]      (default: build/lungate)
#
# Environment: SIZE_MIB (base size, default 1024), RUNS (default 3),
# PREFAULT (default 1: before each run, write and delete a tmpfs file of
# 3 x SIZE_MIB so the kernel's page cache gets memory the machine has touched
# before; on VMs whose host backs guest memory lazily, the first touch of a
# page costs a host fault that no FUSE file system can avoid, and it would be
# measured instead of lungate -- PREFAULT=0 measures it anyway).
#
# It prints MB/s for each run and compares with dd of the base file itself
# (page cache, the upper bound) and, when qemu-storage-daemon is installed,
# with its FUSE export of a qcow2 overlay over the same base.  Run as root
# (FUSE mounts, the mount's readahead, /dev/shm) on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."

LUNGATE=${1:-build/lungate}
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
PREFAULT=${PREFAULT:-1}
IQN=iqn.2025-10.org.lungate.bench:fuse
[[ -x $LUNGATE ]] || { echo "fuse-read: no lungate binary at $LUNGATE (build first, or give its path)" >&2; exit 2; }
for c in qemu-io dd fusermount3; do
	command -v "$c" >/dev/null || { echo "fuse-read: $c is not installed (scripts/deps.sh)" >&2; exit 2; }
done
LUNGATE=$(realpath "$LUNGATE")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lungate-bench-fuse.XXXXXX")
MP=$TMP/mnt
QMP=$TMP/qsd.img
GW_PID=
QSD_PID=
cleanup() {
	local rc=$?
	[[ $BASHPID == "$$" ]] || exit "$rc" # a subshell forked with this trap must not clean up
	set +e
	[[ -z $GW_PID ]] || { kill -TERM "$GW_PID"; wait "$GW_PID"; }
	[[ -z $QSD_PID ]] || { kill -TERM "$QSD_PID"; wait "$QSD_PID"; }
	for m in "$MP" "$QMP"; do
		grep -q " $m " /proc/self/mounts && fusermount3 -u -z "$m"
	done
	rm -f /dev/shm/lungate-bench-prefault
	rm -rf "$TMP"
}
trap cleanup EXIT

# mbps DD-STDERR: the MB/s figure of dd's last line, from bytes and seconds.
mbps() {
	awk '/copied/ { printf "%.0f", $1 / $(NF-3) / 1e6 }' <<<"$1"
}

prefault() {
	((PREFAULT)) || return 0
	dd if=/dev/zero of=/dev/shm/lungate-bench-prefault bs=1M count=$((3 * SIZE_MIB)) status=none
	rm -f /dev/shm/lungate-bench-prefault
}

# read_once FILE: MB/s of one dd bs=1M of FILE to /dev/null.
read_once() {
	mbps "$(dd if="$1" of=/dev/null bs=1M 2>&1)"
}

echo "fuse-read: a ${SIZE_MIB} MiB base in $TMP, $RUNS runs, prefault=$PREFAULT, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
head -c $((SIZE_MIB << 20)) /dev/urandom >"$TMP/base.img"
cat "$TMP/base.img" >/dev/null
cat >"$TMP/bench.json" <<EOF
{"storage_objects": [
  {"plugin": "fileio", "name": "base", "dev": "$TMP/base.img"},
  {"plugin": "cow", "name": "c", "base": "/backstores/fileio/base",
   "overlay_dir": "$TMP/overlays", "per_initiator": true}],
 "targets": [{"wwn": "$IQN", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
   "luns": [{"index": 0, "storage_object": "/backstores/cow/c"}]}]}]}
EOF

# a free port on 127.0.0.1
for ((i = 0; i < 50; i++)); do
	PORT=$((20000 + RANDOM % 20000))
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || break
done
"$LUNGATE" serve -c "$TMP/bench.json" --listen "127.0.0.1:$PORT" --fuse "$MP" 2>"$TMP/gw.log" &
GW_PID=$!
for ((i = 0; i < 100; i++)); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.1
done
[[ -d $MP/$IQN ]] || { echo "fuse-read: the gateway did not mount its view:" >&2; cat "$TMP/gw.log" >&2; exit 1; }

declare -a lg=() pc=()
for ((r = 1; r <= RUNS; r++)); do
	who=iqn.2025-10.org.lungate.bench:client$r
	qemu-io --image-opts "driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$IQN,lun=0,initiator-name=$who" \
		-c 'read 0 512' >/dev/null # logs in once: a fresh, empty overlay
	prefault
	lg+=("$(read_once "$MP/$IQN/0/clients/$who.img")")
	pc+=("$(read_once "$TMP/base.img")")
	echo "run $r: lungate FUSE client image ${lg[-1]} MB/s   (base file from the page cache: ${pc[-1]} MB/s)"
done
kill -TERM "$GW_PID"
wait "$GW_PID" || true
GW_PID=

qsd=
if command -v qemu-storage-daemon >/dev/null && command -v qemu-img >/dev/null; then
	qemu-img create -q -f qcow2 -b "$TMP/base.img" -F raw "$TMP/ov.qcow2"
	touch "$QMP"
	qemu-storage-daemon --blockdev "driver=qcow2,node-name=ov,file.driver=file,file.filename=$TMP/ov.qcow2" \
		--export "type=fuse,id=e,node-name=ov,mountpoint=$QMP" 2>"$TMP/qsd.log" &
	QSD_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q " $QMP " /proc/self/mounts && break
		sleep 0.1
	done
	if grep -q " $QMP " /proc/self/mounts; then
		prefault
		qsd=$(read_once "$QMP")
		echo "qemu-storage-daemon FUSE export of a qcow2 overlay over the same base: $qsd MB/s"
	else
		echo "qemu-storage-daemon: no FUSE export here ($(head -n 1 "$TMP/qsd.log"))"
	fi
fi

best() { printf '%s\n' "$@" | sort -n | tail -n 1; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
b=$(best "${lg[@]}")
m=$(median "${lg[@]}")
p=$(median "${pc[@]}")
echo "----"
echo "lungate FUSE, first read of a fresh client's ${SIZE_MIB} MiB image: median $m MB/s, best $b MB/s (goal: 1000)"
echo "ratio to the page cache: $(awk -v a="$m" -v b="$p" 'BEGIN { printf "%.2f", a / b }')"
[[ -z $qsd ]] || echo "ratio to qemu-storage-daemon's FUSE export: $(awk -v a="$m" -v b="$qsd" 'BEGIN { printf "%.1f", a / b }')"
