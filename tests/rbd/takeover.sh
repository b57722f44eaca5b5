#!/usr/bin/env bash
# One writer per client clone.  Gateway 1 serves client A (a live session
# holds A's RBD clone and its exclusive lock).
#  - gateway 2, same config, refuses A's login while gateway 1 lives, and its
#    log names the lock's owner; gateway 1 goes on writing; client B's login
#    at gateway 2 does not wait behind A's;
#  - gateway 1 is killed (SIGKILL): once its watch has expired (the test
#    cluster's osd_client_watch_timeout, 5 s) gateway 2 takes the lock over,
#    blocklisting the dead owner, and serves A with every flushed write;
#  - a login at gateway 3 while gateway 2 still holds A's clone waits for the
#    lock (up to 8 s) and gets it once A has logged out of gateway 2;
#  - a logout lets the clone go before the Logout Response (with the OSD
#    frozen the response waits for the thaw), and leaves no lock.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=../cow/functions.sh
source "$(dirname "$0")/../cow/functions.sh"

IQN=$LG_IQN_PREFIX:rbd-takeover
rbd_cluster
rbd_clone_setup clones

A=$(ini pc-a)
start_lungate -c "$CFG"
GW1=$LG_PID GW1_PORT=$PORT GW1_LOG=$LG_LOG
session_open "$A"
session_cmd 'write -P 0xb1 0 64k'
session_cmd 'flush'

start_lungate -c "$CFG"
GW2=$LG_PID GW2_PORT=$PORT GW2_LOG=$LG_LOG
# A's login at gateway 2 waits (8 s) for gateway 1 to let A's clone go, and
# is refused; meanwhile client B's login there must not wait behind it (all
# the room's clones are one storage object's)
qemu-io --image-opts "$(image_opts "$A")" -c 'read 0 4096' >"$LG_TMP/a-gw2.qio" 2>&1 &
QA=$!
LG_PIDS+=("$QA")
sleep 1
qio "$(ini pc-b)" -c 'write -P 0xbb 0 4096' -c flush -c 'read -P 0xbb 0 4096'
pid_alive "$QA" ||
	fail "A's login at gateway 2 ended before B's login there was done: B waited for A's lock wait ($(cat "$LG_TMP/a-gw2.qio"))"
log "B logged in at gateway 2 and wrote while A's login there still waited for A's clone"
wait "$QA" || true
forget_pid "$QA"
QIO_OUT=$(cat "$LG_TMP/a-gw2.qio")
grep -Eqi 'failed|error' <<<"$QIO_OUT" || fail "A's login at gateway 2 succeeded while gateway 1 held A's clone: $QIO_OUT"
grep -Eq 'RBD image clients/lungate.clones\+[^ ]*pc-a is in use: its exclusive lock is held by client\.[0-9]+.* which is alive' "$GW2_LOG" ||
	fail "gateway 2's log does not name the live owner of A's clone"
log "gateway 2 refused A: $(grep -o 'is in use: [^"]*' "$GW2_LOG" | head -n 1)"

# gateway 1 still writes, and no write of gateway 2 ever happened
PORT=$GW1_PORT LG_LOG=$GW1_LOG session_cmd 'write -P 0xb2 64k 4096'
PORT=$GW1_PORT LG_LOG=$GW1_LOG session_cmd 'flush'
PORT=$GW1_PORT LG_LOG=$GW1_LOG session_cmd 'read -P 0xb1 0 64k'

kill9_lungate "$GW1"
session_kill
log "killed gateway 1 (pid $GW1)"
LG_PID=$GW2 PORT=$GW2_PORT LG_LOG=$GW2_LOG
start=$SECONDS
until out=$(run qemu-io --image-opts "$(image_opts "$A")" -c 'read -P 0xb1 0 64k' -c 'read -P 0xb2 64k 4096' 2>&1) &&
	! grep -Eqi 'verification failed|failed|error' <<<"$out"; do
	((SECONDS - start < 40)) || fail "gateway 2 did not take A's clone over within 40 s: $out"
	sleep 1
