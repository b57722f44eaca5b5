# shellcheck shell=bash
# Reading the log of libiscsi's iscsi-test-cu (a CUnit program run in its
# verbose mode): per-test results, skip reasons and the run summary. Sourced
# by compliance.sh and compliance-all.sh after functions.sh.
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
