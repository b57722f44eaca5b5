#!/usr/bin/env bash
# Three gateways with membership in RADOS and each client's disk an RBD
# clone (cow over a snapshot, overlay_pool): 30 libiscsi initiators log in
# through the entry point and are redirected over the three (each gets
# some); each lands on the same gateway every time; every gateway's
# `lungate ls` shows the three alive; after one gateway is killed (kill -9),
# the others see it dead and only its initiators move, to live gateways.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:cluster-spread
cl_three_on_ceph
ls_out=$("$LUNGATE" ls --control "${CL_SOCKS[2]}")
grep -q "rados membership, entry $CL_ENTRY:3260, failover on Ceph" <<<"$ls_out" ||
	fail "lungate ls does not show the cluster: $ls_out"

cl_thirty

cl_stop 3 KILL
log "gateway 3 killed"
for i in 1 2; do
	cl_wait_view "$i" "$CL_NET.11:3260=alive $CL_NET.12:3260=alive $CL_NET.13:3260=dead" 20
done
cl_login_round "$LG_TMP/names" "$LG_TMP/round3"
moved=0
while read -r ini g; do
	now=$(awk -v i="$ini" '$1 == i { print $2 }' "$LG_TMP/round3")
	if ((g != 3)); then
		[[ $now == "$g" ]] || fail "$ini moved from gateway $g to $now although only gateway 3 died"
	else
		[[ $now == 1 || $now == 2 ]] || fail "$ini of the dead gateway is on '$now'"
		moved=$((moved + 1))
	fi
done <"$LG_TMP/round1"
log "ok: $moved initiators of the dead gateway moved, the others stayed"
