#!/usr/bin/env bash
# No qemu-nbd outlives the gateway. Three storage objects that run a qemu-nbd
# of the gateway's own (two "qcow2", one rtslib "user" with qcow/PATH); their
# qemu-nbd processes are found as the gateway's children by parent pid.
#
#  1. SIGTERM: the gateway exits 0, and by then it has ended and reaped every
#     qemu-nbd child; their listening sockets and socket directories are gone;
#     the images pass qemu-img check and hold the flushed writes.
#  2. kill -9 of the gateway, with a read in flight and after one qemu-nbd was
#     killed and restarted by the gateway (so one child was started by an I/O
#     thread, not at start-up): every qemu-nbd child ends within 5 s; the
#     images pass qemu-img check and hold the flushed writes.
#  3. The gateway starts again on the same images and serves them, and it
#     removes the socket directories the killed one left behind (their
#     lock files made to look older than the 30 s a new one is spared; any
#     gateway of the same user starting then removes them).
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:stray
RAW=$LG_TMP/disk.raw
make_random_image "$RAW" 8
for n in a b u; do
	run qemu-img convert -f raw -O qcow2 "$RAW" "$LG_TMP/$n.qcow2" || fail "qemu-img convert -O qcow2"
done
CFG=$LG_TMP/stray.json
write_config "$CFG" "$IQN" "/backstores/qcow2/a /backstores/qcow2/b /backstores/user/u" \
	"$(so_qcow2 a "$LG_TMP/a.qcow2")" "$(so_qcow2 b "$LG_TMP/b.qcow2")" \
	"$(so_user u "$LG_TMP/u.qcow2" "$(file_size "$RAW")")"

# expect_children: the running gateway has one qemu-nbd per image; sets KIDS (an array).
expect_children() {
	local n
	mapfile -t KIDS < <(qemu_nbd_children)
	((${#KIDS[@]} == 3)) ||
		fail "expected 3 qemu-nbd children of lungate (pid $LG_PID), found: ${KIDS[*]}"
	for n in a b u; do
		child_for "$LG_TMP/$n.qcow2" >/dev/null || fail "no qemu-nbd child serves $n.qcow2"
	done
}

# check_images ROUND: every image passes qemu-img check and holds ROUND's writes.
check_images() {
	local n lun=0
	for n in a b u; do
		out=$(qemu-img check -f qcow2 "$LG_TMP/$n.qcow2" 2>&1) ||
			fail "round $1: qemu-img check $n.qcow2: $out"
		out=$(qemu-io -r -f qcow2 "$LG_TMP/$n.qcow2" -c "read -P 0x$1$lun $(($1 << 20)) 64k" 2>&1) ||
			fail "round $1: $n.qcow2 lost a flushed write: $out"
		! grep -qi 'fail\|error' <<<"$out" || fail "round $1: $n.qcow2 lost a flushed write: $out"
		lun=$((lun + 1))
	done
}

# write_luns ROUND: a flushed 64 KiB write to each LUN.
write_luns() {
	local lun
	for lun in 0 1 2; do
		qio_ok "round $1: write to LUN $lun" "$(lun_url "$lun")" \
			-c "write -P 0x$1$lun $(($1 << 20)) 64k" -c flush
	done
}

# ---- 1: SIGTERM ----
start_lungate -c "$CFG"
expect_children
socks=
for p in "${KIDS[@]}"; do
	socks+=" $(unix_listen_paths "$p" | tr '\n' ' ')"
done
[[ -n ${socks// /} ]] || fail "found no unix socket of the qemu-nbd children"
log "qemu-nbd children ${KIDS[*]}, sockets:$socks"
write_luns 1
stop_lungate
wait_reaped 0 "${KIDS[@]}"
for s in $socks; do
	[[ ! -e $s ]] || fail "the qemu-nbd socket $s is left after SIGTERM"
	[[ ! -e $(dirname "$s") ]] || fail "the socket directory $(dirname "$s") is left after SIGTERM"
done
check_images 1

# ---- 2: kill -9, with a restarted child and a read in flight ----
start_lungate -c "$CFG"
expect_children
write_luns 2
old=$(child_for "$LG_TMP/u.qcow2")
kill -KILL "$old"
poll_ok "LUN 2 after its qemu-nbd was killed" "$NBD_RECOVER_SECS" "$(lun_url 2)" -c 'read -P 0x22 2M 64k'
expect_children
[[ $(child_for "$LG_TMP/u.qcow2") != "$old" ]] || fail "the killed qemu-nbd $old is still listed"
dirs=
for p in "${KIDS[@]}"; do
	for s in $(unix_listen_paths "$p"); do dirs+=" $(dirname "$s")"; done
done
[[ -n ${dirs// /} ]] || fail "found no unix socket of the qemu-nbd children"
reads=()
for ((i = 0; i < 400; i++)); do reads+=(-c "read $(((i % 8) << 20)) 1M"); done
qemu-io -f raw "$(lun_url 0)" "${reads[@]}" </dev/null >/dev/null 2>&1 &
READER=$!
LG_PIDS+=("$READER")
sleep 0.3
log "kill -9 of lungate (pid $LG_PID) with qemu-nbd children ${KIDS[*]}"
kill -KILL "$LG_PID"
wait "$LG_PID" 2>/dev/null || true
forget_pid "$LG_PID"
wait_gone 5 "${KIDS[@]}"
# libiscsi would retry the lost target for a long time: end the reader.
kill -KILL "$READER" 2>/dev/null || true
wait "$READER" 2>/dev/null || true
forget_pid "$READER"
check_images 2
for d in $dirs; do
	[[ -f $d/lock ]] || fail "the killed gateway's socket directory $d has no lock file"
	touch -d '-1 minute' "$d/lock"
done

# ---- 3: it starts again on the same images ----
start_lungate -c "$CFG"
expect_children
# (Another test's gateway of the same user, starting meanwhile, may be the
# one that removes them: so the log line is not required of this one.)
for d in $dirs; do
	[[ ! -e $d ]] || fail "the killed gateway's socket directory $d is still there after a restart"
done
log "the killed gateway's socket directories were removed:$dirs"
qio_ok "LUN 0 after the restart" "$(lun_url 0)" -c 'read -P 0x20 2M 64k' -c 'read -P 0x10 1M 64k'
mapfile -t KIDS < <(qemu_nbd_children)
stop_lungate
wait_reaped 0 "${KIDS[@]}"
log "PASS"
