#!/bin/bash
# boot.serve-demo: `lungate serve` with neither a config nor an image creates
# lungate-demo.img (demo_disk_create) in its working directory and serves it
# with a private overlay per initiator in lungate-demo.overlays/; iPXE
# sanboots it and the boot program reports count=1, which lands in that PC's
# overlay while the demo disk itself keeps count 0.
. "$(dirname "$0")/functions.sh"
require_qemu

cd "$tmp" || fail "cd $tmp"
start_gateway
[ -f "$tmp/lungate-demo.img" ] || fail "lungate serve did not create lungate-demo.img in its directory"
# The demo target's name, as the gateway logs it (msg="serving" target=IQN lun=0 ...).
iqn=$(grep -o 'msg="serving" target=[^ ]* lun=0 ' "$gw_log" | head -n 1 | sed 's/.*target=\([^ ]*\) .*/\1/')
[ -n "$iqn" ] || fail "cannot find the demo target's IQN in the gateway log"

boot demo "$(ipxe_script serve-demo "sanboot $(iscsi_uri 0 "$iqn")")" ||
    fail "sanboot of the built-in demo disk failed (see the logs above)"
expect demo '^drive parameters \(AH=48h\): OK sectors=32768 bytes-per-sector=512$'
expect demo '^BOOT COUNT 1$'
expect demo '^LUNGATE-BOOT OK count=1$'

stop_gateway
count=$(counter_of "$tmp/lungate-demo.img")
[ "$count" = 0 ] || fail "boot counter in lungate-demo.img is $count: the PC's write reached the shared demo disk"
ls "$tmp/lungate-demo.overlays/$IQN_PREFIX:serve-demo.cow" >/dev/null 2>&1 ||
    fail "no overlay for the booted PC in lungate-demo.overlays/: $(ls "$tmp/lungate-demo.overlays/" 2>&1)"
echo "PASS: built-in demo disk created, served and booted, the PC's write in its own overlay"
