#!/usr/bin/env bash
# One initiator name is one machine. While pc1 has a session from 127.0.0.1,
# a login with the same name (spelled in another case, too) from 127.0.0.2
# is refused and the gateway's log names both addresses; a second session
# from the same address (iPXE, then the OS through the iBFT) is accepted and
# shares the disk. Once pc1 has logged out, 127.0.0.2 may log in as pc1 and
# sees pc1's disk. The same holds with nine sessions from the first address.
#
# Clients connect from 127.0.0.2 through the bindsrc LD_PRELOAD shim (qemu-io
# cannot choose its source address); all traffic stays on 127.0.0.0/8.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
make_random_image "$BASE" 8
cow_config "$CFG" "$BASE" "$OV"
start_lungate -c "$CFG"
PC1=$(ini pc1)

# Can this machine connect from 127.0.0.2 at all? (Linux routes all of 127/8
# to lo.) The shim's own check: a client of another name from 127.0.0.2.
from_addr 127.0.0.2 qemu-io --image-opts "$(image_opts "$(ini other)")" -c 'read 0 512' >"$LG_TMP/probe.out" 2>&1 ||
	fail "a client from 127.0.0.2 could not connect: $(cat "$LG_TMP/probe.out")"
grep -q "initiator=$(ini other) peer=127.0.0.2:" "$LG_LOG" ||
	fail "the gateway did not see the client from 127.0.0.2 (is the bindsrc shim working?)"

qio "$PC1" -c 'write -P 0x51 0 4k' -c flush

# pc1 holds a session from 127.0.0.1.
session_open "$PC1"
session_cmd 'read -P 0x51 0 4k'

# The same name from another address: refused, with both addresses in the log.
for name in "$PC1" "${PC1^^}"; do
	if out=$(from_addr 127.0.0.2 run qemu-io --image-opts "$(image_opts "$name")" -c 'read 0 512' 2>&1); then
		fail "$name logged in from 127.0.0.2 while pc1 was logged in from 127.0.0.1: $out"
	fi
	log "second machine as $name refused as it should be: $out"
	grep -F "msg=\"login refused\" initiator=$name peer=127.0.0.2:" "$LG_LOG" | grep -F 127.0.0.1 | grep -q . ||
		fail "no log line refusing $name from 127.0.0.2 that names both 127.0.0.1 and 127.0.0.2"
done

# A second session from the same address shares the disk.
qio "$PC1" -c 'read -P 0x51 0 4k' -c 'write -P 0x52 64k 4k' -c flush
session_cmd 'read -P 0x52 64k 4k'    # the first session sees the second one's write
session_close

# pc1 is gone: 127.0.0.2 may now be pc1, and sees pc1's disk.
out=$(from_addr 127.0.0.2 run qemu-io --image-opts "$(image_opts "$PC1")" \
	-c 'read -P 0x51 0 4k' -c 'read -P 0x52 64k 4k' 2>&1) ||
	fail "pc1 from 127.0.0.2 after the first machine logged out: $out"
grep -qi 'fail\|error' <<<"$out" && fail "pc1 from 127.0.0.2 read the wrong data: $out"
grep -q "msg=\"login\" initiator=$PC1 peer=127.0.0.2:" "$LG_LOG" || fail "no login of pc1 from 127.0.0.2 in the log"

# Many sessions of one name from one address (more than a small fixed table
# of peer addresses would hold): while any of them is still logged in,
# another address is refused. Nine sessions of pc9 from 127.0.0.1; eight log
# out; the ninth is still there, so 127.0.0.2 as pc9 must be refused.
PC9=$(ini pc9)
pids=()
fds=()
before=$(grep -c "msg=\"login\" initiator=$PC9 " "$LG_LOG" || true)
for ((k = 0; k < 9; k++)); do
	mkfifo "$LG_TMP/many$k.fifo"
	timeout --kill-after=10 "$LG_CMD_TIMEOUT" qemu-io --image-opts "$(image_opts "$PC9")" \
		<"$LG_TMP/many$k.fifo" >"$LG_TMP/many$k.out" 2>&1 &
	pids+=($!)
	LG_PIDS+=($!)
	exec {fd}>"$LG_TMP/many$k.fifo"
	fds+=("$fd")
done
for ((i = 0; i < 400; i++)); do
	(($(grep -c "msg=\"login\" initiator=$PC9 " "$LG_LOG" || true) >= before + 9)) && break
	sleep 0.05
done
(($(grep -c "msg=\"login\" initiator=$PC9 " "$LG_LOG" || true) >= before + 9)) || fail "nine sessions of pc9 did not all log in"
for ((k = 0; k < 8; k++)); do
	printf 'quit\n' >&"${fds[k]}"
	eval "exec ${fds[k]}>&-"
	wait "${pids[k]}" || fail "session $k of pc9 failed: $(cat "$LG_TMP/many$k.out")"
	forget_pid "${pids[k]}"
done
pid_alive "${pids[8]}" || fail "the ninth session of pc9 ended early: $(cat "$LG_TMP/many8.out")"
(($(grep -c "msg=\"logout\" initiator=$PC9 " "$LG_LOG" || true) == 8)) || fail "expected eight of pc9's nine sessions to have logged out"
if out=$(from_addr 127.0.0.2 run qemu-io --image-opts "$(image_opts "$PC9")" -c 'read 0 512' 2>&1); then
	fail "pc9 logged in from 127.0.0.2 while one of its nine sessions from 127.0.0.1 was still logged in (the gateway forgot the address once eight had logged out): $out"
fi
printf 'quit\n' >&"${fds[8]}"
eval "exec ${fds[8]}>&-"
wait "${pids[8]}" || fail "the last session of pc9 failed: $(cat "$LG_TMP/many8.out")"
forget_pid "${pids[8]}"

[[ $(overlay_files "$OV" | wc -l) == 3 ]] || fail "expected three overlay files (pc1, pc9, other): $(overlay_files "$OV")"
assert_alive
stop_lungate
log "PASS"
