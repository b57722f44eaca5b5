#!/usr/bin/env bash
# An LIO configuration as targetcli-fb / rtslib-fb write it
# (/etc/rtslib-fb-target/saveconfig.json: every attribute block, ALUA groups,
# LUN aliases, a node ACL with attributes and mapped LUNs, portals with iser
# and offload) is served unchanged:
#  - the ACL's initiator logs in and sees both LUNs (fileio and block), the
#    second read-only as its mapped LUN says; any other initiator is refused;
#  - the TPG's "parameters" set what login offers (InitialR2T=Yes,
#    ImmediateData=No, 8 KiB PDUs);
#  - `lungate ls` shows the tree; `lungate save FILE` and `lungate save` (back
#    to the config file) write JSON equal to the original, key for key,
#    atomically and with mode 0600;
#  - a portal with "iser": true is refused with a message that says so.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

CFG=$LG_TMP/saveconfig.json
sed "s#@DIR@#$LG_TMP#g" "$SRCDIR/saveconfig.json" >"$CFG"
cp "$CFG" "$LG_TMP/original.json"
make_random_image "$LG_TMP/disk0.img" 16
make_random_image "$LG_TMP/blk1.img" 4
TGT=iqn.2003-01.org.linux-iscsi.lab.x8664:sn.5c1e0a7d93b2
OK_INI=$LG_IQN_PREFIX:allowed
BAD_INI=$LG_IQN_PREFIX:stranger

start_lungate -c "$CFG" --control "$SOCK"
[[ -S $SOCK ]] || fail "no control socket at $SOCK"
[[ $(stat -c %a "$SOCK") == 600 ]] || fail "the control socket's mode is $(stat -c %a "$SOCK"), not 600"

# ---- served as it is, ACL enforced ----
out=$(run iscsi-inq -i "$OK_INI" "iscsi://127.0.0.1:$PORT/$TGT/0" 2>&1) ||
	fail "the ACL's initiator cannot reach LUN 0: $out"
out=$(run iscsi-readcapacity16 -i "$OK_INI" "iscsi://127.0.0.1:$PORT/$TGT/1" 2>&1) ||
	fail "the ACL's initiator cannot reach LUN 1 (the block storage object): $out"
grep -q "Total size:$((4 << 20))" <<<"$out" || fail "LUN 1 is not the 4 MiB block object: $out"
grep -q "msg=\"login\" initiator=$OK_INI .*r2t=Yes imm=No" "$LG_LOG" ||
	fail "the TPG's parameters (InitialR2T=Yes, ImmediateData=No) are not what login offered"
grep -q "msg=\"login\" initiator=$OK_INI .*mrdsl=8192/" "$LG_LOG" ||
	fail "MaxRecvDataSegmentLength \"8192\" is not what the gateway declared"
# mapped LUN 1 is write_protect: a write fails, a write to LUN 0 works
qio_url() { printf 'driver=iscsi,transport=tcp,portal=127.0.0.1:%s,target=%s,lun=%s,initiator-name=%s' "$PORT" "$TGT" "$1" "$OK_INI"; }
out=$(run qemu-io --image-opts "$(qio_url 0)" -c 'write -P 0x5a 0 4k' 2>&1)
grep -Eqi 'error|failed' <<<"$out" && fail "a write to LUN 0 failed: $out"
out=$(run qemu-io --image-opts "$(qio_url 1)" -c 'write -P 0x5a 0 4k' 2>&1 || true)
grep -Eqi 'error|failed|read-only|protected' <<<"$out" || fail "a write to write-protected mapped LUN 1 succeeded: $out"

if out=$(run iscsi-inq -i "$BAD_INI" "iscsi://127.0.0.1:$PORT/$TGT/0" 2>&1); then
	fail "an initiator without an ACL logged in: $out"
fi
grep -q "msg=\"login refused\" initiator=$BAD_INI " "$LG_LOG" || fail "the refusal of $BAD_INI is not logged"

# ---- lungate ls ----
ctl_ok ls
# targetcli's tree (tests/admin/ls-tree.sh compares a whole one with a fixture)
for want in "o- $TGT \.* \[TPGs: 1\]" "o- tpg1 " "o- $OK_INI \.* \[Mapped LUNs: 2\]" \
	"o- mapped_lun1 \.* \[lun1 block/blk1 (ro)\]" "o- lun0 \.* \[fileio/disk0 ($LG_TMP/disk0.img)" \
	"o- lun1 \.* \[block/blk1 " "o- 0.0.0.0:3260 \.* \[OK\]" "o- disk0 \.* \[$LG_TMP/disk0.img (16.0MiB) "; do
	grep -q -- "$want" <<<"$OUT" || fail "lungate ls does not show '$want': $OUT"
done
ctl_ok ls --json
[[ $(json_get 'j["targets"][0]["tpgs"][0]["luns"][1]["size"]') == $((4 << 20)) ]] ||
	fail "lungate ls --json: LUN 1's size is not 4 MiB"

# ---- lungate save ----
same_json() {
	python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' "$1" "$2"
}
ctl_ok save "$LG_TMP/saved.json"
same_json "$LG_TMP/original.json" "$LG_TMP/saved.json" ||
	fail "lungate save changed the configuration: $(diff <(python3 -m json.tool --sort-keys "$LG_TMP/original.json") <(python3 -m json.tool --sort-keys "$LG_TMP/saved.json") | head -n 20)"
[[ $(stat -c %a "$LG_TMP/saved.json") == 600 ]] || fail "the saved file's mode is not 600"
# a relative FILE is the client's, not the gateway's
(cd "$LG_TMP" && "$LUNGATE" save --control "$SOCK" rel.json >/dev/null) || fail "lungate save rel.json failed"
same_json "$LG_TMP/original.json" "$LG_TMP/rel.json" || fail "lungate save rel.json differs"
# no FILE: the config file it was started with, replaced atomically
chmod 644 "$CFG"
ino=$(stat -c %i "$CFG")
ctl_ok save
same_json "$LG_TMP/original.json" "$CFG" || fail "lungate save rewrote the config file differently"
[[ $(stat -c %i "$CFG") != "$ino" ]] || fail "lungate save wrote the config file in place, not through a rename"
[[ $(stat -c %a "$CFG") == 600 ]] || fail "the saved config's mode is not 600"
[[ -z $(find "$LG_TMP" -maxdepth 1 -name 'saveconfig.json.*') ]] || fail "lungate save left a temporary file"

# the saved file serves again (a reload of it changes nothing)
ctl_ok reload
grep -q 'changes: none), 2 storage objects (2 kept open' <<<"$OUT" || fail "reloading the saved file changed something: $OUT"
out=$(run iscsi-inq -i "$OK_INI" "iscsi://127.0.0.1:$PORT/$TGT/0" 2>&1) || fail "LUN 0 after the reload: $out"

assert_alive
stop_lungate
[[ ! -e $SOCK ]] || fail "the control socket is left behind after the gateway stopped"

# ---- iser: true is refused, clearly ----
python3 - "$CFG" "$LG_TMP/iser.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["targets"][0]["tpgs"][0]["portals"][0]["iser"] = True
json.dump(j, open(sys.argv[2], "w"))
PY
rc=0
out=$("$LUNGATE" serve -c "$LG_TMP/iser.json" --control none --listen "127.0.0.1:$(free_port)" 2>&1) || rc=$?
((rc == 1)) || fail "a config with iser: true did not exit 1 (status $rc): $out"
grep -q 'portals\[0\].iser: iSER (RDMA) is not supported' <<<"$out" || fail "the iser refusal does not say why: $out"
log "PASS"
