#!/usr/bin/env bash
# The reset policy "on_boot" and "maintainers", with libiscsi clients that
# play iPXE's and open-iscsi's ISIDs to the boot rule (src/target/boot_rule.c):
#  - every boot starts from the base: a new ISID after a Logout is a boot,
#    and the client's earlier writes are gone (the log names the reset);
#  - what a boot writes lasts across its reconnects: a second session while
#    the first is logged in (the iBFT hand-over), and a relogin with the
#    boot's own ISID after a Logout (iscsid at switch-root);
#  - a hard reset: the old OS's session (open-iscsi's ISID) is still logged
#    in when iPXE logs in again; that login gets a clean disk at once, and
#    what the old session writes afterwards never reaches the new boot's disk
#    (its file lost its name; the log says old_sessions=detached);
#  - a maintainer (named in "maintainers", in other letter case) keeps its
#    writes across boots;
#  - the base file never changes;
#  - /metrics counts the logins as judged (boots, reconnects) and the
#    on_boot resets, as many as the log names.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd curl

BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
make_random_image "$BASE" 8
patch_image "$BASE" 0 262144 0x5a       # a known first 256 KiB
base_sha=$(sha "$BASE")
A=$(ini onboot-a)
C=$(ini onboot-c)
M=$(ini onboot-teacher)
cow_config "$CFG" "$BASE" "$OV" "\"reset\": \"on_boot\", \"maintainers\": [\"${M^^}\"]"
MPORT=$(free_port)
start_lungate -c "$CFG" --metrics "127.0.0.1:$MPORT"

# cc ISID ARGS...: lg-cow-client as C with that ISID
cc() {
	local isid=$1
	shift
	run "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$C" -I "$isid" "$@"
}
resets_of() { grep -cF "msg=\"overlay reset\" storage=c initiator=$1 " "$LG_LOG" || true; }

# A boot writes; its next boot (a new ISID after a Logout) sees the base.
qio "$A" -c 'write -P 0xa1 0 4k' -c flush
qio "$A" -c 'read -P 0x5a 0 4k'
grep -F "msg=\"overlay reset\" storage=c initiator=$A " "$LG_LOG" | grep -q 'policy=on_boot' ||
	fail "the second boot of $A logged no on_boot reset"
log "gateway: $(grep -F "msg=\"overlay reset\" storage=c initiator=$A " "$LG_LOG" | head -n 1)"

# Reconnects of one boot keep its writes: a second session while the first
# is logged in (the hand-over), then the same ISID again after a Logout.
session_open "$A"
session_cmd 'write -P 0xa2 64k 4k'
session_cmd 'flush'
qio "$A" -c 'read -P 0xa2 64k 4k'
session_close
n=$(resets_of "$A")
cc 00023d000001 write 131072 4096 0xc1 >/dev/null || fail "C's first write failed"
cc 00023d000001 read 131072 4096 0xc1 >/dev/null ||
	fail "C's relogin with its boot's ISID after a Logout did not find its write"
grep -q "msg=\"login\" initiator=$C .*isid=00023d000001 " "$LG_LOG" ||
	fail "lg-cow-client -I did not log in with ISID 00023d000001"

# A hard reset: the old OS's session is still logged in (it writes 6 s
# later, as a dead session's last commands would arrive), and iPXE logs in.
cc 00023d000001 write 0 4096 0xc0 >/dev/null || fail "C's write before the reset failed"
before=$(logins_of "$C")
"$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$C" -I 00023d000001 -w 6 \
	write 65536 4096 0xc2 >"$LG_TMP/old.out" 2>&1 &
old=$!
LG_PIDS+=("$old")
wait_login "$C" "$before" || true # (the check below says what went wrong)
resets=$(resets_of "$C")
cc 40002723beef read 0 4096 0x5a >/dev/null ||
	fail "iPXE's login after a hard reset (the old OS's session still open) did not get a clean disk"
