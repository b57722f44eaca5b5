#!/usr/bin/env bash
# obs.metrics: serve --metrics answers GET /metrics in Prometheus text format
# (checked by check_prom.py: Prometheus' Python parser plus the family,
# series and histogram rules a scraper relies on), with non-zero
# per-LUN counters after real traffic (qemu-img, qemu-io, iscsi-inq), a
# session gauge while a session runs, overlay bytes per client, a hostile
# initiator name escaped in its label, and an HTTP side that answers 404/405/431
# and keeps answering while idle connections hang on.
# shellcheck source=../integration/functions.sh
. "$SRCDIR/functions.sh"
require_cmd curl qemu-img qemu-io iscsi-inq

img=$LG_TMP/disk.img
make_random_image "$img" 64
IQN=$LG_IQN_PREFIX:metrics
mkdir "$LG_TMP/ov"
MPORT=$(free_port)
start_lungate --image "$img" --iqn "$IQN" --cow "$LG_TMP/ov" --metrics "127.0.0.1:$MPORT"
wait_port "$LG_PID" 127.0.0.1 "$MPORT" 10 || fail "nothing listens on the metrics port $MPORT"
M=http://127.0.0.1:$MPORT/metrics

# scrape FILE: GET /metrics into FILE; it must pass check_prom.py
scrape() {
	local code
	code=$(curl -sS --max-time 20 -o "$1" -w '%{http_code} %{content_type}' "$M") ||
		fail "curl $M failed"
	[[ $code == "200 text/plain; version=0.0.4; charset=utf-8" ]] ||
		fail "GET /metrics answered '$code', not 200 with the 0.0.4 text content type"
	/usr/bin/python3 "$OBSDIR/check_prom.py" "$1" >"$1.check" 2>&1 ||
		fail "check_prom.py rejects the text: $(cat "$1.check")"
}
# value FILE SERIES: the value of one series (name{labels}) in FILE
value() {
	awk -v s="$2" 'index($0, s " ") == 1 { print $NF; found = 1 } END { exit !found }' "$1" ||
		fail "no series $2 in the metrics: $(grep -F "${2%%\{*}" "$1" | head -n 5)"
}
L="target=\"$IQN\",lun=\"0\""

scrape "$LG_TMP/m0"
(($(value "$LG_TMP/m0" "lungate_commands_total{$L,op=\"read\"}") == 0)) ||
	fail "reads counted before any traffic"

# traffic: a whole-disk read, a 1 MiB write, an INQUIRY for a VPD page that does
# not exist (CHECK CONDITION), a hostile initiator name, a refused login
url=$(iscsi_url 0 "$IQN")
run qemu-img convert -O raw "$url" "$LG_TMP/copy.img" || fail "qemu-img convert failed"
cmp -s "$img" "$LG_TMP/copy.img" || fail "the copy differs from the image"
run qemu-io -f raw -c 'write -P 0x5a 0 1M' "$url" >/dev/null || fail "qemu-io write failed"
! run iscsi-inq -i "$LG_IQN_PREFIX:vpd" -e 1 -c 126 "$url" >/dev/null 2>&1 ||
	fail "INQUIRY of VPD page 0x7e succeeded"
evil=$'iqn.x:evil"} 1\nfake_metric{a="b\\'
run iscsi-inq -i "$evil" "$url" >/dev/null || fail "iscsi-inq with a hostile initiator name failed"
! run iscsi-inq -i "$LG_IQN_PREFIX:lost" "$(iscsi_url 0 "$IQN-nonexistent")" >/dev/null 2>&1 ||
	fail "a login to a target that does not exist succeeded"

# a live session: qemu-io holds one while it sleeps
bg_start qemu-io -f raw -c 'read 0 4k' -c 'sleep 100000' "$url"
live=$BG_PID
for ((i = 0; i < 300; i++)); do
	scrape "$LG_TMP/m1"
	(($(value "$LG_TMP/m1" "lungate_sessions{target=\"$IQN\"}") == 1)) && break
	sleep 0.2
done
(($(value "$LG_TMP/m1" "lungate_sessions{target=\"$IQN\"}") == 1)) ||
	fail "lungate_sessions is not 1 while qemu-io holds a session"
kill -TERM "$live" 2>/dev/null || true
wait "$live" 2>/dev/null || true
forget_pid "$live"
for ((i = 0; i < 300; i++)); do
	scrape "$LG_TMP/m2"
	(($(value "$LG_TMP/m2" "lungate_sessions{target=\"$IQN\"}") == 0)) && break
	sleep 0.2
done
(($(value "$LG_TMP/m2" "lungate_sessions{target=\"$IQN\"}") == 0)) ||
	fail "lungate_sessions did not return to 0 after the session ended"

m=$LG_TMP/m2
reads=$(value "$m" "lungate_commands_total{$L,op=\"read\"}")
writes=$(value "$m" "lungate_commands_total{$L,op=\"write\"}")
others=$(value "$m" "lungate_commands_total{$L,op=\"other\"}")
((reads > 0 && writes > 0 && others > 0)) || fail "commands: read=$reads write=$writes other=$others"
(($(value "$m" "lungate_read_bytes_total{$L}") >= 64 << 20)) ||
	fail "read bytes $(value "$m" "lungate_read_bytes_total{$L}") < the 64 MiB qemu-img read"
(($(value "$m" "lungate_written_bytes_total{$L}") >= 1 << 20)) ||
	fail "written bytes $(value "$m" "lungate_written_bytes_total{$L}") < the 1 MiB qemu-io wrote"
(($(value "$m" "lungate_check_conditions_total{$L}") >= 1)) ||
	fail "the refused INQUIRY is not counted as a CHECK CONDITION"
count=$(value "$m" "lungate_command_duration_seconds_count{$L}")
inf=$(value "$m" "lungate_command_duration_seconds_bucket{$L,le=\"+Inf\"}")
((count == reads + writes + others && inf == count)) ||
	fail "histogram count $count / +Inf bucket $inf != commands $((reads + writes + others))"
(($(value "$m" lungate_logins_total) >= 5)) || fail "lungate_logins_total: $(value "$m" lungate_logins_total)"
(($(value "$m" lungate_login_refusals_total) >= 1)) || fail "the refused login is not counted"
(($(value "$m" "lungate_overlay_allocated_bytes{$L,initiator=\"iqn.2008-11.org.linux-kvm\"}") >= 1 << 20)) ||
	fail "qemu's overlay does not show the 1 MiB it wrote"
(($(value "$m" process_resident_memory_bytes) > 0 && $(value "$m" process_open_fds) > 0)) ||
	fail "process metrics missing"
# (under AddressSanitizer malloc is not glibc's, and glibc's arenas hold nothing)
heap=$(value "$m" lungate_heap_in_use_bytes)
ldd "$LUNGATE" 2>/dev/null | grep -q libasan ||
	((heap > 0 && heap < $(value "$m" process_virtual_memory_bytes))) ||
	fail "lungate_heap_in_use_bytes is $heap"
grep -qF "initiator=\"iqn.x:evil\\\"} 1\\nfake_metric{a=\\\"b\\\\\"} " "$m" ||
	fail "the hostile initiator name is not escaped as the format wants: $(grep -a evil "$m")"
! grep -aq '^fake_metric' "$m" || fail "a hostile initiator name forged a metric line"
log "after traffic: read=$reads write=$writes other=$others commands"

# the HTTP side
code() { curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "$@"; }
[[ $(code "http://127.0.0.1:$MPORT/") == 404 ]] || fail "GET / did not answer 404"
[[ $(code "http://127.0.0.1:$MPORT/metricsx") == 404 ]] || fail "GET /metricsx did not answer 404"
[[ $(code -X POST -d x "$M") == 405 ]] || fail "POST /metrics did not answer 405"
[[ $(code -H "X-Big: $(head -c 6000 /dev/zero | tr '\0' a)" "$M") == 431 ]] ||
	fail "a 6 KB request head did not answer 431"
[[ $(curl -sS --max-time 20 -I -o /dev/null -w '%{http_code}' "$M") == 200 ]] || fail "HEAD /metrics failed"
# idle connections that never send a request, more than the responder's slots
fds=()
for ((i = 0; i < 12; i++)); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$MPORT" || fail "cannot open idle connection $i"
	fds+=("$fd")
done
scrape "$LG_TMP/m3" # answers at once: idle sockets do not block the responder
for fd in "${fds[@]}"; do
	exec {fd}>&-
done
assert_alive
stop_lungate
