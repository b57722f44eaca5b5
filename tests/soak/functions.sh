# shellcheck shell=bash
# Helpers of the soak's rooms (tests/soak/soak.sh, drain.sh): sourced after
# the group's own functions (fail, log, forget_pid).

# soak_verdict N: wait for clients 1..N (pids in the array pids, output in
# $LG_TMP/clientK.out) and add up their "soak-client" lines into sessions,
# commands, rbytes, wbytes, resets, errors and wrong; bad counts the clients
# that failed or printed no figures (the first lines of each are logged),
# bad_clients lists their numbers.
soak_verdict() {
	local c rc line s cm rb wb rs er wr
	bad=0 bad_clients=() sessions=0 commands=0 rbytes=0 wbytes=0 resets=0 errors=0 wrong=0
	for ((c = 1; c <= $1; c++)); do
		rc=0
		wait "${pids[c - 1]}" || rc=$?
		forget_pid "${pids[c - 1]}"
		line=$(grep '^soak-client ' "$LG_TMP/client$c.out") || line=
		read -r _ _ _ s _ cm _ rb _ wb _ rs _ er _ wr <<<"$line"
		# 127: bash no longer knows the status of a client that ended long
		# before (an hour of other children later); its line tells
		((rc != 127)) || [[ -z $line ]] || rc=0
		if ((rc != 0)) || [[ -z $line ]] || ((${er:-0} + ${wr:-0} > 0)); then
			bad=$((bad + 1))
			bad_clients+=("$c")
			log "client pc$c (status $rc): $(head -n 12 "$LG_TMP/client$c.out")"
		fi
		sessions=$((sessions + ${s:-0})) commands=$((commands + ${cm:-0}))
		rbytes=$((rbytes + ${rb:-0})) wbytes=$((wbytes + ${wb:-0})) resets=$((resets + ${rs:-0}))
		errors=$((errors + ${er:-0})) wrong=$((wrong + ${wr:-0}))
	done
}
