#!/usr/bin/python3
"""web.console, the browser half: headless Chromium (through chromedriver and
Selenium) against a real gateway that console.sh started on 127.0.0.1.

Environment: URL (the console), METRICS (the /metrics URL), CTL (the control
socket), LUNGATE, WEB_CLIENT (lg-web-client), PORTAL, IQN, STORAGE, GWLOG (the
gateway's log), PASSWORD, BASE_DIR (the base image's folder), SHOT (the
screenshot to write), CHECK_PROM, TMP.

Every process it starts (the iSCSI clients, chromedriver and Chromium, a
small HTTP server for the cross-site page) it ends itself, by pid."""
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

E = os.environ
URL = E["URL"].rstrip("/")
STORAGE = E["STORAGE"]
WRONG = "Wrong-Guess-7731-xyz"
PC_A = "iqn.2025-10.org.lungate.test:pc-a"
PC_B = "iqn.2025-10.org.lungate.test:pc-b"
clients = {}


T0 = time.monotonic()


def log(msg):
    print("web.console: [%5.1f s] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


def fail(msg):
    raise AssertionError(msg)


def wait_until(fn, secs, what):
    end = time.monotonic() + secs
    last = None
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # an element replaced under us: try again
            last = e
        time.sleep(0.1)
    fail("%s (not within %.1f s)%s" % (what, secs, ": %r" % last if last else ""))


def overlays():
    out = subprocess.run([E["LUNGATE"], "overlays", "--control", E["CTL"], "--json"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return {o["initiator"]: o for o in json.loads(out)["overlays"] if o.get("initiator")}


def start_client(name, kib):
    p = subprocess.Popen([E["WEB_CLIENT"], E["PORTAL"], E["IQN"], name, str(kib)],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if line.strip() != "ready":
        fail("lg-web-client %s did not start: %r, status %s" % (name, line, p.poll()))
    clients[name] = p
    return p


def stop_client(name):
    p = clients.pop(name)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=30)
    if rc != 0:
        fail("lg-web-client %s exited with %d after SIGTERM" % (name, rc))


def request(method, path, body=None, headers=None):
    """(status, JSON answer) of a request that no browser made."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(URL + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def parse_bytes(text):
    m = re.match(r"^([0-9.]+) (B|KiB|MiB|GiB|TiB)$", text.strip())
    if not m:
        fail("not a byte count: %r" % text)
    return float(m.group(1)) * UNITS[m.group(2)]


def row(drv, initiator):
    for r in drv.find_elements(By.CSS_SELECTOR, "tr.client"):
        if r.get_attribute("data-initiator") == initiator:
            return r
    return None


def row_state(drv, initiator):
    r = row(drv, initiator)
    return r.get_attribute("data-state") if r else None


def cell(drv, initiator, cls):
    return row(drv, initiator).find_element(By.CSS_SELECTOR, "td." + cls).text


def modal_open(drv):
    return drv.find_element(By.ID, "modal").is_displayed()


def notice(drv):
    n = drv.find_element(By.ID, "notice")
    return (n.get_attribute("class"), n.text) if n.is_displayed() else None


def click_action(drv, initiator, cls):
    row(drv, initiator).find_element(By.CSS_SELECTOR, "button." + cls).click()
    wait_until(lambda: modal_open(drv), 3, "the confirmation of %s did not open" % cls)


def main():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1280,860",
              "--user-data-dir=" + os.path.join(E["TMP"], "chromium-profile")):
        opts.add_argument(a)
    svc = Service(executable_path="/usr/bin/chromedriver",
                  log_path=os.path.join(E["TMP"], "chromedriver.log"))
    drv = webdriver.Chrome(service=svc, options=opts)
    attacker = None
    try:
        attacker = run(drv)
    finally:
        for name in list(clients):
            clients[name].kill()
            clients[name].wait()
        # the browser first: a connection it keeps open to the cross-site
        # page's server would hold that server's shutdown
        drv.quit()
        if attacker:
            attacker.shutdown()
            attacker.server_close()


def run(drv):
    # ---- without a session: the page offers only the login; the API refuses ----
    drv.get(URL + "/")
    wait_until(lambda: drv.find_element(By.ID, "login").is_displayed(), 10,
               "the login form is not shown to a browser without a session")
    st, _ = request("GET", "/api/state")
    if st != 401:
        fail("GET /api/state without a session answered %d, not 401" % st)

    # a wrong password: refused on the page, logged without the password
    drv.find_element(By.ID, "password").send_keys(WRONG)
    drv.find_element(By.ID, "login-button").click()
    wait_until(lambda: "wrong password" in drv.find_element(By.ID, "login-error").text, 10,
               "a wrong password was not refused on the page")
    gwlog = open(E["GWLOG"], encoding="utf-8", errors="replace").read()
    if "login refused" not in gwlog or "wrong-password" not in gwlog:
        fail("the refused login is not in the gateway's log")
    if WRONG in gwlog:
        fail("the gateway's log holds the wrong password itself")
    log("a wrong password is refused and logged without it")

    # the right one
    pw = drv.find_element(By.ID, "password")
    pw.clear()
    pw.send_keys(E["PASSWORD"])
    drv.find_element(By.ID, "login-button").click()
    wait_until(lambda: drv.find_element(By.ID, "console").is_displayed(), 10,
               "the console did not open after logging in")
    cookie = drv.get_cookie("lungate_session")
    if not cookie or not cookie.get("httpOnly") or cookie.get("sameSite") != "Strict":
        fail("the session cookie is not HttpOnly and SameSite=Strict: %r" % cookie)
    log("logged in")

    # ---- two clients appear live within 3 s, with growing byte counts ----
    start_client(PC_A, 1024)
    t_a = time.monotonic()
    start_client(PC_B, 512)
    t_b = time.monotonic()
    wait_until(lambda: row_state(drv, PC_A) == "live", 3 - (time.monotonic() - t_a),
               PC_A + " is not shown live")
    wait_until(lambda: row_state(drv, PC_B) == "live", 3 - (time.monotonic() - t_b),
               PC_B + " is not shown live")
    for who in (PC_A, PC_B):
        if cell(drv, who, "c-initiator").splitlines()[0] != who:
            fail("the row of %s names %r" % (who, cell(drv, who, "c-initiator")))
        if not cell(drv, who, "c-addr").startswith("127.0.0.1:"):
            fail("the row of %s shows address %r" % (who, cell(drv, who, "c-addr")))
    r0 = {w: (parse_bytes(cell(drv, w, "c-read")), parse_bytes(cell(drv, w, "c-written")))
          for w in (PC_A, PC_B)}
    for w in (PC_A, PC_B):
        wait_until(lambda w=w: parse_bytes(cell(drv, w, "c-read")) > r0[w][0] and
                   parse_bytes(cell(drv, w, "c-written")) > r0[w][1], 5,
                   "the byte counts of %s do not grow (%r)" % (w, r0[w]))
    # the layer of a live client is its open overlay's live figure (pc-a wrote 1 MiB)
    wait_until(lambda: parse_bytes(cell(drv, PC_A, "c-layer").split(" / ")[0]) >= 1 << 20, 3,
               "the layer of the live %s does not show the 1 MiB it wrote: %r"
               % (PC_A, cell(drv, PC_A, "c-layer")))
    log("both clients live with growing byte counts")

    # one logs out: idle
    stop_client(PC_B)
    t = time.monotonic()
    wait_until(lambda: row_state(drv, PC_B) == "idle", 3, PC_B + " is not shown idle after its logout")
    log("%s shown idle %.1f s after its logout" % (PC_B, time.monotonic() - t))
    drv.set_window_size(1280, 660)
    time.sleep(1.5)
    drv.save_screenshot(E["SHOT"])
    log("screenshot: " + E["SHOT"])

    # a phone's width: nothing wider than the screen
    drv.set_window_size(390, 844)
    time.sleep(0.5)
    drv.save_screenshot(E["SHOT"].replace(".png", "-phone.png"))
    wide = drv.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    if wide > 1:
        fail("at a phone's width the page is %d px wider than the screen" % wide)
    drv.set_window_size(1280, 860)

    before = overlays()
    if PC_A not in before or PC_B not in before:
        fail("overlays of both clients expected: %r" % sorted(before))

    # ---- without a session, every action URL: 401/403, nothing changes ----
    actions = {
        "/api/reset": {"storage": STORAGE, "initiator": PC_B, "force": True},
        "/api/reset-all": {"storage": STORAGE, "force": True},
        "/api/commit": {"storage": STORAGE, "initiator": PC_B, "file": "stolen.img", "force": True},
        "/api/rollback": {"storage": STORAGE, "version": 1},
        "/api/logout": {},
    }
    js = {"Content-Type": "application/json"}
    for path, body in actions.items():
        st, _ = request("POST", path, body, js)
        if st not in (401, 403):
            fail("POST %s without a session answered %d" % (path, st))
        # a forged cookie is no session either
        st, _ = request("POST", path, body, dict(js, Cookie="lungate_session=" + "0" * 64))
        if st not in (401, 403):
            fail("POST %s with a made-up session cookie answered %d" % (path, st))
        # the real session cookie without the CSRF token
        st, _ = request("POST", path, body, dict(js, Cookie="lungate_session=" + cookie["value"]))
        if st != 403:
            fail("POST %s with the session but no CSRF token answered %d, not 403" % (path, st))
    # and a cross-site page in the same browser (another port of 127.0.0.1:
    # the same site, so the cookie goes along): a form and a no-cors fetch
    page = ("<!doctype html><body><form id=f method=post enctype=text/plain action='%s/api/reset'>"
            "<input name='{\"storage\":\"%s\",\"initiator\":\"%s\",\"force\":true,\"x\":\"' value='\"}'>"
            "</form><script>fetch('%s/api/reset-all',{method:'POST',mode:'no-cors',credentials:'include',"
            "headers:{'Content-Type':'text/plain'},body:JSON.stringify({storage:'%s',force:true})})"
            ".finally(()=>document.getElementById('f').submit())</script></body>"
            % (URL, STORAGE, PC_B, URL, STORAGE)).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        timeout = 5  # a speculative connection that never sends a request

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *a):
            pass

    evil = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    drv.get("http://127.0.0.1:%d/" % evil.server_address[1])
    wait_until(lambda: drv.current_url.startswith(URL + "/api/reset"), 10,
               "the cross-site form was not submitted")
    body = drv.find_element(By.TAG_NAME, "body").text
    if '"ok":false' not in body.replace(" ", ""):
        fail("the cross-site POST was not refused: %r" % body)
    after = overlays()
    if sorted(after) != sorted(before):
        fail("requests without a session or CSRF token changed the overlays: %r -> %r"
             % (sorted(before), sorted(after)))
    log("without a session or CSRF token, every action is refused and nothing changes")

    drv.get(URL + "/")
    wait_until(lambda: row_state(drv, PC_B) == "idle" and row_state(drv, PC_A) == "live", 10,
               "the console did not come back with the session")

    # ---- reset all asks first, naming how many live PCs it logs out ----
    drv.find_element(By.CSS_SELECTOR, "section.lun button.act-reset-all").click()
    wait_until(lambda: modal_open(drv), 3, "reset all did not ask first")
    warn = drv.find_element(By.ID, "modal-warn").text
    if "logs out 1 live PC" not in warn or PC_A not in warn:
        fail("reset all's confirmation does not name the 1 live PC it logs out: %r" % warn)
    drv.find_element(By.ID, "modal-cancel").click()
    time.sleep(1)
    if sorted(overlays()) != sorted(before) or clients[PC_A].poll() is not None:
        fail("a cancelled reset all changed something")
    log("reset all asks first (1 live PC named); cancelled, nothing changed")

    # ---- publish the idle PC's disk ----
    click_action(drv, PC_B, "act-publish")
    box = drv.find_element(By.ID, "modal-input")
    box.clear()
    box.send_keys("room-v2.img")
    drv.find_element(By.ID, "modal-ok").click()
    wait_until(lambda: notice(drv) and "ok" in notice(drv)[0], 60,
               "publishing %s did not report success: %r" % (PC_B, notice(drv)))
    out = os.path.join(E["BASE_DIR"], "room-v2.img")
    with open(out, "rb") as f:
        head = f.read(512 * 1024)
    if head != b"\x5a" * (512 * 1024):
        fail("the published disk does not hold what %s wrote" % PC_B)
    # again: the control socket's error (commit never overwrites), on the page
    click_action(drv, PC_B, "act-publish")
    box = drv.find_element(By.ID, "modal-input")
    box.clear()
    box.send_keys("room-v2.img")
    drv.find_element(By.ID, "modal-ok").click()
    wait_until(lambda: notice(drv) and "error" in notice(drv)[0] and "never overwrites" in notice(drv)[1],
               30, "publishing over an existing file did not show the error: %r" % (notice(drv),))
    log("published %s's disk to %s; the second try shows the error" % (PC_B, out))

    # ---- image versions: the published disk as version 2, rolled back from the page ----
    def image_list():
        p = subprocess.run([E["LUNGATE"], "image", "list", STORAGE, "--json", "--control", E["CTL"]],
                           capture_output=True, text=True, timeout=60)
        return json.loads(p.stdout)
    p = subprocess.run([E["LUNGATE"], "image", "publish", STORAGE, out, "--note", "from pc-b",
                        "--control", E["CTL"]], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        fail("lungate image publish %s failed: %s %s" % (out, p.stdout, p.stderr))
    rollback = "section.lun .versions tr[data-version='1'] button.act-rollback"
    wait_until(lambda: drv.find_elements(By.CSS_SELECTOR, rollback), 10,
               "the page shows no roll-back button for version 1 after a publish")
    cur = drv.find_element(By.CSS_SELECTOR, "section.lun .versions tr.is-current").get_attribute("data-version")
    if cur != "2":
        fail("the page marks version %s current, not 2" % cur)
    drv.find_element(By.CSS_SELECTOR, rollback).click()
    wait_until(lambda: modal_open(drv), 3, "roll back did not ask first")
    drv.find_element(By.ID, "modal-ok").click()
    wait_until(lambda: [v["id"] for v in image_list()["versions"] if v["current"]] == [1], 10,
               "version 1 is not current after the page's roll back: %r" % image_list())
    wait_until(lambda: notice(drv) and "ok" in notice(drv)[0], 10,
               "the roll back did not report success: %r" % (notice(drv),))
    wait_until(lambda: drv.find_elements(By.CSS_SELECTOR,
                                         "section.lun .versions tr[data-version='2'] button.act-rollback"),
               10, "the page does not offer version 2 after the roll back")
    log("published it as version 2 (lungate image publish); rolled back to 1 from the page")

    # ---- reset the idle PC: its layer goes, the other's stays ----
    alloc_a = overlays()[PC_A]["allocated"]
    click_action(drv, PC_B, "act-reset")
    if drv.find_element(By.ID, "modal-warn").is_displayed():
        fail("resetting an idle PC warns of a logout")
    drv.find_element(By.ID, "modal-ok").click()
    wait_until(lambda: PC_B not in overlays(), 10, "the layer of %s is still there after its reset" % PC_B)
    now = overlays()
    if PC_A not in now or now[PC_A]["allocated"] < alloc_a or not now[PC_A]["live"]:
        fail("resetting %s touched %s: %r" % (PC_B, PC_A, now.get(PC_A)))
    if clients[PC_A].poll() is not None:
        fail("resetting %s ended %s's session" % (PC_B, PC_A))
    wait_until(lambda: row(drv, PC_B) is None, 5, PC_B + " is still listed after its reset")
    log("reset %s from the page: its layer is gone, %s untouched" % (PC_B, PC_A))

    # ---- reset the live PC: asks first, then logs it out ----
    click_action(drv, PC_A, "act-reset")
    warn = drv.find_element(By.ID, "modal-warn")
    if not warn.is_displayed() or "live" not in warn.text or "logged out" not in warn.text:
        fail("resetting a live PC does not say it logs it out: %r" % warn.text)
    time.sleep(1)
    if clients[PC_A].poll() is not None or PC_A not in overlays():
        fail("the live PC was touched before the reset was confirmed")
    drv.find_element(By.ID, "modal-ok").click()
    rc = clients[PC_A].wait(timeout=30)
    clients.pop(PC_A)
    if rc != 2:
        fail("lg-web-client %s exited %d, not 2 (its session ended by the gateway)" % (PC_A, rc))
    # its layer is gone: no file, or (a forced reset fences the running OS
    # off) an empty one that only keeps the fenced boot record
    wait_until(lambda: PC_A not in overlays() or overlays()[PC_A]["allocated"] == 0, 20,
               "the layer of %s is still there: %r" % (PC_A, overlays().get(PC_A)))
    wait_until(lambda: notice(drv) and "ok" in notice(drv)[0] and "logged out" in notice(drv)[1], 10,
               "the page does not report the logout and reset: %r" % (notice(drv),))
    log("reset the live %s: asked first, logged out, layer gone" % PC_A)

    # ---- /metrics ----
    with urllib.request.urlopen(E["METRICS"], timeout=30) as r:
        text = r.read()
    path = os.path.join(E["TMP"], "metrics.txt")
    open(path, "wb").write(text)
    subprocess.run(["/usr/bin/python3", E["CHECK_PROM"], path], check=True, timeout=60)
    log("/metrics passes check_prom.py")

    # ---- sign out; then failed logins slow the next ones ----
    drv.find_element(By.ID, "signout").click()
    wait_until(lambda: drv.find_element(By.ID, "login").is_displayed(), 10, "sign out did not end the session")
    st, _ = request("POST", "/api/reset-all", {"storage": STORAGE}, dict(js, Cookie="lungate_session=" + cookie["value"]))
    if st != 401:
        fail("the signed-out session still answers %d" % st)
    for _ in range(3):  # the count started again at the good login
        st, res = request("POST", "/api/login", {"password": WRONG}, js)
        if st != 403:
            fail("a wrong password answered %d" % st)
    st, res = request("POST", "/api/login", {"password": E["PASSWORD"]}, js)
    if st != 429:
        fail("right after 3 failed logins, a login answered %d, not 429: %r" % (st, res))
    time.sleep(1.2)
    st, res = request("POST", "/api/login", {"password": E["PASSWORD"]}, js)
    if st != 200:
        fail("after the wait, the right password answered %d: %r" % (st, res))
    log("failed logins slow the next: 429 at once, the right password after the wait")
    return evil


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        log("FAIL: %s" % e)
        sys.exit(1)
    log("all checks passed")
