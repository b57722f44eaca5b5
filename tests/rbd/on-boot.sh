#!/usr/bin/env bash
# "reset": "on_boot" and "maintainers" for per-client RBD clones (issue 17):
#  - a boot (a new ISID after a Logout) starts client A from the base
#    snapshot: its clone is removed and made anew, the log names the reset;
#  - a second session while the first is logged in (the iBFT hand-over)
#    keeps what the boot wrote;
#  - a hard reset: the old OS's session (open-iscsi's ISID, played by
#    lg-cow-client -I) is still logged in when iPXE logs in again; that boot
#    gets a new clone at once, the old session's later write never reaches
#    it, and the old clone (renamed lungate-detached.ID) is removed when the
#    old session ends;
#  - the maintainer keeps its clone across boots;
#  - the base image and snapshot never change.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=../cow/functions.sh
source "$(dirname "$0")/../cow/functions.sh"

IQN=$LG_IQN_PREFIX:rbd-on-boot
rbd_cluster
run ceph osd pool create clients 8 8 >/dev/null 2>&1 || fail "ceph osd pool create clients failed"
run ceph osd pool application enable clients rbd >/dev/null 2>&1 || fail "enabling rbd on pool clients failed"

BASE=$LG_TMP/base.raw
make_random_image "$BASE" 16
patch_raw "$BASE" 0 262144 0x5a
rbd_import "$BASE" golden
run rbd snap create rbd/golden@v1 >/dev/null 2>&1 || fail "rbd snap create failed"

A=$(ini pc-a)
M=$(ini teacher)
CFG=$LG_TMP/rbd.json
write_config "$CFG" "$IQN" "/backstores/cow/clones" \
	"$(so_rbd golden golden '"snapshot": "v1"')" \
	"{\"plugin\": \"cow\", \"name\": \"clones\", \"base\": \"/backstores/rbd/golden\", \"overlay_pool\": \"clients\", \"per_initiator\": true, \"reset\": \"on_boot\", \"maintainers\": [\"$M\"]}"
start_lungate -c "$CFG"

qio "$A" -c 'write -P 0xa1 0 4k' -c flush
qio "$A" -c 'read -P 0x5a 0 4k'
grep -F "msg=\"overlay reset\" storage=clones initiator=$A " "$LG_LOG" | grep -q 'policy=on_boot' ||
	fail "the second boot of $A logged no on_boot reset"
log "gateway: $(grep -F "msg=\"overlay reset\" storage=clones initiator=$A " "$LG_LOG" | head -n 1)"

session_open "$A"
session_cmd 'write -P 0xa2 64k 4k'
session_cmd 'flush'
qio "$A" -c 'read -P 0xa2 64k 4k'
session_close

# A hard reset with the old OS's session still open.
C=$(ini pc-c)
cc() {
	local isid=$1
	shift
	run "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$C" -I "$isid" "$@"
}
cc 00023d000001 write 0 4096 0xc0 >/dev/null || fail "C's write before the reset failed"
before=$(logins_of "$C")
"$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$C" -I 00023d000001 -w 6 \
	write 65536 4096 0xc2 >"$LG_TMP/old.out" 2>&1 &
old=$!
LG_PIDS+=("$old")
wait_login "$C" "$before" || true # (the check below says what went wrong)
cc 40002723beef read 0 4096 0x5a >/dev/null ||
	fail "iPXE's login after a hard reset (the old OS's session still open) did not get a clean clone"
grep -F "msg=\"overlay reset\" storage=clones initiator=$C " "$LG_LOG" | tail -n 1 |
	grep -q 'old_sessions=detached' || fail "the reset of $C did not detach the old boot's clone: $(grep -F "initiator=$C" "$LG_LOG" | tail -n 3)"
log "gateway: $(grep -F "msg=\"overlay reset\" storage=clones initiator=$C " "$LG_LOG" | tail -n 1)"
log "pool clients: $(rbd ls clients | tr '\n' ' ')"
rbd ls clients | grep -q '^lungate-detached\.' || fail "no lungate-detached clone while the old session runs: $(rbd ls clients)"
wait "$old" || fail "the old session's late write failed: $(cat "$LG_TMP/old.out")"
forget_pid "$old"
cc 40002723beef read 65536 4096 0x5a >/dev/null ||
	fail "the old boot's session wrote into the new boot's clone after the hard reset"
for ((i = 0; i < 100; i++)); do
	rbd ls clients | grep -q '^lungate-detached\.' || break
	sleep 0.1
done
rbd ls clients | grep -q '^lungate-detached\.' && fail "the detached clone was not removed after the old session ended: $(rbd ls clients)"

qio "$M" -c 'write -P 0xd1 0 4k' -c flush
qio "$M" -c 'read -P 0xd1 0 4k'
grep -qF "msg=\"overlay reset\" storage=clones initiator=$M " "$LG_LOG" &&
	fail "the maintainer's clone was reset"
stop_lungate

rbd_export golden@v1 "$LG_TMP/snap.raw"
same_file "the base snapshot after the clients wrote" "$BASE" "$LG_TMP/snap.raw"
log "ok"
