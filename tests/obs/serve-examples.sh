#!/usr/bin/env bash
# obs.serve-examples: examples/classroom.json loads and serves as it is (its
# /srv/lungate paths moved to a temporary folder, --listen on loopback): PCs
# named iqn.2025-10.org.school:<mac> get their own overlay, other names are
# refused by the wildcard ACL; serve prints the target's iPXE line; the other
# example configs load; the dnsmasq snippet passes dnsmasq --test; and serve
# tells systemd READY=1 through $NOTIFY_SOCKET (the unit is Type=notify).
# shellcheck source=../integration/functions.sh
. "$SRCDIR/functions.sh"
require_cmd python3 iscsi-inq iscsi-readcapacity16 dnsmasq curl

mkdir -p "$LG_TMP/srv"
truncate -s 32M "$LG_TMP/srv/classroom.img"
sed "s|/srv/lungate|$LG_TMP/srv|g" "$EXAMPLES/classroom.json" >"$LG_TMP/classroom.json"
IQN=iqn.2025-10.org.school:classroom
MPORT=$(free_port)
LG_STDOUT=$LG_TMP/stdout.txt
start_lungate -c "$LG_TMP/classroom.json" --metrics "127.0.0.1:$MPORT"
unset LG_STDOUT
url=$(iscsi_url 0 "$IQN")
for mac in 52-54-00-00-00-01 52-54-00-00-00-02; do
	run iscsi-readcapacity16 -i "iqn.2025-10.org.school:$mac" "$url" | grep -q '^Total size:33554432$' ||
		fail "PC $mac cannot read the classroom disk"
done
! run iscsi-inq -i iqn.2025-10.org.other:pc1 "$url" >/dev/null 2>&1 ||
	fail "an initiator outside iqn.2025-10.org.school:* logged in"
grep -q 'msg="login refused" initiator=iqn.2025-10.org.other:pc1 .*no ACL admits' "$LG_LOG" ||
	fail "the refused initiator has no log line"
for mac in 52-54-00-00-00-01 52-54-00-00-00-02; do
	[[ -f $LG_TMP/srv/overlays/iqn.2025-10.org.school:$mac.cow ]] ||
		fail "no overlay for PC $mac: $(ls "$LG_TMP/srv/overlays")"
	# whole, then searched: grep -q stopping at the match fails a piped curl
	metrics=$(curl -sS --max-time 20 "http://127.0.0.1:$MPORT/metrics") || fail "GET /metrics failed"
	grep -q "^lungate_overlay_allocated_bytes{target=\"$IQN\",lun=\"0\",initiator=\"iqn.2025-10.org.school:$mac\"} " <<<"$metrics" ||
		fail "the metrics have no overlay line for PC $mac"
done
grep -qF "sanboot iscsi:10.0.2.2::$PORT::$IQN || reboot" "$LG_TMP/stdout.txt" ||
	fail "serve did not print the classroom target's iPXE line: $(cat "$LG_TMP/stdout.txt")"
grep -qF 'set initiator-iqn iqn.2025-10.org.school:${mac:hexhyp}' "$LG_TMP/stdout.txt" ||
	fail "serve's iPXE lines do not name the PC by its MAC under the target's authority"
stop_lungate

# every portal of the config gets its line when --listen is not given
port2=$(free_port)
sed "s|\"port\": 3260|\"port\": $port2|; s|\"0.0.0.0\"|\"127.0.0.1\"|" "$LG_TMP/classroom.json" >"$LG_TMP/portal.json"
PORT=$port2 LG_NO_LISTEN=1 LG_STDOUT=$LG_TMP/stdout2.txt start_lungate -c "$LG_TMP/portal.json"
grep -qF "sanboot iscsi:10.0.2.2::$port2::$IQN || reboot" "$LG_TMP/stdout2.txt" ||
	fail "serve did not print the iPXE line of the config's portal: $(cat "$LG_TMP/stdout2.txt")"
stop_lungate

# Type=notify: READY=1 on $NOTIFY_SOCKET once the portal listens
sock=$LG_TMP/notify.sock
python3 - "$sock" >"$LG_TMP/notify.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
while True:
    msg = s.recv(4096).decode()
    print(msg, flush=True)
    if "STOPPING=1" in msg:
        break
PY
listener=$!
LG_PIDS+=("$listener")
for ((i = 0; i < 100; i++)); do [[ -S $sock ]] && break; sleep 0.1; done
NOTIFY_SOCKET=$sock start_lungate -c "$LG_TMP/classroom.json"
for ((i = 0; i < 100; i++)); do grep -q 'READY=1' "$LG_TMP/notify.txt" && break; sleep 0.1; done
grep -q 'READY=1' "$LG_TMP/notify.txt" || fail "serve sent no READY=1 to \$NOTIFY_SOCKET"
stop_lungate
wait "$listener" || fail "serve sent no STOPPING=1 to \$NOTIFY_SOCKET: $(cat "$LG_TMP/notify.txt")"
forget_pid "$listener"

# the other example configs load (their paths moved here too)
sed "s|/srv/lungate|$LG_TMP/srv|g" "$EXAMPLES/lungate.json" >"$LG_TMP/lungate.json"
truncate -s 16M "$LG_TMP/srv/freedos.img" "$LG_TMP/srv/dsl.iso"
start_lungate -c "$LG_TMP/lungate.json"
run iscsi-inq -i iqn.2025-10.org.school:teacher "$(iscsi_url 0 iqn.2025-10.org.school:freedos)" >/dev/null ||
	fail "examples/lungate.json does not serve"
stop_lungate

# the dnsmasq snippets are valid dnsmasq configuration
for conf in dnsmasq-classroom.conf dnsmasq-ipxe.conf; do
	dnsmasq --test --conf-file="$EXAMPLES/$conf" >"$LG_TMP/dnsmasq.txt" 2>&1 ||
		fail "dnsmasq --test rejects examples/$conf: $(cat "$LG_TMP/dnsmasq.txt")"
done
