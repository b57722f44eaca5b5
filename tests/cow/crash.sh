#!/usr/bin/env bash
# Crash safety of the overlay (kill -9 of the gateway process).
#
# 1. Flushed writes (SYNCHRONIZE CACHE, and a FUA write) of two clients
#    survive `kill -9` of the gateway and a restart: each client's whole disk
#    is the base plus its writes.
# 2. Fault injection, COW_CRASH_ROUNDS rounds (default 20): lg-cow-client
#    (libiscsi) writes numbered, self-describing data (sub-block, whole-block,
#    straddling, multi-block, some FUA, most followed by SYNCHRONIZE CACHE) and
#    logs each write and each completed flush; the script kills the gateway
#    with SIGKILL at a random moment (0-400 ms into the writing), then, with
#    the gateway down, `lungate overlay list` must still read the map and
#    report an allocation between the blocks of the durable writes and those
#    of all writes sent; after a restart the client reads the whole disk and
#    every sector must hold the data of the last durable write there, or of a
#    later write that was sent but never made durable (whole, not torn), or
#    the base's.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

ROUNDS=${COW_CRASH_ROUNDS:-20}
BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
make_random_image "$BASE" 16
base_sha=$(sha "$BASE")
cow_config "$CFG" "$BASE" "$OV"

# ---- 1. flushed writes survive kill -9 ----
start_lungate -c "$CFG"
A=$(ini crash-a)
B=$(ini crash-b)
qio "$A" -c 'write -P 0x71 0 512' -c 'write -P 0x72 100k 64k' -c 'write -P 0x73 2M 128k' -c flush
qio "$B" -c 'write -f -P 0x82 3M 4k'   # FUA, no flush
cp "$BASE" "$LG_TMP/expect-a.img"
cp "$BASE" "$LG_TMP/expect-b.img"
patch_image "$LG_TMP/expect-a.img" 0 512 0x71 $((100 << 10)) 65536 0x72 $((2 << 20)) 131072 0x73
patch_image "$LG_TMP/expect-b.img" $((3 << 20)) 4096 0x82
# A session of B that is still logged in when the gateway is killed (so no
# logout flushes for it): a plain write, which may be lost, and a FUA write,
# which must survive.
session_open "$B"
session_cmd 'write -P 0x83 5M 512'
session_cmd 'write -f -P 0x84 6M 512'
kill9_lungate
session_kill
patch_image "$LG_TMP/expect-b.img" $((6 << 20)) 512 0x84
start_lungate -c "$CFG"
expect_disk "$A" "the base with A's flushed writes (after kill -9)" "$LG_TMP/expect-a.img"
read_disk "$B" "$LG_TMP/got-b.img"
# Sector 5M (not flushed) holds the write (0x83) or the base's data, whole.
dd if="$LG_TMP/got-b.img" of="$LG_TMP/got-5m.bin" bs=512 skip=$((5 * 2048)) count=1 status=none
dd if="$BASE" of="$LG_TMP/base-5m.bin" bs=512 skip=$((5 * 2048)) count=1 status=none
fill_bytes 0x83 512 >"$LG_TMP/pat-5m.bin"
if cmp -s "$LG_TMP/got-5m.bin" "$LG_TMP/pat-5m.bin"; then
	log "B's unflushed write at 5M: kept"
elif cmp -s "$LG_TMP/got-5m.bin" "$LG_TMP/base-5m.bin"; then
	log "B's unflushed write at 5M: lost (allowed)"
else
	fail "B's unflushed write at 5M left a sector that is neither the write nor the base"
fi
dd if="$LG_TMP/got-5m.bin" of="$LG_TMP/expect-b.img" bs=512 seek=$((5 * 2048)) conv=notrunc status=none
cmp "$LG_TMP/expect-b.img" "$LG_TMP/got-b.img" ||
	fail "B's disk after kill -9 lacks its FUA writes, or changed elsewhere: $(cmp -l "$LG_TMP/expect-b.img" "$LG_TMP/got-b.img" | head -n 3 | tr '\n' ' ')"
