#!/usr/bin/env bash
# libiscsi's SCSI compliance suite (`iscsi-test-cu -d`, destructive tests
# allowed) against a 96 MiB writable LUN: the suites TestUnitReady, Inquiry,
# ReadCapacity10, ReadCapacity16, Read6, Read10, Read12, Read16, Write10,
# Write12, Write16, ReportSupportedOpcodes and Mandatory (issue 2), and the
# thin-provisioning, COMPARE AND WRITE, WRITE AND VERIFY, PRE-FETCH, READ DEFECT
# DATA, RESERVE(6) and PERSISTENT RESERVE IN/OUT suites (SUITES below) must all run, with no
# failed test, assert or suite. Then the WriteProtect tests run against a
# --readonly LUN, where they must run (not skip) and pass.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=cunit.sh
source "$(dirname "$0")/cunit.sh"
require_cmd iscsi-test-cu

SUITES=(TestUnitReady Inquiry ReadCapacity10 ReadCapacity16 Read6 Read10 Read12 Read16
	Write10 Write12 Write16 ReportSupportedOpcodes Mandatory
	Unmap WriteSame10 WriteSame16 GetLBAStatus CompareAndWrite WriteVerify10 WriteVerify12
	WriteVerify16 Prefetch10 Prefetch16 ReadDefectData10 ReadDefectData12 Reserve6
	WriteAtomic16 OrWrite ExtendedCopy ReceiveCopyResults
	PrinReadKeys PrinServiceactionRange PrinReportCapabilities ProutRegister ProutReserve ProutClear ProutPreempt)
RO_TESTS=(Write10.WriteProtect Write12.WriteProtect Write16.WriteProtect)

list=$(iscsi-test-cu --list) || fail "iscsi-test-cu --list failed"

# expected_tests NAME...: how many tests iscsi-test-cu has in these suites/tests.
expected_tests() {
	local n=0 s c
	for s in "$@"; do
		if [[ $s == *.* ]]; then
			c=$(grep -cx "SCSI\.$s" <<<"$list" || true)
		else
			c=$(grep -c "^SCSI\.$s\.[^.]*\$" <<<"$list" || true)
		fi
		((c > 0)) || fail "iscsi-test-cu has no SCSI.$s (see iscsi-test-cu --list)"
		n=$((n + c))
	done
	echo "$n"
}

# run_suite LOG URL NAME...: run SCSI.NAME... and check the CUnit run summary
# (LG_QUIET=1: say nothing unless it fails).
run_suite() {
	local logf=$1 url=$2 tests rc=0 want
	shift 2
	want=$(expected_tests "$@")
	tests=$(printf 'SCSI.%s,' "$@")
	tests=${tests%,}
	[[ -n ${LG_QUIET:-} ]] || log "iscsi-test-cu -d -t $tests ($want tests)"
	LG_CU_LOG=$logf
	LG_CMD_TIMEOUT=400 run iscsi-test-cu -d -i "$LG_INITIATOR" -I "$LG_INITIATOR-2" \
		-t "$tests" "$url" >"$logf" 2>&1 || rc=$?
	cu_summary "$logf"
	[[ -n ${LG_QUIET:-} ]] || log "$CU_LINE"
	local nsuites
	nsuites=$(printf "%s\n" "$@" | cut -d. -f1 | sort -u | wc -l)
	((CU_S_TOTAL == nsuites)) || cu_fail "iscsi-test-cu registered $CU_S_TOTAL suites, want $nsuites: $CU_LINE"
	((CU_T_TOTAL == want)) || cu_fail "iscsi-test-cu registered $CU_T_TOTAL tests, want $want: $CU_LINE"
	cu_check_summary
	# After Reserve6.LUNReset, the suite's clean-up (clearing persistent
	# reservations) meets the reset's unit attention, as SAM-5 wants, and
	# prints a [FAILED] that belongs to no test.
	if grep -v -E '^  Test: [^ ]+ \.\.\.passed +\[FAILED\] PRIN command: failed with sense\. SENSE KEY:UNIT_ATTENTION' "$logf" |
		grep -q 'FAILED'; then
		cu_fail "iscsi-test-cu printed FAILED: $(grep -m5 'FAILED' "$logf")"
	fi
	((rc == 0)) || cu_fail "iscsi-test-cu exited with status $rc although its summary shows no failure"
	local skipped
	skipped=$(skipped_tests "$logf")
	if [[ -n $skipped && -z ${LG_QUIET:-} ]]; then
		log "tests that iscsi-test-cu skipped (counted as passed):"
		# shellcheck disable=SC2001 # indent every line
		sed "s/^/    /" <<<"$skipped" >&2
	fi
	# Every command of these suites is one the gateway must implement.
	if grep -qi "not implemented" <<<"$skipped"; then
		cu_fail "iscsi-test-cu skipped tests because a required command is not implemented: $(grep -i "not implemented" <<<"$skipped" | tr "\n" ";")"
	fi
}

IQN=$LG_IQN_PREFIX:compliance
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 96
start_lungate --image "$IMG" --iqn "$IQN"
run_suite "$LG_TMP/rw.log" "$(iscsi_url 0)" "${SUITES[@]}"

# Each test again alone, in a session of its own: the first command of a
# connection must not depend on state an earlier command left behind.
alone=0
for s in "${SUITES[@]}"; do
	while read -r t; do
		LG_QUIET=1 run_suite "$LG_TMP/one.log" "$(iscsi_url 0)" "${t#SCSI.}"
		alone=$((alone + 1))
	done < <(grep "^SCSI\.$s\.[^.]*\$" <<<"$list")
done
log "$alone tests passed, each alone in a fresh session"
assert_alive
stop_lungate

RO=$LG_TMP/ro.img
make_random_image "$RO" 64
cp "$RO" "$LG_TMP/ro.orig"
start_lungate --image "$RO" --iqn "$IQN-ro" --readonly
run_suite "$LG_TMP/ro.log" "$(iscsi_url 0 "$IQN-ro")" "${RO_TESTS[@]}"
if [[ -n $(skipped_tests "$LG_TMP/ro.log") ]]; then
	fail "WriteProtect tests were skipped on a --readonly LUN (MODE SENSE does not report write protection?): $(skipped_tests "$LG_TMP/ro.log" | tr "\n" ";")"
fi
cmp "$LG_TMP/ro.orig" "$RO" || fail "the --readonly image changed during the WriteProtect tests"
assert_alive
stop_lungate
log "PASS"
