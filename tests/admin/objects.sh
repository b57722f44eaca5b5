#!/usr/bin/env bash
# The object commands beyond the block, against a running gateway started on
# an empty config: every backstore with its key=value arguments (cow over a
# fileio base, qcow2 through qemu-nbd, an NBD export of nbdkit, block),
# LUNs with explicit numbers, portals create/delete, set/get attribute,
# set/get auth (CHAP then required of initiators), and deletes back to an
# empty configuration.  Each step is checked by what initiators see.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

require_cmd nbdkit qemu-img
T=iqn.2025-10.com.example:objects
TP=/iscsi/$T/tpg1
make_random_image "$LG_TMP/base.img" 8
make_random_image "$LG_TMP/blk.img" 4
run qemu-img create -q -f qcow2 "$LG_TMP/q.qcow2" 8M || fail "qemu-img create failed"
mkdir -m 0700 "$LG_TMP/ovl"
bg_start nbdkit -f -U "$LG_TMP/nbd.sock" memory 4M
for ((i = 0; i < 100; i++)); do [[ -S $LG_TMP/nbd.sock ]] && break; sleep 0.1; done
[[ -S $LG_TMP/nbd.sock ]] || fail "nbdkit did not create its socket"

lungate() {
	local rc=0
	OUT=$(run "$LUNGATE" "$@" 2>&1) || rc=$?
	log "lungate $*: status $rc: $OUT"
	((rc == 0)) || fail "lungate $* failed (status $rc): $OUT"
}
cfg_get() { # EXPR on the running configuration's JSON (c)
	ctl_ok ls --json
	python3 -c 'import json, sys; c = json.loads(sys.stdin.read())["saveconfig"]; print(eval(sys.argv[1]))' "$1" <<<"$OUT"
}
inq() { # inq LUN [URL-USER-PART]: iscsi-inq of LUN as initiator "any"
	run iscsi-inq -i "$LG_IQN_PREFIX:any" "iscsi://${2:+$2@}127.0.0.1:$PORT/$T/$1" >/dev/null 2>&1
}

start_lungate -c "$LG_TMP/lungate.json" --control "$SOCK"
cd "$LG_TMP" # relative file arguments are taken from the caller's directory
lungate /backstores/fileio create base base.img write_back=false
lungate /backstores/cow create room /backstores/fileio/base ovl quota=8M after_idle=3600
lungate /backstores/qcow2 create q q.qcow2 format=qcow2
lungate /backstores/nbd create n "nbd+unix:///?socket=$LG_TMP/nbd.sock" timeout=20
lungate /backstores/block create blk blk.img readonly=true
[[ $(cfg_get '[so for so in c["storage_objects"] if so["name"] == "room"][0]') == \
	"{'plugin': 'cow', 'name': 'room', 'base': '/backstores/fileio/base', 'overlay_dir': '$LG_TMP/ovl', 'quota': 8388608, 'reset': {'after_idle': 3600}, 'per_initiator': True}" ]] ||
	fail "the cow storage object is not as given: $(cfg_get '[so for so in c["storage_objects"] if so["name"] == "room"][0]')"
lungate /backstores/cow create lab /backstores/fileio/base ovl2 reset=on_boot \
	maintainers=iqn.2025-10.org.school:teacher,iqn.2025-10.org.school:t2
[[ $(cfg_get '[(so["reset"], so["maintainers"]) for so in c["storage_objects"] if so["name"] == "lab"][0]') == \
	"('on_boot', ['iqn.2025-10.org.school:teacher', 'iqn.2025-10.org.school:t2'])" ]] ||
	fail "reset=on_boot maintainers=A,B did not make the cow storage object's keys: $(cfg_get '[so for so in c["storage_objects"] if so["name"] == "lab"][0]')"
lungate /backstores/cow delete lab
[[ $(cfg_get '[so["dev"] for so in c["storage_objects"] if so["name"] == "blk"][0]') == "$LG_TMP/blk.img" ]] ||
	fail "a relative file argument was not made absolute against the caller's directory"

lungate /iscsi create $T
lungate $TP/luns create /backstores/cow/room
lungate $TP/luns create /backstores/qcow2/q lun=lun5
lungate $TP/luns create /backstores/nbd/n
lungate $TP/luns create /backstores/block/blk 9
[[ $(cfg_get '[l["index"] for l in c["targets"][0]["tpgs"][0]["luns"]]') == "[0, 5, 1, 9]" ]] ||
	fail "LUN numbers are not the given or next free ones: $(cfg_get '[l["index"] for l in c["targets"][0]["tpgs"][0]["luns"]]')"
inq 0 && fail "an initiator without an ACL logged in before generate_node_acls"
lungate $TP set attribute generate_node_acls=1
lungate $TP get attribute generate_node_acls
[[ $OUT == "generate_node_acls=1" ]] || fail "get attribute generate_node_acls printed: $OUT"
for lun in 0 5 1 9; do
	inq $lun || fail "LUN $lun does not answer once generate_node_acls=1"
done

lungate $TP/portals create 127.0.0.1 3262
[[ $(cfg_get '[p["port"] for p in c["targets"][0]["tpgs"][0]["portals"]]') == "[$PORT, 3262]" ]] ||
	fail "portals create did not add 127.0.0.1:3262"
lungate $TP/portals delete 127.0.0.1 3262
[[ $(cfg_get '[p["port"] for p in c["targets"][0]["tpgs"][0]["portals"]]') == "[$PORT]" ]] ||
	fail "portals delete did not remove 127.0.0.1:3262"

lungate $TP set auth userid=room password=room-secret-1
lungate $TP set attribute authentication=1
ctl_ok ls --json
grep -q 'room-secret-1' <<<"$OUT" && fail "lungate ls --json shows the CHAP secret"
lungate $TP get auth userid
[[ $OUT == "userid=room" ]] || fail "get auth userid printed: $OUT"
inq 0 && fail "an initiator without CHAP logged in after set auth + authentication=1"
inq 0 "room%room-secret-1" || fail "CHAP with the credentials set by set auth was refused"
lungate $TP set attribute authentication=0
lungate $TP set auth userid= password=
[[ $(cfg_get '"chap_userid" in c["targets"][0]["tpgs"][0]') == False ]] || fail "set auth userid= did not remove the userid"
lungate $TP disable
inq 0 && fail "a disabled TPG still takes logins"
lungate $TP enable
inq 0 || fail "an enabled TPG refuses logins"

for lun in lun0 lun5 lun1 lun9; do lungate $TP/luns delete $lun; done
lungate /iscsi delete $T
lungate /backstores/cow delete room
for so in "fileio base" "qcow2 q" "nbd n" "block blk"; do
	# shellcheck disable=SC2086 # plugin and name
	lungate /backstores/${so% *} delete ${so#* }
done
[[ $(cfg_get 'c') == "{'storage_objects': [], 'targets': []}" ]] || fail "the deletes did not empty the configuration: $(cfg_get 'c')"
stop_lungate
log "PASS"
