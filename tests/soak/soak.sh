#!/usr/bin/env bash
# The soak (issue 20): a room of SOAK_CLIENTS (30) simulated PCs, each its own
# initiator (lg-soak-client, libiscsi), for SOAK_SECONDS (240 here; bench/soak
# runs an hour): each boots (iPXE's read pattern), writes and reads back its
# own disk (a per-initiator overlay), logs out and in again, and between
# sessions sometimes resets its overlay (`lungate overlay reset`, through the
# control socket).  Beside them the test reloads the config (SIGHUP and
# `lungate reload`, a new storage object and target coming and going),
# publishes image versions of the room and rolls back and prunes them
# (`lungate image`; each version is the base with a tail appended, so that
# every client's data stays comparable with the base whatever version its
# layer is over: "on_new_version": "keep"), runs an idle-socket flood and the
# hostile-PDU client (tests/integration/hostile.c, on a target of its own,
# both from 127.0.0.2).  At the end: no client saw a
# wrong byte or an unexpected error, the gateway's anonymous memory (RssAnon)
# (within 16 MiB of where it was once every kind of load had run once) and
# open descriptors (within 4 of where they were after the first logins) are
# back, the hostile client's image is unchanged, and every overlay
# reads without complaint (`lungate overlay list` on the files, the gateway
# stopped).
# shellcheck source=../cow/functions.sh
source "$(dirname "$0")/../cow/functions.sh"
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
: "${SOAK_CLIENT:?SOAK_CLIENT must name lg-soak-client}"
: "${HOSTILE:?HOSTILE must name the hostile client}"

CLIENTS=${SOAK_CLIENTS:-30}
SECS=${SOAK_SECONDS:-240}
IQN=$LG_IQN_PREFIX:soak
BASE=$LG_TMP/base.img
HIMG=$LG_TMP/hostile.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/soak.json
SOCK=$LG_TMP/control.sock
T0=$SECONDS
make_random_image "$BASE" 32
make_random_image "$HIMG" 8
cp "$HIMG" "$LG_TMP/hostile.orig"

