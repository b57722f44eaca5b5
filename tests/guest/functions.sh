# shellcheck shell=bash
# Helpers of the Debian guest tests (tests/guest): sourced.
#
# A real Debian 12 (tests/guest/build-debian.sh, cached) boots diskless in
# QEMU (TCG) through iPXE's sanhook and the iBFT: its initramfs logs in with
# open-iscsi, iscsid logs in again at switch-root, and its root is its own
# layer of a per-initiator cow LUN served by the real gateway on 127.0.0.1
# (10.0.2.2 in QEMU's user network).  The test's probe (probe.sh beside this
# file) reaches the guest through QEMU's fw_cfg and reports on COM1 as lines
# "LGTEST ...".  Builds on tests/ops/functions.sh (gateway by pid, control
# socket, the EXIT trap that ends every process the test started).
#
# Environment (tests/guest/CMakeLists.txt): as tests/ops, plus GUEST_DIR, the
# folder build-debian.sh printed (the guest.image fixture builds it).

# shellcheck source=../ops/functions.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ops/functions.sh"

require_cmd qemu-system-x86_64 debugfs
GUEST_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_DIR=${GUEST_DIR:-$("$GUEST_TESTS_DIR/build-debian.sh")}
[[ -r $GUEST_DIR/root.img && -r $GUEST_DIR/vmlinuz && -r $GUEST_DIR/initrd.img ]] ||
	fail "no Debian guest in $GUEST_DIR (tests/guest/build-debian.sh builds it)"
GUEST_BOOT_TIMEOUT=${GUEST_BOOT_TIMEOUT:-420}
GUEST_N=0

# guest_config FILE OVERLAY-DIR [EXTRA-JSON]: the guest's root image as the
# read-only base of a per-initiator cow LUN 0 of $IQN.
guest_config() {
	local extra=${3:-}
	[[ -z $extra ]] || extra=", $extra"
	cat >"$1" <<-JSON
		{"storage_objects": [
		  {"plugin": "fileio", "name": "debian", "dev": "$GUEST_DIR/root.img", "readonly": true},
		  {"plugin": "cow", "name": "room", "base": "/backstores/fileio/debian",
		   "overlay_dir": "$2", "per_initiator": true$extra}],
		 "targets": [{"wwn": "$IQN", "tpgs": [{"tag": 1,
		   "attributes": {"generate_node_acls": 1},
		   "luns": [{"index": 0, "storage_object": "/backstores/cow/room"}]}]}]}
	JSON
}

# guest_start NAME MODE: boot the guest as initiator $(ini NAME) through the
# gateway started last, its probe in mode MODE; in the background (GUEST_PID,
# its COM1 in GUEST_LOG, its QEMU monitor socket GUEST_MON, its TFTP folder
# with boot.ipxe GUEST_TFTP).  With GUEST_REBOOT=1 a reset starts the guest
# again (no -no-reboot: see guest_monitor system_reset), and QEMU may then
# live for two boots (GUEST_LIFE s: GUEST_BOOT_TIMEOUT per boot).  GUEST_SAN
# ("HOST::PORT", default the gateway started last) is where iPXE logs in;
# GUEST_NETNS, a network namespace QEMU runs in (tests/cluster).
guest_start() {
	local name=$1 mode=$2 dir noreboot=(-no-reboot)
	GUEST_LIFE=$GUEST_BOOT_TIMEOUT
	[[ ${GUEST_REBOOT:-0} != 1 ]] || { noreboot=() && GUEST_LIFE=$((2 * GUEST_BOOT_TIMEOUT)); }
	GUEST_N=$((GUEST_N + 1))
	dir=$LG_TMP/guest$GUEST_N
	mkdir -p "$dir"
	cp "$GUEST_DIR/vmlinuz" "$GUEST_DIR/initrd.img" "$dir/"
	cat >"$dir/boot.ipxe" <<-IPXE
		#!ipxe
		dhcp || poweroff
		set initiator-iqn $(ini "$name")
		sanhook iscsi:${GUEST_SAN:-10.0.2.2::$PORT}::$IQN || poweroff
		kernel vmlinuz root=LABEL=lgroot ro ip=dhcp net.ifnames=0 console=ttyS0 panic=-1 lgtest=$mode || poweroff
		initrd initrd.img || poweroff
		boot || poweroff
	IPXE
	GUEST_LOG=$dir/com1.log
	GUEST_MON=$dir/monitor.sock
	GUEST_TFTP=$dir
	: >"$GUEST_LOG"
	log "guest $GUEST_N: $(ini "$name"), probe mode $mode"
	${GUEST_NETNS:+ip netns exec "$GUEST_NETNS"} \
		timeout --kill-after=10 "$GUEST_LIFE" qemu-system-x86_64 -m 768 -display none \
		"${noreboot[@]}" -serial "file:$GUEST_LOG" -monitor "unix:$GUEST_MON,server,nowait" \
		-fw_cfg "name=opt/lgtest,file=$GUEST_TESTS_DIR/probe.sh" \
		-netdev "user,id=n0,tftp=$dir,bootfile=boot.ipxe" -device e1000,netdev=n0 \
		-boot n >"$dir/qemu.out" 2>&1 &
	GUEST_PID=$!
	LG_PIDS+=("$GUEST_PID")
}

