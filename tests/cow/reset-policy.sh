#!/usr/bin/env bash
# The reset policy {"after_idle": 3}: an overlay is discarded at the first
# login after its client has had no session for more than 3 seconds (3, not
# 1: a loaded CI machine can take over a second to start the next qemu-io).
#  - a client that logs in again at once keeps its data (iPXE's reconnect);
#  - a second session opened while the first is still logged in keeps the
#    data even after more than 3 s (the iBFT hand-over);
#  - a client that comes back after more than 3 s of no session sees
#    the base again, and the gateway logs the reset naming the client;
#  - another client's overlay is not touched by that reset;
#  - a client that was logged in when the gateway was killed, and reconnects
#    after the restart, keeps its data (it never idled);
#  - "reset": "never" (the default) keeps an overlay however long it idles.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
make_random_image "$BASE" 8
base_sha=$(sha "$BASE")
cow_config "$CFG" "$BASE" "$OV" '"reset": {"after_idle": 3}'
start_lungate -c "$CFG"
R1=$(ini idle1)
R2=$(ini idle2)

# Immediate reconnect: kept. (The two qemu-io runs follow each other within
# a second or so; last use is kept in whole seconds, so "idle more than 3 s"
# needs over 3 s between them.)
qio "$R1" -c 'write -P 0xb1 0 4k' -c flush
qio "$R1" -c 'read -P 0xb1 0 4k'
grep -qF "msg=\"overlay reset\" storage=c initiator=$R1 " "$LG_LOG" &&
	fail "an immediate reconnect of $R1 reset its overlay"

# A second session while the first is logged in, after > 3 s: kept, and the
# first session still sees its data.
session_open "$R1"
session_cmd 'write -P 0xb2 64k 4k'
session_cmd 'flush'
sleep 4.2
qio "$R1" -c 'read -P 0xb1 0 4k' -c 'read -P 0xb2 64k 4k'
session_cmd 'read -P 0xb1 0 4k'
session_close
grep -qF "msg=\"overlay reset\" storage=c initiator=$R1 " "$LG_LOG" &&
	fail "a second session of $R1, opened while the first was logged in, reset its overlay"

# Idle for more than 3 s: reset at the next login; R2 keeps its data.
qio "$R2" -c 'write -P 0xc1 0 4k' -c flush
qio "$R1" -c 'write -P 0xb3 1M 4k' -c flush
sleep 4.2
expect_disk "$R1" "the base (reset after idling)" "$BASE"
grep -F "msg=\"overlay reset\" storage=c initiator=$R1 " "$LG_LOG" | grep -q 'idle=' ||
	fail "the gateway did not log the reset of $R1 with its idle time"
log "gateway: $(grep -F "msg=\"overlay reset\" storage=c initiator=$R1 " "$LG_LOG" | head -n 1)"
# R2 idled too, but has not logged in since: its overlay is still on disk.
[[ -f $OV/$R2.cow ]] || fail "the reset of $R1 removed $R2's overlay"
stop_lungate

# "never": an overlay idle for longer than 3 s is kept.
cow_config "$CFG" "$BASE" "$OV" '"reset": "never"'
start_lungate -c "$CFG"
sleep 4.2
qio "$R2" -c 'read -P 0xc1 0 4k'
grep -qF "msg=\"overlay reset\"" "$LG_LOG" && fail "\"reset\": \"never\" reset an overlay: $(grep -F 'msg="overlay reset"' "$LG_LOG")"
stop_lungate

# A client still logged in when the gateway crashes was not idle: when it
# reconnects to the restarted gateway (as an OS does after a target restart)
# its disk must still be there, though its last logout was long ago.
R3=$(ini idle3)
cow_config "$CFG" "$BASE" "$OV" '"reset": {"after_idle": 3}'
start_lungate -c "$CFG"
qio "$R3" -c 'write -P 0xe1 0 4k' -c flush       # a first session (iPXE's), logged out
session_open "$R3"                                # the OS's session
session_cmd 'write -P 0xe2 64k 4k'
session_cmd 'flush'
session_cmd 'sleep 4500'
session_cmd 'read -P 0xe2 64k 4k'
kill9_lungate
session_kill
start_lungate -c "$CFG"
out=$(run qemu-io --image-opts "$(image_opts "$R3")" -c 'read -P 0xe1 0 4k' -c 'read -P 0xe2 64k 4k' 2>&1) || true
if grep -qi 'fail\|error' <<<"$out"; then
	fail "after a gateway crash, $R3 (logged in until the crash) reconnected and found its disk reset: $out
gateway: $(grep -F "msg=\"overlay reset\" storage=c initiator=$R3 " "$LG_LOG" | head -n 1)"
fi
stop_lungate
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"
log "PASS"
