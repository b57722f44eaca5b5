#!/usr/bin/env bash
# web.console: the web console (serve --web) in headless Chromium, driven by
# console.py through chromedriver and Selenium, against a real gateway on
# 127.0.0.1 with a per-client (cow) LUN and two libiscsi clients
# (lg-web-client): the login (a wrong password refused and logged without
# it), the clients live within 3 s with growing byte counts, one idle after
# its logout, every action URL refused without a session or without the
# CSRF token (also from a cross-site page), reset all asking first and
# naming the live PCs, publishing a disk (and the control socket's error on
# the page), publishing it as an image version and rolling back from the
# page, resetting an idle PC (its layer gone, the other's untouched)
# and a live one (asked first, logged out), /metrics through check_prom.py,
# and slower logins after failed ones.  It saves the README's screenshot
# as console.png in the build folder.
# shellcheck source=../integration/functions.sh
. "$SRCDIR/functions.sh"
require_cmd chromium chromedriver curl
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import selenium' ||
	fail "python3-selenium is not installed: run scripts/deps.sh"

IQN=$LG_IQN_PREFIX:room
mkdir -p "$LG_TMP/base" "$LG_TMP/ov"
truncate -s 64M "$LG_TMP/base/room.img"
cat >"$LG_TMP/lungate.json" <<JSON
{"storage_objects": [
  {"plugin": "fileio", "name": "golden", "dev": "$LG_TMP/base/room.img"},
  {"plugin": "cow", "name": "room", "base": "/backstores/fileio/golden",
   "overlay_dir": "$LG_TMP/ov", "per_initiator": true, "quota": 33554432}],
 "targets": [{"wwn": "$IQN", "tpgs": [{"tag": 1,
   "attributes": {"generate_node_acls": 1, "authentication": 0},
   "luns": [{"index": 0, "storage_object": "/backstores/cow/room"}]}]}],
 "web": {"password_file": "$LG_TMP/web.passwd"}}
JSON
PASSWORD='Classroom-Console-42'
printf '%s\n' "$PASSWORD" | "$LUNGATE" passwd -c "$LG_TMP/lungate.json" ||
	fail "lungate passwd failed"
grep -q '^pbkdf2-sha256\$600000\$[0-9a-f]\{32\}\$[0-9a-f]\{64\}$' "$LG_TMP/web.passwd" ||
	fail "the password file is not a salted PBKDF2 hash: $(cat "$LG_TMP/web.passwd")"
! grep -q "$PASSWORD" "$LG_TMP/web.passwd" || fail "the password file holds the password"
[[ $(stat -c %a "$LG_TMP/web.passwd") == 600 ]] || fail "the password file is not mode 0600"

WPORT=$(free_port)
MPORT=$(free_port)
CTL=$LG_TMP/ctl.sock
start_lungate -c "$LG_TMP/lungate.json" --control "$CTL" --web "127.0.0.1:$WPORT" \
	--metrics "127.0.0.1:$MPORT"
wait_port "$LG_PID" 127.0.0.1 "$WPORT" 10 || fail "nothing listens on the console's port $WPORT"
grep -q 'beyond loopback' "$LG_LOG" && fail "a loopback console warned about HTTPS"

SHOT=$PWD/console.png
rm -f "$SHOT"
URL=http://127.0.0.1:$WPORT METRICS=http://127.0.0.1:$MPORT/metrics CTL=$CTL LUNGATE=$LUNGATE \
	WEB_CLIENT=$WEB_CLIENT PORTAL=127.0.0.1:$PORT IQN=$IQN STORAGE=room GWLOG=$LG_LOG \
	PASSWORD=$PASSWORD BASE_DIR=$LG_TMP/base SHOT=$SHOT CHECK_PROM=$OBSDIR/check_prom.py \
	TMP=$LG_TMP run /usr/bin/python3 "$WEBDIR/console.py" || fail "console.py failed"
[[ -s $SHOT ]] || fail "no screenshot in $SHOT"
assert_alive
stop_lungate
