#!/usr/bin/env bash
# Power cuts of the gateway's machine (issue 20).
#
# The gateway runs in a Debian VM whose data disk has a volatile write cache
# (see functions.sh); the test pulls the plug (SIGKILL to QEMU and nbdkit) at
# a random moment, PC_CUTS times (default 20, 10 with the ASan build), and
# boots the VM again each time:
#
# * every other cut is a quiet one: the writers are stopped a second before
#   the plug is pulled, so nothing is in flight and the last flush must have
#   been durable by itself; the others cut in the middle of the writing.
# * two writers on the host, lg-cow-client torture (libiscsi), write
#   numbered, self-describing data, each write logged once sent, once
#   complete, and once durable (FUA, or a SYNCHRONIZE CACHE after it): one to
#   its own overlay of a per-initiator cow LUN (a new initiator every cut, so
#   that most writes allocate blocks), one to a qcow2 LUN (qemu-nbd in the
#   guest).  After every cut, with the gateway started again, the disks are
#   read back whole (the qcow2 LUN, the overlay written before the cut, and
#   one written before an earlier cut): every durable write must be there,
#   and every sector must hold the data of the last durable write, or of a
#   later one sent but never made durable (whole), or the base's
#   (lg-cow-client check); every overlay must open (the login opens it).
# * some boots commit a third client's disk (`lungate overlay commit`) again
#   and again until the cut: every committed file found after the cut must be
#   that disk, complete (its size and SHA-256), and the last one reported
#   done before the cut must be there.
# * some boots run `lungate save` over the config file again and again: after
#   the cut, the file must be the old one or a saved one, whole (its
#   SHA-256), and the gateway must start on it.
# * some boots publish image versions of a second per-initiator object
#   ("shelf") from client C's disk there, roll back to version 1 and prune
#   the published one, again and again (`lungate image`): after the cut the
#   gateway must start on the config, every version it names must have its
#   file, complete, every version file there is must be complete, and the
#   last step reported done must be in the config (a published version
#   listed and current, a rollback's current version, a pruned one gone).
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

# 20 cuts; 10 with the AddressSanitizer build (the suite runs both builds, so
# a CI run makes 30, and stays within its time)
CUTS=20
ldd "$LUNGATE" 2>/dev/null | grep -q libasan && CUTS=10
CUTS=${PC_CUTS:-$CUTS}
# what each boot does beside the writers, in turn (PC_MODES: io, commit, save,
# publish)
read -r -a MODES <<<"${PC_MODES:-io commit io save io publish}"
SIZE_MIB=16
IQN=$LG_IQN_PREFIX:pc
# A: writes to its overlay; a new initiator (so a new overlay) every cut, so
# that most of its writes allocate blocks and a lost map page shows
Q=$(ini pc-q)   # writes to the qcow2 LUN
C=$(ini pc-c)   # its disk is committed
BASE=$LG_TMP/base.img
DATA=$LG_TMP/data.img
T0=$SECONDS

make_random_image "$BASE" "$SIZE_MIB"
d=$LG_TMP/datadir
mkdir -p "$d/overlays" "$d/commit" "$d/shelf" "$d/versions"
chmod 700 "$d/overlays" "$d/shelf"
cp "$LUNGATE" "$d/lungate"
cp "$BASE" "$d/base.img"
qemu-img convert -f raw -O qcow2 "$BASE" "$d/disk.qcow2" || fail "qemu-img convert failed"
cat >"$d/lungate.json" <<-JSON
	{"storage_objects": [
	  {"plugin": "fileio", "name": "base", "dev": "/mnt/base.img", "readonly": true},
	  {"plugin": "cow", "name": "room", "base": "/backstores/fileio/base",
	   "overlay_dir": "/mnt/overlays", "per_initiator": true},
	  {"plugin": "cow", "name": "shelf", "base": "/backstores/fileio/base",
	   "overlay_dir": "/mnt/shelf", "per_initiator": true},
	  {"plugin": "qcow2", "name": "q", "dev": "/mnt/disk.qcow2"}],
	 "targets": [
	  {"wwn": "$IQN:room", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
	    "luns": [{"index": 0, "storage_object": "/backstores/cow/room"}]}]},
	  {"wwn": "$IQN:shelf", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
	    "luns": [{"index": 0, "storage_object": "/backstores/cow/shelf"}]}]},
	  {"wwn": "$IQN:qcow", "tpgs": [{"tag": 1, "attributes": {"generate_node_acls": 1},
	    "luns": [{"index": 0, "storage_object": "/backstores/qcow2/q"}]}]}]}