# guest_wait_line REGEX [SECONDS]: wait until the guest's COM1 has a line
# "LGTEST ..." matching REGEX (ERE, after "LGTEST ").
guest_wait_line() {
	local re=$1 limit=${2:-$GUEST_BOOT_TIMEOUT} start=$SECONDS
	while ((SECONDS - start < limit)); do
		grep -aEq "^LGTEST $re" "$GUEST_LOG" && return 0
		pid_alive "$GUEST_PID" || break
		sleep 1
	done
	grep -aEq "^LGTEST $re" "$GUEST_LOG" && return 0
	log "guest COM1 (last 60 lines):"
	tail -n 60 "$GUEST_LOG" | tr -d '\r' >&2
	fail "the guest did not report 'LGTEST $re' within $limit s$(pid_alive "$GUEST_PID" || echo ' (QEMU ended)')"
}

# guest_wait_end: QEMU ends (the probe powers the guest off).
guest_wait_end() {
	local rc=0
	wait "$GUEST_PID" || rc=$?
	forget_pid "$GUEST_PID"
	((rc == 0)) || {
		tail -n 60 "$GUEST_LOG" | tr -d '\r' >&2
		fail "QEMU exited with status $rc (124: the guest did not power off within $GUEST_LIFE s)"
	}
}

# guest_has REGEX / guest_lacks REGEX: a COM1 line "LGTEST ..." does (not) match.
guest_has() {
	grep -aEq "^LGTEST $1" "$GUEST_LOG" || {
		grep -a '^LGTEST' "$GUEST_LOG" | tr -d '\r' >&2
		fail "the guest did not report 'LGTEST $1'"
	}
}
guest_lacks() {
	! grep -aEq "^LGTEST $1" "$GUEST_LOG" || {
		grep -a '^LGTEST' "$GUEST_LOG" | tr -d '\r' >&2
		fail "the guest reported 'LGTEST $1'"
	}
}

# guest_monitor COMMAND: one command to the QEMU monitor of the guest
# started last (system_reset: a hard reset, which leaves the old OS's TCP
# connection to the gateway open in QEMU's user network).
guest_monitor() {
	python3 - "$GUEST_MON" "$1" <<-'PY' || fail "QEMU monitor command '$1' failed"
		import socket, sys, time
		s = socket.socket(socket.AF_UNIX)
		s.connect(sys.argv[1])
		s.settimeout(10)
		time.sleep(0.5)
		s.recv(65536)                      # the banner and prompt
		s.sendall((sys.argv[2] + "\n").encode())
		time.sleep(1)
		s.close()
	PY
}

# outage SECONDS: stop the gateway (SIGSTOP, by pid) for that long, then let it go on.
outage() {
	log "outage: SIGSTOP lungate (pid $LG_PID) for $1 s"
	kill -STOP "$LG_PID"
	sleep "$1"
	kill -CONT "$LG_PID"
}
