#!/usr/bin/env bash
# Image versions of per-client RBD clones (issue 17): a version is an RBD
# snapshot; qemu-io clients (every login a new ISID: a new login after a
# Logout is a boot):
#  - a client logged in reading keeps reading version 1 (and its write) while
#    version 2 is published, with no error; a new client gets version 2, and
#    so does the first after a logout and login (its clone made anew from
#    version 2: policy=on_new_version);
#  - "on_new_version": "keep": a client stays on its clone of version 1;
#  - rollback to 1: a new client gets version 1; prune forgets a version no
#    clone is over (its snapshot stays) and keeps one a clone is over;
#  - list and /metrics count the clones on each version (by their parents);
#  - --from-client: a client's disk becomes a new image and snapshot, the
#    current version, and a new client reads it;
#  - offline, list reads the clones' parents too;
#  - the published snapshots never change.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=../cow/functions.sh
source "$(dirname "$0")/../cow/functions.sh"
require_cmd jq curl

IQN=$LG_IQN_PREFIX:rbd-versions
IQN2=$LG_IQN_PREFIX:rbd-versions-keep
CTL=$LG_TMP/ctl.sock
rbd_cluster
run ceph osd pool create clients 8 8 >/dev/null 2>&1 || fail "ceph osd pool create clients failed"
run ceph osd pool application enable clients rbd >/dev/null 2>&1 || fail "enabling rbd on pool clients failed"

BASE=$LG_TMP/base.raw
make_random_image "$BASE" 16
patch_raw "$BASE" 0 262144 0x51 # version 1: 0x51 in the first 256 KiB
rbd_import "$BASE" golden
run rbd snap create rbd/golden@v1 >/dev/null 2>&1 || fail "rbd snap create golden@v1 failed"
cp "$BASE" "$LG_TMP/v2.raw"
patch_raw "$LG_TMP/v2.raw" 0 262144 0x22 # version 2: 0x22
rbd_import "$LG_TMP/v2.raw" golden2
run rbd snap create rbd/golden2@v2 >/dev/null 2>&1 || fail "rbd snap create golden2@v2 failed"

CFG=$LG_TMP/rbd.json
cat >"$CFG" <<-JSON
	{"storage_objects": [
	  $(so_rbd golden golden '"snapshot": "v1"'),
	  {"plugin": "cow", "name": "c", "base": "/backstores/rbd/golden", "overlay_pool": "clients",
	   "per_initiator": true},
	  {"plugin": "cow", "name": "k", "base": "/backstores/rbd/golden", "overlay_pool": "clients",
	   "per_initiator": true, "on_new_version": "keep"}],
	 "targets": [{"wwn": "$IQN", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
	   "luns": [{"index": 0, "storage_object": "/backstores/cow/c"}]}]},
	  {"wwn": "$IQN2", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
	   "luns": [{"index": 0, "storage_object": "/backstores/cow/k"}]}]}]}
JSON
MPORT=$(free_port)
start_lungate -c "$CFG" --control "$CTL" --metrics "127.0.0.1:$MPORT"

img() { run "$LUNGATE" image "$@" --control "$CTL"; }
on() { qio "$2" -c "read -P $1 0 256k"; }
keep_qio() { (IQN=$IQN2 qio "$@"); }

A=$(ini ver-a)
B=$(ini ver-b)

# A logged in on version 1, with a write of its own, reading across the publish
session_open "$A"
session_cmd 'read -P 0x51 0 256k'
session_cmd 'write -P 0xa1 64k 64k'
session_cmd 'flush'
out=$(img publish c rbd:rbd/golden2@v2 --note "second image") || fail "publish of golden2@v2 failed: $out"
log "publish: $out"
grep -q 'version 2 of c' <<<"$out" || fail "publish did not say it made version 2: $out"
jq -e '.storage_objects[1].current == 2 and .storage_objects[1].versions[1].image == "rbd:rbd/golden2@v2"
	and .storage_objects[1].versions[0].image == "rbd:rbd/golden@v1"' "$CFG" >/dev/null ||
	fail "the gateway did not save the versions in $CFG: $(jq -c '.storage_objects[1]' "$CFG")"