JSON
cfg_ok=" $(sha256sum <"$d/lungate.json" | cut -c1-64) "
pc_make_data "$d" "$DATA"
rm -rf "$d"

# check_versions: after a cut, the versions of "shelf" the config names (the
# probe's `lungate image list --json`) and the version files there are
check_versions() {
	local json files name size sha f
	json=$(pc_lines 'versions ' | sed 's/^versions //')
	jq -e '.ok == true' >/dev/null 2>&1 <<<"$json" ||
		fail "boot $PC_N: lungate image list cannot read the config's versions: $json"
	files=$(pc_lines 'versionfile ' || true)
	while read -r _ name size sha; do
		[[ -n $name ]] || continue
		[[ $size == "$size_c" && $sha == "$expect_c" ]] ||
			fail "boot $PC_N: version file $name is torn: $size bytes, SHA-256 $sha (want $size_c bytes, $expect_c)"
	done <<<"$files"
	while read -r f; do
		[[ $f == /mnt/base.img ]] && continue
		grep -q "^versionfile ${f##*/} " <<<"$files" ||
			fail "boot $PC_N: the config names version file $f, which is not there (files: $(awk '{print $2}' <<<"$files" | tr '\n' ' '))"
	done < <(jq -r '.versions[].file' <<<"$json")
	local step v current
	read -r step v _ <<<"$last_step"
	current=$(jq -r '.versions[] | select(.current) | .id' <<<"$json")
	case $step in
	published) [[ $current == "$v" ]] ||
		fail "boot $PC_N: version $v, reported published before the cut, is not current (current: $current)" ;;
	rolledback) [[ $current == "$v" ]] ||
		fail "boot $PC_N: the rollback to version $v reported before the cut is lost (current: $current)" ;;
	pruned) jq -e --argjson v "$v" 'all(.versions[]; .id != $v)' >/dev/null <<<"$json" ||
		fail "boot $PC_N: version $v, reported pruned before the cut, is still in the config" ;;
	esac
	[[ -z $last_step ]] || log "boot $PC_N: shelf: versions $(jq -r '[.versions[].id] | join(",")' <<<"$json") (current ${current:-none}), $(grep -c . <<<"$files" || true) version files whole; last step before the cut: $last_step"
	last_step=
}

client() { # client INITIATOR TARGET ARGS...
	local who=$1 tgt=$2
	shift 2
	run "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$tgt" -i "$who" "$@"
}

# ---- first boot: C's disks get their data (FUA writes), which commits and
# publishes copy ----
pc_boot "$DATA" io
log "boot 1: the gateway listens $PC_BOOT_SECS s after QEMU started"
cp "$BASE" "$LG_TMP/expect-c.img"
for w in "0 4096 0x11" "65536 65536 0x22" "$((5 << 20)) 512 0x33" "$((9 << 20)) 200704 0x44"; do
	# shellcheck disable=SC2086 # OFFSET LENGTH BYTE
	out=$(client "$C" "$IQN:room" write $w fua) || fail "C's write $w failed: $out"
	# shellcheck disable=SC2086
	out=$(client "$C" "$IQN:shelf" write $w fua) || fail "C's write $w to shelf failed: $out"
	# shellcheck disable=SC2086
	"$COW_CLIENT" fill "$LG_TMP/expect-c.img" $w
done
expect_c=$(sha256sum <"$LG_TMP/expect-c.img" | cut -c1-64)
size_c=$((SIZE_MIB << 20))

