#!/usr/bin/env bash
# `lungate ls` draws the tree as targetcli draws it (configshell's layout:
# 132 columns off a terminal, dot leaders, "[summary]", children sorted by
# name with trailing numbers compared as numbers; targetcli-fb's summaries:
# "[Targets: N]", "[no-gen-acls, no-auth]", "[lun0 fileio/disk0 (rw)]", ...).
# tree.expected is that tree for tree.json (two targets, fileio, block and
# cow storage objects, ACLs with read-only mappings, an IPv6 portal,
# discovery and TPG CHAP): compared whole, offline with -c and from a
# running gateway serving the same file.  A path shows its subtree.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

cp "$SRCDIR/../admin/tree.json" "$LG_TMP/tree.json"
expected=$SRCDIR/../admin/tree.expected
truncate -s 16M "$LG_TMP/disk0.img"
truncate -s 1M "$LG_TMP/wt.img"
truncate -s 4M "$LG_TMP/blk1.img"
mkdir -m 0700 "$LG_TMP/overlays"
cd "$LG_TMP"

# compare WHAT: $OUT must equal the fixture.
compare() {
	diff -u "$expected" - <<<"$OUT" >"$LG_TMP/diff" ||
		fail "$1: lungate ls differs from targetcli's tree (tree.expected): $(cat "$LG_TMP/diff")"
}

OUT=$(run "$LUNGATE" -c tree.json ls) || fail "lungate -c tree.json ls failed: $OUT"
compare "offline"

# a subtree: the lines of one target, indented as targetcli indents `ls PATH`
OUT=$(run "$LUNGATE" -c tree.json ls /iscsi/iqn.2025-10.com.example:open/tpg1/luns) || fail "ls PATH failed: $OUT"
[[ $OUT == "o- luns "*"[LUNs: 1]"$'\n'"  o- lun0 "*"[fileio/disk0 (disk0.img) (default_tg_pt_gp)]" ]] ||
	fail "lungate ls PATH does not show the subtree as targetcli does: $OUT"
(($(head -n 1 <<<"$OUT" | wc -L) == 132)) || fail "a subtree's lines are not 132 columns wide: $OUT"

start_lungate -c "$LG_TMP/tree.json" --control "$SOCK"
OUT=$(run "$LUNGATE" ls) || fail "lungate ls against the gateway failed: $OUT"
compare "running gateway"
# the JSON answer is still there for scripts
ctl_ok ls --json
[[ $(json_get 'j["targets"][0]["tpgs"][0]["luns"][1]["index"]') == 10 ]] || fail "ls --json changed: $OUT"
stop_lungate
log "PASS"
