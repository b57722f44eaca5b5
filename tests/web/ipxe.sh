#!/bin/bash
# web.ipxe: an iPXE boot shows in the web console.  QEMU + iPXE sanboots the
# demo disk from a gateway with --web and a per-PC overlay (sanhook, then 3 s
# as a boot menu would take, then sanboot of the hooked drive); while it boots,
# the console's /api/state (what the page draws) lists the PC live under its
# initiator name with bytes read, and once the VM has ended, idle with the
# layer its boot counter wrote.
. "$(dirname "$0")/../boot/functions.sh"
require_qemu
WEBDIR=$(dirname "$0")

"$LUNGATE" demo-disk "$tmp/demo.img" 16 >/dev/null || fail "lungate demo-disk failed"
mkdir "$tmp/ov"
printf 'Ipxe-Console-Pass-3\n' | "$LUNGATE" passwd --file "$tmp/pw" || fail "lungate passwd failed"
iqn=$IQN_PREFIX:web-ipxe
wport=$(free_port) || fail "no free port"
start_gateway --image "$tmp/demo.img" --iqn "$iqn" --cow "$tmp/ov" --control none \
    --web "127.0.0.1:$wport" --web-password "$tmp/pw"
pc=$IQN_PREFIX:pc-ipxe
/usr/bin/python3 "$WEBDIR/watch.py" "http://127.0.0.1:$wport" Ipxe-Console-Pass-3 "$pc" \
    "$tmp/seen" "$tmp/stop" &
watcher=$!
boot web "$(ipxe_script pc-ipxe "sanhook --drive 0x80 $(iscsi_uri 0 "$iqn")" "sleep 3" "sanboot --drive 0x80")" || {
    kill "$watcher" 2>/dev/null
    fail "the PC did not boot"
}
expect web '^LUNGATE-BOOT OK count=1$'
sleep 1.5
touch "$tmp/stop"
wait "$watcher" || fail "the console watcher failed"
grep -q '^live 127\.0\.0\.1:[0-9]* [1-9]' "$tmp/seen" ||
    fail "the console never showed $pc live with bytes read: $(sort "$tmp/seen" | uniq -c | head)"
tail -n 1 "$tmp/seen" | grep -q '^idle [1-9]' ||
    fail "after the VM ended, the console does not show $pc idle with its layer: $(tail -n 3 "$tmp/seen")"
stop_gateway
echo "PASS: the iPXE boot of $pc showed live ($(grep -c '^live' "$tmp/seen") polls), then idle"
