#!/usr/bin/env bash
# obs.logs: every line the gateway logs is logfmt (checked by a parser of the
# grammar, check_logfmt.py); each session has exactly one login and one logout
# line (matched by tsih), also when the client vanishes without a Logout; each
# refused login one line with its reason; no CHAP secret anywhere; a hostile
# initiator name cannot forge a line; --log-level warn keeps only warnings and
# errors; the iPXE line of the target is on stdout.
# shellcheck source=../integration/functions.sh
. "$SRCDIR/functions.sh"
require_cmd python3 iscsi-readcapacity16 iscsi-ls iscsi-inq qemu-io

img=$LG_TMP/disk.img
make_random_image "$img" 8
IQN=$LG_IQN_PREFIX:logs
cat >"$LG_TMP/logs.json" <<JSON
{"storage_objects":[{"plugin":"fileio","name":"d","dev":"$img"}],
 "targets":[{"wwn":"$IQN","tpgs":[{"tag":1,
   "attributes":{"generate_node_acls":1,"authentication":0},
   "luns":[{"index":0,"storage_object":"/backstores/fileio/d"}],
   "node_acls":[
     {"node_wwn":"iqn.x:alice","chap_userid":"alice","chap_password":"alice-secret-77",
      "chap_mutual_userid":"gw","chap_mutual_password":"gateway-secret-88",
      "mapped_luns":[{"index":0,"tpg_lun":0}]},
     {"node_wwn":"iqn.x:*","mapped_luns":[{"index":0,"tpg_lun":0}]}]}]}]}
JSON
LG_STDOUT=$LG_TMP/stdout.txt
start_lungate -c "$LG_TMP/logs.json"
unset LG_STDOUT
url() { printf 'iscsi://%s127.0.0.1:%s/%s/0%s' "$1" "$PORT" "${3:-$IQN}" "${2:-}"; }
mutual='?target_user=gw&target_password=gateway-secret-88'

for i in 1 2 3; do
	run iscsi-readcapacity16 -i iqn.x:alice "$(url 'alice%alice-secret-77@' "$mutual")" >/dev/null ||
		fail "alice's CHAP login $i failed"
done
! run iscsi-readcapacity16 -i iqn.x:alice "$(url 'alice%wrong-secret-99@')" >/dev/null 2>&1 ||
	fail "a wrong CHAP secret logged in"
! run iscsi-inq -i iqn.x:bob "$(url '' '' "$IQN-none")" >/dev/null 2>&1 ||
	fail "a login to a target that does not exist succeeded"
run iscsi-ls -i iqn.x:bob "iscsi://127.0.0.1:$PORT" >/dev/null || fail "discovery failed"
evil=$'iqn.x:evil\nts=2026-01-01T00:00:00.000Z level=error msg="forged" "\x1b[31m'
run iscsi-inq -i "$evil" "$(url '')" >/dev/null || fail "iscsi-inq with a hostile name failed"
# a client that vanishes without a Logout
qemu-io -f raw -c 'read 0 4k' -c 'sleep 100000' "$(url '')" >"$LG_TMP/qemu-io.out" 2>&1 &
# (no timeout wrapper: it is killed below)
gone=$!
LG_PIDS+=("$gone")
for ((i = 0; i < 600; i++)); do
	grep -q 'msg="login" initiator=iqn.2008-11.org.linux-kvm ' "$LG_LOG" && break
	pid_alive "$gone" || fail "qemu-io ended before its session was logged: $(cat "$LG_TMP/qemu-io.out")"
	sleep 0.1
done
grep -q 'msg="login" initiator=iqn.2008-11.org.linux-kvm ' "$LG_LOG" || fail "qemu-io never logged in"
kill -KILL "$gone"
wait "$gone" 2>/dev/null || true
forget_pid "$gone"
for ((i = 0; i < 600; i++)); do
	grep -q 'msg="logout" initiator=iqn.2008-11.org.linux-kvm .*reason=connection-closed' "$LG_LOG" && break
	sleep 0.1
done
grep -q 'msg="logout" initiator=iqn.2008-11.org.linux-kvm .*reason=connection-closed' "$LG_LOG" ||
	fail "no logout line after the client was killed (while the gateway still runs)"
stop_lungate

python3 "$OBSDIR/check_logfmt.py" "$LG_LOG" || fail "lines of the log are not logfmt (above)"
n() { grep -c -- "$1" "$LG_LOG" || true; }
(($(n 'msg="login" initiator=iqn.x:alice .*auth=chap-md5-mutual') == 3)) ||
	fail "expected 3 login lines of alice with mutual CHAP, found $(n 'msg="login" initiator=iqn.x:alice ')"
(($(n 'msg="logout" initiator=iqn.x:alice .*reason=logout') == 3)) ||
	fail "expected 3 logout lines of alice, found $(n 'msg="logout" initiator=iqn.x:alice ')"
