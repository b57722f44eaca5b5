#!/usr/bin/env bash
# An overlay records the identity of the base it was made over and is refused
# over any other: after the base file's content changes, the client's login
# fails, the gateway's log says "different base", the overlay file is left
# as it was, and other clients (no overlay yet) still work. Restoring the
# original base makes the overlay usable again, with its data.
#
# Cases, each on a fresh copy of the base (one sector changed, the file's
# size and name unchanged, unless said otherwise):
#   head      a sector in the first 64 KiB
#   tail      the last sector
#   middle    a sector in the middle of the file (3 MiB + 8 KiB)
#   spread    one sector in every MiB
#   size      the file grown by 1 MiB
#   commit    the base replaced by another client's committed disk (the
#             upgrade path: the old overlays must be refused, not reused)
# All cases are run and the failing ones reported together.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

BASE=$LG_TMP/base.img
ORIG=$LG_TMP/original.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
SIZE=$((8 << 20))
make_random_image "$ORIG" 8
cp "$ORIG" "$BASE"
cow_config "$CFG" "$BASE" "$OV"
start_lungate -c "$CFG"
C=$(ini base-change)
qio "$C" -c 'write -P 0xd1 5M 4k' -c flush
# A second client's disk, committed: differs from the base only at 7 MiB.
qio "$(ini upgrader)" -c 'write -P 0xd2 7M 4k' -c flush
stop_lungate
run "$LUNGATE" overlay commit -c "$CFG" c "$(ini upgrader)" "$LG_TMP/committed.img" >/dev/null ||
	fail "overlay commit of the upgrader's disk failed"
rm -f "$OV/$(ini upgrader).cow"
ov_sha=$(sha "$OV/$C.cow")

# change_base CASE: make $BASE the original changed as CASE says.
change_base() {
	cp "$ORIG" "$BASE"
	case $1 in
	head) patch_image "$BASE" 4096 512 0xee ;;
	tail) patch_image "$BASE" $((SIZE - 512)) 512 0xee ;;
	middle) patch_image "$BASE" $(((3 << 20) + 8192)) 512 0xee ;;
	spread)
		local args=() m
		for ((m = 0; m < 8; m++)); do args+=($((m * 1048576 + 300 * 512)) 512 0xee); done
		patch_image "$BASE" "${args[@]}" ;;
	size) head -c 1048576 /dev/urandom >>"$BASE" ;;
	commit) cp "$LG_TMP/committed.img" "$BASE" ;;
	esac
}

problems=()
for case in head tail middle spread size commit; do
	change_base "$case"
	start_lungate -c "$CFG"
	refused=1
	if out=$(run qemu-io --image-opts "$(image_opts "$C")" -c 'read -P 0xd1 5M 4k' 2>&1); then
		problems+=("$case: $C logged in over a changed base and was served its old overlay over it: $(head -n 1 <<<"$out")")
		log "$case: NOT refused"
		refused=0
	elif ! grep -q 'different base' "$LG_LOG"; then
		problems+=("$case: the login failed, but the gateway's log does not say \"different base\": $(tail -n 3 "$LG_LOG" | tr '\n' ' ')")
	else
		log "$case: refused: $(grep 'different base' "$LG_LOG" | head -n 1 | cut -c1-240)"
	fi
	assert_alive
	qio "$(ini newcomer-$case)" -c 'read 0 4k'     # clients without an overlay still work
	stop_lungate
	if ((refused)); then
		[[ $(sha "$OV/$C.cow") == "$ov_sha" ]] || fail "$case: the refused overlay file was changed"
	else
		ov_sha=$(sha "$OV/$C.cow")     # the session updated its last use
	fi
	rm -f "$OV/$(ini newcomer-$case).cow"
done

# The original base back: the overlay works again, with its data.
cp "$ORIG" "$BASE"
start_lungate -c "$CFG"
qio "$C" -c 'read -P 0xd1 5M 4k'
stop_lungate

if ((${#problems[@]})); then
	for p in "${problems[@]}"; do
		log "problem: $p"
	done
	fail "${#problems[@]} kind(s) of base change not detected (see above)"
fi
log "PASS"
