# shellcheck shell=bash
# Helpers of the rbd backstore tests (tests/rbd/*.sh): sourced.
#
# They build on tests/nbd/functions.sh (and so tests/integration/functions.sh:
# free ports, the gateway started and stopped by pid, configs of several
# storage objects, qemu-io wrappers that check success or failure with sense
# within a bound) and add a throwaway one-node Ceph cluster (tests/rbd/ceph.sh)
# in the test's folder, started by rbd_cluster and ended by pid when the test
# exits, and rbd storage objects on it.
#
# Environment (set by tests/rbd/CMakeLists.txt):
#   LUNGATE   the lungate binary      FREEPORT  tests/integration's freeport helper

# shellcheck source=../nbd/functions.sh
source "$(dirname "${BASH_SOURCE[0]}")/../nbd/functions.sh"
# shellcheck source=ceph.sh
source "$(dirname "${BASH_SOURCE[0]}")/ceph.sh"

require_cmd ceph-mon ceph-osd ceph rbd rados ceph-authtool monmaptool

# rbd_cluster: start the cluster under $LG_TMP/ceph (CEPH_CONF, CEPH_ARGS,
# CEPH_MON_PID, CEPH_OSD_PID); the test's EXIT trap thaws and ends it.
rbd_cluster() {
	ceph_start "$LG_TMP/ceph" || {
		tail -n 30 "$LG_TMP"/ceph/log/*.log >&2 2>/dev/null || true
		fail "the test's Ceph cluster did not start (logs in $LG_TMP/ceph/log)"
	}
	LG_PIDS+=("$CEPH_MON_PID" "$CEPH_OSD_PID")
	# shellcheck disable=SC2016 # expanded when the hook runs
	NBD_EXIT_HOOKS+=('kill -CONT "$CEPH_OSD_PID" "$CEPH_MON_PID" 2>/dev/null')
	log "ceph: mon (pid $CEPH_MON_PID) on $CEPH_MON_ADDR and osd (pid $CEPH_OSD_PID) ready in ${CEPH_START_SECS}s"
}

# so_rbd NAME IMAGE [EXTRA-JSON]: an "rbd" storage object on the test's cluster.
so_rbd() {
	printf '{"plugin": "rbd", "name": "%s", "pool": "rbd", "image": "%s", "conf": "%s"%s}' \
		"$1" "$2" "$CEPH_CONF" "${3:+, $3}"
}

# rbd_import FILE IMAGE: a new RBD image in pool rbd holding FILE's bytes.
rbd_import() {
	local out
	out=$(run rbd import --no-progress "$1" "rbd/$2" 2>&1) ||
		fail "rbd import $1 rbd/$2 failed: $(tail -n 5 <<<"$out")"
}

# rbd_export IMAGE[@SNAP] FILE: the image's bytes, read by the rbd CLI.
rbd_export() {
	rm -f "$2"
	run rbd export --no-progress "rbd/$1" "$2" >/dev/null 2>&1 ||
		fail "rbd export rbd/$1 failed"
}

# rbd_clone_setup COW-NAME: a "clients" pool, a 16 MiB random base ($BASE)
# imported as rbd/golden with snapshot v1, and $CFG: LUN 0 of $IQN is the
# per-initiator cow object COW-NAME over that snapshot, its clones in
# "clients" (the per-client layers' tests start from this).
rbd_clone_setup() {
	run ceph osd pool create clients 8 8 >/dev/null 2>&1 || fail "ceph osd pool create clients failed"
	run ceph osd pool application enable clients rbd >/dev/null 2>&1 || fail "enabling rbd on pool clients failed"
	BASE=$LG_TMP/base.raw
	make_random_image "$BASE" 16
	rbd_import "$BASE" golden
	run rbd snap create rbd/golden@v1 >/dev/null 2>&1 || fail "rbd snap create failed"
	CFG=$LG_TMP/rbd.json
	write_config "$CFG" "$IQN" "/backstores/cow/$1" \
		"$(so_rbd golden golden '"snapshot": "v1"')" \
		'{"plugin": "cow", "name": "'"$1"'", "base": "/backstores/rbd/golden", "overlay_pool": "clients", "per_initiator": true}'
}
