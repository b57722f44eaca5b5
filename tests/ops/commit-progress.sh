#!/usr/bin/env bash
# `lungate overlay commit` through a running gateway shows its progress on a
# terminal (issue 17: publish and commit copy whole disks):
#  - run on a terminal (script(1) gives it one), the command prints
#    "committing CLIENT: NN%" up to 100% and the merged disk is written;
#  - the protocol: a request with "progress": true gets lines
#    {"progress": {"initiator", "done", "total"}} before its answer, done
#    rising to total; one without it gets the answer alone (scripts and the
#    web console see no change);
#  - off a terminal the command prints no progress;
#  - `lungate image publish --from-client` shows the copy of the client's
#    disk and the reading of the new version on a terminal too.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd script

BASE=$LG_TMP/base.img
OV=$LG_TMP/overlays
CFG=$LG_TMP/cow.json
make_random_image "$BASE" 64
cow_config "$CFG" "$BASE" "$OV"
start_lungate -c "$CFG" --control "$SOCK"
P=$(ini pc1)
qio "$P" -c 'write -P 0x41 0 64k' -c 'write -P 0x42 63M 64k' -c flush
cp "$BASE" "$LG_TMP/want.img"
patch_image "$LG_TMP/want.img" 0 65536 0x41 $((63 << 20)) 65536 0x42

# on a terminal
term=$(script -qec "$LUNGATE overlay commit c $P $LG_TMP/a.img --control $SOCK" /dev/null 2>&1) ||
	fail "overlay commit on a terminal failed: $term"
log "on a terminal: $(tr '\r' '\n' <<<"$term" | grep -c committing) progress updates, last: $(tr '\r' '\n' <<<"$term" | grep committing | tail -n 1)"
# (the lines in a variable, not a pipe into grep -q: grep may end before tr
# has written everything, and pipefail would count tr's SIGPIPE as a failure)
lines=${term//$'\r'/$'\n'}
grep -q "^committing $P: 100%" <<<"$lines" || fail "no progress up to 100% on the terminal: $term"
(($(tr '\r' '\n' <<<"$term" | grep -c "^committing $P: ") >= 10)) || fail "fewer than 10 progress updates: $term"
cmp "$LG_TMP/want.img" "$LG_TMP/a.img" || fail "the committed disk is not the client's"

# off a terminal
ctl_ok overlay commit c "$P" "$LG_TMP/b.img"
grep -q committing <<<"$OUT" && fail "progress printed off a terminal: $OUT"
cmp "$LG_TMP/want.img" "$LG_TMP/b.img" || fail "the committed disk is not the client's"

# the protocol
python3 - "$SOCK" "$P" "$LG_TMP" <<'PY' || fail "the control protocol's progress lines are wrong"
import json, socket, sys
sock, ini, tmp = sys.argv[1:]
def ask(req):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall((json.dumps(req) + "\n").encode())
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    return [json.loads(l) for l in data.decode().splitlines()]
lines = ask({"cmd": "overlay-commit", "name": "c", "initiator": ini, "file": tmp + "/c.img", "progress": True})
prog = [l["progress"] for l in lines[:-1]]
assert lines[-1].get("ok") is True, lines[-1]
assert len(prog) >= 10 and all("ok" not in l for l in lines[:-1]), lines
assert all(p["initiator"] == ini and p["total"] == 64 << 20 for p in prog), prog[:3]
assert [p["done"] for p in prog] == sorted(p["done"] for p in prog) and prog[-1]["done"] == 64 << 20, prog
lines = ask({"cmd": "overlay-commit", "name": "c", "initiator": ini, "file": tmp + "/d.img"})
assert len(lines) == 1 and lines[0].get("ok") is True, lines
print("progress lines: %d, then the answer" % len(prog))
PY
cmp "$LG_TMP/want.img" "$LG_TMP/c.img" || fail "the committed disk is not the client's"

# image publish --from-client on a terminal: the copy, then the new file read
term=$(script -qec "$LUNGATE image publish c --from-client $P $LG_TMP/v2.img --control $SOCK" /dev/null 2>&1) ||
	fail "image publish --from-client on a terminal failed: $term"
lines=${term//$'\r'/$'\n'}
grep -q "^copying the disk of $P: 100%" <<<"$lines" || fail "no copy progress up to 100%: $term"
grep -q "^reading $LG_TMP/v2.img: 100%" <<<"$lines" || fail "no read progress up to 100%: $term"
cmp "$LG_TMP/want.img" "$LG_TMP/v2.img" || fail "the published disk is not the client's"
stop_lungate
log "ok"
