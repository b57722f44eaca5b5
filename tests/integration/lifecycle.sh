#!/usr/bin/env bash
# Lifecycle and command line: SIGTERM ends `lungate serve` with status 0 (idle,
# and in the middle of a client's whole-image read); it can be started again on
# the same port at once; a config file with an error, or a missing --image, ends
# it with a non-zero status and a message naming the file and the key at fault;
# a missing config file is an empty configuration.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd qemu-img iscsi-readcapacity16

IQN=$LG_IQN_PREFIX:lifecycle
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 64

# Idle SIGTERM.
start_lungate --image "$IMG" --iqn "$IQN"
run iscsi-readcapacity16 -i "$LG_INITIATOR" -s "$(iscsi_url 0)" >/dev/null || fail "first client failed"
stop_lungate

# SIGTERM with a session open and idle, and a client in the middle of reading:
# still status 0, within the time limit.
start_lungate --image "$IMG" --iqn "$IQN"
bg_start qemu-io -r -f raw -c 'sleep 20000' -c 'read 0 1M' "$(iscsi_url 0)" >"$LG_TMP/idle.log" 2>&1
idle=$BG_PID
bg_start qemu-img convert -f raw -O raw "$(iscsi_url 0)" "$LG_TMP/out.raw" >"$LG_TMP/convert.log" 2>&1
reader=$BG_PID
for ((i = 0; i < 200; i++)); do
	(($(count_established "$PORT") >= 2)) && break
	sleep 0.05
done
stop_lungate
for p in "$idle" "$reader"; do
	kill -TERM "$p" 2>/dev/null || true
	wait "$p" || true
	forget_pid "$p"
done

# The same port can be served again at once (no lingering listener).
LG_NO_LISTEN=1 start_lungate --image "$IMG" --iqn "$IQN" --listen "127.0.0.1:$PORT"
run iscsi-readcapacity16 -i "$LG_INITIATOR" -s "$(iscsi_url 0)" >/dev/null ||
	fail "restarting on port $PORT: the client failed"
stop_lungate

# expect_error WHAT PATTERN... -- ARGS...: `lungate serve ARGS...` must exit non-zero
# within 20 s without serving, and its stderr must match every PATTERN (grep -E).
expect_error() {
	local what=$1 patterns=() rc=0 errf=$LG_TMP/error.log p
	shift
	while [[ $1 != -- ]]; do
		patterns+=("$1")
		shift
	done
	shift
	timeout --kill-after=5 20 "$LUNGATE" serve "$@" </dev/null >"$errf" 2>&1 || rc=$?
	log "$what: status $rc: $(head -c 600 "$errf")"
	((rc != 0)) || fail "$what: lungate serve exited with status 0"
	((rc != 124 && rc != 137)) || fail "$what: lungate serve was still running after 20 s"
	[[ -s $errf ]] || fail "$what: no message on stderr"
	for p in "${patterns[@]}"; do
		grep -Eq -- "$p" "$errf" || fail "$what: the message does not mention '$p': $(cat "$errf")"
	done
}

PORT=$(free_port)
LISTEN=(--listen "127.0.0.1:$PORT")
CFG=$LG_TMP/lungate.json

# write_config STORAGE-OBJECTS-JSON LUNS-JSON: a one-target config into $CFG.
write_config() {
	cat >"$CFG" <<JSON
{
  "storage_objects": [ $1 ],
  "targets": [ {
    "wwn": "$IQN", "fabric": "iscsi",
    "tpgs": [ { "tag": 1, "enable": true,
      "attributes": { "generate_node_acls": 1, "authentication": 0, "demo_mode_write_protect": 0 },
      "portals": [ { "ip_address": "127.0.0.1", "port": $PORT } ],
      "luns": [ $2 ] } ]
  } ]
}
JSON
}
GOOD_SO='{ "plugin": "fileio", "name": "d0", "dev": "'"$IMG"'" }'
GOOD_LUN='{ "index": 0, "storage_object": "/backstores/fileio/d0" }'

# The good config does start (so the errors below are the edits' doing).
write_config "$GOOD_SO" "$GOOD_LUN"
start_lungate -c "$CFG"
run iscsi-readcapacity16 -i "$LG_INITIATOR" -s "$(iscsi_url 0)" >/dev/null || fail "the valid config does not serve"
stop_lungate

# a missing config file is where targetcli's workflow starts (issue 18): the
# gateway serves nothing and says so; tests/admin creates objects in it
error_port=$PORT # the port the failed starts below are checked against
start_lungate -c "$LG_TMP/no-such.json"
grep -q 'msg="empty configuration: serving nothing' "$LG_LOG" ||
	fail "serve -c with a missing config file does not say it serves nothing"
[[ -z $(run iscsi-ls "iscsi://127.0.0.1:$PORT" 2>/dev/null) ]] || fail "a gateway without a config lists targets"
stop_lungate
[[ ! -e $LG_TMP/no-such.json ]] || fail "serve created the missing config file (saveconfig does)"
PORT=$error_port

printf '{ "storage_objects": [ { "plugin": "fileio",\n  "name": "d0"\n  "dev": "%s" } ],\n "targets": [] }\n' "$IMG" >"$CFG"
expect_error "JSON syntax error" "$CFG" '(line 3\b|:3:|:3\b)' -- -c "$CFG" "${LISTEN[@]}"

write_config '{ "plugin": "floppy", "name": "d0", "dev": "'"$IMG"'" }' "$GOOD_LUN"
expect_error "unknown plugin" "$CFG" plugin floppy -- -c "$CFG" "${LISTEN[@]}"

write_config "$GOOD_SO" '{ "index": 0, "storage_object": "/backstores/fileio/nope" }'
expect_error "LUN naming a missing storage object" "$CFG" storage_object nope -- -c "$CFG" "${LISTEN[@]}"

write_config '{ "plugin": "fileio", "name": "d0" }' "$GOOD_LUN"
expect_error "fileio storage object without dev" "$CFG" '\bdev\b' -- -c "$CFG" "${LISTEN[@]}"

write_config '{ "plugin": "fileio", "name": "d0", "dev": "'"$LG_TMP/absent.img"'" }' "$GOOD_LUN"
expect_error "fileio dev that does not exist" "$CFG" "$LG_TMP/absent.img" -- -c "$CFG" "${LISTEN[@]}"

write_config '{ "plugin": "fileio", "name": "d0", "dev": 42 }' "$GOOD_LUN"
expect_error "dev that is not a string" "$CFG" '\bdev\b' 'string' -- -c "$CFG" "${LISTEN[@]}"

expect_error "--image of a missing file" "$LG_TMP/missing.img" -- --image "$LG_TMP/missing.img" --iqn "$IQN" "${LISTEN[@]}"

# Nothing of the failed starts is left listening.
if port_open 127.0.0.1 "$PORT"; then
	fail "something still listens on 127.0.0.1:$PORT after the failed starts"
fi
log "PASS"
