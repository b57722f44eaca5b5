#!/usr/bin/env bash
# security.acl: node ACLs by exact name and by pattern, mapped LUNs with
# write_protect, generate_node_acls off, and allowed_addresses on the TPG and
# on an ACL, checked against the TCP peer (127.0.0.1 here).
# shellcheck source=../integration/functions.sh
. "$SRCDIR/functions.sh"
require_cmd iscsi-readcapacity16 iscsi-ls qemu-io

a=$LG_TMP/a.img b=$LG_TMP/b.img
make_random_image "$a" 4
make_random_image "$b" 6
cp "$b" "$LG_TMP/b.orig"
IQN=$LG_IQN_PREFIX:acl
config() { # $1: TPG allowed_addresses JSON
	cat <<JSON
{"storage_objects":[{"plugin":"fileio","name":"a","dev":"$a"},{"plugin":"fileio","name":"b","dev":"$b"}],
 "targets":[{"wwn":"$IQN","tpgs":[{"tag":1,"attributes":{"generate_node_acls":0},
   "allowed_addresses":$1,
   "luns":[{"index":0,"storage_object":"/backstores/fileio/a"},{"index":1,"storage_object":"/backstores/fileio/b"}],
   "node_acls":[
     {"node_wwn":"iqn.x:teacher","mapped_luns":[{"index":0,"tpg_lun":0},{"index":1,"tpg_lun":1}]},
     {"node_wwn":"iqn.x:pc*","mapped_luns":[{"index":0,"tpg_lun":1,"write_protect":true}]},
     {"node_wwn":"iqn.x:far","allowed_addresses":["192.0.2.0/24"],"mapped_luns":[{"index":0,"tpg_lun":0}]}]}]}]}
JSON
}
config '["127.0.0.0/8","::1"]' >"$LG_TMP/acl.json"
start_lungate -c "$LG_TMP/acl.json"
cap() { run iscsi-readcapacity16 -i "$1" "iscsi://127.0.0.1:$PORT/$IQN/$2" 2>&1 | sed -n 's/^Total size://p'; }

[[ $(cap iqn.x:teacher 0) == 4194304 && $(cap iqn.x:teacher 1) == 6291456 ]] ||
	fail "the teacher's ACL does not map LUN 0 -> a, LUN 1 -> b"
[[ $(cap IQN.X:PC07 0) == 6291456 ]] || fail "the pattern ACL iqn.x:pc* does not map LUN 0 -> b (case-insensitive)"
[[ -z $(cap iqn.x:pc07 1) ]] || fail "iqn.x:pc07 sees a LUN 1 its ACL does not map"
out=$(run qemu-io --image-opts -c 'write -P 0x55 0 4k' \
	"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$IQN,lun=0,initiator-name=iqn.x:pc07" 2>&1 || true)
grep -qiE 'DATA_PROTECT|write failed|write protected' <<<"$out" ||
	fail "a write through a write_protect mapping did not fail: $out"
cmp -s "$b" "$LG_TMP/b.orig" || fail "the write-protected image changed"
[[ -z $(cap iqn.x:stranger 0) ]] || fail "an initiator without an ACL logged in (generate_node_acls is 0)"
grep -q 'initiator=iqn.x:stranger .*no ACL admits' "$LG_LOG" || fail "no log line for the refused stranger"
[[ -z $(cap iqn.x:far 0) ]] || fail "iqn.x:far logged in from 127.0.0.1, outside its allowed_addresses"
grep -q 'initiator=iqn.x:far peer=127.0.0.1:[0-9]* .*allowed_addresses' "$LG_LOG" ||
	fail "no log line naming the initiator and address refused by allowed_addresses"
stop_lungate

# a TPG that admits only another network refuses everyone here
config '["10.0.0.0/8"]' >"$LG_TMP/acl2.json"
start_lungate -c "$LG_TMP/acl2.json"
out=$(run iscsi-readcapacity16 -i iqn.x:teacher "iscsi://127.0.0.1:$PORT/$IQN/0" 2>&1 || true)
grep -q 'Authorization failure' <<<"$out" || fail "login from outside the TPG's allowed_addresses: $out"
stop_lungate

config '["not-an-address"]' >"$LG_TMP/bad.json"
if "$LUNGATE" serve -c "$LG_TMP/bad.json" --listen "127.0.0.1:$(free_port)" >"$LG_TMP/bad.log" 2>&1; then
	fail "a config with a bad allowed_addresses entry loaded"
fi
grep -q 'allowed_addresses\[0\]: "not-an-address" is not an address' "$LG_TMP/bad.log" ||
	fail "the bad-address error is unclear: $(cat "$LG_TMP/bad.log")"
log "PASS"
