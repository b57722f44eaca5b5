#!/bin/bash
# obs.ipxe-classroom: the classroom recipe end to end in QEMU: lungate serves
# examples/classroom.json (image and overlay paths moved to a temporary
# folder, --listen on loopback), iPXE runs examples/classroom.ipxe, which
# names the PC after its MAC (${mac:hexhyp}), the wildcard ACL admits it, and
# the demo disk boots with its writes in that PC's own overlay; the base image
# is never written.
. "$(dirname "$0")/../boot/functions.sh"
require_qemu

examples=$BOOT_TESTS_DIR/../../examples
mkdir -p "$tmp/srv"
"$LUNGATE" demo-disk "$tmp/srv/classroom.img" 16 >/dev/null || fail "lungate demo-disk failed"
cp "$tmp/srv/classroom.img" "$tmp/fresh.img"
sed "s|/srv/lungate|$tmp/srv|g" "$examples/classroom.json" >"$tmp/classroom.json"
iqn=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["targets"][0]["wwn"])' \
	"$tmp/classroom.json")
start_gateway -c "$tmp/classroom.json"

boot classroom "$(example_script classroom.ipxe "$iqn")" || fail "the classroom PC did not boot"
expect classroom '^LUNGATE-BOOT OK count=1$'
pc=iqn.2025-10.org.school:52-54-00-12-34-56 # QEMU's first NIC: 52:54:00:12:34:56
grep -q "msg=\"login\" initiator=$pc .*target=$iqn " "$gw_log" ||
	fail "no login of $pc (named by its MAC) in the gateway log"
stop_gateway
ls "$tmp/srv/overlays/"*.cow >/dev/null 2>&1 || fail "no overlay was created in $tmp/srv/overlays"
[ -f "$tmp/srv/overlays/$pc.cow" ] || fail "the PC's overlay is not $pc.cow: $(ls "$tmp/srv/overlays")"
cmp -s "$tmp/srv/classroom.img" "$tmp/fresh.img" || fail "the base image was written"
echo "PASS: examples/classroom.ipxe booted $pc from examples/classroom.json into its own overlay"
