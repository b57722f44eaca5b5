# shellcheck shell=bash
# Helpers of the power-cut harness (tests/powercut/powercut.sh and
# bench/powercut): sourced.  Builds on tests/cow/functions.sh (processes by
# pid, the EXIT trap, lg-cow-client).
#
# The gateway runs inside the Debian guest of tests/guest (build-debian.sh,
# cached; it carries lungate's runtime libraries), booted straight from its
# kernel with the test's probe as init: root is a throwaway qcow2 layer over
# the cached root.img, and the data disk (/dev/vdb: the freshly built
# lungate, its config, the base images, the overlays) is an ext4 image served
# to QEMU by nbdkit's cache filter in writeback mode, so writes the guest
# never flushed live only in nbdkit's memory and temporary file, and are lost
# when the test kills QEMU and nbdkit with SIGKILL: a power cut of the
# gateway's machine and of its disk's volatile write cache.  Clients on the
# host reach the gateway through QEMU's user-mode port forwarding
# (127.0.0.1:PORT -> the guest's 3260).

# shellcheck source=../cow/functions.sh
source "$(dirname "${BASH_SOURCE[0]}")/../cow/functions.sh"

require_cmd qemu-system-x86_64 qemu-img nbdkit mkfs.ext4 sha256sum
PC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_DIR=${GUEST_DIR:-$("$PC_DIR/../guest/build-debian.sh")}
[[ -r $GUEST_DIR/root.img && -r $GUEST_DIR/vmlinuz && -r $GUEST_DIR/initrd.img ]] ||
	fail "no Debian guest in $GUEST_DIR (tests/guest/build-debian.sh builds it)"
PC_BOOT_TIMEOUT=${PC_BOOT_TIMEOUT:-300}
PC_N=0             # boots so far
PC_QEMU=           # QEMU's pid, while it runs
PC_NBDKIT=         # nbdkit's pid, while it runs

# pc_make_data DIR IMAGE: the data disk, an ext4 image made from DIR.
pc_make_data() {
	mkfs.ext4 -q -F -b 4096 -L lgdata -d "$1" "$2" "${PC_DATA_SIZE:-256M}" ||
		fail "mkfs.ext4 of the data disk failed"
}

# pc_boot IMAGE MODE [INITIATOR]: boot the guest with IMAGE as its data disk
# and the probe in MODE (io, commit, save; INITIATOR: whose disk commit
# commits); returns once the probe reports "ready" (the gateway listens).
# Sets PORT, PC_LOG (COM1).
pc_boot() {
	local data=$1 mode=$2 who=${3:-none} dir i
	PC_N=$((PC_N + 1))
	dir=$LG_TMP/boot$PC_N
	mkdir -p "$dir"
	PC_LOG=$dir/com1.log
	: >"$PC_LOG"
	qemu-img create -q -f qcow2 -b "$GUEST_DIR/root.img" -F raw "$dir/root.qcow2" ||
		fail "qemu-img create of the root layer failed"
	# nbdkit: the data disk with a volatile write cache (TMPDIR: its cache file)
	TMPDIR=$dir nbdkit ${PC_NBDKIT_VERBOSE:+-v} -f -U "$dir/nbd.sock" ${PC_NBDKIT_FILTER---filter=cache} file "$data" ${PC_NBDKIT_FILTER-cache=writeback} \
		>"$dir/nbdkit.out" 2>&1 &
	PC_NBDKIT=$!
	LG_PIDS+=("$PC_NBDKIT")
	for ((i = 0; i < 100; i++)); do
		[[ -S $dir/nbd.sock ]] && break
		pid_alive "$PC_NBDKIT" || fail "nbdkit ended: $(cat "$dir/nbdkit.out")"
		sleep 0.1
	done
	[[ -S $dir/nbd.sock ]] || fail "nbdkit did not listen within 10 s"
	PORT=$(free_port)
	printf '%s' "$mode" >"$dir/mode"
	printf '%s' "$who" >"$dir/who"
	# no timeout(1) in between: the cut must SIGKILL QEMU itself (the waits below bound it)
	qemu-system-x86_64 -m 512 -display none \
		-no-reboot -serial "file:$PC_LOG" \
		-kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.img" \
		-append "root=LABEL=lgroot ro console=ttyS0 panic=-1 net.ifnames=0 quiet ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off init=/usr/local/sbin/lgtest" \
		-drive "file=$dir/root.qcow2,format=qcow2,if=virtio" \
		-drive "file=nbd:unix:$dir/nbd.sock,format=raw,if=virtio,cache=writeback" \
		-fw_cfg "name=opt/lgtest,file=$PC_DIR/probe.sh" \
		-fw_cfg "name=opt/lgmode,file=$dir/mode" -fw_cfg "name=opt/lgini,file=$dir/who" \
		-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-:3260" -device e1000,netdev=n0 ${PC_QEMU_EXTRA:-} \
		>"$dir/qemu.out" 2>&1 &
	PC_QEMU=$!
	LG_PIDS+=("$PC_QEMU")
	PC_T0=$SECONDS
	pc_wait_line 'ready' "$PC_BOOT_TIMEOUT"
	PC_BOOT_SECS=$((SECONDS - PC_T0))
}

# pc_wait_line REGEX SECONDS: wait for a COM1 line "LGTEST <REGEX>"; a line
# "LGTEST end ..." (the probe gave up) fails the test.
pc_wait_line() {
	local re=$1 limit=$2 start=$SECONDS
	while ((SECONDS - start < limit)); do
		grep -aEq "^LGTEST $re" "$PC_LOG" && return 0
		grep -aEq "^LGTEST end" "$PC_LOG" && break
		pid_alive "$PC_QEMU" || break
		sleep 0.2
	done
	grep -aEq "^LGTEST $re" "$PC_LOG" && return 0
	log "guest COM1 (last 40 lines):"
	tail -n 40 "$PC_LOG" | tr -d '\r' >&2
	fail "boot $PC_N: the guest did not report 'LGTEST $re' within $limit s$(pid_alive "$PC_QEMU" || echo ' (QEMU ended)')"
}

# pc_lines REGEX: the COM1 lines "LGTEST <REGEX>..." of the current boot, without the prefix.
pc_lines() {
	grep -aE "^LGTEST $1" "$PC_LOG" | tr -d '\r' | sed 's/^LGTEST //'
}

# pc_cut: the power cut: SIGKILL to QEMU and to nbdkit (its write cache with them).
pc_cut() {
	pid_alive "$PC_NBDKIT" || { exit_status "$PC_NBDKIT"; fail "boot $PC_N: nbdkit ended before the cut ($EXIT_HOW): $(tail -n 5 "$LG_TMP/boot$PC_N/nbdkit.out")"; }
	kill -KILL "$PC_QEMU" "$PC_NBDKIT" 2>/dev/null || true
	wait "$PC_QEMU" 2>/dev/null || true
	wait "$PC_NBDKIT" 2>/dev/null || true
	forget_pid "$PC_QEMU"
	forget_pid "$PC_NBDKIT"
	PC_QEMU= PC_NBDKIT=
}
