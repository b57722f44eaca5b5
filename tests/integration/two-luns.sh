#!/usr/bin/env bash
# Two LUNs of one target from an rtslib-style config: `iscsi-ls -s` (REPORT
# LUNS) shows LUN 0 and LUN 1 with their own sizes, each LUN reads its own file,
# each has its own identity (VPD 0x83), a write to LUN 0 lands in its file only,
# and LUN 1 (a read-only storage object) refuses writes. `--listen` overrides
# the config's portal; without it the config's portal is served.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd iscsi-ls iscsi-readcapacity16 iscsi-inq qemu-img qemu-io cmp

IQN=$LG_IQN_PREFIX:two
A=$LG_TMP/a.img
B=$LG_TMP/b.img
make_random_image "$A" 64
make_random_image "$B" 20
cp "$A" "$LG_TMP/a.expect"
cp "$B" "$LG_TMP/b.orig"
CFG_PORT=$(free_port)
CFG=$LG_TMP/two.json
cat >"$CFG" <<JSON
{
  "storage_objects": [
    { "plugin": "fileio", "name": "d0", "dev": "$A" },
    { "plugin": "fileio", "name": "d1", "dev": "$B", "readonly": true }
  ],
  "targets": [ {
    "wwn": "$IQN", "fabric": "iscsi",
    "tpgs": [ { "tag": 1, "enable": true,
      "attributes": { "generate_node_acls": 1, "authentication": 0, "demo_mode_write_protect": 0 },
      "portals": [ { "ip_address": "127.0.0.1", "port": $CFG_PORT } ],
      "luns": [
        { "index": 0, "storage_object": "/backstores/fileio/d0" },
        { "index": 1, "storage_object": "/backstores/fileio/d1" }
      ] } ]
  } ]
}
JSON

start_lungate -c "$CFG"
if port_open 127.0.0.1 "$CFG_PORT"; then
	fail "--listen 127.0.0.1:$PORT was given, yet the config's portal 127.0.0.1:$CFG_PORT is served too"
fi

out=$(run iscsi-ls -i "$LG_INITIATOR" -s "iscsi://127.0.0.1:$PORT") || fail "iscsi-ls -s failed: $out"
printf '%s\n' "$out"
grep -Eq "^Target:$IQN Portal:127\.0\.0\.1:$PORT,1\$" <<<"$out" || fail "iscsi-ls did not list $IQN on 127.0.0.1:$PORT,1"
grep -q '^Lun:0 \+Type:DIRECT_ACCESS (Size:63M)$' <<<"$out" || fail "iscsi-ls does not show LUN 0 of 64 MiB"
grep -q '^Lun:1 \+Type:DIRECT_ACCESS (Size:19M)$' <<<"$out" || fail "iscsi-ls does not show LUN 1 of 20 MiB"
(($(grep -c '^Lun:' <<<"$out") == 2)) || fail "iscsi-ls shows other than 2 LUNs"

for lun in 0 1; do
	img=$A
	((lun == 0)) || img=$B
	size=$(run iscsi-readcapacity16 -i "$LG_INITIATOR" -s "$(iscsi_url $lun)") ||
		fail "iscsi-readcapacity16 of LUN $lun failed"
	[[ $size == "$(file_size "$img")" ]] || fail "LUN $lun has $size bytes, its file $(file_size "$img")"
	msg=$(run qemu-img compare -f raw -F raw "$img" "$(iscsi_url $lun)" 2>&1) ||
		fail "LUN $lun does not read as its own file: $msg"
done

id0=$(run iscsi-inq -i "$LG_INITIATOR" -e 1 -c 131 "$(iscsi_url 0)" 2>&1) || fail "VPD 0x83 of LUN 0: $id0"
id1=$(run iscsi-inq -i "$LG_INITIATOR" -e 1 -c 131 "$(iscsi_url 1)" 2>&1) || fail "VPD 0x83 of LUN 1: $id1"
[[ $id0 != "$id1" ]] || fail "LUN 0 and LUN 1 report the same device identification: $id0"

out=$(run qemu-io -f raw -c 'write -P 0x3c 2M 192k' -c flush "$(iscsi_url 0)" 2>&1) || fail "write to LUN 0 failed: $out"
fill_bytes 0x3c $((192 << 10)) >"$LG_TMP/3c.bin"
splice_file "$LG_TMP/a.expect" $((2 << 20)) "$LG_TMP/3c.bin"
cmp "$LG_TMP/a.expect" "$A" || fail "the write to LUN 0 did not land (only) at 2 MiB in its file"
if out=$(run qemu-io -f raw -c 'write -P 0x3c 0 64k' -c flush "$(iscsi_url 1)" 2>&1); then
	fail "a write to LUN 1 (readonly storage object) succeeded: $out"
fi
cmp "$LG_TMP/b.orig" "$B" || fail "the file of read-only LUN 1 changed"
assert_alive
stop_lungate

# Without --listen the config's portal is served.
PORT=$CFG_PORT
LG_NO_LISTEN=1 start_lungate -c "$CFG"
out=$(run iscsi-ls -i "$LG_INITIATOR" -s "iscsi://127.0.0.1:$PORT") || fail "iscsi-ls on the config's portal failed: $out"
grep -q '^Lun:1 ' <<<"$out" || fail "the config's portal does not show LUN 1: $out"
stop_lungate
log "PASS"
