# shellcheck shell=bash
# Helpers of the cluster tests (tests/cluster/*.sh): sourced.
#
# Each test runs in a network namespace of its own (it re-executes itself
# under `unshare --net`: the "hub"), so its addresses (10.77.0.0/24) and ports
# collide with nobody's and nothing of it can reach another network.  In the
# hub: a bridge (10.77.0.1, where the test's Ceph cluster listens) and one
# named namespace per gateway and one for the clients, each on a veth pair to
# the bridge.  The named namespaces (lgc-PID-NAME) are deleted by the EXIT
# trap; everything started in them is the test's child and ended by pid.
#
# Environment (tests/cluster/CMakeLists.txt): LUNGATE, FREEPORT as in tests/rbd.

if [[ -z ${LG_CLUSTER_HUB:-} ]]; then
	command -v unshare >/dev/null || { echo "unshare (util-linux) is missing" >&2; exit 1; }
	LG_CLUSTER_HUB=1 exec unshare --net bash "$0" "$@"
fi

# shellcheck source=../rbd/functions.sh
source "$(dirname "${BASH_SOURCE[0]}")/../rbd/functions.sh"

require_cmd ip iscsi-inq

CL_NET=10.77.0
CL_NS=()             # the named namespaces of this test
CL_ENTRY=$CL_NET.10  # the one address clients are given
CL_PIDS=()           # gateway i's pid
CL_LOGS=()           # gateway i's log
CL_SOCKS=()          # gateway i's control socket

cl_cleanup_net() {
	local ns
	for ns in "${CL_NS[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
}
# shellcheck disable=SC2016 # expanded when the hook runs
NBD_EXIT_HOOKS+=('cl_cleanup_net')

# cl_ns NAME: the namespace name for NAME.
cl_ns() { printf 'lgc-%s-%s' "$$" "$1"; }

