#!/usr/bin/env bash
# A running gateway's sessions and overlays, through its control socket:
#  - `lungate sessions` lists a client session (iscsi-perf, running) with its
#    initiator, address, target, LUN and the bytes it has read;
#  - `lungate overlays` lists two clients with their allocated bytes and
#    quota, and which one is live;
#  - `lungate overlay reset` of one client (no -c: the gateway does it) leaves
#    the other's overlay and data intact;
#  - a reset of a logged-in client is refused, and its data kept, unless
#    --force, which logs the client out first and then resets it;
#  - `lungate overlay commit` of an idle client writes its disk;
#  - `lungate overlay gc` removes idle overlays and keeps a live one.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
make_random_image "$BASE" 16
cow_config "$CFG" "$BASE" "$OV" '"quota": 8388608'
start_lungate -c "$CFG" --control "$SOCK"
P1=$(ini pc1)
P2=$(ini pc2)
P3=$(ini pc3)
P4=$(ini pc4)
has_overlay() { [[ -f $OV/$1.cow ]]; }

qio "$P1" -c 'write -P 0x31 0 64k' -c flush
qio "$P2" -c 'write -P 0x32 0 64k' -c 'write -P 0x33 8M 64k' -c flush

# ---- sessions ----
perf_start "$P4" "iscsi://127.0.0.1:$PORT/$IQN/0" 600
ctl_ok sessions
grep -F "$P4" <<<"$OUT" | grep -F "$IQN" | grep -q '127\.0\.0\.1:' ||
	fail "lungate sessions does not list $P4's session with its target and address"
for ((i = 0; i < 100; i++)); do
	ctl_ok sessions --json
	read_bytes=$(json_get "[s['bytes_read'] for s in j['sessions'] if s['initiator'] == '$P4'][0]")
	((read_bytes > 1048576)) && break
	sleep 0.1
done
((read_bytes > 1048576)) || fail "lungate sessions: $P4 has read only $read_bytes bytes"
[[ $(json_get "[s['luns'][0]['lun'] for s in j['sessions'] if s['initiator'] == '$P4'][0]") == 0 ]] ||
	fail "lungate sessions does not show LUN 0 for $P4"
[[ $(json_get "[s['since'] > 0 for s in j['sessions'] if s['initiator'] == '$P4'][0]") == True ]] ||
	fail "lungate sessions has no login time for $P4"

# ---- overlays ----
ctl_ok overlays
grep -F " $P1 " <<<"$OUT" | grep -q ' 64.0 KiB .* 8.0 MiB ' || fail "lungate overlays: pc1 should have 64.0 KiB of an 8.0 MiB quota"
grep -F " $P2 " <<<"$OUT" | grep -q ' 128.0 KiB ' || fail "lungate overlays: pc2 should have 128.0 KiB allocated"
grep -F " $P2 " <<<"$OUT" | grep -q "^$IQN/0 " || fail "lungate overlays does not name pc2's target and LUN"
grep -F " $P4 " <<<"$OUT" | grep -q ' live$' || fail "lungate overlays does not show pc4 as live"
grep -F " $P1 " <<<"$OUT" | grep -q ' -$' || fail "lungate overlays shows idle pc1 as live"

# ---- reset one client; the other stays ----
ctl_ok overlay reset c "$P1"
has_overlay "$P1" && fail "overlay reset c pc1 (through the gateway) left its overlay"
has_overlay "$P2" || fail "overlay reset of pc1 removed pc2's overlay"
ctl_ok overlays --json
[[ $(json_get "[o['allocated'] for o in j['overlays'] if o['initiator'] == '$P2'][0]") == 131072 ]] ||
	fail "pc2's overlay changed with pc1's reset"
qio "$P2" -c 'read -P 0x32 0 64k' -c 'read -P 0x33 8M 64k'
expect_disk "$P1" "the base after reset" "$BASE"

# ---- a live client: refused, then --force ----
session_open "$P3"
session_cmd 'write -P 0x34 0 64k'
session_cmd 'flush'
ctl overlay reset c "$P3"
((RC != 0)) || fail "overlay reset of a logged-in client succeeded without --force"
grep -qi 'in use' <<<"$OUT" && grep -q -- '--force' <<<"$OUT" ||
	fail "the refusal does not say the client is in use and how to force it: $OUT"
has_overlay "$P3" || fail "a refused reset removed the overlay"
session_cmd 'read -P 0x34 0 64k'
ctl overlay commit c "$P3" "$LG_TMP/pc3.img"
((RC != 0)) || fail "overlay commit of a logged-in client succeeded without --force"
[[ ! -e $LG_TMP/pc3.img ]] || fail "a refused commit wrote a file"

ctl_ok overlay reset c "$P3" --force
grep -q "logged out $P3 (1 session)" <<<"$OUT" || fail "overlay reset --force does not say it logged pc3 out: $OUT"
grep -q "msg=\"control: closing a session\" initiator=$P3 " "$LG_LOG" || fail "the forced logout is not logged"
grep -q "msg=\"overlay reset\" storage=c initiator=$P3 " "$LG_LOG" || fail "the reset is not logged"
# the running client reconnects to a failing disk (tests/ops/force-reconnect.sh
# has the details), logs out, and its next session is a boot: the base
session_try 'read -P 0x34 0 64k'
grep -q 'read failed' <<<"$TRY_OUT" || fail "pc3's running client still reads after a forced reset: $TRY_OUT"
session_quit
expect_disk "$P3" "the base after a forced reset and a new boot" "$BASE"
# the running iscsi-perf of pc4 was not touched
pid_alive "$PERF_PID" || fail "iscsi-perf of pc4 ended during pc3's reset: $(tail -c 500 "$PERF_OUT")"

# ---- commit of an idle client, through the gateway (a relative path is the client's) ----
(cd "$LG_TMP" && "$LUNGATE" overlay commit c "$P2" pc2.img --control "$SOCK") || fail "overlay commit c pc2 failed"
cp "$BASE" "$LG_TMP/expect2.img"
patch_image "$LG_TMP/expect2.img" 0 65536 0x32 $((8 << 20)) 65536 0x33
cmp "$LG_TMP/expect2.img" "$LG_TMP/pc2.img" || fail "the committed image is not the base with pc2's writes"

# ---- gc through the gateway: idle overlays go, a live one stays ----
sleep 1.1    # every overlay's last use is now at least a second ago
ctl_ok overlay gc --days 0 --dry-run
grep -qF "would remove $P2 on c" <<<"$OUT" || fail "overlay gc --dry-run does not name idle pc2: $OUT"
grep -qF "kept $P4 on c" <<<"$OUT" || fail "overlay gc --dry-run does not keep live pc4: $OUT"
has_overlay "$P2" || fail "overlay gc --dry-run removed pc2's overlay"
ctl_ok overlay gc --days 0
has_overlay "$P2" && fail "overlay gc --days 0 kept pc2's idle overlay"
has_overlay "$P4" || fail "overlay gc removed the overlay of pc4, which is logged in"

kill -TERM "$PERF_PID"
wait "$PERF_PID" 2>/dev/null || true
forget_pid "$PERF_PID"
assert_alive
stop_lungate
log "PASS"
