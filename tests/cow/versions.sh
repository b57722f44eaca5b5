#!/usr/bin/env bash
# Image versions (lungate image publish|list|rollback|prune) of a
# per-initiator cow object, on a running gateway and offline, with qemu-io
# clients (libiscsi: every login a new ISID; a new login after a Logout is a
# boot by the boot rule):
#  - a client reads its disk continuously (one session, a read every 20 ms)
#    while a new version is published and another rolled back: it reads the
#    old data throughout, with no error;
#  - a client with a live session keeps its version (and its writes), and
#    so does a second session of it meanwhile (a reconnect of its boot);
#  - a new client gets the current version, and so does the first client
#    once it logs out and in again (its old layer reset: "on_new_version"
#    "reset", the default; the log says policy=on_new_version);
#  - "on_new_version": "keep": a client stays on its old version (with its
#    writes) across boots, until an overlay reset;
#  - rollback makes an older version current; prune removes an unused
#    version (and its file) but never one a client's layer is over, nor the
#    current one; a publish of a file already a version is refused;
#  - published files are read-only, the config (saved by the gateway)
#    records the versions, /metrics counts the layers on each version;
#  - offline (no gateway): list and publish edit the config, and the next
#    gateway serves the version published offline.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd curl jq

BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
CTL=$LG_TMP/ctl.sock
make_random_image "$BASE" 8
patch_image "$BASE" 0 262144 0x51       # version 1: 0x51 in the first 256 KiB
for v in 2 3 4 5; do                     # version N: 0xN2
	cp "$BASE" "$LG_TMP/v$v.img"
	patch_image "$LG_TMP/v$v.img" 0 262144 "0x${v}2"
done
IQN2=$LG_IQN_PREFIX:cow-keep
cat >"$CFG" <<-EOF
	{"storage_objects": [
	  {"plugin": "fileio", "name": "base", "dev": "$BASE"},
	  {"plugin": "cow", "name": "c", "base": "/backstores/fileio/base",
	   "overlay_dir": "$OV", "per_initiator": true},
	  {"plugin": "cow", "name": "k", "base": "/backstores/fileio/base",
	   "overlay_dir": "$OV/keep", "per_initiator": true, "on_new_version": "keep"}],
	 "targets": [{"wwn": "$IQN", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
	   "luns": [{"index": 0, "storage_object": "/backstores/cow/c"}]}]},
	  {"wwn": "$IQN2", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
	   "luns": [{"index": 0, "storage_object": "/backstores/cow/k"}]}]}]}
EOF
MPORT=$(free_port)
start_lungate -c "$CFG" --control "$CTL" --metrics "127.0.0.1:$MPORT"

img() { run "$LUNGATE" image "$@" --control "$CTL"; }
# on VERSION-BYTE INITIATOR: a new session of INITIATOR reads that version
on() { qio "$2" -c "read -P $1 0 256k"; }
# keep_qio ARGS...: qemu-io on the "keep" object's target
keep_qio() { (IQN=$IQN2 qio "$@"); }

A=$(ini ver-a)
R=$(ini ver-reader)
N=$(ini ver-new)

# The reader: one session, reading version 1 every 20 ms for ~10 s.
reads=()
for ((i = 0; i < 500; i++)); do reads+=(-c 'read -P 0x51 0 256k' -c 'sleep 20'); done
timeout --kill-after=10 "$LG_CMD_TIMEOUT" qemu-io --image-opts "$(image_opts "$R")" \
	"${reads[@]}" >"$LG_TMP/reader.out" 2>&1 &
reader=$!
LG_PIDS+=("$reader")

# A has a live session on version 1, with a write of its own.
session_open "$A"
session_cmd 'read -P 0x51 0 256k'
session_cmd 'write -P 0xa1 64k 64k'
session_cmd 'flush'

out=$(img publish c "$LG_TMP/v2.img" --note "second image") || fail "publish of v2 failed: $out"
log "publish: $out"
grep -q 'version 2 of c' <<<"$out" || fail "publish did not say it made version 2: $out"
[[ $(stat -c %a "$LG_TMP/v2.img") == 444 ]] || fail "v2.img is not read-only: $(stat -c %a "$LG_TMP/v2.img")"
jq -e '.storage_objects[1].current == 2 and (.storage_objects[1].versions | length) == 2' \
	"$CFG" >/dev/null || fail "the gateway did not save the versions in $CFG: $(cat "$CFG")"

# the live session keeps version 1 and its write; a new client gets version 2
session_cmd 'read -P 0x51 0 64k'
session_cmd 'read -P 0xa1 64k 64k'
# a second session of A while its first is live: a reconnect of its running
# boot (the iBFT hand-over), which keeps version 1 too
qio "$A" -c 'read -P 0x51 0 64k' -c 'read -P 0xa1 64k 64k'
on 0x22 "$N"
qio "$N" -c 'write -P 0xb2 2M 64k' -c flush
out=$(img publish c "$LG_TMP/v2.img" 2>&1) && fail "a second publish of v2.img was accepted: $out"
grep -q 'already' <<<"$out" || fail "publishing v2.img again: no 'already': $out"

# version 3, then 4, then back to 3: 4 is used by nobody
img publish c "$LG_TMP/v3.img" >/dev/null || fail "publish of v3 failed"
on 0x32 "$(ini ver-m)"
session_cmd 'read -P 0x51 0 64k'
img publish c "$LG_TMP/v4.img" >/dev/null || fail "publish of v4 failed"
out=$(img rollback c 3) || fail "rollback to 3 failed: $out"
on 0x32 "$(ini ver-m2)"
pid_alive "$reader" || fail "the reader ended before the rollback: it proves nothing (make it read longer)"

