#!/usr/bin/env bash
# Initiator names are untrusted. Clients log in (qemu-io's initiator-name=,
# iscsi-inq -i, lg-cow-client -i) with names holding "../", "/", an absolute
# path, ".", "..", control characters (SOH, ESC, DEL, TAB, newline), '%'
# sequences that look like the escaping itself, and overlong names (223
# bytes, the most a login accepts; two that differ only after byte 200). Each
# such client writes and reads back its own data, and:
#  - nothing is created or changed outside overlay_dir (the whole test folder
#    is listed before and after; the paths a naive join would produce do not
#    exist), and overlay_dir holds only regular files with tame names, one per
#    client;
#  - a symlink planted in overlay_dir under a client's overlay name is not
#    followed: the file it points to is unchanged;
#  - a 224-byte name is refused and creates nothing;
#  - `lungate overlay list` shows each client's real name (printable names
#    exactly), and prints no raw control character (a name must not be able
#    to send escape sequences to the administrator's terminal).
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd iscsi-inq

BASE=$LG_TMP/base.img
OV=$LG_TMP/d1/d2/overlays
CFG=$LG_TMP/cow.json
mkdir -p "$LG_TMP/d1/d2" "$LG_TMP/out"   # out: this script's own files
make_random_image "$BASE" 4
base_sha=$(sha "$BASE")
cow_config "$CFG" "$BASE" "$OV"
start_lungate -c "$CFG"

# The planted symlink: a client's overlay name pointing outside overlay_dir.
VICTIM=$(ini victim)
mkdir -p "$OV"
make_random_image "$LG_TMP/outside.img" 5
outside_sha=$(sha "$LG_TMP/outside.img")
ln -s "$LG_TMP/outside.img" "$OV/$VICTIM.cow"

