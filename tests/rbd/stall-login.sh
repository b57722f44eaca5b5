#!/usr/bin/env bash
# A stalled Ceph cluster holds up only its own storage object's logins: with
# the only OSD frozen (SIGSTOP, by pid), a new client's login to a target of
# per-client RBD clones waits on librbd (up to osd_op_timeout, 30 s here);
# meanwhile a new client of a room on local overlays logs in, reads and
# writes within RBD_OTHER_SECS, while the stuck login is still waiting.
# After SIGCONT the clone target serves new clients again.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

RBD_OTHER_SECS=${RBD_OTHER_SECS:-15} # the stuck login waits 30 s or more

IQN=$LG_IQN_PREFIX:rbd-stall-login
ini() { printf '%s:%s' "$LG_IQN_PREFIX" "$1"; }
rbd_cluster
rbd_clone_setup cc # BASE, rbd golden@v1, pool clients, $CFG (unused)
LBASE=$LG_TMP/local.raw
make_random_image "$LBASE" 4
mkdir -p "$LG_TMP/overlays"
CFG=$LG_TMP/two.json
cat >"$CFG" <<-JSON
	{"storage_objects": [
	  $(so_rbd golden golden '"snapshot": "v1", "osd_op_timeout": 30, "mon_op_timeout": 30'),
	  {"plugin": "cow", "name": "cc", "base": "/backstores/rbd/golden", "overlay_pool": "clients", "per_initiator": true},
	  {"plugin": "fileio", "name": "lbase", "dev": "$LBASE", "readonly": true},
	  {"plugin": "cow", "name": "room", "base": "/backstores/fileio/lbase", "overlay_dir": "$LG_TMP/overlays", "per_initiator": true}],
	 "targets": [
	  {"wwn": "$IQN:ceph", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
	    "luns": [{"index": 0, "storage_object": "/backstores/cow/cc"}]}]},
	  {"wwn": "$IQN:local", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
	    "luns": [{"index": 0, "storage_object": "/backstores/cow/room"}]}]}]}
JSON
start_lungate -c "$CFG"
CEPH_URL=$(iscsi_url 0 "$IQN:ceph")
LOCAL_URL=$(iscsi_url 0 "$IQN:local")
run iscsi-inq -i "$(ini warm)" "$CEPH_URL" >/dev/null || fail "a clone client could not log in before the freeze"

kill -STOP "$CEPH_OSD_PID"
log "froze ceph-osd (pid $CEPH_OSD_PID)"
iscsi-inq -i "$(ini stuck)" "$CEPH_URL" >"$LG_TMP/stuck.out" 2>&1 &
STUCK=$!
LG_PIDS+=("$STUCK")
# the stuck login has reached its clone (the gateway logs no login for it)
sleep 2
pid_alive "$STUCK" || fail "the clone client's login ended with the OSD frozen: $(cat "$LG_TMP/stuck.out")"

start=$SECONDS
run timeout "$RBD_OTHER_SECS" iscsi-inq -i "$(ini pc1)" "$LOCAL_URL" >/dev/null ||
	fail "a local-overlay client could not log in within $RBD_OTHER_SECS s while a clone login waited on the frozen OSD"
run timeout "$RBD_OTHER_SECS" qemu-io --image-opts \
	"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$IQN:local,lun=0,initiator-name=$(ini pc1)" \
	-c 'write -P 0x5a 0 64k' -c flush -c 'read -P 0x5a 0 64k' >/dev/null ||
	fail "a local-overlay client could not write and read within $RBD_OTHER_SECS s while the OSD was frozen"
took=$((SECONDS - start))
pid_alive "$STUCK" ||
	fail "the clone login ended before the local client was served ($took s): the local client waited for it"
log "local client served in $took s while the clone login was still waiting"
grep -q "msg=\"\\?login\"\\? initiator=$(ini stuck) " "$LG_LOG" &&
	fail "the clone client logged in with the OSD frozen"

kill -CONT "$CEPH_OSD_PID"
log "thawed ceph-osd"
rc=0
wait "$STUCK" || rc=$?
forget_pid "$STUCK"
log "the stuck login ended (status $rc) once the OSD thawed"
ok=0
for ((t = 0; t < 60; t++)); do
	if out=$(timeout 60 qemu-io --image-opts \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$IQN:ceph,lun=0,initiator-name=$(ini after)" \
		-c 'write -P 0x6b 0 64k' -c 'read -P 0x6b 0 64k' 2>&1) && ! grep -Eqi 'failed|error' <<<"$out"; then
		ok=1
		break
	fi
	sleep 1
done
((ok)) || fail "a new clone client still fails 60 s after the thaw: $out"
log "a new clone client writes and reads again after the thaw"
assert_alive
log "PASS"
