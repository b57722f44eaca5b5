#!/usr/bin/env bash
# libiscsi's whole compliance suite (`iscsi-test-cu -d`, its default set, as
# integration.compliance-all runs it on a raw LUN) against a 128 MiB rbd LUN
# on the test's Ceph cluster, through two portals (MultipathIO, second
# I_T nexus): no test may fail, and the suites that must run on a raw LUN
# must run here too (the skips are the raw LUN's: --allow-sanitize,
# removable media, LBPPB < 2, WSNZ, write protection).  Prints the real passes, failures and skips by reason.
# With libiscsi 1.20 (Debian 13) its new suites must run too, and the
# iSCSITMF tests each run again alone (cunit.sh's cu_tmf_alone).
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=../integration/cunit.sh
source "$(dirname "$0")/../integration/cunit.sh"
require_cmd iscsi-test-cu

MUST_RUN=(iSCSIcmdsn iSCSIdatasn iSCSIResiduals iSCSITMF MultipathIO
	PrinReadKeys PrinServiceactionRange PrinReportCapabilities ProutRegister ProutReserve
	ProutClear ProutPreempt Reserve6 WriteAtomic16 OrWrite ExtendedCopy ReceiveCopyResults)
list=$(iscsi-test-cu --list) || fail "iscsi-test-cu --list failed"
mapfile -t -O ${#MUST_RUN[@]} MUST_RUN < <(cu_newer_suites "$list")

IQN=$LG_IQN_PREFIX:rbd-compliance
rbd_cluster
run rbd create --size 128M rbd/cu >/dev/null 2>&1 || fail "rbd create rbd/cu failed"
CFG=$LG_TMP/rbd.json
write_config "$CFG" "$IQN" "/backstores/rbd/cu" "$(so_rbd cu cu)"
LG_SECOND_PORT=1 start_lungate -c "$CFG"
URL1=$(iscsi_url 0)
URL2=$(iscsi_url 0 "$IQN" 127.0.0.1 "$PORT2")

LOGF=$LG_TMP/all.log
LG_CU_LOG=$LOGF
log "iscsi-test-cu -d -i $LG_INITIATOR -I $LG_INITIATOR-2 $URL1 $URL2"
rc=0
start=$SECONDS
LG_CMD_TIMEOUT=${LG_ALL_TIMEOUT:-1200} run iscsi-test-cu -d -i "$LG_INITIATOR" \
	-I "$LG_INITIATOR-2" "$URL1" "$URL2" >"$LOGF" 2>&1 || rc=$?
log "iscsi-test-cu ran for $((SECONDS - start)) s (exit status $rc)"
assert_alive

cu_summary "$LOGF"
log "CUnit: $CU_LINE"
grep -q 'found matching LU device identifier for all (2) paths' "$LOGF" ||
	cu_fail "iscsi-test-cu did not find the same LU identifier (VPD page 83h) through both portals"
results=$(cu_results "$LOGF")
count() { awk -F '\t' -v r="$1" '$1 == r { n++ } END { print n + 0 }' <<<"$results"; }
passes=$(count pass)
failures=$(count fail)
skips=$(count skip)
((passes + failures + skips == CU_T_RAN && failures == CU_T_FAILED)) ||
	cu_fail "read $passes passed, $failures failed and $skips skipped tests from the log, but CUnit ran $CU_T_RAN with $CU_T_FAILED failed: the log format is not understood"
if ((skips > 0)); then
	log "skipped tests by reason (count, reason):"
	awk -F '\t' '$1 == "skip" { print $3 }' <<<"$results" | sort | uniq -c | sort -rn | sed 's/^/    /' >&2
fi
if ((failures > 0)); then
	log "failed tests:"
	awk -F '\t' '$1 == "fail" { print "    " $2 }' <<<"$results" | sort | uniq -c >&2
	grep -E '^    [0-9]+\. ' "$LOGF" | sort | uniq -c | head -40 >&2
fi
log "of $CU_T_TOTAL tests: $passes real passes, $failures failures, $skips skipped"
printf 'rbd.compliance: real passes: %d\n' "$passes"
cu_tmf_alone "$list" "$URL1" "$URL2"
cu_check_must_run "$results" "${MUST_RUN[@]}"
((failures == 0)) || cu_fail "tests failed ($CU_LINE)"
((CU_S_FAILED == 0 && CU_S_INACTIVE == 0 && CU_S_RAN == CU_S_TOTAL)) ||
	cu_fail "a suite failed to set up or run: $CU_LINE"
((CU_T_RAN == CU_T_TOTAL && CU_T_INACTIVE == 0)) || cu_fail "not every test ran: $CU_LINE"
((CU_A_RAN == CU_A_TOTAL)) || cu_fail "not every assert ran: $CU_LINE"
((rc == 0)) || cu_fail "iscsi-test-cu exited with status $rc although its summary shows no failure"
stop_lungate
log "PASS"