done
log "gateway 2 took A's clone over $((SECONDS - start)) s after gateway 1 was killed"
grep -q 'msg="rbd lock taken over from a dead owner" storage=clones' "$GW2_LOG" ||
	fail "gateway 2's log does not say it took the lock over"
bl=$(ceph osd blocklist ls 2>&1) || fail "ceph osd blocklist ls: $bl"
grep -q '127.0.0.1' <<<"$bl" || fail "the dead gateway is not blocklisted: $bl"
qio "$A" -c 'write -P 0xb3 1M 4096' -c flush -c 'read -P 0xb3 1M 4096'
cp "$BASE" "$LG_TMP/a.raw"
patch_raw "$LG_TMP/a.raw" 0 65536 0xb1 65536 4096 0xb2 $((1 << 20)) 4096 0xb3
expect_disk "$A" "A's flushed writes through both gateways" "$LG_TMP/a.raw"

# A moves on while gateway 2 lets its clone go: A's login at gateway 3 waits
# for the live owner's lock (as after a drain, or when A's home gateway is
# back), and gets the clone once A has logged out of gateway 2 two seconds later
session_open "$A"
session_cmd 'write -P 0xb4 2M 4096'
session_cmd 'flush'
start_lungate -c "$CFG"
GW3=$LG_PID
qemu-io --image-opts "$(image_opts "$A")" -c 'read -P 0xb4 2M 4096' >"$LG_TMP/gw3.qio" 2>&1 &
QP=$!
LG_PIDS+=("$QP")
sleep 2
pid_alive "$QP" || fail "A's login at gateway 3 did not wait for gateway 2 to let the clone go: $(cat "$LG_TMP/gw3.qio")"
session_close
rc=0
wait "$QP" || rc=$?
forget_pid "$QP"
((rc == 0)) && ! grep -Eqi 'verification failed|failed|error' "$LG_TMP/gw3.qio" ||
	fail "A's login at gateway 3 failed after gateway 2 let the clone go (status $rc): $(cat "$LG_TMP/gw3.qio")"
grep -q "msg=\"login\" initiator=$A " "$LG_LOG" || fail "gateway 3's log has no login of A"
log "gateway 3 served A once gateway 2 let its clone go"

# A logout lets the clone go before the Logout Response: an initiator that
# has it (a drain's, and it logs in at once elsewhere) finds its disk free.
# With the only OSD frozen, letting go cannot finish (the clone's metadata
# and lock are in RADOS), so the response must wait for the thaw.
GW3_PORT=$PORT GW3_LOG=$LG_LOG
n=$(logins_of "$A" "$GW3_LOG")
"$COW_CLIENT" -p "127.0.0.1:$GW3_PORT" -t "$IQN" -i "$A" -w 3 logout >"$LG_TMP/logout.out" 2>&1 &
LP=$!
LG_PIDS+=("$LP")
wait_login "$A" "$n" "$GW3_LOG" || fail "A did not log in at gateway 3: $(cat "$LG_TMP/logout.out")"
kill -STOP "$CEPH_OSD_PID"
sleep 5 # A logs out 3 s after its login
if ! pid_alive "$LP"; then
	kill -CONT "$CEPH_OSD_PID"
	fail "A's logout completed while the OSD was frozen, so before gateway 3 let A's clone go: $(cat "$LG_TMP/logout.out")"
fi
kill -CONT "$CEPH_OSD_PID"
rc=0
wait "$LP" || rc=$?
forget_pid "$LP"
((rc == 0)) || fail "A's logout failed after the thaw (status $rc): $(cat "$LG_TMP/logout.out")"
locks=$(run rbd lock ls "clients/lungate.clones+${A,,}" 2>&1) || fail "rbd lock ls failed: $locks"
[[ -z $locks ]] || fail "A has its Logout Response, but its clone is still locked: $locks"
log "A's Logout Response came once gateway 3 had let its clone go (the OSD thawed); no lock left"
stop_lungate "$GW3"
stop_lungate "$GW2"
log "PASS"