session_cmd 'read -P 0x51 0 64k'
session_cmd 'read -P 0xa1 64k 64k'
on 0x22 "$B"
out=$(img publish c rbd:rbd/golden2@v2 2>&1) && fail "a second publish of golden2@v2 was accepted: $out"
out=$(img publish c rbd:rbd/golden2@nosuch 2>&1) && fail "a publish of a missing snapshot was accepted: $out"
session_close
on 0x22 "$A" # its boot: a clone of version 2
grep -F "msg=\"overlay reset\" storage=c initiator=$A " "$LG_LOG" | grep -q 'policy=on_new_version' ||
	fail "the gateway logged no on_new_version reset of $A"
grep -q "Error\|error" "$SESSION_OUT" && fail "A's session saw an error: $(grep -i error "$SESSION_OUT" | head -n 3)"

# "keep": P stays on its clone of version 1 across boots
P=$(ini ver-keep)
keep_qio "$P" -c 'write -P 0xc1 64k 64k' -c flush
img publish k rbd:rbd/golden2@v2 >/dev/null || fail "publish of golden2@v2 on k failed"
keep_qio "$P" -c 'read -P 0x51 0 64k' -c 'read -P 0xc1 64k 64k'
keep_qio "$(ini ver-keep-new)" -c 'read -P 0x22 0 256k'

# rollback; prune forgets an unused version, keeps a used one
run rbd snap create rbd/golden2@unused >/dev/null 2>&1 || fail "rbd snap create golden2@unused failed"
img publish c rbd:rbd/golden2@unused >/dev/null || fail "publish of golden2@unused failed"
out=$(img rollback c 1) || fail "rollback to 1 failed: $out"
on 0x51 "$(ini ver-c)"
json=$(img list c --json) || fail "image list failed"
[[ $(jq -r '[.versions[] | select(.id == 2) | .clients[]] | length' <<<"$json") == 2 ]] ||
	fail "list does not show A and B on version 2: $json"
log "list:"$'\n'"$(img list c)"
m=$(curl -sf "http://127.0.0.1:$MPORT/metrics") || fail "GET /metrics failed"
grep -q '^lungate_image_version_clients{object="c",version="2",current="no"} 2$' <<<"$m" ||
	fail "metrics: not 2 clients on version 2: $(grep image_version <<<"$m")"
out=$(img prune c) || fail "prune failed: $out"
log "prune: $out"
grep -q 'removed version 3 ' <<<"$out" || fail "prune did not remove version 3: $out"
grep -q 'kept version 2 of c: used' <<<"$out" || fail "prune did not keep version 2 (A's and B's clones): $out"
rbd snap ls rbd/golden2 | grep -qw unused || fail "prune removed the snapshot golden2@unused"
jq -e '[.storage_objects[1].versions[].id] == [1, 2]' "$CFG" >/dev/null ||
	fail "the config after prune: $(jq -c '.storage_objects[1].versions' "$CFG")"

# --from-client: C's disk is published; a new client reads it
C=$(ini ver-c)
qio "$C" -c 'write -P 0xc7 1M 64k' -c flush
out=$(img publish c --from-client "$C" --note maintenance) || fail "publish --from-client failed: $out"
log "publish --from-client: $out"
jq -e '.storage_objects[1].current == 4 and .storage_objects[1].versions[-1].image == "rbd:rbd/c-v4@v4"' \
	"$CFG" >/dev/null || fail "--from-client did not record rbd:rbd/c-v4@v4: $(jq -c '.storage_objects[1]' "$CFG")"
qio "$(ini ver-d)" -c 'read -P 0x51 0 256k' -c 'read -P 0xc7 1M 64k'
stop_lungate

# offline (no gateway): list reads the clones' parents from the cluster
out=$(LUNGATE_CONTROL=$LG_TMP/none.sock run "$LUNGATE" image list -c "$CFG" c --json) ||
	fail "offline list failed: $out"
[[ $(jq -r '[.versions[] | select(.current) | .id][0]' <<<"$out") == 4 ]] ||
	fail "offline list: version 4 is not current: $out"
[[ $(jq -r '[.versions[] | select(.id == 4) | .clients[]] | length' <<<"$out") == 1 ]] ||
	fail "offline list: not 1 client on version 4: $out"

rbd_export golden@v1 "$LG_TMP/snap.raw"
same_file "the version 1 snapshot after the clients wrote" "$BASE" "$LG_TMP/snap.raw"
rbd_export golden2@v2 "$LG_TMP/snap2.raw"
same_file "the version 2 snapshot after the clients wrote" "$LG_TMP/v2.raw" "$LG_TMP/snap2.raw"
log "ok"
