# shellcheck shell=bash
# Reading the log of libiscsi's iscsi-test-cu (a CUnit program run in its
# verbose mode): per-test results, skip reasons and the run summary, and what
# the whole-suite runs share (compliance-all.sh, tests/rbd/compliance.sh):
# the suites that must run, and libiscsi 1.20's iSCSITMF tests each alone.
# Sourced by compliance.sh, compliance-all.sh and tests/rbd/compliance.sh
# after functions.sh.
#
# A test's log looks like one of
#   "  Test: Name ...passed"
#   "  Test: Name ...FAILED" followed by indented "N. file.c:line - ASSERT" lines
#   "  Test: Name ...    [SKIPPED] reason" (more output lines) then "passed"
# A "[SKIPPED]" printed after a test's result ("passed    [SKIPPED] ...")
# belongs to the next suite's set-up (clearing persistent reservations), and a
# "[FAILED]" line inside a test is a command that did not get the status the
# helper expected, which the test itself may want (iSCSIDataSnInvalid): only
# CUnit's verdict counts.

# cu_results LOG: one line per test run, "RESULT<TAB>Suite.Test<TAB>reason",
# RESULT one of pass (ran and was not skipped), skip (reason: the first
# [SKIPPED] message) or fail. A suite run twice gives two lines per test.
cu_results() {
	awk '
		function reason(s) { sub(/.*\[SKIPPED\] */, "", s); return s }
		function done(verdict) {
			if (verdict == "FAILED") print "fail\t" suite "." test "\t"
			else if (why != "") print "skip\t" suite "." test "\t" why
			else print "pass\t" suite "." test "\t"
			intest = 0
		}
		/^Suite: / { suite = $2; intest = 0; next }
		/^  Test: / {
			test = $2
			why = ""
			rest = $0
			sub(/^  Test: [^ ]+ \.\.\./, "", rest)
			if (rest ~ /^passed/) { done("passed"); next }
			if (rest ~ /^FAILED/) { done("FAILED"); next }
			intest = 1
			if (rest ~ /\[SKIPPED\]/) why = reason(rest)
			next
		}
		intest && /^passed/ { done("passed"); next }
		intest && /^FAILED/ { done("FAILED"); next }
		intest && why == "" && /\[SKIPPED\]/ { why = reason($0); next }
	' "$1"
}

# skipped_tests LOG: "Suite.Test: reason" for every test that was skipped, once each.
skipped_tests() {
	cu_results "$1" | awk -F '\t' '$1 == "skip" { print $2 ": " $3 }' | sort -u
}

# cu_fail MESSAGE: print the iscsi-test-cu log being checked ($LG_CU_LOG), then fail.
cu_fail() {
	cat "$LG_CU_LOG" >&2
	fail "$@"
}

# cu_summary LOG: read CUnit's run summary of LOG into CU_S_TOTAL CU_S_RAN
# CU_S_FAILED CU_S_INACTIVE (suites), CU_T_TOTAL CU_T_RAN CU_T_PASSED
# CU_T_FAILED CU_T_INACTIVE (tests), CU_A_TOTAL CU_A_RAN CU_A_FAILED (asserts),
# and a one-line account in CU_LINE. Fails if the log has no summary.
cu_summary() {
	LG_CU_LOG=$1
	grep -q '^Run Summary:' "$1" || cu_fail "iscsi-test-cu ended without a run summary"
	# Run Summary:    Type  Total    Ran Passed Failed Inactive
	#               suites     13     13    n/a      0        0
	#                tests     52     52     52      0        0
	#              asserts  22673  22673  22673      0      n/a
	read -r _ CU_S_TOTAL CU_S_RAN _ CU_S_FAILED CU_S_INACTIVE <<<"$(grep -E '^ +suites ' "$1")"
	read -r _ CU_T_TOTAL CU_T_RAN CU_T_PASSED CU_T_FAILED CU_T_INACTIVE <<<"$(grep -E '^ +tests ' "$1")"
	read -r _ CU_A_TOTAL CU_A_RAN _ CU_A_FAILED _ <<<"$(grep -E '^ +asserts ' "$1")"
	CU_LINE="suites $CU_S_RAN/$CU_S_TOTAL (failed $CU_S_FAILED), tests $CU_T_PASSED/$CU_T_TOTAL passed (failed $CU_T_FAILED), asserts failed $CU_A_FAILED"
}

