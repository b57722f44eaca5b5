# shellcheck shell=bash
# Helpers of the targetcli workflow tests (tests/admin): sourced.
#
# They build on tests/ops/functions.sh (the gateway under test, its control
# socket $SOCK, iscsi-perf sessions, waits).  LUNGATE_CONTROL points the
# commands' default control socket at $SOCK, so the targetcli command block
# runs verbatim, with no --control.
#
# Environment (set by tests/admin/CMakeLists.txt): as tests/ops.

# shellcheck source=../ops/functions.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ops/functions.sh"

export LUNGATE_CONTROL=$SOCK

# same_file A B: the two files are byte for byte the same.
same_file() {
	cmp -s "$1" "$2"
}

# inq_ok INITIATOR IQN: iscsi-inq as INITIATOR sees LUN 0 of IQN (a disk).
inq_ok() {
	local out
	out=$(run iscsi-inq -i "$1" "iscsi://127.0.0.1:$PORT/$2/0" 2>&1) || return 1
	grep -q 'Peripheral Device Type:DIRECT_ACCESS' <<<"$out"
}

# generation: the running gateway's configuration generation.
generation() {
	ctl_ok ls --json
	json_get 'j["generation"]'
}