# the reader read version 1 throughout
wait "$reader" || fail "the reader (one session across two publishes and a rollback) failed: $(tail -n 5 "$LG_TMP/reader.out")"
forget_pid "$reader"
grep -Eqi 'verification failed|error' "$LG_TMP/reader.out" &&
	fail "the reader saw other data or an error: $(grep -Ei 'verification failed|error' "$LG_TMP/reader.out" | head -n 3)"
(($(grep -c '^read 262144/262144' "$LG_TMP/reader.out") == 500)) ||
	fail "the reader did not finish its 500 reads: $(grep -c '^read 262144' "$LG_TMP/reader.out")"
log "the reader read version 1 500 times across the publishes and the rollback"

# A logs out; its next login is a boot: version 3, its write gone
session_cmd 'read -P 0xa1 64k 64k'
session_close
on 0x32 "$A"
grep -F "msg=\"overlay reset\" storage=c initiator=$A " "$LG_LOG" | grep -q 'policy=on_new_version' ||
	fail "the gateway logged no on_new_version reset of $A"

# list: versions, clients on each, the current mark
out=$(img list c) || fail "image list failed: $out"
log "list:"$'\n'"$out"
grep -Eq '^\* 3 ' <<<"$out" || fail "list does not mark version 3 current: $out"
json=$(img list c --json)
[[ $(jq -r '[.versions[] | select(.id == 2) | .clients | length][0]' <<<"$json") == 1 ]] ||
	fail "list does not count $N on version 2: $json"
[[ $(jq -r '[.versions[] | select(.id == 1) | .clients[]] | index("'"$R"'") != null' <<<"$json") == true ]] ||
	fail "list does not show the reader on version 1: $json"

# metrics: the layers on each version
m=$(curl -sf "http://127.0.0.1:$MPORT/metrics") || fail "GET /metrics failed"
grep -q '^lungate_image_version_clients{object="c",version="2",current="no"} 1$' <<<"$m" ||
	fail "metrics: not 1 client on version 2: $(grep image_version <<<"$m")"
grep -q '^lungate_image_version_clients{object="c",version="4",current="no"} 0$' <<<"$m" ||
	fail "metrics: version 4 not listed with 0 clients: $(grep image_version <<<"$m")"
grep -q '^lungate_policy_resets_total{policy="on_new_version"} [1-9]' <<<"$m" ||
	fail "metrics: no on_new_version reset counted: $(grep policy_resets <<<"$m")"

# prune: 4 goes (with its file); 1 (the reader's layer), 2 ($N's) and 3 stay
out=$(img prune c) || fail "prune failed: $out"
log "prune: $out"
grep -q 'removed version 4 ' <<<"$out" || fail "prune did not remove version 4: $out"
grep -q 'kept version 1 of c: used' <<<"$out" || fail "prune did not keep version 1 (the reader's layer): $out"
grep -q 'kept version 2 of c: used' <<<"$out" || fail "prune did not keep version 2: $out"
[[ ! -e $LG_TMP/v4.img ]] || fail "prune left v4.img"
[[ -e $BASE ]] || fail "prune removed the base"
jq -e '[.storage_objects[1].versions[].id] == [1, 2, 3]' "$CFG" >/dev/null ||
	fail "the config after prune: $(jq -c '.storage_objects[1].versions' "$CFG")"

# "keep": P stays on version 1 with its writes across boots, until reset
P=$(ini ver-keep)
keep_qio "$P" -c 'write -P 0xc1 64k 64k' -c flush
img publish k "$LG_TMP/v2.img" >/dev/null || fail "publish of v2 on k failed"
keep_qio "$P" -c 'read -P 0x51 0 64k' -c 'read -P 0xc1 64k 64k'
keep_qio "$P" -c 'read -P 0xc1 64k 64k'
keep_qio "$(ini ver-keep-new)" -c 'read -P 0x22 0 256k'
grep -F "initiator=$P " "$LG_LOG" | grep -q 'policy=on_new_version' &&
	fail "a client of a \"keep\" object was reset"
run "$LUNGATE" overlay reset k "$P" --control "$CTL" >/dev/null || fail "overlay reset of $P failed"
keep_qio "$P" -c 'read -P 0x22 0 256k'

stop_lungate

# offline: list, publish; the next gateway serves it
out=$(LUNGATE_CONTROL=$LG_TMP/none.sock run "$LUNGATE" image list -c "$CFG" c) || fail "offline list failed: $out"
grep -Eq '^\* 3 ' <<<"$out" || fail "offline list: $out"
out=$(LUNGATE_CONTROL=$LG_TMP/none.sock run "$LUNGATE" image publish -c "$CFG" c "$LG_TMP/v5.img" --note offline) ||
	fail "offline publish failed: $out"
# (id 5: the pruned 4 is never given again)
jq -e '.storage_objects[1].current == 5 and .storage_objects[1].versions[-1].note == "offline"' "$CFG" >/dev/null ||
	fail "offline publish did not record version 5: $(jq -c '.storage_objects[1]' "$CFG")"
start_lungate -c "$CFG" --control "$CTL"
on 0x52 "$(ini ver-after)"
on 0x52 "$N" # its boot: the version published offline (its layer on 2 reset)
log "PASS"
