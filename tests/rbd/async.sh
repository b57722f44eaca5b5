#!/usr/bin/env bash
# Deep queues on per-client RBD clones, whose writes, flushes, UNMAPs and
# WRITE SAMEs of zeroes are librbd aio requests in flight together (no
# worker waits on each; the throughput is in bench/rbd): 256 writes of
# 64 KiB at queue depth 32, and 4 KiB writes with FUA at queue depth 32,
# all land and read back byte for byte (qemu-img compare against what was
# written) in a new session; the base image is unchanged.  With a quota, a
# deep queue of writes past it fails with DATA PROTECT, the log names the
# client, and the writes within it land.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:rbd-async
rbd_cluster
rbd_clone_setup aw
QUOTA=$((8 << 20)) # two 4 MiB objects
write_config "$CFG" "$IQN" "/backstores/cow/aw /backstores/cow/aq" \
	"$(so_rbd golden golden '"snapshot": "v1"')" \
	'{"plugin": "cow", "name": "aw", "base": "/backstores/rbd/golden", "overlay_pool": "clients", "per_initiator": true}' \
	'{"plugin": "cow", "name": "aq", "base": "/backstores/rbd/golden", "overlay_pool": "clients", "per_initiator": true, "quota": '"$QUOTA"'}'
start_lungate -c "$CFG"
opts() { # opts INITIATOR [LUN]: qemu --image-opts of a clone LUN as INITIATOR
	printf 'driver=iscsi,transport=tcp,portal=127.0.0.1:%s,target=%s,lun=%s,initiator-name=%s' \
		"$PORT" "$IQN" "${2:-0}" "$1"
}
count() { grep -o "$1" "$2" | wc -l || true; } # (qemu-io's lines follow its prompts)

# 256 x 64 KiB at QD32: 0x5a over the first 8 MiB, then 0x5b over 4-12 MiB
# (the later writes win where they overlap); then 16 writes of 4 KiB at
# QD32 with FUA (qemu's cache=writethrough), 1 MiB apart
W=$LG_IQN_PREFIX:writer
out=$(run qemu-img bench -w -c 128 -d 32 -s 65536 --pattern=90 --image-opts "$(opts "$W")" 2>&1) ||
	fail "QD32 writes to $W's clone failed: $out"
out=$(run qemu-img bench -w -c 128 -d 32 -s 65536 -o $((4 << 20)) --pattern=91 --image-opts "$(opts "$W")" 2>&1) ||
	fail "QD32 writes to $W's clone failed: $out"
out=$(run qemu-img bench -w -c 16 -d 32 -s 4096 -S 1048576 -o 512 --pattern=92 -t writethrough --image-opts "$(opts "$W")" 2>&1) ||
	fail "QD32 FUA writes to $W's clone failed: $out"
cp "$BASE" "$LG_TMP/w.raw"
patch_raw "$LG_TMP/w.raw" 0 $((8 << 20)) 0x5a $((4 << 20)) $((8 << 20)) 0x5b
for ((i = 0; i < 16; i++)); do
	patch_raw "$LG_TMP/w.raw" $((512 + (i << 20))) 4096 0x5c
done
rm -f "$LG_TMP/got.raw"
run qemu-img convert --image-opts "$(opts "$W")" -O raw "$LG_TMP/got.raw" >/dev/null 2>&1 || fail "reading $W's disk failed"
out=$(qemu-img compare -f raw -F raw "$LG_TMP/w.raw" "$LG_TMP/got.raw" 2>&1) || fail "$W's disk is not what it wrote: $out"
rbd_export golden "$LG_TMP/head.raw"
same_file "the base image after the writes" "$BASE" "$LG_TMP/head.raw"

# a deep queue past the quota: DATA PROTECT (qemu reports EIO/ENOSPC), the
# log names the client; what fits (two objects) lands
Q=$LG_IQN_PREFIX:quota
cmds=()
for ((i = 0; i < 16; i++)); do
	cmds+=(-c "aio_write -P 0x6b $((i << 20)) 65536")
done
run qemu-io --image-opts "$(opts "$Q" 1)" "${cmds[@]}" -c aio_flush >"$LG_TMP/q.out" 2>&1 || true
nok=$(count 'wrote 65536/65536' "$LG_TMP/q.out")
nfail=$(count 'aio_write failed' "$LG_TMP/q.out")
((nok == 8 && nfail == 8)) ||
	fail "16 writes in flight, one per MiB, under a quota of two 4 MiB objects: $nok written, $nfail failed, expected 8 and 8: $(cat "$LG_TMP/q.out")"
grep -q "overlay quota reached; write refused.*initiator=$Q" "$LG_LOG" || fail "the log does not name $Q past its quota"
qio_out=$(run qemu-io --image-opts "$(opts "$Q" 1)" -c 'read -P 0x6b 0 64k' -c 'read -P 0x6b 7M 64k' 2>&1)
grep -Eqi 'verification failed|failed|error' <<<"$qio_out" && fail "$Q's writes within its quota did not land: $qio_out"
log "PASS"
