#!/usr/bin/env bash
# security.chap: CHAP and mutual CHAP with libiscsi against a TPG that requires
# authentication: per-ACL credentials, TPG credentials for other initiators,
# wrong secrets refused, discovery authentication, secrets never logged, and a
# secret shorter than 12 bytes refused when the config loads.
# shellcheck source=../integration/functions.sh
. "$SRCDIR/functions.sh"
require_cmd iscsi-readcapacity16 iscsi-ls

img=$LG_TMP/disk.img
make_random_image "$img" 8
IQN=$LG_IQN_PREFIX:chap
cat >"$LG_TMP/chap.json" <<JSON
{"storage_objects":[{"plugin":"fileio","name":"d","dev":"$img"}],
 "fabric_modules":[{"name":"iscsi","discovery_enable_auth":true,
   "discovery_userid":"finder","discovery_password":"finder-secret"}],
 "targets":[{"wwn":"$IQN","tpgs":[{"tag":1,
   "attributes":{"generate_node_acls":1,"authentication":1},
   "chap_userid":"room","chap_password":"room-secret-1",
   "luns":[{"index":0,"storage_object":"/backstores/fileio/d"}],
   "node_acls":[
     {"node_wwn":"iqn.x:alice","chap_userid":"alice","chap_password":"alice-secret",
      "mapped_luns":[{"index":0,"tpg_lun":0}]},
     {"node_wwn":"iqn.x:bob","chap_userid":"bob","chap_password":"bob-secret-12",
      "chap_mutual_userid":"target","chap_mutual_password":"target-secret",
      "mapped_luns":[{"index":0,"tpg_lun":0}]}]}]}]}
JSON
start_lungate -c "$LG_TMP/chap.json"
url() { printf 'iscsi://%s127.0.0.1:%s/%s/0%s' "$1" "$PORT" "$IQN" "${2:-}"; }
size_ok() { run iscsi-readcapacity16 "$@" 2>&1 | grep -q '^Total size:8388608$'; }
refused() { ! run iscsi-readcapacity16 "$@" >/dev/null 2>&1; }

size_ok -i iqn.x:alice "$(url 'alice%alice-secret@')" || fail "alice's CHAP login failed"
refused -i iqn.x:alice "$(url 'alice%wrong-secret1@')" || fail "a wrong secret logged in"
refused -i iqn.x:alice "$(url 'bob%bob-secret-12@')" || fail "bob's credentials logged in as alice"
refused -i iqn.x:alice "$(url '')" || fail "a login without CHAP got through authentication: 1"
# an initiator without its own ACL uses the TPG's credentials
size_ok -i iqn.x:carol "$(url 'room%room-secret-1@')" || fail "the TPG's CHAP credentials failed"
# mutual: the target proves itself; a wrong target secret is caught by the initiator
size_ok -i iqn.x:bob "$(url 'bob%bob-secret-12@' '?target_user=target&target_password=target-secret')" ||
	fail "mutual CHAP failed"
refused -i iqn.x:bob "$(url 'bob%bob-secret-12@' '?target_user=target&target_password=not-the-secret')" ||
	fail "the initiator accepted a target that does not know the mutual secret"
grep -q 'msg="login" initiator=iqn.x:bob .*auth=chap-md5-mutual' "$LG_LOG" ||
	fail "no log line for the mutual CHAP login"
grep -q 'initiator=iqn.x:alice .*status=0x0201 reason="CHAP name or response' "$LG_LOG" ||
	fail "the refused login has no log line with its reason"
# discovery needs its own credentials
run iscsi-ls -i iqn.x:alice "iscsi://finder%finder-secret@127.0.0.1:$PORT" | grep -q "Target:$IQN" ||
	fail "discovery with the discovery credentials did not list the target"
! run iscsi-ls -i iqn.x:alice "iscsi://127.0.0.1:$PORT" >/dev/null 2>&1 ||
	fail "discovery without credentials succeeded although discovery_enable_auth is set"
for secret in alice-secret bob-secret-12 target-secret room-secret-1 finder-secret wrong-secret1; do
	! grep -q -- "$secret" "$LG_LOG" || fail "a secret ($secret) appears in the log"
done
stop_lungate

# short secrets are refused at load, naming the key and what to do
sed 's/"alice-secret"/"short"/' "$LG_TMP/chap.json" >"$LG_TMP/short.json"
if "$LUNGATE" serve -c "$LG_TMP/short.json" --listen "127.0.0.1:$(free_port)" >"$LG_TMP/short.log" 2>&1; then
	fail "a config with a 5-byte CHAP secret loaded"
fi
grep -q 'node_acls\[0\]: the CHAP secret of "alice" is 5 bytes; use 12 to 16' "$LG_TMP/short.log" ||
	fail "the short-secret error does not say where and what: $(cat "$LG_TMP/short.log")"
log "PASS"
