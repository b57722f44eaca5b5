#!/usr/bin/env bash
# The targetcli command block of issue 18, verbatim but for targetcli ->
# lungate and the image's path:
#  - against a running gateway started on a config file that does not exist
#    yet (it serves nothing, and says so): after the creates, iscsi-inq as
#    client1 sees the LUN and another initiator is refused; after the
#    deletes, the target is gone and the config file is byte for byte the one
#    saved before the block; an iscsi-perf session on another target runs
#    through all of it untouched;
#  - offline with -c CONFIG (no gateway serves that file): the same block
#    edits the file, which a gateway then serves the same way, and which ends
#    equal to the one before.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IMG=$LG_TMP/dosnethdd.img
KEEP=iqn.2025-10.com.example:keep
T=iqn.2025-10.com.example:doshdd
C1=iqn.2025-10.com.example:client1
make_random_image "$IMG" 8
make_random_image "$LG_TMP/keep.img" 16

# lungate ARGS...: the lungate command as the block uses it; output in OUT,
# and it must succeed.
lungate() {
	local rc=0
	OUT=$(run "$LUNGATE" "${LG_ARGS[@]}" "$@" 2>&1) || rc=$?
	log "lungate ${LG_ARGS[*]} $*: status $rc: $OUT"
	((rc == 0)) || fail "lungate ${LG_ARGS[*]} $* failed (status $rc): $OUT"
}

# setup_keep: a target the block must leave alone, open to every initiator.
setup_keep() {
	lungate /backstores/fileio create keep "$LG_TMP/keep.img"
	lungate /iscsi create "$KEEP"
	lungate /iscsi/$KEEP/tpg1/luns create /backstores/fileio/keep
	lungate /iscsi/$KEEP/tpg1 set attribute generate_node_acls=1
	lungate saveconfig
}

# The block, in two halves: the creates (with saveconfig and ls), the deletes.
block_creates() {
	lungate /backstores/fileio create doshdd "$IMG"
	lungate /iscsi create iqn.2025-10.com.example:doshdd
	lungate /iscsi/iqn.2025-10.com.example:doshdd/tpg1/luns create /backstores/fileio/doshdd
	lungate /iscsi/iqn.2025-10.com.example:doshdd/tpg1/acls create iqn.2025-10.com.example:client1
	lungate saveconfig
	lungate ls
}
block_deletes() {
	lungate /iscsi/iqn.2025-10.com.example:doshdd/tpg1/acls delete iqn.2025-10.com.example:client1
	lungate /iscsi/iqn.2025-10.com.example:doshdd/tpg1/luns delete lun0
	lungate /iscsi delete iqn.2025-10.com.example:doshdd
	lungate /backstores/fileio delete doshdd
	lungate saveconfig
}

# check_ls: the tree `lungate ls` printed last shows the new objects.
check_ls() {
	local want
	for want in "o- iscsi \.* \[Targets: 2\]" "o- $T \.* \[TPGs: 1\]" "o- tpg1 \.* \[no-gen-acls, no-auth\]" \
		"o- $C1 \.* \[Mapped LUNs: 1\]" "o- mapped_lun0 \.* \[lun0 fileio/doshdd (rw)\]" \
		"o- lun0 \.* \[fileio/doshdd ($IMG) (default_tg_pt_gp)\]" \
		"o- doshdd \.* \[$IMG (8.0MiB) write-back activated\]"; do
		grep -q -- "$want" <<<"$OUT" || fail "lungate ls does not show '$want': $OUT"
	done
}

# check_saved FILE: the saved config has the target as targetcli makes it.
check_saved() {
	python3 - "$1" "$T" "$C1" "$IMG" "$2" <<-'PY' || fail "$1 does not hold the target as created: $(cat "$1")"
		import json, sys
		path, t, c1, img, portal = sys.argv[1:]
		j = json.load(open(path))
		so = [s for s in j["storage_objects"] if s["name"] == "doshdd"]
		assert so and so[0]["plugin"] == "fileio" and so[0]["dev"] == img, so
		tg = [x for x in j["targets"] if x["wwn"] == t][0]
		tpg = tg["tpgs"][0]
		assert tpg["tag"] == 1 and tpg["attributes"]["generate_node_acls"] == 0, tpg
		assert ["%s:%d" % (p["ip_address"], p["port"]) for p in tpg["portals"]] == [portal], tpg["portals"]
		assert [(l["index"], l["storage_object"]) for l in tpg["luns"]] == [(0, "/backstores/fileio/doshdd")]
		acl = tpg["node_acls"]
		assert [a["node_wwn"] for a in acl] == [c1], acl
		assert [(m["index"], m["tpg_lun"]) for m in acl[0]["mapped_luns"]] == [(0, 0)], acl
	PY
}

# ---- against a running gateway ----
LG_ARGS=()
CFG=$LG_TMP/lungate.json
start_lungate -c "$CFG" --control "$SOCK"
[[ ! -e $CFG ]] || fail "serve created $CFG before any saveconfig"
grep -q 'empty configuration: serving nothing' "$LG_LOG" || fail "serve does not say it serves nothing yet"
out=$(run iscsi-ls "iscsi://127.0.0.1:$PORT" 2>&1) || fail "discovery on the empty gateway failed: $out"
grep -q 'Target:' <<<"$out" && fail "the empty gateway lists targets: $out"
setup_keep
[[ -s $CFG ]] || fail "saveconfig did not write $CFG"
cp "$CFG" "$LG_TMP/before.json"
perf_start "$LG_IQN_PREFIX:perf" "iscsi://127.0.0.1:$PORT/$KEEP/0" 30

block_creates
check_ls
check_saved "$CFG" "127.0.0.1:$PORT" # the gateway's --listen is the new TPG's portal
inq_ok "$C1" "$T" || fail "client1 does not see LUN 0 of $T after the creates"
inq_ok "$LG_IQN_PREFIX:other" "$T" && fail "an initiator without an ACL logged in to $T"
grep -q "msg=\"login refused\" initiator=$LG_IQN_PREFIX:other " "$LG_LOG" || fail "the refusal is not logged"

block_deletes
same_file "$CFG" "$LG_TMP/before.json" ||
	fail "after the deletes, $CFG differs from the one before: $(diff "$LG_TMP/before.json" "$CFG")"
inq_ok "$C1" "$T" && fail "$T still answers after /iscsi delete"
inq_ok "$LG_IQN_PREFIX:any" "$KEEP" || fail "the target the block did not touch no longer answers"
perf_wait
assert_alive
stop_lungate

# ---- offline, with -c (no gateway serves that file) ----
CFG2=$LG_TMP/offline.json
LG_ARGS=(-c "$CFG2")
setup_keep
cp "$CFG2" "$LG_TMP/before2.json"
block_creates
check_ls
check_saved "$CFG2" "0.0.0.0:3260" # targetcli's default portal
SOCK=$LG_TMP/control2.sock start_lungate -c "$CFG2" --control "$LG_TMP/control2.sock"
inq_ok "$C1" "$T" || fail "client1 does not see LUN 0 of $T in the file written offline"
inq_ok "$LG_IQN_PREFIX:other" "$T" && fail "an initiator without an ACL logged in (offline config)"
stop_lungate
block_deletes
same_file "$CFG2" "$LG_TMP/before2.json" ||
	fail "after the deletes, $CFG2 differs from the one before: $(diff "$LG_TMP/before2.json" "$CFG2")"
log "PASS"
