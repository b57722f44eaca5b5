# shellcheck shell=bash
# A throwaway one-node Ceph cluster for tests and benchmarks: sourced.
#
# ceph_start DIR starts one ceph-mon and one ceph-osd (memstore: the objects
# live in the OSD's memory) under DIR, listening on 127.0.0.1 only (or on
# CEPH_ADDR in CEPH_NETWORK: the cluster tests' bridge), with cephx
# on, pool size 1 and an "rbd" pool ready for images, and sets:
#   CEPH_CONF     DIR/ceph.conf (with the client.admin keyring beside it)
#   CEPH_MON_PID  CEPH_OSD_PID  the daemons' pids (run in the foreground, so
#                 they are this shell's children and end by pid)
#   CEPH_MON_ADDR v2:127.0.0.1:PORT
# ceph_stop ends both by pid.  No manager daemon: block I/O, pool creation,
# snapshots, clones, locks and blocklisting need none.  ceph/rbd/rados commands
# use CEPH_ARGS, which ceph_start exports.
#
# It needs: ceph-mon ceph-osd ceph-common (scripts/deps.sh), uuidgen, and a
# free TCP port for the monitor (CEPH_MON_PORT, else the caller's free_port).
#
# The OSD is told where its object classes are (`osd class dir`, see
# ceph_class_dir): rbd images need cls_rbd, and Debian 13's Ceph 18 has a
# relative default that only works from /.

CEPH_MON_PID=
CEPH_OSD_PID=

