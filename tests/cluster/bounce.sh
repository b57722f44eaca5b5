#!/usr/bin/env bash
# A gateway's view of its peers is up to a heartbeat old, so right after a
# gateway starts draining a peer may still send it logins, and the draining
# one sends them back: the login must still land, on a gateway that takes
# clients, at the first try of the initiator.  Heartbeats here are 10 s (so
# the views stay old for the whole test): gateway 2 drains; at once an
# initiator at home on gateway 2 logs in through the entry point (gateway
# 1, which still takes gateway 2 for alive).  Without the gateways reading
# the membership again when a redirected login comes back, the initiator
# goes back and forth between two of them until libiscsi gives up ("login
# took too many tries").
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:cluster-bounce
CL_HEARTBEAT_MS=10000 CL_DEAD_MS=30000
cl_three_on_ceph
ini=$(cl_pick_on 2)
# a gateway writes its heartbeat once per heartbeat_ms, not without pause (a
# wall-clock deadline for a monotonic wait made it beat and read RADOS
# continuously, a load on the cluster that grows with every gateway)
seq_of() {
	run rados -p lungate getomapval lungate.cluster.room "$CL_NET.11:3260" "$LG_TMP/omap" >/dev/null 2>&1 ||
		fail "rados getomapval of gateway 1's heartbeat failed"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seq"])' "$LG_TMP/omap"
}
s1=$(seq_of)
sleep 3
s2=$(seq_of)
((s2 - s1 <= 1)) || fail "gateway 1 wrote $((s2 - s1)) heartbeats in 3 s (heartbeat_ms is 10000)"
log "gateway 1's heartbeat: seq $s1, then $s2 three seconds later"
# the drain publishes "draining" at once, then waits two heartbeats (20 s)
# before it asks its sessions to log out (it has none): log in meanwhile
"$LUNGATE" drain --control "${CL_SOCKS[2]}" >"$LG_TMP/drain.out" 2>&1 &
DP=$!
LG_PIDS+=("$DP")
for ((t = 0; t < 100; t++)); do
	grep -q 'msg="cluster: draining"' "${CL_LOGS[2]}" && break
	sleep 0.05
done
grep -q 'msg="cluster: draining"' "${CL_LOGS[2]}" || fail "gateway 2 did not start draining: $(cat "$LG_TMP/drain.out")"
# (gateway 1 has not read it yet, unless its heartbeat came in these few ms)
view1=$(cl_ls 1 | python3 -c 'import json,sys; print(" ".join(sorted(g["address"]+"="+g["state"] for g in json.load(sys.stdin)["gateways"])))')
out=$(ip netns exec "$(cl_ns cli)" timeout 60 iscsi-inq -i "$ini" "iscsi://$CL_ENTRY:3260/$IQN/0" 2>&1) ||
	fail "$ini could not log in through the entry point just after gateway 2 began draining (gateway 1 saw \"$view1\"): $out"
now=
for i in 1 3; do
	grep -q "msg=\"login\" initiator=$ini .*tsih=" "${CL_LOGS[i]}" && now=$i
done
# (its earlier logins were all on gateway 2, its home)
[[ -n $now ]] || fail "$ini's login after the drain is in neither gateway 1's nor gateway 3's log"
hops=$(cat "${CL_LOGS[@]}" | grep -c "msg=\"login redirected\" initiator=$ini .*" || true)
again=$(cat "${CL_LOGS[@]}" | grep -c "membership read again\" initiator=$ini" || true)
log "gateway 1 saw \"$view1\" when $ini logged in; it landed on gateway $now after $hops redirects in all, $again fresh reads of the membership"
wait "$DP" || fail "lungate drain failed: $(cat "$LG_TMP/drain.out")"
forget_pid "$DP"
