#!/usr/bin/env bash
# 64 sessions at once. First 64 `qemu-io` clients log in and hold their
# sessions (the test sees 64 established connections on the gateway's port at
# the same moment), then each reads its own 64 KiB chunks of a patterned region
# and checks their contents. Then 64 `qemu-img compare` run in parallel, each
# reading the whole LUN and comparing it with the file. All must succeed.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd qemu-io qemu-img

N=64
CHUNK=65536
PATTERN_CHUNKS=256                       # 16 MiB of 64 KiB chunks, each one byte value
IQN=$LG_IQN_PREFIX:concurrency
IMG=$LG_TMP/disk.img

# pattern_byte I: the byte value chunk I is filled with (neighbours differ).
pattern_byte() { echo $((($1 * 151 + 7) % 256)); }

: >"$IMG"
for ((i = 0; i < 256; i++)); do
	fill_bytes "$(pattern_byte "$i")" "$CHUNK" >"$LG_TMP/c$i"
done
for ((i = 0; i < PATTERN_CHUNKS; i++)); do
	cat "$LG_TMP/c$((i % 256))"
done >>"$IMG"
rm -f "$LG_TMP"/c*
head -c $((8 << 20)) /dev/urandom >>"$IMG"    # and 8 MiB of random data
start_lungate --image "$IMG" --iqn "$IQN"
URL=$(iscsi_url 0)

# Phase 1: each client logs in, reads and checks its chunks, then holds its
# session. Once every client has printed all its reads while none has ended, N
# sessions were logged in and served at the same time; then they are ended.
per=$((PATTERN_CHUNKS / N))
pids=()
for ((k = 0; k < N; k++)); do
	cmds=()
	for ((j = 0; j < per; j++)); do
		i=$((k * per + j))
		cmds+=(-c "read -P $(pattern_byte $((i % 256))) $((i * CHUNK)) $CHUNK")
	done
	cmds+=(-c 'sleep 100000')
	bg_start stdbuf -oL qemu-io -r -f raw "${cmds[@]}" "$URL" >"$LG_TMP/io.$k.log" 2>&1
	pids+=("$BG_PID")
done
peak=0 together=0
for ((tries = 0; tries < 450; tries++)); do
	n=$(count_established "$PORT")
	((n > peak)) && peak=$n
	ready=0 running=0
	for ((k = 0; k < N; k++)); do
		pid_alive "${pids[k]}" && running=$((running + 1))
		(($(grep -c "^read $CHUNK/$CHUNK bytes" "$LG_TMP/io.$k.log") == per)) && ready=$((ready + 1))
	done
	if ((ready == N && running == N)); then
		together=1
		break
	fi
	((running == N)) || break
	sleep 0.2
done
log "$ready of $N clients had read while $running ran; at most $peak connections established at once"
failed=0
for ((k = 0; k < N; k++)); do
	kill -TERM "${pids[k]}" 2>/dev/null || true
done
for ((k = 0; k < N; k++)); do
	wait "${pids[k]}" || true
	forget_pid "${pids[k]}"
	reads=$(grep -c "^read $CHUNK/$CHUNK bytes" "$LG_TMP/io.$k.log" || true)
	if ((reads != per)) || grep -qi 'Pattern verification failed\|error\|fail' "$LG_TMP/io.$k.log"; then
		log "qemu-io client $k ($reads of $per reads done):"
		cat "$LG_TMP/io.$k.log" >&2
		failed=$((failed + 1))
	fi
done
((failed == 0)) || fail "$failed of $N concurrent qemu-io sessions failed"
((together)) || fail "the $N sessions were never all logged in and served at the same time"
assert_alive

# Phase 2: N whole-LUN reads at once, each compared with the file.
pids=()
for ((k = 0; k < N; k++)); do
	bg_start qemu-img compare -f raw -F raw "$IMG" "$URL" >"$LG_TMP/cmp.$k.log" 2>&1
	pids+=("$BG_PID")
done
for ((k = 0; k < N; k++)); do
	rc=0
	wait "${pids[k]}" || rc=$?
	forget_pid "${pids[k]}"
	if ((rc != 0)) || ! grep -q 'Images are identical' "$LG_TMP/cmp.$k.log"; then
		log "qemu-img compare $k (status $rc): $(cat "$LG_TMP/cmp.$k.log")"
		failed=$((failed + 1))
	fi
done
((failed == 0)) || fail "$failed of $N concurrent qemu-img compare runs failed"

assert_alive
stop_lungate
log "PASS"
