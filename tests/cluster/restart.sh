#!/usr/bin/env bash
# A rolling restart: while clients keep logging in through the entry point
# (four loops of iscsi-inq, 40 initiators, following the redirect), gateways
# 2 and 3 are restarted in turn with SIGTERM, as `systemctl restart` does.
# No login may fail: a stopping gateway says "leaving" and goes on redirecting
# logins until every peer has read it, so no peer sends a client to a closed
# port; a starting one says "joining" until its portals listen.  Its clients
# go home once it is back.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:cluster-restart
cl_three_on_ceph
ALL="$CL_NET.11:3260=alive $CL_NET.12:3260=alive $CL_NET.13:3260=alive"

# login_loop K: initiators K, K+4, ... (of 40) log in and out in turn until
# $LG_TMP/stop exists; each failure is a line in $LG_TMP/fail.K
login_loop() {
	local k=$1 n=0 ini
	: >"$LG_TMP/fail.$k"
	while [[ ! -e $LG_TMP/stop ]]; do
		ini=$(printf '%s:room-%02d' "$LG_IQN_PREFIX" $(((n * 4 + k) % 40)))
		if ! ip netns exec "$(cl_ns cli)" timeout 60 iscsi-inq -i "$ini" "iscsi://$CL_ENTRY:3260/$IQN/0" \
			>"$LG_TMP/inq.$k.out" 2>&1; then
			echo "$ini: $(tr '\n' ' ' <"$LG_TMP/inq.$k.out")" >>"$LG_TMP/fail.$k"
		fi
		n=$((n + 1))
	done
	echo "$n" >"$LG_TMP/count.$k"
}
loops=()
for k in 0 1 2 3; do
	login_loop "$k" &
	loops+=($!)
	LG_PIDS+=($!)
done

sleep 3
n=0
for g in 2 3 2; do
	n=$((n + 1))
	before=$(wc -l <"${CL_LOGS[g]}")
	cl_stop "$g" TERM
	tail -n "+$((before + 1))" "${CL_LOGS[g]}" | grep -q 'msg="stopping: redirecting logins' ||
		fail "gateway $g did not go on redirecting while it stopped: $(tail -n 5 "${CL_LOGS[g]}")"
	sleep 1
	cl_start "$g" "$LG_TMP/gw$g.json"
	for i in 1 2 3; do
		cl_wait_view "$i" "$ALL" 20
	done
	((n == 3)) || sleep 3 # (the clients spread again before the next restart)
done
# the last restart's clients come home: with every view whole again, some
# login of the loops lands on gateway 2 (9 of the 40 initiators are its own),
# within 30 s, a bound for a loaded machine: peers read a new state within a
# heartbeat (0.5 s here) and judge a silent gateway dead after 2 s.  (Seen
# once in CI: no login at gateway 2 in a 3 s window, cause unknown: hence
# the figures printed below when none comes.)
before=$(wc -l <"${CL_LOGS[2]}")
before1=$(wc -l <"${CL_LOGS[1]}")
home=
for ((t = 0; t < 300; t++)); do
	if tail -n "+$((before + 1))" "${CL_LOGS[2]}" | grep -q 'msg="\?login"\? initiator='; then
		home=$((t / 10)).$((t % 10))
		break
	fi
	sleep 0.1
done
if [[ -z $home ]]; then # which side kept them away: the entry point, or gateway 2 itself
	log "in the wait, gateway 1 sent $(tail -n "+$((before1 + 1))" "${CL_LOGS[1]}" | grep -c "redirected.*to=$CL_NET.12:" || true) logins to gateway 2, which sent $(tail -n "+$((before + 1))" "${CL_LOGS[2]}" | grep -c 'login redirected' || true) on"
	for i in 1 2 3; do
		log "gateway $i sees $(cl_ls "$i" 2>&1 | head -c 600); its last cluster lines: $(grep 'msg="cluster' "${CL_LOGS[i]}" | tail -n 4 | cut -c 4-200 | paste -sd '|')"
	done
fi
touch "$LG_TMP/stop"
total=0
for k in 0 1 2 3; do
	wait "${loops[k]}" || true
	forget_pid "${loops[k]}"
	total=$((total + $(cat "$LG_TMP/count.$k")))
done
failed=$(cat "$LG_TMP"/fail.* | wc -l)
redirected=0
for i in 1 2 3; do
	redirected=$((redirected + $(grep -c 'redirect' "${CL_LOGS[i]}" || true)))
done
log "$total logins through the entry point during three restarts, $failed failed; $redirected log lines of redirects"
((failed == 0)) || fail "$failed logins failed: $(cat "$LG_TMP"/fail.* | head -n 5)"
((total >= 40)) || fail "only $total logins: the loops did not run"
[[ -n $home ]] || fail "no client came back to gateway 2 within 30 s of every view being whole again"
log "a client came back to gateway 2 within $home s of every view being whole again"
