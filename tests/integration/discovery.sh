#!/usr/bin/env bash
# Discovery: `iscsi-ls -s` (SendTargets, then a normal login, REPORT LUNS,
# INQUIRY, READ CAPACITY per LUN) lists exactly our target, its portal and its
# LUN 0 with the image's size.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd iscsi-ls

IQN=$LG_IQN_PREFIX:discovery
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 64 12288
start_lungate --image "$IMG" --iqn "$IQN"

# iscsi-ls prints (last LBA * block length) scaled down by 1024 while > 1024.
expected_size() {
	local bytes=$1 bs=$2 s pf=0 units=" kMGT"
	s=$((bytes - bs))
	while ((pf < 4 && s > 1024)); do
		s=$((s / 1024))
		pf=$((pf + 1))
	done
	printf '%s%s' "$s" "${units:pf:1}"
}
size=$(file_size "$IMG")
want512=$(expected_size "$size" 512)
want4k=$(expected_size "$size" 4096)

out=$(run iscsi-ls -i "$LG_INITIATOR" -s "iscsi://127.0.0.1:$PORT") ||
	fail "iscsi-ls -s failed (status $?): $out"
printf '%s\n' "$out"

targets=$(grep -c '^Target:' <<<"$out" || true)
((targets == 1)) || fail "iscsi-ls listed $targets targets, want exactly 1"
grep -Eq "^Target:$IQN Portal:127\.0\.0\.1:$PORT,[0-9]+\$" <<<"$out" ||
	fail "iscsi-ls did not list Target:$IQN with Portal 127.0.0.1:$PORT,<tag>"
luns=$(grep -c '^Lun:' <<<"$out" || true)
((luns == 1)) || fail "iscsi-ls listed $luns LUNs, want exactly 1"
lunline=$(grep '^Lun:' <<<"$out")
[[ $lunline =~ ^Lun:0\ +Type:DIRECT_ACCESS\ \(Size:([0-9]+[\ kMGT])\)$ ]] ||
	fail "LUN line '$lunline' is not 'Lun:0 Type:DIRECT_ACCESS (Size:...)'"
got=${BASH_REMATCH[1]}
[[ $got == "$want512" || $got == "$want4k" ]] ||
	fail "iscsi-ls shows Size:$got for a $size-byte image, want Size:$want512"

# Discovery through a second, different initiator name works the same.
out2=$(run iscsi-ls -i "$LG_IQN_PREFIX:other-initiator" "iscsi://127.0.0.1:$PORT") ||
	fail "iscsi-ls (no -s) failed: $out2"
grep -q "^Target:$IQN " <<<"$out2" || fail "plain iscsi-ls did not list $IQN: $out2"

assert_alive
stop_lungate
log "PASS"
