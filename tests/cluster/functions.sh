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
CL_ADDRS=()          # gateway i's service address
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

# cl_start INDEX CONFIG: gateway INDEX (1-based) in namespace gwINDEX,
# listening on 0.0.0.0:3260 there, control socket $LG_TMP/gwINDEX.sock.
cl_start() {
	local i=$1 cfg=$2 log=$LG_TMP/gw$1.log sock=$LG_TMP/gw$1.sock
	LG_LOGS+=("$log")
	rm -f "$sock"
	# ip netns exec execs lungate: its pid is our child's (a function in the
	# background would be a subshell, and killing that would orphan lungate)
	ip netns exec "$(cl_ns "gw$i")" "$LUNGATE" serve -c "$cfg" --listen 0.0.0.0:3260 \
		--control "$sock" </dev/null >>"$log" 2>&1 &
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