TLOG_Q=$LG_TMP/torture-q.log
: >"$TLOG_Q"
quiet=0 sent_a=0 durable_a=0 mid_write=0 commits=0 saves=0 commit_cuts=0 save_cuts=0 boot_secs=$PC_BOOT_SECS
publishes=0 publish_cuts=0 last_step='' mode=io
last_committed=
for ((cut = 1; cut <= CUTS + 1; cut++)); do
	# what the last cut left (the first boot: the fresh disk)
	sum=$(pc_lines 'cfgsum ' | awk '{print $2}')
	# image commands write the config with new content each time: the checks
	# of the versions below (the gateway started on it) judge it instead
	[[ $mode != publish ]] || cfg_ok+="$sum "
	[[ $cfg_ok == *" $sum "* ]] ||
		fail "boot $PC_N: the config file is neither the original nor a saved one (SHA-256 $sum): torn by the cut"
	while read -r _ name size sha; do
		[[ $size == "$size_c" && $sha == "$expect_c" ]] ||
			fail "boot $PC_N: committed file $name is torn: $size bytes, SHA-256 $sha (want $size_c bytes, $expect_c)"
	done < <(pc_lines 'commitfile ')
	if [[ -n $last_committed ]]; then
		pc_lines 'commitfile ' | grep -q "^commitfile $last_committed " ||
			fail "boot $PC_N: $last_committed, reported committed before the cut, is gone ($(pc_lines 'commitdir'))"
	fi
	last_committed=
	check_versions
	# the disks written before the last cut, and one written before an earlier one
	checks=("Q $IQN:qcow $TLOG_Q")
	if ((cut > 1)); then
		checks+=("A$((cut - 1)) $IQN:room $LG_TMP/torture-a$((cut - 1)).log")
		old=$((RANDOM % (cut - 1) + 1))
		((old == cut - 1)) || checks+=("A$old $IQN:room $LG_TMP/torture-a$old.log")
	fi
	for w in "${checks[@]}"; do
		read -r who tgt tlog <<<"$w"
		name=$(ini "pc-${who,,}")
		[[ $who != Q ]] || name=$Q
		out=$(client "$name" "$tgt" check "$BASE" "$tlog" 2>&1) ||
			fail "boot $PC_N: after cut $((cut - 1)), $who's disk lost durable writes or holds torn data:
