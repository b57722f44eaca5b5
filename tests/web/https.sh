#!/usr/bin/env bash
# web.https: with --web-cert and --web-key the console speaks HTTPS only and
# its session cookie is Secure; without them (over HTTP) it is not; a
# console without a password file refuses to start and says how to set one.
# shellcheck source=../integration/functions.sh
. "$SRCDIR/functions.sh"
require_cmd curl openssl

img=$LG_TMP/disk.img
truncate -s 8M "$img"
PASSWORD='Https-Console-Pass-1'
printf '%s\n' "$PASSWORD" | "$LUNGATE" passwd --file "$LG_TMP/pw" || fail "lungate passwd failed"

# no password file: refused at start
WPORT=$(free_port)
! "$LUNGATE" serve --image "$img" --listen "127.0.0.1:$(free_port)" --control none \
	--web "127.0.0.1:$WPORT" --web-password "$LG_TMP/none" >"$LG_TMP/nopw.log" 2>&1 ||
	fail "serve --web started without a password file"
grep -q 'lungate passwd' "$LG_TMP/nopw.log" || fail "the refusal does not say to run lungate passwd: $(cat "$LG_TMP/nopw.log")"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-keyout "$LG_TMP/key.pem" -out "$LG_TMP/cert.pem" 2>/dev/null || fail "openssl could not make a certificate"
WPORT=$(free_port)
start_lungate --image "$img" --control none --web "127.0.0.1:$WPORT" --web-password "$LG_TMP/pw" \
	--web-cert "$LG_TMP/cert.pem" --web-key "$LG_TMP/key.pem"
wait_port "$LG_PID" 127.0.0.1 "$WPORT" 10 || fail "nothing listens on the console's port"
login() {
	curl -sS --max-time 20 -D "$LG_TMP/headers" -o "$LG_TMP/body" -w '%{http_code}' \
		-H 'Content-Type: application/json' --data "{\"password\":\"$PASSWORD\"}" "$@"
}
[[ $(login --cacert "$LG_TMP/cert.pem" "https://127.0.0.1:$WPORT/api/login") == 200 ]] ||
	fail "login over HTTPS failed: $(cat "$LG_TMP/body")"
grep -i '^set-cookie: lungate_session=' "$LG_TMP/headers" | grep -qi '; Secure' ||
	fail "the HTTPS session cookie is not Secure: $(grep -i set-cookie "$LG_TMP/headers")"
grep -i '^set-cookie:' "$LG_TMP/headers" | grep -i 'HttpOnly' | grep -qi 'SameSite=Strict' ||
	fail "the session cookie is not HttpOnly, SameSite=Strict"
! curl -sS --max-time 10 -o /dev/null "http://127.0.0.1:$WPORT/" 2>/dev/null ||
	fail "the HTTPS console answered plain HTTP"
stop_lungate

WPORT=$(free_port)
start_lungate --image "$img" --control none --web "127.0.0.1:$WPORT" --web-password "$LG_TMP/pw"
wait_port "$LG_PID" 127.0.0.1 "$WPORT" 10 || fail "nothing listens on the console's port"
[[ $(login "http://127.0.0.1:$WPORT/api/login") == 200 ]] || fail "login over HTTP failed: $(cat "$LG_TMP/body")"
! grep -i '^set-cookie:' "$LG_TMP/headers" | grep -qi '; Secure' ||
	fail "the HTTP session cookie is Secure (the browser would drop it)"
stop_lungate
