#!/usr/bin/env bash
# A hostile client (hostile.c) opens hundreds of connections from 4 processes:
# garbage and malformed logins before login, then, in logged-in sessions,
# rounds of malformed and out-of-range PDUs, checking the answers that are
# fixed by the standards. Afterwards the gateway is still running, holds no
# leftover connections or descriptors, the image is unchanged, and normal
# clients (iscsi-readcapacity16, qemu-img compare) still work.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd iscsi-readcapacity16 qemu-img cmp
: "${HOSTILE:?HOSTILE must name the hostile client}"

IQN=$LG_IQN_PREFIX:hostile
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 64
cp "$IMG" "$LG_TMP/orig.img"
start_lungate --image "$IMG" --iqn "$IQN"

# count_fds: the gateway's open file descriptors.
count_fds() { find "/proc/$LG_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# rss_kib: the gateway's own resident memory (RssAnon: not the image's page
# cache, which it maps to send cached reads from and which shows in VmRSS).
rss_kib() { awk '/^RssAnon:/ { print $2 }' "/proc/$LG_PID/status"; }
# The bound on growth: 64 MiB; AddressSanitizer keeps freed memory in its
# quarantine (256 MiB by default), so a sanitized gateway gets that on top.
rss_bound=$((64 * 1024))
if grep -q asan "/proc/$LG_PID/maps" 2>/dev/null || ldd "$LUNGATE" 2>/dev/null | grep -q libasan; then
	rss_bound=$((rss_bound + 256 * 1024))
fi

# The first session may set up lazily created state: measure after one.
run iscsi-readcapacity16 -i "$LG_INITIATOR" -s "$(iscsi_url 0)" >/dev/null ||
	fail "iscsi-readcapacity16 before the hostile client failed"
fds_before=$(count_fds)
rss_before=$(rss_kib)

rc=0
run "$HOSTILE" --port "$PORT" --iqn "$IQN" --connections 1000 --procs 4 --seconds 60 \
	${HOSTILE_SEED:+--seed "$HOSTILE_SEED"} || rc=$?
assert_alive
((rc == 0)) || fail "the hostile client's checks failed (status $rc); rerun with HOSTILE_SEED=<seed printed above>"

# Every connection the client opened is gone on the gateway's side too.
for ((i = 0; i < 100; i++)); do
	left=$(count_established "$PORT" "01 08")
	((left == 0)) && break
	sleep 0.1
done
((left == 0)) || fail "$left connections still open (ESTABLISHED or CLOSE_WAIT) on the gateway 10 s after the client ended"
for ((i = 0; i < 50; i++)); do
	fds_after=$(count_fds)
	((fds_after <= fds_before + 2)) && break
	sleep 0.1
done
log "gateway file descriptors: $fds_before before, $fds_after after"
((fds_after <= fds_before + 2)) || fail "the gateway holds $fds_after descriptors after the hostile client, $fds_before before"

rss_after=$(rss_kib)
log "gateway resident memory (anonymous): ${rss_before} KiB before, ${rss_after} KiB after (bound: +${rss_bound} KiB); image pages mapped: $(awk '/^RssFile:/ { print $2 }' "/proc/$LG_PID/status") KiB"
((rss_after - rss_before <= rss_bound)) ||
	fail "the gateway's memory grew by $((rss_after - rss_before)) KiB under the hostile client (bound ${rss_bound} KiB)"

cmp "$LG_TMP/orig.img" "$IMG" || fail "the image changed, though the hostile client only wrote out of range"
size=$(run iscsi-readcapacity16 -i "$LG_INITIATOR" -s "$(iscsi_url 0)") ||
	fail "iscsi-readcapacity16 after the hostile client failed"
[[ $size == "$(file_size "$IMG")" ]] || fail "after the hostile client, READ CAPACITY says $size bytes"
msg=$(run qemu-img compare -f raw -F raw "$IMG" "$(iscsi_url 0)" 2>&1) ||
	fail "qemu-img compare after the hostile client: $msg"

assert_alive
stop_lungate
log "PASS"