$out"
		log "boot $PC_N: $who: ${out##*$'\n'}"
	done
	((cut <= CUTS)) || break
	A=$(ini "pc-a$cut")
	TLOG_A=$LG_TMP/torture-a$cut.log
	: >"$TLOG_A"

	# write until the plug is pulled
	for w in "A $IQN:room $TLOG_A" "Q $IQN:qcow $TLOG_Q"; do
		read -r who tgt tlog <<<"$w"
		bg_start "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$tgt" -i "${!who}" torture "$BASE" "$tlog" \
			>"$LG_TMP/torture-$who.out" 2>&1
		printf -v "pid_$who" %s "$BG_PID"
		printf -v "sent_$who" %s "$(grep -c '^w' "$tlog" || true)"
	done
	for ((i = 0; i < 300; i++)); do
		(($(grep -c '^w' "$TLOG_A" || true) > sent_A && $(grep -c '^w' "$TLOG_Q" || true) > sent_Q)) && break
		pid_alive "$pid_A" && pid_alive "$pid_Q" || break
		sleep 0.1
	done
	mode=$(cat "$LG_TMP/boot$PC_N/mode")
	case $mode in
	commit) pc_wait_line 'committed ' 120 ;;
	save) pc_wait_line 'saved ' 60 ;;
	publish) pc_wait_line 'step published ' 120 ;;
	esac
	if ((cut % 2 == 0)); then
		# a quiet cut: the writers stop (SIGSTOP) while A's writes still
		# allocate blocks (its first 2-40 writes: the torture workload soon
		# covers all the blocks it ever writes), what they sent completes,
		# and the plug is pulled with nothing in flight, so the last flush
		# before it must have made its writes and map pages durable on its own
		k=$((2 + RANDOM % 39))
		for ((i = 0; i < 600; i++)); do
			(($(grep -c '^w' "$TLOG_A" || true) >= k)) && break
			sleep 0.01
		done
		kill -STOP "$pid_A" "$pid_Q"
		sleep 1
		quiet=$((quiet + 1))
	else
		sleep "$((RANDOM % 3)).$(printf '%03d' $((RANDOM % 1000)))"
	fi
	pid_alive "$pid_A" || fail "cut $cut: A's writer ended before the cut: $(cat "$LG_TMP/torture-A.out")"
	pid_alive "$pid_Q" || fail "cut $cut: Q's writer ended before the cut: $(cat "$LG_TMP/torture-Q.out")"
	pc_cut
	kill -CONT "$pid_A" "$pid_Q" 2>/dev/null || true
	for who in A Q; do
		p=pid_$who
		rc=0
		wait "${!p}" || rc=$?
		forget_pid "${!p}"
		# libiscsi ends the commands of a connection that broke under them
		# with a UNIT ATTENTION (29h: reset) of its own making
		if ((rc == 2)) && grep -q 'CHECK CONDITION sense key=0x06 asc=0x29' "$LG_TMP/torture-$who.out"; then
			rc=0
		fi
		((rc == 0)) || fail "cut $cut: $who's writer failed (status $rc) before the cut: $(cat "$LG_TMP/torture-$who.out")"
		tlog=TLOG_$who
		if tail -n 1 "${!tlog}" | grep -q '^w'; then
			mid_write=$((mid_write + 1))
		fi
	done
	case $mode in
	commit)
		commits=$((commits + $(pc_lines 'committed ' | wc -l)))
		last_committed=$(pc_lines 'committed ' | tail -n 1 | awk '{print $2}')
		commit_cuts=$((commit_cuts + 1)) ;;
	save)
		saves=$((saves + $(pc_lines 'saved ' | wc -l)))
		cfg_ok+="$(pc_lines 'saved ' | awk '{print $3}' | sort -u | tr '\n' ' ')"
		save_cuts=$((save_cuts + 1)) ;;
	publish)
		publishes=$((publishes + $(pc_lines 'step published ' | wc -l)))
		last_step=$(pc_lines 'step ' | tail -n 1 || true)
		publish_cuts=$((publish_cuts + 1)) ;;
	esac
	failed=$(pc_lines 'publish failed' | head -n 3 || true)
	[[ -z $failed ]] || fail "cut $cut: an image command failed before the cut: $failed"
	while read -r l; do log "cut $cut: $l"; done < <(pc_lines 'commit failed|save failed' | head -n 3)
	log "cut $cut ($mode): writes sent A$cut $(grep -c '^w' "$TLOG_A" || true), Q $(grep -c '^w' "$TLOG_Q" || true)"
	# (|| true: grep -c exits 1 on a count of 0, and a cut can come before
	# A's first durable write; under set -e that ended the test silently)
	sent_a=$((sent_a + $(grep -c '^w' "$TLOG_A" || true)))
	durable_a=$((durable_a + $(grep -c '^[ds]' "$TLOG_A" || true)))

	next=${MODES[cut % ${#MODES[@]}]}
	pc_boot "$DATA" "$next" "$C"
	boot_secs=$((boot_secs + PC_BOOT_SECS))
done
pc_cut
read -r _ _ sent durable < <("$COW_CLIENT" model "$BASE" "$TLOG_Q" "$COW_BLOCK")
log "overlays: $sent_a writes sent to $CUTS overlays, $durable_a FUA writes and flushes completed; qcow2: $sent writes sent, $durable durable"
log "PASS: $CUTS power cuts ($quiet with the writers stopped first; $mid_write of $((2 * CUTS)) writers cut with a write in flight; $commit_cuts cuts during commits ($commits commits done), $save_cuts during saves ($saves saves done), $publish_cuts during image publishing ($publishes versions published)); $PC_N boots, $((boot_secs / PC_N)) s each to a listening gateway; $((SECONDS - T0)) s in all"
