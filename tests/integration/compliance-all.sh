#!/usr/bin/env bash
# The whole of libiscsi's compliance suite: `iscsi-test-cu -d` with no test
# selection runs every test of its default set (the ALL, SCSI, iSCSI and LINUX
# families) against a raw writable 256 MiB LUN, with a second initiator name
# (-I, for the RESERVE tests' second initiator) and the same LUN given again
# through a second portal of the gateway, so that the MultipathIO tests run and
# every test that wants a second I_T nexus (persistent reservations, COMPARE
# AND WRITE) gets the second path. Prints the real passes (ran and not
# skipped), the failures and the skips grouped by reason, and fails on any
# failed test, assert or suite set-up. The iSCSI-level suites and MultipathIO
# must run, not skip; with libiscsi 1.20 (Debian 13) also its new suites
# (iSCSISendTargets, iSCSINop, ReportLUNs), the iSCSITMF tests each alone,
# and iSCSICHAP against a gateway that requires CHAP.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
# shellcheck source=cunit.sh
source "$(dirname "$0")/cunit.sh"
require_cmd iscsi-test-cu

# Suites that must run every test (none skipped) on this gateway.
MUST_RUN=(iSCSIcmdsn iSCSIdatasn iSCSIResiduals iSCSITMF MultipathIO
	PrinReadKeys PrinServiceactionRange PrinReportCapabilities ProutRegister ProutReserve
	ProutClear ProutPreempt Reserve6 WriteAtomic16 OrWrite ExtendedCopy ReceiveCopyResults)
# ... and those of newer libiscsi releases (1.20: Debian 13), when this one has them.
list=$(iscsi-test-cu --list) || fail "iscsi-test-cu --list failed"
mapfile -t -O ${#MUST_RUN[@]} MUST_RUN < <(cu_newer_suites "$list")

# Tests allowed to fail, each until the named work lands; delete an entry as
# soon as it passes (the test says so).
KNOWN_FAILURES=()

IQN=$LG_IQN_PREFIX:compliance-all
IMG=$LG_TMP/disk.img
truncate -s 256M "$IMG"
LG_SECOND_PORT=1 start_lungate --image "$IMG" --iqn "$IQN"
URL1=$(iscsi_url 0)
URL2=$(iscsi_url 0 "$IQN" 127.0.0.1 "$PORT2")

# First, alone and within a minute, the Text requests of iSCSISendTargets
# (libiscsi 1.20): a request left unanswered would hang the whole run until
# its timeout instead of failing here, saying what.
if grep -q '^iSCSI\.iSCSISendTargets\.' <<<"$list"; then
	st=$LG_TMP/sendtargets.log
	LG_CU_LOG=$st # what cu_fail shows, also before cu_summary
	rc=0
	LG_CMD_TIMEOUT=60 run iscsi-test-cu -d -i "$LG_INITIATOR" -t iSCSI.iSCSISendTargets "$URL1" >"$st" 2>&1 || rc=$?
	((rc != 124 && rc != 137)) || cu_fail "iSCSISendTargets did not finish within 60 s: a Text request was left unanswered?"
	cu_summary "$st"
	cu_check_summary
	[[ -z $(skipped_tests "$st") ]] || cu_fail "iSCSISendTargets tests skipped: $(skipped_tests "$st")"
	log "iSCSISendTargets alone: $CU_LINE"
fi

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

# The parser must account for every test CUnit ran, else its counts mean nothing.
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
printf 'compliance-all: real passes: %d\n' "$passes"

# the iSCSITMF tests each alone (libiscsi 1.20), then the suites that must run
cu_tmf_alone "$list" "$URL1" "$URL2"
cu_check_must_run "$results" "${MUST_RUN[@]}"

known=$(printf '%s\n' "${KNOWN_FAILURES[@]}")
unexpected=$(awk -F '\t' '$1 == "fail" { print $2 }' <<<"$results" | sort -u | grep -vxF "$known" || true)
[[ -z $unexpected ]] || cu_fail "tests failed: $(tr '\n' ' ' <<<"$unexpected")($CU_LINE)"
for k in "${KNOWN_FAILURES[@]}"; do
	if ! awk -F '\t' '$1 == "fail" { print $2 }' <<<"$results" | grep -qxF "$k"; then
		log "NOTE: $k, listed in KNOWN_FAILURES, no longer fails: delete it from the list"
	fi
done
((CU_S_FAILED == 0 && CU_S_INACTIVE == 0 && CU_S_RAN == CU_S_TOTAL)) ||
	cu_fail "a suite failed to set up or run: $CU_LINE"
((CU_T_RAN == CU_T_TOTAL && CU_T_INACTIVE == 0)) || cu_fail "not every test ran: $CU_LINE"
((CU_A_RAN == CU_A_TOTAL)) || cu_fail "not every assert ran: $CU_LINE"
((CU_A_FAILED == 0 || failures > 0)) || cu_fail "asserts failed outside any failed test: $CU_LINE"
((failures > 0 || rc == 0)) || cu_fail "iscsi-test-cu exited with status $rc although its summary shows no failure"
stop_lungate

# iSCSICHAP (libiscsi 1.20) needs a session that logged in with CHAP MD5:
# a gateway of its own whose TPG requires CHAP.  Its tests log in again
# offering CHAP_A=5,6,7,8 (must succeed), CHAP_A=56 and an empty CHAP_A
# (must be refused).
if grep -q '^iSCSI\.iSCSICHAP\.' <<<"$list"; then
	CFG=$LG_TMP/chap.json
	cat >"$CFG" <<JSON
{
  "storage_objects": [ { "plugin": "fileio", "name": "disk", "dev": "$IMG" } ],
  "targets": [ { "wwn": "$IQN-chap", "fabric": "iscsi",
    "tpgs": [ { "tag": 1, "enable": true,
      "attributes": { "generate_node_acls": 1, "authentication": 1, "demo_mode_write_protect": 0 },
      "chap_userid": "compliance", "chap_password": "compliance-secret",
      "luns": [ { "index": 0, "storage_object": "/backstores/fileio/disk" } ] } ] } ]
}
JSON
	start_lungate -c "$CFG"
	chap=$LG_TMP/chap.log
	rc=0
	LG_CMD_TIMEOUT=300 run iscsi-test-cu -d -i "$LG_INITIATOR" -I "$LG_INITIATOR-2" -t iSCSI.iSCSICHAP \
		"iscsi://compliance%compliance-secret@127.0.0.1:$PORT/$IQN-chap/0" >"$chap" 2>&1 || rc=$?
	cu_summary "$chap"
	cu_check_summary
	((rc == 0)) || cu_fail "iscsi-test-cu -t iSCSI.iSCSICHAP exited with status $rc"
	[[ -z $(skipped_tests "$chap") ]] || cu_fail "iSCSICHAP tests skipped: $(skipped_tests "$chap")"
	log "iSCSICHAP with CHAP MD5: $CU_LINE"
	assert_alive
	stop_lungate
fi
log "PASS"
