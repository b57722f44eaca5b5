#!/usr/bin/env bash
# Benchmark (not a test): several gateways, one entry point (README
# "Several gateways").  In the cluster tests' throwaway network (namespaces
# under `unshare --net`, the test's Ceph cluster on a bridge; run as root):
#   1. login time: N iscsi-inq (login, INQUIRY, logout) through the entry
#      point (a redirect, then the home gateway) vs straight to the home
#      gateway; the mean of each.
#   2. failover: a qemu-io client writes 64 KiB with FUA every 20 ms through
#      the entry point; its gateway is killed (kill -9); the time from the
#      kill to its first completed write on another gateway, RUNS times
#      (the gateway is started again between runs), and the median.
#
#   bench/cluster.sh [LUNGATE-BINARY]    Environment: N (default 20), RUNS (default 5)
#
# Membership as in the tests: heartbeat 500 ms, dead after 2 s (the
# defaults are 1 s and 4 s: add the difference).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export LUNGATE=${LUNGATE:-$(realpath "${1:-$here/../build/lungate}")}
export FREEPORT=${FREEPORT:-$(realpath "$here/../build/tests/integration/lungate_it_freeport")}
export TMPDIR=${TMPDIR:-/tmp}
N=${N:-20}
RUNS=${RUNS:-5}
# shellcheck source=../tests/cluster/functions.sh
source "$here/../tests/cluster/functions.sh"
IQN=$LG_IQN_PREFIX:cluster-bench
cl_three_on_ceph

# 1. login time
ini=$(cl_pick_on 3)
timed() { # URL: mean seconds of N logins
	local t0 t1 k
	t0=$EPOCHREALTIME
	for ((k = 0; k < N; k++)); do
		ip netns exec "$(cl_ns cli)" iscsi-inq -i "$ini" "$1" >/dev/null 2>&1 || fail "iscsi-inq $1 failed"
	done
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n * 1000 }'
}
via_entry=$(timed "iscsi://$CL_ENTRY:3260/$IQN/0")
direct=$(timed "iscsi://$CL_NET.13:3260/$IQN/0")
echo "login+INQUIRY+logout, mean of $N: through the entry point $via_entry ms, straight to the home gateway $direct ms"

# 2. kill -9 to the first completed write elsewhere
times=()
for ((r = 1; r <= RUNS; r++)); do
	out=$LG_TMP/fo$r.out
	args=()
	for ((k = 0; k < 400; k++)); do
		args+=(-c "write -f -P 7 $((k % 200 * 65536)) 65536" -c "sleep 20")
	done
	# each line of qemu-io's with the time it came
	(ip netns exec "$(cl_ns cli)" timeout 200 qemu-io --image-opts "$(cl_qio_opts "$ini")" "${args[@]}" 2>/dev/null |
		while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done >"$out") &
	qp=$!
	for ((t = 0; t < 200; t++)); do
		(($(grep -c ' wrote ' "$out" || true) >= 20)) && break
		sleep 0.1
	done
	[[ $(cl_serving "$ini") == 3 ]] || fail "run $r: $ini is not on gateway 3"
	tk=$EPOCHREALTIME
	cl_stop 3 KILL
	for ((t = 0; t < 600; t++)); do
		first=$(awk -v k="$tk" '$2 == "wrote" && $1 > k { print $1; exit }' "$out")
		[[ -n $first ]] && break
		sleep 0.1
	done
	[[ -n $first ]] || fail "run $r: no write completed within 60 s of the kill"
	d=$(awk -v a="$tk" -v b="$first" 'BEGIN { printf "%.2f", b - a }')
	times+=("$d")
	echo "run $r: kill -9 to the first completed write on gateway $(cl_serving "$ini"): $d s"
	wait "$qp" 2>/dev/null || true # its last writes, then it ends
	# gateway 3 back, seen alive by all, before the next run
	cl_start 3 "$LG_TMP/gw3.json"
	for i in 1 2 3; do
		cl_wait_view "$i" "$CL_NET.11:3260=alive $CL_NET.12:3260=alive $CL_NET.13:3260=alive" 30
	done
	sleep 1 # the moved session ends and the clone's lock is let go
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
echo "kill -9 to the first completed write elsewhere, median of $RUNS: $median s (${times[*]})"