# cu_check_summary: after cu_summary, fail unless every suite set up and ran,
# every test ran and passed, and no assert failed.
cu_check_summary() {
	((CU_S_FAILED == 0 && CU_S_INACTIVE == 0 && CU_S_RAN == CU_S_TOTAL)) ||
		cu_fail "a suite failed to set up or run: $CU_LINE"
	((CU_T_RAN == CU_T_TOTAL && CU_T_FAILED == 0 && CU_T_INACTIVE == 0 && CU_T_PASSED == CU_T_TOTAL)) ||
		cu_fail "tests failed: $CU_LINE"
	((CU_A_FAILED == 0 && CU_A_RAN == CU_A_TOTAL)) || cu_fail "asserts failed: $CU_LINE"
}

# cu_newer_suites LIST: the suites of newer libiscsi releases (1.20: Debian 13)
# that LIST (iscsi-test-cu --list) has, one a line: they must run too.
cu_newer_suites() {
	local s
	for s in iSCSISendTargets iSCSINop ReportLUNs; do
		! grep -q "^iSCSI\.$s\.\|^SCSI\.$s\." <<<"$1" || echo "$s"
	done
}

# cu_tmf_alone LIST URL...: libiscsi's iSCSITMF tests each log out and destroy
# the suite's one shared session when they end, so in a run of the whole
# suite only the first gets a session and the others skip: "Not an iSCSI
# device" (libiscsi 1.20), or silently (1.19's CU_PASS("[SKIPPED] Non-iSCSI")
# prints nothing).  Each runs again here alone against URL... (with
# $LG_INITIATOR and $LG_INITIATOR-2), in a session of its own, where it must
# pass and not skip; CU_ALONE_OK lists those (Suite.Test), and only they may
# have that skip in the whole run (cu_check_must_run).  From libiscsi 1.20 on
# (the release with LogoutDuringIOAsync): alone, 1.19's AbortTaskSimpleAsync
# uses its task after freeing it and its LUNResetSimpleAsync asserts on a
# flag its callback has not set yet, test bugs 1.20 fixed.  Call it after
# cu_summary of the whole run: that summary (CU_*, LG_CU_LOG) is read again
# at the end.
CU_ALONE_OK=()
cu_tmf_alone() {
	local list=$1 whole=${LG_CU_LOG:-} t solo rc
	shift
	CU_ALONE_OK=()
	grep -qx 'iSCSI\.iSCSITMF\.LogoutDuringIOAsync' <<<"$list" || return 0
	solo=$LG_TMP/alone.log
	while read -r t; do
		rc=0
		LG_CMD_TIMEOUT=300 run iscsi-test-cu -d -i "$LG_INITIATOR" -I "$LG_INITIATOR-2" \
			-t "$t" "$@" >"$solo" 2>&1 || rc=$?
		cu_summary "$solo"
		cu_check_summary
		((rc == 0)) || cu_fail "iscsi-test-cu -t $t exited with status $rc"
		[[ -z $(skipped_tests "$solo") ]] || cu_fail "$t skipped even alone: $(skipped_tests "$solo")"
		CU_ALONE_OK+=("${t#iSCSI.}")
	done < <(grep '^iSCSI\.iSCSITMF\.[^.]*$' <<<"$list")
	((${#CU_ALONE_OK[@]} == 0)) || log "each alone in a session of its own: ${CU_ALONE_OK[*]} passed"
	[[ -z $whole ]] || cu_summary "$whole"
}

# cu_check_must_run RESULTS SUITE...: fail unless each SUITE ran in RESULTS
# (cu_results of the whole run) and none of its tests skipped, but for the
# "Not an iSCSI device" skip of a test that passed alone (CU_ALONE_OK).
cu_check_must_run() {
	local results=$1 s n bad
	shift
	for s in "$@"; do
		n=$(awk -F '\t' -v s="$s" 'index($2, s ".") == 1 { n++ } END { print n + 0 }' <<<"$results")
		((n > 0)) || cu_fail "the suite $s did not run"
		bad=$(awk -F '\t' -v s="$s" -v alone=" ${CU_ALONE_OK[*]} " 'index($2, s ".") == 1 && $1 == "skip" &&
			!($3 ~ /^Not an iSCSI device/ && index(alone, " " $2 " ")) { print $2 ": " $3 }' <<<"$results" | sort -u)
		[[ -z $bad ]] || cu_fail "tests of $s were skipped: $(tr '\n' ';' <<<"$bad")"
	done
}