# soak_config EXTRA: the room's config (the hostile client's target first:
# it wants to be listed first by SendTargets); EXTRA=1 adds a storage object and a
# target that reloads make come and go.
soak_config() {
	local extra_so= extra_tgt= versions=
	# the versions the running gateway keeps (lungate image writes them into
	# this file; a reload must not forget them)
	[[ ! -s $CFG ]] || versions=$(jq -c '.storage_objects[] | select(.name == "room")
		| with_entries(select(.key | IN("versions", "current", "last_version")))' "$CFG" | sed 's/^{/, /; s/}$//; s/^, $//')
	if [[ $1 == 1 ]]; then
		extra_so=', {"plugin": "fileio", "name": "extra", "dev": "'$BASE'", "readonly": true}'
		extra_tgt=', {"wwn": "'$IQN':extra", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
		  "luns": [{"index": 0, "storage_object": "/backstores/fileio/extra"}]}]}'
	fi
	cat >"$CFG.new" <<-JSON
		{"storage_objects": [
		  {"plugin": "fileio", "name": "base", "dev": "$BASE", "readonly": true},
		  {"plugin": "cow", "name": "room", "base": "/backstores/fileio/base",
		   "overlay_dir": "$OV", "per_initiator": true, "on_new_version": "keep"$versions},
		  {"plugin": "fileio", "name": "hostile", "dev": "$HIMG"}$extra_so],
		 "targets": [
		  {"wwn": "$IQN:hostile", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
		    "luns": [{"index": 0, "storage_object": "/backstores/fileio/hostile"}]}]},
		  {"wwn": "$IQN:room", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
		    "luns": [{"index": 0, "storage_object": "/backstores/cow/room"}]}]}$extra_tgt]}
	JSON
	mv "$CFG.new" "$CFG"
}
soak_config 0
start_lungate -c "$CFG" --control "$SOCK"
count_fds() { find "/proc/$LG_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
rss_kib() { awk '/^RssAnon:/ { print $2 }' "/proc/$LG_PID/status"; }
# bounds: 16 MiB of anonymous memory over the baseline (plus ASan's 256 MiB
# quarantine), 4 descriptors over those after the first logins
rss_bound=$((16 * 1024))
ldd "$LUNGATE" 2>/dev/null | grep -q libasan && rss_bound=$((rss_bound + 256 * 1024))

# the room
reset_cmd="$LUNGATE overlay reset room %s --control $SOCK >/dev/null 2>&1"
pids=()
for ((c = 1; c <= CLIENTS; c++)); do
	"$SOAK_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN:room" -i "$(ini "pc$c")" -b "$BASE" -s "$SECS" \
		-x "$((c * 7919 + RANDOM))" -r "$reset_cmd" >"$LG_TMP/client$c.out" 2>&1 &
	pids+=("$!")
	LG_PIDS+=("$!")
done
# measure once every client has had its first session
sleep 20
rss_start=$(rss_kib)
fds_start=$(count_fds)
log "after the first logins: RssAnon $rss_start KiB, $fds_start open descriptors, $(ls "$OV" | wc -l) overlays"

# beside them: reloads, idle-socket floods, the hostile client (from 127.0.0.2)
reloads=0 floods=0 hostiles=0 extra=0 publishes=0 rollbacks=0 prunes=0
end=$((SECONDS + SECS - 30))
while ((SECONDS < end)); do
	# an image version (the base and a tail of this round's own bytes), and
	# every third round a rollback to an older one and a prune of those no
	# layer is over
	v=$LG_TMP/version-$((reloads + 1)).img
	{ cat "$BASE"; head -c $(((reloads + 1) * 4096)) /dev/urandom; } >"$v"
	out=$("$LUNGATE" image publish room "$v" --note "round $((reloads + 1))" --control "$SOCK" 2>&1) ||
		fail "lungate image publish failed: $out"
	publishes=$((publishes + 1))
	if ((reloads % 3 == 2)); then
		mapfile -t older < <("$LUNGATE" image list room --json --control "$SOCK" |
			jq -r '.versions[] | select(.current | not) | .id')
		((${#older[@]})) || fail "lungate image list shows no older version of room"
		out=$("$LUNGATE" image rollback room "${older[RANDOM % ${#older[@]}]}" --control "$SOCK" 2>&1) ||
			fail "lungate image rollback failed: $out"
		rollbacks=$((rollbacks + 1))
		out=$("$LUNGATE" image prune room --keep 2 --control "$SOCK" 2>&1) || fail "lungate image prune failed: $out"
		prunes=$((prunes + 1))
	fi
	extra=$((1 - extra))
	soak_config "$extra"
	if ((reloads % 2)); then
		kill -HUP "$LG_PID"
	else
		out=$("$LUNGATE" reload --control "$SOCK" 2>&1) || fail "lungate reload failed: $out"
	fi
	reloads=$((reloads + 1))
	LG_BIND_SRC=127.0.0.2 LD_PRELOAD=$BINDSRC "$SOAK_CLIENT" flood 127.0.0.1 "$PORT" 200 10 \
		>>"$LG_TMP/flood.out" 2>&1 &
	fl=$!
	LG_PIDS+=("$fl")
	rc=0
	LG_BIND_SRC=127.0.0.2 LD_PRELOAD=$BINDSRC run "$HOSTILE" --port "$PORT" --iqn "$IQN:hostile" \
		--connections 100 --procs 1 --seconds 10 >>"$LG_TMP/hostile.out" 2>&1 || rc=$?
	((rc == 0)) || { tail -n 20 "$LG_TMP/hostile.out" >&2; fail "the hostile client's checks failed (status $rc)"; }
	hostiles=$((hostiles + 1))
	wait "$fl" || fail "the idle-socket flood failed: $(tail -n 3 "$LG_TMP/flood.out")"
	forget_pid "$fl"
	floods=$((floods + 1))
	assert_alive
	if ((reloads == 1)); then
		# the baseline: once every kind of load has run once (glibc's
		# per-thread arenas and the gateway's pools have grown to their
		# working size by then)
		rss_start=$(rss_kib)
		log "after the first round of reloads, floods and the hostile client: RssAnon $rss_start KiB (the baseline; open descriptors: $(count_fds), the flood's among them)"
	fi
	sleep 5
done
soak_config 0
kill -HUP "$LG_PID"

# the room's verdict
soak_verdict "$CLIENTS"
# the sessions' ends reach the gateway: let it settle before measuring
for ((i = 0; i < 50; i++)); do
	[[ $("$LUNGATE" sessions --control "$SOCK" --json 2>/dev/null | grep -o '"initiator"' | wc -l) == 0 ]] && break
	sleep 0.2
done
sleep 2
rss_end=$(rss_kib)
fds_end=$(count_fds)
flood_fig=$(awk '{o += $3; c += $7} END {print o " opened, " c " closed by the gateway"}' "$LG_TMP/flood.out")
log "figures: $CLIENTS clients, $SECS s: $sessions sessions, $commands commands, $((rbytes >> 20)) MiB read, $((wbytes >> 20)) MiB written, $resets resets, $errors errors, $wrong wrong bytes; $reloads reloads, $floods idle-socket floods ($flood_fig), $hostiles hostile-client runs, $publishes image versions published, $rollbacks rolled back to, $prunes prunes; RssAnon $rss_start KiB -> $rss_end KiB, open descriptors $fds_start -> $fds_end"
((bad == 0)) || fail "$bad of $CLIENTS clients saw wrong data or an error"
((rss_end - rss_start <= rss_bound)) ||
	fail "the gateway's anonymous memory grew by $((rss_end - rss_start)) KiB from the baseline (bound $rss_bound KiB)"
((fds_end <= fds_start + 4)) || fail "the gateway holds $fds_end descriptors, $fds_start after the first logins"
cmp -s "$HIMG" "$LG_TMP/hostile.orig" || fail "the hostile client's image changed"
stop_lungate
# every overlay opens and its map reads without complaint
list=$("$LUNGATE" overlay list -c "$CFG" 2>"$LG_TMP/list.err") || fail "overlay list failed: $(cat "$LG_TMP/list.err")"
[[ ! -s $LG_TMP/list.err ]] || fail "overlay list complained: $(cat "$LG_TMP/list.err")"
n=$(grep -c "$LG_IQN_PREFIX:pc" <<<"$list" || true)
log "overlay list: $n overlays read cleanly"
log "PASS in $((SECONDS - T0)) s"