grep -q "msg=\"login\" initiator=$C .*isid=40002723beef " "$LG_LOG" ||
	fail "lg-cow-client -I did not log in with ISID 40002723beef"
(($(resets_of "$C") > resets)) || fail "the hard reset of $C logged no reset"
grep -F "msg=\"overlay reset\" storage=c initiator=$C " "$LG_LOG" | tail -n 1 |
	grep -q 'old_sessions=detached' || fail "the reset of $C did not detach the old boot's view"
log "gateway: $(grep -F "msg=\"overlay reset\" storage=c initiator=$C " "$LG_LOG" | tail -n 1)"
wait "$old" || fail "the old session's late write failed: $(cat "$LG_TMP/old.out")"
forget_pid "$old"
# the new boot (same ISID again: a reconnect of it) never sees the old session's write
cc 40002723beef read 65536 4096 0x5a >/dev/null ||
	fail "the old boot's session wrote into the new boot's disk after the hard reset"
cc 40002723beef read 131072 4096 0x5a >/dev/null ||
	fail "the new boot of $C still has the old boot's data"
[[ $(overlay_files "$OV" | grep -c onboot-c) == 1 ]] ||
	fail "expected one overlay file of $C: $(overlay_files "$OV")"

# The maintainer keeps its layer across boots.
qio "$M" -c 'write -P 0xd1 0 4k' -c flush
qio "$M" -c 'read -P 0xd1 0 4k'
qio "$M" -c 'read -P 0xd1 0 4k'
(($(resets_of "$M") == 0)) || fail "the maintainer's layer was reset"
metrics=$(curl -sS --max-time 20 "http://127.0.0.1:$MPORT/metrics") || fail "GET /metrics failed"
metric() { awk -v s="$1" 'index($0, s " ") == 1 { print $NF }' <<<"$metrics"; }
logged=$(grep -c 'msg="overlay reset".* policy=on_boot reason=boot' "$LG_LOG" || true)
log "metrics: $(grep -E '^lungate_(client_logins|policy_resets)_total' <<<"$metrics" | tr '\n' ' ')"
[[ $(metric 'lungate_policy_resets_total{policy="on_boot"}') == "$logged" && $logged == 3 ]] ||
	fail "lungate_policy_resets_total{policy=\"on_boot\"} is $(metric 'lungate_policy_resets_total{policy="on_boot"}'), the log names $logged resets (3 expected)"
[[ $(metric 'lungate_policy_resets_total{policy="after_idle"}') == 0 ]] || fail "after_idle resets counted"
(($(metric 'lungate_client_logins_total{kind="reconnect"}') >= 6)) ||
	fail "lungate_client_logins_total{kind=\"reconnect\"}: $(metric 'lungate_client_logins_total{kind="reconnect"}'), want at least 6"
(($(metric 'lungate_client_logins_total{kind="boot"}') >= 7)) ||
	fail "lungate_client_logins_total{kind=\"boot\"}: $(metric 'lungate_client_logins_total{kind="boot"}'), want at least 7"
[[ $(metric 'lungate_client_logins_total{kind="fenced"}') == 0 ]] || fail "fenced logins counted"
stop_lungate
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"

# Wrong values are refused, naming the key.
cow_config "$CFG" "$BASE" "$OV" '"reset": "sometimes"'
out=$("$LUNGATE" overlay list -c "$CFG" 2>&1) && fail "\"reset\": \"sometimes\" was accepted"
grep -q 'reset: use "never", "on_boot"' <<<"$out" || fail "a wrong reset policy is not named: $out"
cow_config "$CFG" "$BASE" "$OV" '"maintainers": "iqn.x:teacher"'
out=$("$LUNGATE" overlay list -c "$CFG" 2>&1) && fail "\"maintainers\" as a string was accepted"
grep -q 'maintainers: must be a list' <<<"$out" || fail "a wrong maintainers key is not named: $out"
log "PASS"
