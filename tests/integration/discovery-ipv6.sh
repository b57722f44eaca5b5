#!/usr/bin/env bash
# Discovery over IPv6: a gateway listening on 127.0.0.1 and [::1] is found by
# `iscsi-ls -s iscsi://[::1]:PORT`, every portal it returns logs in and shows
# LUN 0 with the image's size, and a whole read over [::1] matches the file.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd iscsi-ls qemu-img
require_ipv6_loopback

IQN=$LG_IQN_PREFIX:discovery6
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 64
LG_LISTEN_V6=1 start_lungate --image "$IMG" --iqn "$IQN"

out=$(run iscsi-ls -i "$LG_INITIATOR" -s "iscsi://[::1]:$PORT") ||
	fail "iscsi-ls -s over [::1] failed (status $?): $out"
printf '%s\n' "$out"

grep -Eq "^Target:$IQN Portal:\[::1\]:$PORT,[0-9]+\$" <<<"$out" ||
	fail "iscsi-ls over [::1] did not list Target:$IQN with Portal [::1]:$PORT,<tag>"
targets=$(grep -c '^Target:' <<<"$out" || true)
luns=$(grep -c '^Lun:0 \+Type:DIRECT_ACCESS (Size:63M)$' <<<"$out" || true)
((luns == targets)) ||
	fail "$targets portal(s) listed but $luns showed 'Lun:0 Type:DIRECT_ACCESS (Size:63M)'"
if grep '^Target:' <<<"$out" | grep -Ev "Portal:(127\.0\.0\.1|\[::1\]):$PORT,"; then
	fail "iscsi-ls listed a portal that the gateway does not listen on"
fi

cmp_out=$(run qemu-img compare -f raw -F raw "$IMG" "$(iscsi_url 0 "$IQN" '[::1]')" 2>&1) ||
	fail "qemu-img compare over [::1] failed: $cmp_out"

assert_alive
stop_lungate
log "PASS"
