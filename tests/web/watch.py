#!/usr/bin/python3
"""watch.py URL PASSWORD INITIATOR OUT STOP-FILE: log in to the web console
at URL and poll /api/state every 100 ms, as the page does every second, until
STOP-FILE exists; write to OUT one line per answer in which INITIATOR
appears: "live PEER BYTES-READ" while it has a session, "idle ALLOCATED"
when only its overlay is listed."""
import json
import os
import sys
import time
import urllib.request

url, password, initiator, out, stop = sys.argv[1:6]
req = urllib.request.Request(url + "/api/login", data=json.dumps({"password": password}).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(req, timeout=30) as r:
    cookie = r.headers["Set-Cookie"].split(";")[0]
with open(out, "w") as f:
    deadline = time.monotonic() + 600
    while not os.path.exists(stop) and time.monotonic() < deadline:
        req = urllib.request.Request(url + "/api/state", headers={"Cookie": cookie})
        with urllib.request.urlopen(req, timeout=30) as r:
            s = json.load(r)
        live = [x for x in s["sessions"] if x["initiator"] == initiator]
        ovl = [o for o in s["overlays"] if o.get("initiator") == initiator]
        if live:
            f.write("live %s %d\n" % (live[0]["peer"], live[0]["bytes_read"]))
        elif ovl:
            f.write("idle %d\n" % ovl[0]["allocated"])
        f.flush()
        time.sleep(0.1)