(($(n 'msg="login refused"') == 2)) || fail "expected 2 refused logins, found $(n 'msg="login refused"')"
(($(n 'msg="login refused" initiator=iqn.x:alice .*reason="CHAP') == 1)) ||
	fail "the wrong secret's refusal has no line with its reason"
(($(n "msg=\"login refused\" initiator=iqn.x:bob .*target=$IQN-none .*reason=\"no such target\"") == 1)) ||
	fail "the unknown target's refusal has no line with its reason"
(($(n 'msg="login" initiator=iqn.x:bob .*session=discovery') == 1 &&
	$(n 'msg="logout" initiator=iqn.x:bob .*session=discovery') == 1)) ||
	fail "the discovery session has no login and logout line"
(($(n 'msg="logout" initiator=iqn.2008-11.org.linux-kvm .*reason=connection-closed') == 1)) ||
	fail "a session whose client vanished has no logout line"
# every tsih logged in once is logged out once
logins=$(grep -o 'msg="login" .* tsih=[0-9]*' "$LG_LOG" | grep -o 'tsih=[0-9]*$' | sort)
logouts=$(grep -o 'msg="logout" .* tsih=[0-9]*' "$LG_LOG" | grep -o 'tsih=[0-9]*$' | sort)
[[ $logins == "$logouts" ]] || fail "login and logout lines do not pair up: logins [$logins] logouts [$logouts]"
(($(wc -l <<<"$logins") == 6)) || fail "expected 6 sessions, found $(wc -l <<<"$logins")"
for secret in alice-secret-77 gateway-secret-88 wrong-secret-99; do
	! grep -aq -- "$secret" "$LG_LOG" "$LG_TMP/stdout.txt" || fail "a secret ($secret) appears in the output"
done
! grep -aq 'msg="forged"' "$LG_LOG" || fail "a hostile initiator name forged a log line"
grep -q 'msg="login" initiator=iqn.x:evil\\x0ats\\x3d2026' "$LG_LOG" ||
	fail "the hostile name is not escaped in its login line: $(grep -a 'evil' "$LG_LOG" | head -n 2)"
grep -qF "sanboot iscsi:10.0.2.2::$PORT::$IQN || reboot" "$LG_TMP/stdout.txt" ||
	fail "serve did not print the target's iPXE line on stdout: $(cat "$LG_TMP/stdout.txt")"
log "$(wc -l <"$LG_LOG") log lines, all logfmt; 6 sessions paired"

# --log-level warn: a login leaves no line, a refusal one warn line
start_lungate -c "$LG_TMP/logs.json" --log-level warn
run iscsi-readcapacity16 -i iqn.x:carol "$(url '')" >/dev/null || fail "carol's login failed"
! run iscsi-inq -i iqn.x:carol "$(url '' '' "$IQN-none")" >/dev/null 2>&1 || fail "refusal expected"
stop_lungate
! grep -q 'level=info' "$LG_LOG" || fail "--log-level warn still logs info lines: $(grep 'level=info' "$LG_LOG" | head -n 2)"
grep -q 'level=warn msg="login refused" initiator=iqn.x:carol' "$LG_LOG" ||
	fail "--log-level warn lost the refused login"
if "$LUNGATE" serve -c "$LG_TMP/logs.json" --log-level loud >/dev/null 2>"$LG_TMP/bad.log"; then
	fail "--log-level loud was accepted"
fi
grep -q 'error, warn, info or debug' "$LG_TMP/bad.log" || fail "a bad --log-level does not say what is allowed"

# a gateway that dies (SIGABRT here, as a C++ library's uncaught exception
# ends it: seen once in CI, with no word of where) says so in its log with
# the backtrace of the thread it hit, and ends as it would have (status 134,
# the signal's: a core, and systemd's Restart=on-failure)
start_lungate -c "$LG_TMP/logs.json"
kill -ABRT "$LG_PID"
rc=0
wait "$LG_PID" || rc=$?
forget_pid "$LG_PID"
((rc == 134)) || fail "after SIGABRT the gateway ended with status $rc, not 134 (killed by the signal)"
grep -q '^level=error msg="fatal signal: .*" signal=SIGABRT$' "$LG_LOG" ||
	fail "the gateway's log does not say it ended by SIGABRT: $(tail -n 3 "$LG_LOG")"
# (glibc 2.36 writes "lungate(+0x3fc42)[0x...]", 2.41 puts a space before "[")
grep -q 'lungate(+0x[0-9a-f]*) \?\[0x[0-9a-f]*\]$' "$LG_LOG" ||
	fail "the log holds no backtrace frame in lungate: $(tail -n 5 "$LG_LOG")"
log "SIGABRT: status 134, the signal and $(grep -c '(.*) \?\[0x[0-9a-f]*\]$' "$LG_LOG") backtrace frames logged"