# ceph_class_dir: the directory of this Ceph's OSD object classes (the one
# holding libcls_rbd.so), absolute.  Ceph's default, osd_class_dir, is
# absolute on Debian 12 (16.2: /usr/lib/x86_64-linux-gnu/rados-classes) but
# relative on Debian 13 (18.2: lib/x86_64-linux-gnu/rados-classes, the build's
# install libdir without its prefix), and the OSD resolves it against its own
# working directory: started from a test's folder, it finds no class ("_load_class
# could not stat class lib/x86_64-linux-gnu/rados-classes/libcls_rbd.so" in
# its log) and answers every class call with EOPNOTSUPP, so `rbd create` and
# `rbd import` fail ("handle_add_image_to_directory: ... (95) Operation not
# supported").  A relative default is taken from the prefix, /usr.
ceph_class_dir() {
	local d c
	d=$(env -u CEPH_ARGS ceph-conf -c /dev/null -n osd.0 --show-config-value osd_class_dir 2>/dev/null) || d=
	[[ -z $d || $d == /* ]] || d=/usr/$d
	for c in "$d" /usr/lib/*/rados-classes /usr/lib64/rados-classes /usr/lib/rados-classes; do
		if [[ -n $c && -e $c/libcls_rbd.so ]]; then
			echo "$c"
			return 0
		fi
	done
	echo "ceph_start: no libcls_rbd.so in osd_class_dir (${d:-unknown}) nor in /usr/lib*/: is ceph-base installed?" >&2
	return 1
}

# ceph_start DIR
ceph_start() {
	local dir=$1 fsid port t0 i try class_dir
	t0=$(date +%s.%N)
	class_dir=$(ceph_class_dir) || return 1
	mkdir -p "$dir"/{mon,osd,run,log}
	dir=$(cd "$dir" && pwd)
	fsid=$(cat /proc/sys/kernel/random/uuid)
	port=${CEPH_MON_PORT:-$(free_port)}
	CEPH_MON_ADDR=v2:${CEPH_ADDR:-127.0.0.1}:$port
	CEPH_CONF=$dir/ceph.conf
	cat >"$CEPH_CONF" <<CONF
[global]
fsid = $fsid
mon host = [$CEPH_MON_ADDR]
mon initial members = a
public addr = ${CEPH_ADDR:-127.0.0.1}
public network = ${CEPH_NETWORK:-127.0.0.0/8}
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/\$cluster.\$name.keyring
run dir = $dir/run
# no admin sockets: not needed, and a deep test folder would pass
# the 107-byte limit of a unix socket path
admin socket =
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
rbd default features = 61
[mon]
mon data = $dir/mon/\$cluster-\$id
[osd]
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
osd class dir = $class_dir
memstore device bytes = ${CEPH_OSD_BYTES:-2147483648}
osd max object name len = 460
osd max object namespace len = 64
osd heartbeat grace = 600
# a killed client's watch (a gateway's, on the images it serves) ends after
# this many seconds, so that another gateway may take its locks over
osd client watch timeout = ${CEPH_WATCH_TIMEOUT:-5}
CONF
	# keys: the monitors' own, and client.admin's in the usual place for a
	# cluster called "ceph" with this keyring template
	ceph-authtool --create-keyring "$dir/ceph.mon.a.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null ||
		return 1
	ceph-authtool --create-keyring "$dir/ceph.client.admin.keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null || return 1
	ceph-authtool "$dir/ceph.mon.a.keyring" --import-keyring "$dir/ceph.client.admin.keyring" >/dev/null || return 1
	# The monitor, up when it has won its election.  Its port was free when
	# chosen, but another process (the other tests' gateways and clients) may
	# take it before the monitor binds: the monitor then logs "unable to bind
	# monitor" and ends, and is made again on another port (3 times at most).
	for ((try = 1; ; try++)); do
		rm -rf "$dir/monmap" "$dir/mon/ceph-a" "$dir/log/mon.a.log"
		monmaptool --create --fsid "$fsid" --addv a "[$CEPH_MON_ADDR]" "$dir/monmap" >/dev/null || return 1
		ceph-mon -c "$CEPH_CONF" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/ceph.mon.a.keyring" ||
			return 1
		ceph-mon -c "$CEPH_CONF" -i a -f >"$dir/log/mon.out" 2>&1 &
		CEPH_MON_PID=$!
		for ((i = 0; i < 600; i++)); do
			grep -q 'win_standalone_election' "$dir/log/mon.a.log" 2>/dev/null && break 2
			if ! kill -0 "$CEPH_MON_PID" 2>/dev/null || grep -q 'unable to bind' "$dir/log/mon.a.log" 2>/dev/null; then
				break
			fi
			sleep 0.1
		done
		echo "ceph_start: the monitor on $CEPH_MON_ADDR $( ((i < 600)) && echo "could not bind or ended" || echo "was not up within 60 s"):" >&2
		tail -n 5 "$dir/log/mon.out" "$dir/log/mon.a.log" >&2 2>/dev/null || true
		kill -KILL "$CEPH_MON_PID" 2>/dev/null || true
		wait "$CEPH_MON_PID" 2>/dev/null || true
		CEPH_MON_PID=
		((try < 3 && i < 600)) && [[ -z ${CEPH_MON_PORT:-} ]] || return 1
		port=$(free_port)
		CEPH_MON_ADDR=v2:127.0.0.1:$port
		sed -i "s|^mon host = .*|mon host = [$CEPH_MON_ADDR]|" "$CEPH_CONF"
	done
	export CEPH_ARGS="-c $CEPH_CONF"
	# the OSD: registered by uuid with its own key, then made
	local uuid key id
	uuid=$(cat /proc/sys/kernel/random/uuid)
	key=$(ceph-authtool --gen-print-key)
	mkdir -p "$dir/osd/ceph-0"
	printf "[osd.0]\n\tkey = %s\n" "$key" >"$dir/ceph.osd.0.keyring"
	id=$(printf '{"cephx_secret": "%s"}' "$key" |
		timeout 60 ceph osd new "$uuid" -i - -n client.admin) || {
		echo "ceph_start: the monitor did not register the OSD (log: $dir/log); the monitor $(kill -0 "$CEPH_MON_PID" 2>/dev/null && echo runs || echo ended):" >&2
		tail -n 20 "$dir/log/mon.out" "$dir/log/mon.a.log" >&2 2>/dev/null || true
		return 1
	}
	[[ $id == 0 ]] || { echo "ceph_start: OSD id $id, expected 0" >&2; return 1; }
	ceph-osd -c "$CEPH_CONF" -i 0 --mkfs --osd-uuid "$uuid" >"$dir/log/osd-mkfs.out" 2>&1 || {
		cat "$dir/log/osd-mkfs.out" >&2
		return 1
	}
	ceph-osd -c "$CEPH_CONF" -i 0 -f >"$dir/log/osd.out" 2>&1 &
	CEPH_OSD_PID=$!
	timeout 60 ceph osd pool create rbd 8 8 --size 1 >/dev/null 2>&1 ||
		timeout 60 ceph osd pool create rbd 8 8 >/dev/null || return 1
	timeout 60 ceph osd pool application enable rbd rbd >/dev/null 2>&1 || return 1
	# usable when an object can be written (the PGs are active)
	for ((i = 0; i < 120; i++)); do
		if timeout 5 rados -p rbd put lungate-probe /dev/null 2>/dev/null; then
			rados -p rbd rm lungate-probe 2>/dev/null || true
			# the classes loaded at start-up (else every rbd command fails later,
			# with EOPNOTSUPP, far from the cause)
			if grep -E 'error loading one or more classes|could not (stat|open) class' "$dir/log/osd.0.log" >&2; then
				echo "ceph_start: the OSD could not load its object classes (osd class dir = $class_dir)" >&2
				return 1
			fi
			CEPH_START_SECS=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
			return 0
		fi
		kill -0 "$CEPH_OSD_PID" 2>/dev/null || {
			echo "ceph_start: ceph-osd ended:" >&2
			tail -20 "$dir/log/osd.out" "$dir/log/osd.0.log" >&2
			return 1
		}
		sleep 0.25
	done
	echo "ceph_start: the rbd pool did not become writable (log: $dir/log)" >&2
	return 1
}

# ceph_stop: end the cluster's daemons, by pid (thawing a stopped one first).
ceph_stop() {
	local p
	for p in $CEPH_OSD_PID $CEPH_MON_PID; do
		kill -CONT "$p" 2>/dev/null || true
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $CEPH_OSD_PID $CEPH_MON_PID; do
		for _ in {1..50}; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	CEPH_OSD_PID=
	CEPH_MON_PID=
}
