#!/usr/bin/env bash
# INQUIRY through `iscsi-inq`: the standard page describes a connected disk
# with a vendor and product; VPD pages 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2 are
# listed as supported and each returns its own contents; an unsupported page is
# refused with ILLEGAL REQUEST / INVALID FIELD IN CDB.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd iscsi-inq

IQN=$LG_IQN_PREFIX:inquiry
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 64
start_lungate --image "$IMG" --iqn "$IQN"
URL=$(iscsi_url 0)

# inq ARGS...: iscsi-inq output, failing the test if it fails.
inq() {
	local out
	out=$(run iscsi-inq -i "$LG_INITIATOR" "$@" "$URL" 2>&1) ||
		fail "iscsi-inq $* failed (status $?): $out"
	printf '%s\n' "$out"
}

# field OUTPUT NAME: the value after "NAME:" in iscsi-inq output.
field() {
	sed -n "s/^$2:\(.*\)\$/\1/p" <<<"$1" | head -n 1
}

std=$(inq)
printf '%s\n' "$std"
[[ $(field "$std" 'Peripheral Qualifier') == CONNECTED ]] || fail "standard INQUIRY: qualifier is not CONNECTED"
[[ $(field "$std" 'Peripheral Device Type') == DIRECT_ACCESS ]] || fail "standard INQUIRY: device type is not DIRECT_ACCESS"
[[ $(field "$std" Removable) == 0 ]] || fail "standard INQUIRY: a disk image should not be removable"
vendor=$(field "$std" Vendor)
product=$(field "$std" Product)
[[ -n ${vendor// /} ]] || fail "standard INQUIRY: empty vendor identification"
[[ -n ${product// /} ]] || fail "standard INQUIRY: empty product identification"
((${#vendor} <= 8)) || fail "standard INQUIRY: vendor '$vendor' longer than 8 characters"
((${#product} <= 16)) || fail "standard INQUIRY: product '$product' longer than 16 characters"
[[ $(field "$std" ReponseDataFormat) == 2 ]] || fail "standard INQUIRY: response data format is not 2"
version=$(field "$std" Version)
# 5: SPC-3, 6: SPC-4, 7: SPC-5 (libiscsi 1.19 prints "6 unknown").
[[ ${version%% *} =~ ^[567]$ ]] || fail "standard INQUIRY: version '$version' claims neither SPC-3, SPC-4 nor SPC-5"

pages=$(inq -e 1 -c 0)
printf '%s\n' "$pages"
for p in 0x00 0x80 0x83 0xb0 0xb1 0xb2; do
	grep -q "^Page:$p " <<<"$pages" || fail "VPD 0x00 does not list page $p"
done

# iscsi-inq takes page codes in decimal.
serial=$(inq -e 1 -c 128)
printf '%s\n' "$serial"
re='Unit Serial Number:\[ *([^] ][^]]*)\]'
[[ $serial =~ $re ]] || fail "VPD 0x80: no non-empty unit serial number"
sn=${BASH_REMATCH[1]}
serial2=$(inq -e 1 -c 128)
[[ $serial2 == "$serial" ]] || fail "VPD 0x80: the serial number changed between two sessions"
log "serial number: $sn"

devid=$(inq -e 1 -c 131)
printf '%s\n' "$devid"
grep -q '^Page Code:(0x83) DEVICE_IDENTIFICATION' <<<"$devid" || fail "VPD 0x83: not a device identification page"
grep -q '^Peripheral Device Type:DIRECT_ACCESS' <<<"$devid" || fail "VPD 0x83: wrong device type"
grep -q '^DEVICE DESIGNATOR #0' <<<"$devid" || fail "VPD 0x83: no designator"
grep -q '^Association:(0) LOGICAL_UNIT' <<<"$devid" || fail "VPD 0x83: no designator of the logical unit"
grep -Eq '^Designator Type:\((1|2|3|8)\)' <<<"$devid" ||
	fail "VPD 0x83: no T10 vendor, EUI-64, NAA or SCSI name designator"

limits=$(inq -e 1 -c 176)
printf '%s\n' "$limits"
mtl=$(field "$limits" 'maximum transfer length')
otl=$(field "$limits" 'optimal transfer length')
[[ $mtl =~ ^[0-9]+$ && $otl =~ ^[0-9]+$ ]] || fail "VPD 0xB0: no block limits"
if ((mtl != 0 && otl > mtl)); then
	fail "VPD 0xB0: optimal transfer length $otl exceeds the maximum $mtl"
fi

bdc=$(inq -e 1 -c 177)
printf '%s\n' "$bdc"
grep -q '^Medium Rotation Rate:' <<<"$bdc" || fail "VPD 0xB1: not a block device characteristics page"

lbp=$(inq -e 1 -c 178)
printf '%s\n' "$lbp"
grep -q '^provisioning type:' <<<"$lbp" || fail "VPD 0xB2: not a logical block provisioning page"

# A page the gateway does not have: INVALID FIELD IN CDB.
if bad=$(run iscsi-inq -i "$LG_INITIATOR" -e 1 -c 153 "$URL" 2>&1); then
	fail "VPD 0x99 (unsupported) succeeded: $bad"
fi
if ! grep -q 'ILLEGAL_REQUEST' <<<"$bad" || ! grep -q 'INVALID_FIELD_IN_CDB' <<<"$bad"; then
	fail "VPD 0x99 (unsupported) did not fail with ILLEGAL_REQUEST/INVALID_FIELD_IN_CDB: $bad"
fi

assert_alive
stop_lungate
log "PASS"
