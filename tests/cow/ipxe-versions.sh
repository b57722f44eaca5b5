#!/bin/bash
# cow.ipxe-versions: a version published from a client's disk boots on
# another client (the "maintenance PC" workflow), with iPXE in QEMU and the
# project's boot program, which counts its boots in LBA 32 of the disk.
# The teacher boots (count 1); `lungate image publish room --from-client
# TEACHER` on the running gateway writes its merged disk as version 2
# (a read-only file beside the base; the config records it); a PC that never
# booted before then boots version 2: it reads the teacher's count 1 and
# writes 2.  The base file never changes.  Two boots, ~9 s each.
#
# Uses the boot tests' harness (tests/boot/functions.sh and ipxe-boot.sh).
. "$(dirname "$0")/../boot/functions.sh"
require_qemu

base=$tmp/demo.img
ov=$tmp/overlays
cfg=$tmp/cow.json
ctl=$tmp/ctl.sock
iqn=$IQN_PREFIX:cow-versions
"$LUNGATE" demo-disk "$base" 16 >/dev/null || fail "lungate demo-disk $base 16 failed"
base_sha=$(sha256sum "$base" | cut -d' ' -f1)
cat >"$cfg" <<EOF2
{"storage_objects": [
  {"plugin": "fileio", "name": "demo", "dev": "$base"},
  {"plugin": "cow", "name": "room", "base": "/backstores/fileio/demo",
   "overlay_dir": "$ov", "per_initiator": true}],
 "targets": [{"wwn": "$iqn", "tpgs": [{"tag": 1,
   "attributes": {"generate_node_acls": 1},
   "luns": [{"index": 0, "storage_object": "/backstores/cow/room"}]}]}]}
EOF2

start_gateway -c "$cfg" --control "$ctl"

# boot_as CLIENT COUNT: boot as IQN_PREFIX:CLIENT; the boot program must
# read COUNT-1 from LBA 32 and write COUNT.
boot_as() {
    local who=$1 n=$2
    boot "$who" "$(ipxe_script "$who" "sanboot $(iscsi_uri 0 "$iqn")")" ||
        fail "the boot of $who failed (see the logs above)"
    expect "$who" "^boot counter \(LBA 32\): OK read count=$((n - 1))$"
    expect "$who" "^LUNGATE-BOOT OK count=$n$"
    echo "boot of $who: count=$n"
}

boot_as teacher 1
out=$("$LUNGATE" image publish room --from-client "$IQN_PREFIX:teacher" --note "from the teacher" \
    --control "$ctl" 2>&1) || fail "image publish --from-client failed: $out"
echo "$out"
v2=$tmp/room-v2.img
[ -f "$v2" ] || fail "publish --from-client wrote no $v2: $out"
[ "$(stat -c %a "$v2")" = 444 ] || fail "$v2 is not read-only: $(stat -c %a "$v2")"
[ "$("$LUNGATE_BOOT_TOOL" counter "$v2")" = 1 ] ||
    fail "the published disk's boot counter is $("$LUNGATE_BOOT_TOOL" counter "$v2"), not the teacher's 1"
grep -q '"from_client": "'"$IQN_PREFIX"':teacher"' "$cfg" ||
    fail "the gateway did not record version 2 in $cfg: $(cat "$cfg")"
boot_as pc-b 2    # a new client boots the teacher's disk
stop_gateway
[ "$(sha256sum "$base" | cut -d' ' -f1)" = "$base_sha" ] ||
    fail "the base demo disk changed (its SHA-256 differs)"
echo "PASS: the teacher's disk (count 1), published as version 2, booted on pc-b (count 2)"