stop_lungate
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"

# ---- 2. fault injection ----
# human BYTES: what `lungate overlay list` prints for an allocation.
human_list() {
	awk -v lo="$1" -v hi="$2" -v blk="$COW_BLOCK" 'BEGIN {
		split("B KiB MiB GiB TiB", u, " ")
		for (k = lo / blk; k <= hi / blk; k++) {
			v = k * blk; i = 1
			while (v >= 1024 && i < 5) { v /= 1024; i++ }
			if (i == 1) printf "%.0f %s\n", v, u[i]; else printf "%.1f %s\n", v, u[i]
		}
	}'
}

C=$(ini crash-torture)
TLOG=$LG_TMP/torture.log
: >"$TLOG"
kills_mid_write=0
for ((round = 1; round <= ROUNDS; round++)); do
	start_lungate -c "$CFG"
	# Everything durable so far must be there (the first round: the base).
	out=$(run "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$C" check "$BASE" "$TLOG" 2>&1) ||
		fail "round $round: after kill -9 and restart, the disk lost durable writes or holds torn data:
$out"
	log "round $round: ${out##*$'\n'}"
	sent_before=$(grep -c '^w' "$TLOG" || true)
	"$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$C" torture "$BASE" "$TLOG" \
		>"$LG_TMP/torture.out" 2>&1 &
	client=$!
	LG_PIDS+=("$client")
	# Kill at a random moment once writing has begun (0-400 ms into it).
	for ((i = 0; i < 1000; i++)); do
		(($(grep -c '^w' "$TLOG" || true) > sent_before)) && break
		pid_alive "$client" || fail "round $round: the torture client ended before writing: $(cat "$LG_TMP/torture.out")"
		sleep 0.01
	done
	sleep "0.$(printf '%03d' $((RANDOM % 400)))"
	pid_alive "$client" || fail "round $round: the torture client ended before the kill: $(cat "$LG_TMP/torture.out")"
	kill9_lungate
	for ((i = 0; i < 300; i++)); do
		pid_alive "$client" || break
		sleep 0.01
	done
	pid_alive "$client" && fail "round $round: the torture client did not notice the gateway's death within 3 s"
	rc=0
	wait "$client" || rc=$?
	forget_pid "$client"
	((rc == 0)) || fail "round $round: the torture client failed (status $rc): $(cat "$LG_TMP/torture.out")"
	tail -n 1 "$TLOG" | grep -q '^w' && kills_mid_write=$((kills_mid_write + 1))

	# Offline: the map reads, and its allocation is what the writes allow.
	read -r lo hi sent durable < <("$COW_CLIENT" model "$BASE" "$TLOG" "$COW_BLOCK") ||
		fail "lg-cow-client model failed"
	list=$("$LUNGATE" overlay list -c "$CFG" 2>"$LG_TMP/list.err") ||
		fail "round $round: overlay list failed after kill -9: $(cat "$LG_TMP/list.err")"
	[[ ! -s $LG_TMP/list.err ]] || fail "round $round: overlay list complained after kill -9: $(cat "$LG_TMP/list.err")"
	line=$(grep -F " $C " <<<"$list") || fail "round $round: overlay list does not show $C: $list"
	alloc=$(awk '{ print $3, $4 }' <<<"$line")
	human_list "$lo" "$hi" | grep -qxF "$alloc" ||
		fail "round $round: overlay list shows $alloc allocated; the durable writes need at least $lo bytes and all $sent writes sent at most $hi: $line"
	log "round $round: killed after $((sent - sent_before)) more writes ($sent sent, $durable durable); overlay list: $alloc (allowed $lo..$hi bytes)"
done

start_lungate -c "$CFG"
out=$(run "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$C" check "$BASE" "$TLOG" 2>&1) ||
	fail "after the last kill -9 and restart: $out"
log "final: ${out##*$'\n'}"
expect_disk "$A" "A's disk, untouched by the torture" "$LG_TMP/expect-a.img"
stop_lungate
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"
log "PASS: $ROUNDS kills, $kills_mid_write of them with a write in flight"
