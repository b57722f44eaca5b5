#!/bin/bash
# security.ipxe-chap: iPXE sanboots a demo disk with CHAP (MD5, the only one
# iPXE speaks) and mutual CHAP (reverse-username/-password); with a wrong
# password the login is refused and iPXE gives up instead of booting.
. "$(dirname "$0")/../boot/functions.sh"
require_qemu

disk=$tmp/disk.img
iqn=$IQN_PREFIX:chap
"$LUNGATE" demo-disk "$disk" 16 >/dev/null || fail "lungate demo-disk failed"
cat >"$tmp/config.json" <<JSON
{"storage_objects":[{"plugin":"fileio","name":"d","dev":"$disk"}],
 "targets":[{"wwn":"$iqn","tpgs":[{"tag":1,"attributes":{"generate_node_acls":1,"authentication":1},
   "chap_userid":"pxe","chap_password":"pxe-secret-123",
   "chap_mutual_userid":"gateway","chap_mutual_password":"gateway-secret",
   "luns":[{"index":0,"storage_object":"/backstores/fileio/d"}]}]}]}
JSON
start_gateway -c "$tmp/config.json"

boot good "$(ipxe_script good 'set username pxe' 'set password pxe-secret-123' \
	'set reverse-username gateway' 'set reverse-password gateway-secret' \
	"sanboot $(iscsi_uri 0 "$iqn")")" || fail "sanboot with mutual CHAP failed"
expect good '^LUNGATE-BOOT OK count=1$'
grep -q 'auth=chap-md5-mutual' "$gw_log" || fail "the gateway did not log a mutual CHAP login"

if boot bad "$(ipxe_script bad 'set username pxe' 'set password wrong-secret-1' \
	"sanboot $(iscsi_uri 0 "$iqn")")"; then
	fail "iPXE booted with a wrong CHAP password"
fi
grep -q 'reason="CHAP name or response does not match' "$gw_log" || fail "the refused iPXE login was not logged"
stop_gateway
[ "$(counter_of "$disk")" = 1 ] || fail "the disk's counter is not 1 after one good boot"
echo "PASS: iPXE with mutual CHAP boots; a wrong password does not"