long_slashes=$(printf '/%.0s' $(seq 223))
long_a="iqn.x:$(printf '%%%.0s' $(seq 196))-aaaaaaaaaaaaaaaaaaaa"   # '%' escapes to 3 bytes
long_b="iqn.x:$(printf '%%%.0s' $(seq 196))-aaaaaaaaaaaaaaaaaaab"
plain_223="$LG_IQN_PREFIX:$(printf 'x%.0s' $(seq $((223 - ${#LG_IQN_PREFIX} - 1))))"
too_long="${plain_223}y"
((${#long_slashes} == 223 && ${#long_a} == 223 && ${#plain_223} == 223 && ${#too_long} == 224)) ||
	fail "test bug: the long names have the wrong lengths"

# name|client: q = qemu-io, l = lg-cow-client (libiscsi), i = iscsi-inq + lg-cow-client
names=(
	"../../naive-escape|q"
	"$LG_TMP/abs-escape|q"
	"iqn.x:a/b/../../../../c|q"
	".|l"
	"..|l"
	"./.hidden|q"
	"iqn.x:%2f|l"
	"iqn.x:/|l"
	"iqn.x:%25|l"
	$'iqn.x:ctl\x01\x1b[31mred\x7f\ttab|l'
	$'iqn.x:nl\nts=2026 level=warn forged-line|l'
	"$long_slashes|q"
	"$long_a|l"
	"$long_b|l"
	"$plain_223|i"
)

before=$(cd "$LG_TMP" && find . \( -path ./d1/d2/overlays -o -path ./out \) -prune -o -printf '%p %y %s\n' | grep -v '^\./lungate\.' | LC_ALL=C sort)

client_write() { # NAME CLIENT BYTE
	case $2 in
	q)
		qio "$1" -c "write -P $3 4096 512" -c flush
		qio "$1" -c "read -P $3 4096 512" ;;
	l | i)
		if [[ $2 == i ]]; then
			run iscsi-inq -i "$1" "iscsi://127.0.0.1:$PORT/$IQN/0" >/dev/null ||
				fail "iscsi-inq as $(printf %q "$1") failed"
		fi
		out=$(run "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$1" write 4096 512 "$3" 2>&1) ||
			fail "writing as $(printf %q "$1") failed: $out" ;;
	esac
}
client_read() { # NAME BYTE
	out=$(run "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$1" read 4096 512 "$2" 2>&1) ||
		fail "$(printf %q "$1") does not read back its own data: $out"
}

byte=16
for entry in "${names[@]}"; do
	client_write "${entry%|*}" "${entry##*|}" $byte
	byte=$((byte + 1))
done
byte=16
for entry in "${names[@]}"; do
	client_read "${entry%|*}" $byte
	byte=$((byte + 1))
done

# The symlink: the login may be refused, but nothing may go through it.
"$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$VICTIM" write 0 65536 0x99 >"$LG_TMP/out/victim.out" 2>&1 || true
log "victim behind a planted symlink: $(cat "$LG_TMP/out/victim.out")"
[[ $(sha "$LG_TMP/outside.img") == "$outside_sha" ]] ||
	fail "a client's overlay symlinked to a file outside overlay_dir wrote through the symlink"

# Too long: refused, nothing created.
if out=$(run "$COW_CLIENT" -p "127.0.0.1:$PORT" -t "$IQN" -i "$too_long" write 0 512 0x42 2>&1); then
	fail "a 224-byte initiator name logged in and wrote: $out"
fi
assert_alive
stop_lungate

# Nothing outside overlay_dir.
after=$(cd "$LG_TMP" && find . \( -path ./d1/d2/overlays -o -path ./out \) -prune -o -printf '%p %y %s\n' | grep -v '^\./lungate\.' | LC_ALL=C sort)
if [[ $before != "$after" ]]; then
	fail "files outside overlay_dir changed: $(diff <(echo "$before") <(echo "$after") | tr '\n' ' ')"
fi
for p in "$LG_TMP/d1/naive-escape.cow" "$LG_TMP/naive-escape.cow" "$LG_TMP/abs-escape.cow" \
	"$LG_TMP/c.cow" "$LG_TMP/d1/d2/c.cow" "$OV/.hidden.cow"; do
	[[ ! -e $p ]] || fail "a hostile name created $p"
done
[[ $(sha "$BASE") == "$base_sha" ]] || fail "the base file changed"

# overlay_dir: regular files with tame names, one per client, plus the symlink.
n=0
while IFS= read -r -d '' f; do
	name=${f##*/}
	if [[ $name == "$VICTIM.cow" ]]; then
		[[ -L $f ]] || log "note: the planted symlink was replaced by a regular file"
		continue
	fi
	[[ -f $f && ! -L $f ]] || fail "overlay_dir holds something other than a regular file: $(printf %q "$name")"
	[[ $name =~ ^[a-z0-9:_%~-][a-z0-9.:_%~-]*\.cow$ ]] || fail "overlay file with an untame name: $(printf %q "$name")"
	((${#name} <= 255)) || fail "overlay file name longer than 255 bytes"
	n=$((n + 1))
done < <(find "$OV" -mindepth 1 -print0)
((n == ${#names[@]})) || fail "expected ${#names[@]} overlay files (one per client), found $n: $(ls "$OV")"

# The listing: real names, no raw control characters. The gateway's log, too,
# must not let a name forge a line. These display checks are all run, and
# reported together.
"$LUNGATE" overlay list -c "$CFG" >"$LG_TMP/out/list.out" 2>"$LG_TMP/out/list.err" ||
	fail "overlay list failed: $(cat "$LG_TMP/out/list.err")"
log "overlay list (control characters shown by cat -v):"
cat -v "$LG_TMP/out/list.out" >&2
problems=()
for entry in "${names[@]}"; do
	name=${entry%|*}
	[[ $name == *[[:cntrl:]]* ]] && continue
	grep -qF -- " $name " "$LG_TMP/out/list.out" || problems+=("overlay list does not show the name $(printf %q "$name")")
done
for part in 'iqn.x:ctl' 'red' 'tab' 'iqn.x:nl' 'forged-line'; do
	grep -qF -- "$part" "$LG_TMP/out/list.out" ||
		problems+=("overlay list does not show the names with control characters (no '$part')")
done
if LC_ALL=C grep -q '[[:cntrl:]]' "$LG_TMP/out/list.out"; then
	problems+=("overlay list prints raw control characters from initiator names, so a client's name can send escape sequences to the administrator's terminal: $(LC_ALL=C grep '[[:cntrl:]]' "$LG_TMP/out/list.out" | cat -v | cut -c1-80 | head -n 2 | tr '\n' ' ')")
fi
[[ $(grep -c . "$LG_TMP/out/list.out") == $((${#names[@]} + 1)) ]] ||
	problems+=("overlay list should print a header and ${#names[@]} lines, but a name with a newline adds a line of the client's choosing: $(grep -a '^ts=2026 level=warn forged-line' "$LG_TMP/out/list.out" | cut -c1-60)")
if grep -aq '^ts=2026 level=warn forged-line' "$LG_LOG"; then
	problems+=("the gateway's log holds a line forged by an initiator name with a newline: $(grep -a '^ts=2026 level=warn forged-line' "$LG_LOG" | head -n 1 | cut -c1-80)")
fi
if LC_ALL=C grep -a "iqn.x:ctl" "$LG_LOG" | LC_ALL=C grep -q $'[\x01\x1b\x7f]'; then
	problems+=("the gateway's log prints raw control characters (ESC, SOH, DEL) from an initiator name")
fi
if ((${#problems[@]})); then
	for p in "${problems[@]}"; do
		log "problem: $p"
	done
	fail "${#problems[@]} problem(s) showing hostile initiator names (see above); the overlay files themselves were safe"
fi
log "PASS"
