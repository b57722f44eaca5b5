#!/usr/bin/env bash
# Every error a user can make with the object commands, against a running
# gateway and offline with -c: the command exits non-zero, the message names
# the thing at fault (targetcli's words where it has them), and nothing is
# applied — the file is byte for byte the same, the gateway's configuration
# generation does not move.  Also: a command the gateway cannot load is not
# applied, and a command with no gateway and no -c says how to give one.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

T=iqn.2025-10.com.example:err
C1=iqn.2025-10.com.example:client1
make_random_image "$LG_TMP/a.img" 4
make_random_image "$LG_TMP/b.img" 4
CFG=$LG_TMP/lungate.json

# lg MODE-ARGS... : lungate with this mode's arguments; output OUT, status RC.
lg() {
	RC=0
	OUT=$(run "$LUNGATE" "${LG_ARGS[@]}" "$@" 2>&1) || RC=$?
	log "lungate ${LG_ARGS[*]} $*: status $RC: $OUT"
}

# expect_error PATTERN ARGS...: the command fails, says PATTERN (fixed string),
# and changes nothing.
expect_error() {
	local pat=$1 gen=
	shift
	cp "$CFG" "$LG_TMP/snap.json"
	[[ -z $ONLINE ]] || gen=$(generation)
	lg "$@"
	((RC != 0)) || fail "lungate $* succeeded; it must fail with '$pat': $OUT"
	grep -qF -- "$pat" <<<"$OUT" || fail "lungate $* failed without saying '$pat': $OUT"
	same_file "$CFG" "$LG_TMP/snap.json" || fail "lungate $* failed but changed $CFG"
	if [[ -n $ONLINE ]]; then
		[[ $(generation) == "$gen" ]] || fail "lungate $* failed but the gateway's configuration changed"
		assert_alive
	fi
}

all_cases() {
	expect_error "No such path /iscsi/iqn.2025-10.com.example:nope" \
		/iscsi/iqn.2025-10.com.example:nope/tpg1/luns create /backstores/fileio/a
	expect_error "No such path /iscsi/$T/tpg2" /iscsi/$T/tpg2/luns create /backstores/fileio/a
	expect_error "No such path /backstores/fileio/nope" /backstores/fileio/nope get attribute
	expect_error "Storage object fileio/a exists already" /backstores/fileio create a "$LG_TMP/b.img"
	expect_error "Storage object fileio/a exists already" /backstores/block create a "$LG_TMP/b.img"
	expect_error "storage object for $LG_TMP/a.img already exists: a" /backstores/fileio create a2 "$LG_TMP/a.img"
	expect_error "Target $T exists already" /iscsi create $T
	expect_error "This NodeACL already exists in configFS: $C1" /iscsi/$T/tpg1/acls create $C1
	expect_error "LUN 0 is still mapped in node ACL $C1" /iscsi/$T/tpg1/luns delete lun0
	expect_error "storage object fileio/a is still used by LUN 0 of $T/tpg1" /backstores/fileio delete a
	expect_error "LUN 0 exists already in this TPG" /iscsi/$T/tpg1/luns create /backstores/fileio/a lun=0
	expect_error "/backstores/fileio/nope: no such storage object" /iscsi/$T/tpg1/luns create /backstores/fileio/nope
	expect_error "$LG_TMP/missing.img does not exist: give a size" /backstores/fileio create m "$LG_TMP/missing.img"
	expect_error "size=12X: give a number" /backstores/fileio create m "$LG_TMP/m.img" 12X
	expect_error "missing parameter file_or_dev" /backstores/fileio create m
	expect_error "\"not-an-iqn\" is not an iSCSI name" /iscsi create not-an-iqn
	expect_error "Command not found frobnicate" /iscsi frobnicate
	expect_error "No such Target in configfs: iqn.2025-10.com.example:nope" /iscsi delete iqn.2025-10.com.example:nope
	expect_error "No such NodeACL in configfs: iqn.2025-10.com.example:nope" /iscsi/$T/tpg1/acls delete iqn.2025-10.com.example:nope
	expect_error "LUN lun7 does not exist in this TPG" /iscsi/$T/tpg1/luns delete lun7
	expect_error "Network portal 127.0.0.2:3261 exists already" /iscsi/$T/tpg1/portals create 127.0.0.2 3261
	expect_error "ip_address 300.1.1.1: give an IPv4 or IPv6 address" /iscsi/$T/tpg1/portals create 300.1.1.1
	expect_error "a CHAP secret must be 12 bytes or more" /iscsi/$T/tpg1 set auth userid=u password=short
	expect_error "set attribute: generate_node_acls=maybe: an attribute is a number" /iscsi/$T/tpg1 set attribute generate_node_acls=maybe
	expect_error "unknown parameter \"colour\"" /iscsi/$T/tpg1/acls create iqn.2025-10.com.example:c2 colour=red
}

# ---- offline ----
ONLINE=
LG_ARGS=(-c "$CFG")
for cmd in "/backstores/fileio create a $LG_TMP/a.img" "/iscsi create $T" \
	"/iscsi/$T/tpg1/luns create /backstores/fileio/a" "/iscsi/$T/tpg1/acls create $C1" \
	"/iscsi/$T/tpg1/portals create 127.0.0.2 3261"; do
	# shellcheck disable=SC2086 # the words of the command
	lg $cmd
	((RC == 0)) || fail "setting up: lungate $cmd failed: $OUT"
done
all_cases

# ---- against a running gateway ----
ONLINE=1
LG_ARGS=()
start_lungate -c "$CFG" --control "$SOCK"
all_cases
# what the gateway cannot load is not applied: a file it cannot create
expect_error "not applied, the running configuration stays" \
	/backstores/fileio create b "$LG_TMP/no-such-dir/b.img" 1M
inq_ok "$C1" "$T" || fail "the target stopped answering after the refused commands"

# no gateway answers and no -c: say how to give one
RC=0
OUT=$(LUNGATE_CONTROL=$LG_TMP/none.sock run "$LUNGATE" /iscsi create iqn.2025-10.com.example:x 2>&1) || RC=$?
((RC == 1)) || fail "a command with no gateway and no -c exited with $RC: $OUT"
grep -qF "no gateway answers on the control socket $LG_TMP/none.sock" <<<"$OUT" ||
	fail "a command with no gateway and no -c does not say so: $OUT"
grep -qF -- "-c CONFIG" <<<"$OUT" || fail "a command with no gateway does not mention -c CONFIG: $OUT"
stop_lungate
log "PASS"
