#!/usr/bin/env bash
# Declarative reload (SIGHUP and `lungate reload`) while a client runs:
#  - an added target is served to new logins and listed by SendTargets,
#    while iscsi-perf's session on the first target goes on;
#  - a removed target refuses new logins, but the running session keeps
#    working until it ends; then its storage object is closed;
#  - a changed ACL applies to new logins;
#  - a config that does not load (bad JSON, a bad reference) leaves the
#    running one in place, and the log and `lungate reload` say why;
#  - iscsi-perf finishes without an error or a reconnect;
#  - `lungate restore FILE` serves another file, which becomes the config file.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

CFG=$LG_TMP/lungate.json
TA=$LG_IQN_PREFIX:reload-a
TB=$LG_IQN_PREFIX:reload-b
make_random_image "$LG_TMP/a.img" 64
make_random_image "$LG_TMP/b.img" 8

# config TARGETS...: write $CFG with the named targets ("a": $TA over a.img,
# any initiator; "b": $TB over b.img, any initiator; "b-acl": $TB, only
# initiator b-only).
config() {
	python3 - "$CFG" "$LG_TMP" "$@" <<-'PY'
		import json, sys
		path, d, want = sys.argv[1], sys.argv[2], sys.argv[3:]
		sos, tgts = [], []
		def tpg(lun, acls):
		    t = {"tag": 1, "enable": True,
		         "attributes": {"generate_node_acls": 0 if acls else 1, "authentication": 0},
		         "portals": [{"ip_address": "127.0.0.1", "port": 3260, "iser": False}],
		         "luns": [{"index": 0, "storage_object": lun}], "node_acls": acls}
		    return t
		if "a" in want:
		    sos.append({"plugin": "fileio", "name": "a", "dev": d + "/a.img"})
		    tgts.append({"wwn": "iqn.2025-10.org.lungate.test:reload-a", "fabric": "iscsi",
		                 "tpgs": [tpg("/backstores/fileio/a", [])]})
		if "b" in want or "b-acl" in want:
		    sos.append({"plugin": "fileio", "name": "b", "dev": d + "/b.img"})
		    acls = [{"node_wwn": "iqn.2025-10.org.lungate.test:b-only",
		             "mapped_luns": [{"index": 0, "tpg_lun": 0}]}] if "b-acl" in want else []
		    tgts.append({"wwn": "iqn.2025-10.org.lungate.test:reload-b", "fabric": "iscsi",
		                 "tpgs": [tpg("/backstores/fileio/b", acls)]})
		json.dump({"storage_objects": sos, "targets": tgts}, open(path + ".new", "w"), indent=2)
	PY
	mv "$CFG.new" "$CFG"
}
inq() { run iscsi-inq -i "${2:-$LG_INITIATOR}" "iscsi://127.0.0.1:$PORT/$1/0" >/dev/null 2>&1; }
fd_open() { ls -l "/proc/$LG_PID/fd" 2>/dev/null | grep -qF "$1"; }
perf_bytes() {
	ctl_ok sessions --json
	json_get "[s['bytes_read'] for s in j['sessions'] if s['initiator'] == '$LG_IQN_PREFIX:perf'][0]"
}

config a
start_lungate -c "$CFG" --control "$SOCK"
perf_start "$LG_IQN_PREFIX:perf" "iscsi://127.0.0.1:$PORT/$TA/0" 40
inq "$TB" && fail "target b is served before it is configured"

# ---- SIGHUP: a target added ----
config a b
kill -HUP "$LG_PID"
wait_log 'reload: .*generation 2: 2 targets \(changes: \+iqn[^ ]*reload-b\), 2 storage objects \(1 kept open'
inq "$TB" || fail "the added target b does not answer after SIGHUP"
out=$(run iscsi-ls "iscsi://127.0.0.1:$PORT" 2>&1) || fail "discovery failed after the reload: $out"
grep -qF "$TB" <<<"$out" || fail "SendTargets does not list the added target: $out"
ctl_ok ls
grep -qF "$TB" <<<"$OUT" || fail "lungate ls does not show the added target"
pid_alive "$PERF_PID" || fail "iscsi-perf ended at the reload: $(tail -c 500 "$PERF_OUT")"

# ---- lungate reload: target a removed, b's ACL changed ----
config b-acl
ctl_ok reload
grep -q 'changes: -iqn[^ ]*reload-a)' <<<"$OUT" || fail "lungate reload does not report target a removed: $OUT"
inq "$TA" && fail "the removed target a still accepts new logins"
grep -q "target=$TA: no such target" "$LG_LOG" || fail "the refused login to the removed target is not logged"
inq "$TB" && fail "target b admits any initiator after its ACL changed to b-only"
inq "$TB" "$LG_IQN_PREFIX:b-only" || fail "target b refuses b-only, which its new ACL admits"
# the session on the removed target keeps working
b1=$(perf_bytes)
for ((i = 0; i < 100; i++)); do
	b2=$(perf_bytes)
	((b2 > b1)) && break
	sleep 0.1
done
((b2 > b1)) || fail "iscsi-perf's session on the removed target stopped reading ($b1 -> $b2 bytes)"
fd_open "$LG_TMP/a.img" || fail "a.img was closed while a session still uses it"

# ---- configs that do not load ----
cp "$CFG" "$LG_TMP/good.json"
printf '{"targets": [' >"$CFG"
kill -HUP "$LG_PID"
wait_log 'SIGHUP: reload failed, still serving the previous configuration: .*not valid JSON'
ctl reload
((RC != 0)) || fail "lungate reload of a broken config succeeded"
grep -q 'not valid JSON' <<<"$OUT" || fail "lungate reload does not say why it failed: $OUT"
python3 - "$LG_TMP/good.json" "$CFG" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["targets"][0]["tpgs"][0]["luns"][0]["storage_object"] = "/backstores/fileio/missing"
json.dump(j, open(sys.argv[2], "w"))
PY
ctl reload
((RC != 0)) || fail "lungate reload of a config with a bad reference succeeded"
grep -q 'luns\[0\].storage_object: "/backstores/fileio/missing" names no storage object' <<<"$OUT" ||
	fail "lungate reload does not name the bad key: $OUT"
inq "$TB" "$LG_IQN_PREFIX:b-only" || fail "target b stopped serving after a failed reload"
ctl_ok ls --json
[[ $(json_get 'j["generation"]') == 3 ]] || fail "a failed reload changed the configuration's generation"

# ---- the old session ends by itself, without errors; then a.img is closed ----
perf_wait
for ((i = 0; i < 100; i++)); do
	fd_open "$LG_TMP/a.img" || break
	sleep 0.1
done
fd_open "$LG_TMP/a.img" && fail "a.img is still open after the last session on the removed target ended"

# ---- lungate restore FILE ----
config a b
mv "$CFG" "$LG_TMP/other.json"
(cd "$LG_TMP" && "$LUNGATE" restore other.json --control "$SOCK") || fail "lungate restore other.json failed"
inq "$TA" || fail "target a is not served after lungate restore"
ctl_ok ls --json
[[ $(json_get 'j["config"]') == "$LG_TMP/other.json" ]] || fail "after restore, the config file is not other.json"
ctl_ok reload     # now reloads other.json (lungate.json is gone)
assert_alive
stop_lungate
log "PASS"