# cl_net NAME:IP...: the bridge and one namespace per NAME with address IP/24
# (more addresses: NAME:IP+IP2).
cl_net() {
	ip link set lo up
	ip link add br0 type bridge
	ip addr add "$CL_NET.1/24" dev br0
	ip link set br0 up
	local spec name addrs a ns
	for spec in "$@"; do
		name=${spec%%:*}
		addrs=${spec#*:}
		ns=$(cl_ns "$name")
		ip netns add "$ns" || fail "ip netns add $ns failed"
		CL_NS+=("$ns")
		ip link add "v$name" type veth peer name eth0 netns "$ns"
		ip link set "v$name" master br0 up
		ip -n "$ns" link set lo up
		for a in ${addrs//+/ }; do
			ip -n "$ns" addr add "$a/24" dev eth0
		done
		ip -n "$ns" link set eth0 up
	done
}

# nsx NAME CMD...: run CMD in NAME's namespace.
nsx() {
	local ns
	ns=$(cl_ns "$1")
	shift
	ip netns exec "$ns" "$@"
}

# cl_ceph: the test's Ceph cluster on the bridge, and a pool "lungate" for
# membership and "clients" for the per-client clones.
cl_ceph() {
	CEPH_ADDR=$CL_NET.1 CEPH_NETWORK=$CL_NET.0/24 CEPH_MON_PORT=6789 rbd_cluster
	run ceph osd pool create lungate 8 8 >/dev/null 2>&1 || fail "ceph osd pool create lungate failed"
}

# cl_config FILE CLUSTER-JSON LUN STORAGE-OBJECT-JSON...: a gateway's config:
# write_config's (LUN 0 of $IQN is LUN, "/backstores/PLUGIN/NAME") with the
# "cluster" section CLUSTER-JSON.
cl_config() {
	local file=$1 cluster=$2
	shift 2
	write_config "$file.tmp" "$IQN" "$@"
	python3 - "$file.tmp" "$file" "$cluster" <<'PY' || fail "cl_config: bad JSON"
import json, sys
c = json.load(open(sys.argv[1]))
c["cluster"] = json.loads(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
	rm -f "$file.tmp"
}

# cl_with_cluster CONFIG OUT CLUSTER-JSON: CONFIG with the "cluster" section.
cl_with_cluster() {
	python3 - "$1" "$2" "$3" <<'PY' || fail "cl_with_cluster: bad JSON"
import json, sys
c = json.load(open(sys.argv[1]))
c["cluster"] = json.loads(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
}

# cl_rados_section INDEX: gateway INDEX's cluster section with membership in
# the pool "lungate" (heartbeat CL_HEARTBEAT_MS, 500 ms, dead after
# CL_DEAD_MS, 2 s).
cl_rados_section() {
	printf '{"name": "room", "pool": "lungate", "conf": "%s", "address": "%s.1%s:3260", "entry": "%s:3260", "heartbeat_ms": %s, "dead_after_ms": %s}' \
		"$CEPH_CONF" "$CL_NET" "$1" "$CL_ENTRY" "${CL_HEARTBEAT_MS:-500}" "${CL_DEAD_MS:-2000}"
}

# cl_start INDEX CONFIG: gateway INDEX (1-based) in namespace gwINDEX,
# listening on 0.0.0.0:3260 there, control socket $LG_TMP/gwINDEX.sock,
# metrics on 127.0.0.1:CL_METRICS_PORT there (cl_metric).
CL_METRICS_PORT=9470
cl_start() {
	local i=$1 cfg=$2 log=$LG_TMP/gw$1.log sock=$LG_TMP/gw$1.sock
	# (once: a restarted gateway appends to its log, printed once at a failure)
	[[ " ${LG_LOGS[*]} " == *" $log "* ]] || LG_LOGS+=("$log")
	rm -f "$sock"
	# ip netns exec execs lungate: its pid is our child's (a function in the
	# background would be a subshell, and killing that would orphan lungate)
	ip netns exec "$(cl_ns "gw$i")" "$LUNGATE" serve -c "$cfg" --listen 0.0.0.0:3260 \
		--control "$sock" --metrics "127.0.0.1:$CL_METRICS_PORT" </dev/null >>"$log" 2>&1 &
	CL_PIDS[i]=$!
	LG_PIDS+=("${CL_PIDS[i]}")
	CL_LOGS[i]=$log
	CL_SOCKS[i]=$sock
	local t
	for ((t = 0; t < 300; t++)); do
		nsx "gw$i" bash -c 'exec 3<>/dev/tcp/127.0.0.1/3260' 2>/dev/null && [[ -S $sock ]] && return 0
		pid_alive "${CL_PIDS[i]}" || fail "gateway $i ended at start: $(tail -n 5 "$log")"
		sleep 0.1
	done
	fail "gateway $i did not listen within 30 s"
}

# cl_metric INDEX NAME: the value of gateway INDEX's metric NAME (no labels).
cl_metric() {
	local out
	out=$(nsx "gw$1" curl -sS --max-time 10 "http://127.0.0.1:$CL_METRICS_PORT/metrics") ||
		fail "gateway $1's metrics: $out"
	awk -v s="$2" '$1 == s { print $2; found = 1 } END { exit !found }' <<<"$out" ||
		fail "gateway $1 has no metric $2"
}

# cl_stop INDEX [SIGNAL]: end gateway INDEX by pid (TERM: it leaves the
# cluster; KILL: it dies) and wait for it.
cl_stop() {
	local i=$1 sig=${2:-TERM} pid=${CL_PIDS[$1]} t
	kill "-$sig" "$pid"
	for ((t = 0; t < 300; t++)); do
		pid_alive "$pid" || break
		sleep 0.1
	done
	pid_alive "$pid" && fail "gateway $i (pid $pid) did not end within 30 s of SIG$sig"
	wait "$pid" 2>/dev/null || true
	forget_pid "$pid"
}

# cl_ls INDEX: `lungate ls --json`'s cluster object from gateway INDEX.
cl_ls() {
	"$LUNGATE" ls --json --control "${CL_SOCKS[$1]}" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["cluster"]))'
}

# cl_wait_view INDEX WANT [SECS]: wait until gateway INDEX sees WANT, a
# space-separated "ADDRESS=STATE" list of every gateway it lists.
cl_wait_view() {
	local i=$1 want=$2 secs=${3:-30} got t
	for ((t = 0; t < secs * 5; t++)); do
		got=$(cl_ls "$i" | python3 -c 'import json,sys; c=json.load(sys.stdin); print(" ".join(sorted(g["address"]+"="+g["state"] for g in c["gateways"])))') || got=
		[[ $got == "$want" ]] && return 0
		pid_alive "${CL_PIDS[i]}" ||
			fail "gateway $i (pid ${CL_PIDS[i]}) has ended, while waiting for its view \"$want\"; its last lines: $(tail -n 4 "${CL_LOGS[i]}")"
		sleep 0.2
	done
	fail "gateway $i sees \"$got\", not \"$want\", after $secs s"
}

# cl_login_round NAMES-FILE OUT-FILE: each initiator named in NAMES-FILE does
# an INQUIRY through the entry point (following the redirect) from the
# clients' namespace; OUT-FILE gets "INITIATOR GATEWAY-INDEX" lines, the
# gateway whose log shows that login.
cl_login_round() {
	local names=$1 out=$2 ini i n before=() pids=() k
	for i in "${!CL_LOGS[@]}"; do
		before[i]=$(wc -l <"${CL_LOGS[i]}")
	done
	: >"$out"
	k=0
	while read -r ini; do
		ip netns exec "$(cl_ns cli)" timeout 60 iscsi-inq -i "$ini" "iscsi://$CL_ENTRY:3260/$IQN/0" \
			>"$LG_TMP/inq.$k.out" 2>&1 &
		pids+=($!)
		k=$((k + 1))
		if ((${#pids[@]} >= 6)); then # a few at a time: two cores, three gateways
			for p in "${pids[@]}"; do
				wait "$p" || fail "iscsi-inq through the entry point failed: $(cat "$LG_TMP"/inq.*.out | head -n 5)"
			done
			pids=()
		fi
	done <"$names"
	for p in "${pids[@]}"; do
		wait "$p" || fail "iscsi-inq through the entry point failed: $(cat "$LG_TMP"/inq.*.out | head -n 5)"
	done
	while read -r ini; do
		n=0
		for i in "${!CL_LOGS[@]}"; do
			if tail -n "+$((before[i] + 1))" "${CL_LOGS[i]}" | grep -c "msg=\"\?login\"\? initiator=$ini " >/dev/null; then
				echo "$ini $i" >>"$out"
				n=$((n + 1))
			fi
		done
		((n == 1)) || fail "initiator $ini logged in on $n gateways in one round"
	done <"$names"
}

# cl_pick_on GATEWAY-INDEX: print an initiator name whose home is that gateway
# (found by logging a few in through the entry point).
cl_pick_on() {
	local names=$LG_TMP/pick.names k
	for ((k = 0; k < 12; k++)); do
		printf '%s:pick-%02d\n' "$LG_IQN_PREFIX" "$k"
	done >"$names"
	cl_login_round "$names" "$LG_TMP/pick.out"
	awk -v g="$1" '$2 == g { print $1; exit }' "$LG_TMP/pick.out" | grep . ||
		fail "none of 12 initiators is at home on gateway $1"
}

# cl_serving INITIATOR: the index of the gateway with a session of it (or "").
cl_serving() {
	local i
	for i in "${!CL_SOCKS[@]}"; do
		pid_alive "${CL_PIDS[i]}" || continue
		"$LUNGATE" sessions --json --control "${CL_SOCKS[i]}" 2>/dev/null | grep -q "\"initiator\": \"$1\"" &&
			{ echo "$i"; return 0; }
	done
	echo ""
}

# cl_qio_opts INITIATOR: qemu's image options for LUN 0 through the entry point.
cl_qio_opts() {
	printf 'driver=iscsi,transport=tcp,portal=%s:3260,target=%s,lun=0,initiator-name=%s' \
		"$CL_ENTRY" "$IQN" "$1"
}

# cl_write_loop INITIATOR N OUT: qemu-io (QEMU's libiscsi driver) in the
# clients' namespace writes N blocks of 64 KiB with FUA, each at its own
# offset with its own pattern, 100 ms apart, in the background (QIO_PID);
# OUT gets what it says ("wrote 65536/65536 bytes at offset X" per
# acknowledged write), OUT.err its messages (apart: they would cut lines).
cl_write_loop() {
	local ini=$1 n=$2 out=$3 k args=()
	for ((k = 0; k < n; k++)); do
		args+=(-c "write -f -P $((k % 200 + 1)) $((k * 65536)) 65536" -c "sleep 100")
	done
	ip netns exec "$(cl_ns cli)" timeout 300 qemu-io --image-opts "$(cl_qio_opts "$ini")" \
		"${args[@]}" >"$out" 2>"$out.err" &
	QIO_PID=$!
	LG_PIDS+=("$QIO_PID")
}

# cl_acked OUT: how many writes qemu-io acknowledged.
cl_acked() { grep -c '^wrote 65536/65536 bytes at offset' "$1" || true; }

# cl_verify_acked INITIATOR OUT: every write acknowledged in OUT reads back
# with its pattern, through the entry point, and none failed.
cl_verify_acked() {
	local ini=$1 out=$2 off args=() n=0
	# a failed command (qemu-io's "write failed: ..."), not a failed reconnect
	! grep -qiE '(write|read|flush) failed' "$out" "$out.err" ||
		fail "qemu-io saw a failed command: $(grep -hiE '(write|read|flush) failed' "$out" "$out.err" | head -n 3)"
	while read -r off; do
		args+=(-c "read -P $((off / 65536 % 200 + 1)) $off 65536")
		n=$((n + 1))
	done < <(sed -n 's/^wrote 65536\/65536 bytes at offset \([0-9]*\)$/\1/p' "$out")
	((n > 0)) || fail "no acknowledged write to verify"
	local res
	res=$(ip netns exec "$(cl_ns cli)" timeout 120 qemu-io --image-opts "$(cl_qio_opts "$ini")" "${args[@]}" 2>&1) ||
		fail "reading back the acknowledged writes failed: $(tail -n 3 <<<"$res")"
	! grep -q 'Pattern verification failed' <<<"$res" ||
		fail "acknowledged writes are not there: $(grep -c 'Pattern verification failed' <<<"$res") of $n differ"
	[[ $(grep -c '^read 65536/65536' <<<"$res") == "$n" ]] || fail "reading back: $(tail -n 3 <<<"$res")"
	log "all $n acknowledged writes verify"
}

# cl_start_three CONFIG: gateways 1-3 serving CONFIG with membership in
# RADOS; returns once every gateway sees the three alive.
cl_start_three() {
	local i all="$CL_NET.11:3260=alive $CL_NET.12:3260=alive $CL_NET.13:3260=alive"
	for i in 1 2 3; do
		cl_with_cluster "$1" "$LG_TMP/gw$i.json" "$(cl_rados_section "$i")"
		cl_start "$i" "$LG_TMP/gw$i.json"
	done
	for i in 1 2 3; do
		cl_wait_view "$i" "$all" $((20 + ${CL_HEARTBEAT_MS:-500} / 500))
	done
}

# cl_three_on_ceph: the bridge, gateways gw1-gw3 (gw1 also holds the entry
# point) and the clients' namespace; the test's Ceph cluster; per-client RBD
# clones (rbd_clone_setup) served as LUN 0 of $IQN by the three (cl_start_three).
cl_three_on_ceph() {
	cl_net "gw1:$CL_NET.11+$CL_ENTRY" "gw2:$CL_NET.12" "gw3:$CL_NET.13" "cli:$CL_NET.50"
	cl_ceph
	rbd_clone_setup cc
	cl_start_three "$CFG"
}

# cl_thirty: 30 initiators log in twice through the entry point; they must
# land on the same gateway both times and each gateway must get some.
# $LG_TMP/names lists them, $LG_TMP/round1 says where each landed.
cl_thirty() {
	local k i n
	for ((k = 0; k < 30; k++)); do
		printf '%s:client-%02d\n' "$LG_IQN_PREFIX" "$k"
	done >"$LG_TMP/names"
	cl_login_round "$LG_TMP/names" "$LG_TMP/round1"
	cl_login_round "$LG_TMP/names" "$LG_TMP/round2"
	cmp -s "$LG_TMP/round1" "$LG_TMP/round2" ||
		fail "initiators landed on other gateways the second time: $(diff "$LG_TMP/round1" "$LG_TMP/round2" | head)"
	for i in 1 2 3; do
		n=$(awk -v g="$i" '$2 == g' "$LG_TMP/round1" | wc -l)
		log "gateway $i serves $n of 30"
		((n > 0)) || fail "gateway $i got none of the 30 initiators"
	done
}

# cl_writing_on GATEWAY-INDEX N: an initiator at home on that gateway (INI)
# starts cl_write_loop of N writes (into $LG_TMP/qio.out, QIO_PID); returns
# once 15 are acknowledged and its session is seen on that gateway.
cl_writing_on() {
	local t
	INI=$(cl_pick_on "$1")
	cl_write_loop "$INI" "$2" "$LG_TMP/qio.out"
	for ((t = 0; t < 300; t++)); do
		(($(cl_acked "$LG_TMP/qio.out") >= 15)) && break
		pid_alive "$QIO_PID" || fail "qemu-io ended early: $(tail -n 5 "$LG_TMP/qio.out")"
		sleep 0.1
	done
	[[ $(cl_serving "$INI") == "$1" ]] || fail "$INI is not served by gateway $1 but by '$(cl_serving "$INI")'"
}

# cl_writes_done N: qemu-io ends well with all N writes acknowledged.
cl_writes_done() {
	local rc=0
	wait "$QIO_PID" || rc=$?
	forget_pid "$QIO_PID"
	((rc == 0)) || fail "qemu-io failed (status $rc): $(tail -n 5 "$LG_TMP/qio.out")"
	local n
	n=$(cl_acked "$LG_TMP/qio.out")
	((n == $1)) || fail "only $n of $1 writes were acknowledged"
}

# ---- addresses that move: keepalived (VRRP) ----
#
# With cl_net_vrrp the namespaces' own addresses are 10.77.0.2X; the entry
# point (10.77.0.10) and each gateway's service address (10.77.0.1X) are
# VRRP addresses: gateway X is master of its own, gateway 1 of the entry
# point (then 2, then 3), and each keepalived drops its addresses when its
# gateway stops answering on port 3260 (track_script), so that a dead
# gateway's addresses move to a survivor within seconds.

# cl_net_vrrp: the bridge, gw1-gw3 and the clients' namespace, for keepalived.
cl_net_vrrp() {
	cl_net "gw1:$CL_NET.21" "gw2:$CL_NET.22" "gw3:$CL_NET.23" "cli:$CL_NET.50"
}

# cl_keepalived INDEX: keepalived in gateway INDEX's namespace (pid in
# KA_PIDS[INDEX], its output in $LG_TMP/ka INDEX.log).
KA_PIDS=()
cl_keepalived() {
	local i=$1 j conf=$LG_TMP/ka$1.conf
	{
		printf 'global_defs {\n  router_id gw%s\n  enable_script_security\n  script_user root\n}\n' "$i"
		# two failed checks in a row (a slow check on a busy machine is no death)
		printf 'vrrp_script lungate {\n  script "%s"\n  interval 1\n  timeout 2\n  fall 2\n  rise 1\n}\n' \
			"$LG_TMP/ka-check.sh"
		# the entry point: gateway 1, then 2, then 3
		printf 'vrrp_instance entry {\n  state BACKUP\n  interface eth0\n  virtual_router_id 50\n'
		printf '  priority %d\n  advert_int 1\n  virtual_ipaddress {\n    %s/24\n  }\n' $((200 - i * 20)) "$CL_ENTRY"
		printf '  track_script {\n    lungate\n  }\n}\n'
		for j in 1 2 3; do # each gateway's service address: its own, then the next ones
			printf 'vrrp_instance gw%s {\n  state BACKUP\n  interface eth0\n  virtual_router_id %d\n' "$j" $((50 + j))
			printf '  priority %d\n  advert_int 1\n  virtual_ipaddress {\n    %s.1%s/24\n  }\n' \
				$((200 - (i - j + 3) % 3 * 20)) "$CL_NET" "$j"
			printf '  track_script {\n    lungate\n  }\n}\n'
		done
	} >"$conf"
	printf '#!/bin/bash\nexec 3<>/dev/tcp/127.0.0.1/3260\n' >"$LG_TMP/ka-check.sh"
	chmod 755 "$LG_TMP/ka-check.sh"
	ip netns exec "$(cl_ns "gw$i")" keepalived -n -l -G -f "$conf" -p "$LG_TMP/ka$i.pid" \
		-r "$LG_TMP/ka$i.vrrp.pid" -c "$LG_TMP/ka$i.check.pid" >"$LG_TMP/ka$i.log" 2>&1 &
	KA_PIDS[i]=$!
	LG_PIDS+=("${KA_PIDS[i]}")
}

# cl_holder ADDRESS: the index of the gateway whose namespace holds ADDRESS.
cl_holder() {
	local i
	for i in 1 2 3; do
		ip -n "$(cl_ns "gw$i")" -4 addr show dev eth0 2>/dev/null | grep -q "inet $1/" && { echo "$i"; return 0; }
	done
	echo ""
}

# cl_wait_holder ADDRESS INDEX [SECS]: wait until gateway INDEX holds ADDRESS.
cl_wait_holder() {
	local t
	for ((t = 0; t < ${3:-30} * 5; t++)); do
		[[ $(cl_holder "$1") == "$2" ]] && return 0
		sleep 0.2
	done
	fail "$1 is held by gateway '$(cl_holder "$1")', not $2, after ${3:-30} s"
}

# cl_start_vrrp CONFIG: gateways 1-3 serving CONFIG with membership in RADOS,
# each with its keepalived; returns once the entry point is on gateway 1,
# each service address on its gateway, and every gateway sees the three alive.
cl_start_vrrp() {
	local i
	for i in 1 2 3; do
		cl_with_cluster "$1" "$LG_TMP/gw$i.json" "$(cl_rados_section "$i")"
		cl_start "$i" "$LG_TMP/gw$i.json"
		cl_keepalived "$i"
	done
	cl_wait_holder "$CL_ENTRY" 1
	for i in 1 2 3; do
		cl_wait_holder "$CL_NET.1$i" "$i"
		cl_wait_view "$i" "$CL_NET.11:3260=alive $CL_NET.12:3260=alive $CL_NET.13:3260=alive" 20
	done
}
