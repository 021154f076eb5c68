#!/usr/bin/env python3
"""webdriver.py - a small W3C WebDriver client for the system tests that
drive a real browser (tests/system/mesh_page.sh): headless Chromium through
chromedriver, Python 3 standard library only (urllib + json; no selenium).

Each command is one short process, so a shell test can act on the mesh
between two of them; the session id lives in a file (--session). The
driver (chromedriver) is started and killed by the test, not here.

    webdriver.py [--driver URL] [--session FILE] COMMAND ARGS...
      ready SECS             wait until the driver answers /status ready
      start DATADIR W H      a new session: headless Chromium, a fresh
                             profile in DATADIR, a W x H window, the
                             browser console captured
      get URL                open URL (returns when the page has loaded)
      js SCRIPT [ARG...]     run SCRIPT (a function body: `return ...`;
                             arguments[i] is the string ARG i) and print
                             its result as JSON
      wait SECS SCRIPT [ARG...]
                             run SCRIPT every 100 ms until it is done: its
                             result is truthy or, for an object with a key
                             "done", that key is; print "MS RESULT" (ms
                             waited). Each new result goes to stderr with
                             its time, so a log shows the steps (alive,
                             suspect, dead). Exit 1 on timeout, with the
                             last result
      logs                   print the browser console entries since the
                             last call, one JSON object a line
                             ({"level", "source", "message", ...})
      screenshot FILE        a PNG of the window
      fullshot FILE          a PNG of the whole page, as wide as the
                             window (Chromium's DevTools command through
                             chromedriver's goog/cdp/execute)
      window W H             resize the window
      quit                   end the session (the browser exits)

Exit status: 0 done, 1 a wait timed out, 2 a usage or WebDriver error
(said on stderr with the driver's message).

What it must never do: talk to anything but the driver URL, or leave the
browser running after `quit`.
"""

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class WebDriverError(Exception):
    pass


class Driver:
    """The driver at url (e.g. http://127.0.0.1:9515) and, once started or
    given, one session of it."""

    def __init__(self, url, session=None):
        self.url = url.rstrip("/")
        self.session = session

    def call(self, method, path, body=None, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                reply = json.load(r)
        except urllib.error.HTTPError as e:
            try:
                v = json.load(e).get("value", {})
                msg = "%s: %s" % (v.get("error", e.code), v.get("message", "").splitlines()[0] if v.get("message") else "")
            except (ValueError, AttributeError):
                msg = "HTTP %d" % e.code
            raise WebDriverError("%s %s: %s" % (method, path, msg)) from None
        except (urllib.error.URLError, OSError) as e:
            raise WebDriverError("%s %s: cannot reach the driver at %s: %s" % (method, path, self.url, e)) from None
        return reply.get("value") if isinstance(reply, dict) else reply

    def scall(self, method, path, body=None, timeout=60):
        if not self.session:
            raise WebDriverError("no session (run `start` first)")
        return self.call(method, "/session/" + self.session + path, body, timeout)

    def ready(self, secs):
        deadline = time.monotonic() + secs
        last = None
        while True:
            try:
                v = self.call("GET", "/status", timeout=5)
                if v and v.get("ready"):
                    return
                last = "not ready: %s" % (v or {}).get("message", "")
            except WebDriverError as e:
                last = str(e)
            if time.monotonic() >= deadline:
                raise WebDriverError("the driver at %s is not ready after %s s: %s" % (self.url, secs, last))
            time.sleep(0.1)

    def start(self, datadir, width, height):
        args = ["--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
                "--user-data-dir=" + datadir, "--window-size=%d,%d" % (width, height),
                "--force-device-scale-factor=1", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", "--password-store=basic", "--use-mock-keychain"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        caps = {"browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                "goog:loggingPrefs": {"browser": "ALL"},
                "timeouts": {"script": 15000, "pageLoad": 30000, "implicit": 0}}
        v = self.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}}, timeout=90)
        self.session = v["sessionId"]
        return self.session

    def get(self, url):
        self.scall("POST", "/url", {"url": url})

    def js(self, script, args=()):
        return self.scall("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait(self, secs, script, args=(), out=sys.stderr):
        t0 = time.monotonic()
        last = object()
        while True:
            v = self.js(script, args)
            ms = int((time.monotonic() - t0) * 1000)
            if v != last:
                print("webdriver: after %5d ms: %s" % (ms, json.dumps(v)), file=out)
                last = v
            if (v.get("done") if isinstance(v, dict) and "done" in v else v):
                return ms, v, True
            if ms >= secs * 1000:
                return ms, v, False
            time.sleep(0.1)

    def logs(self):
        return self.scall("POST", "/se/log", {"type": "browser"}) or []

    def screenshot(self, path):
        png = base64.b64decode(self.scall("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)
        return len(png)

    def fullshot(self, path):
        w, h = self.js("const e = document.documentElement; return [e.clientWidth, e.scrollHeight]")
        v = self.scall("POST", "/goog/cdp/execute", {
            "cmd": "Page.captureScreenshot",
            "params": {"format": "png", "captureBeyondViewport": True,
                       "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}}})
        png = base64.b64decode(v["data"])
        with open(path, "wb") as f:
            f.write(png)
        return len(png)

    def window(self, width, height):
        self.scall("POST", "/window/rect", {"width": width, "height": height})

    def quit(self):
        self.scall("DELETE", "", timeout=30)
        self.session = None


def main(argv):
    driver_url, session_file = "http://127.0.0.1:9515", None
    while argv and argv[0].startswith("--"):
        if argv[0] == "--driver" and len(argv) > 1:
            driver_url = argv[1]
        elif argv[0] == "--session" and len(argv) > 1:
            session_file = argv[1]
        else:
            print("webdriver.py: unknown option %s" % argv[0], file=sys.stderr)
            return 2
        argv = argv[2:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    session = None
    if session_file and cmd not in ("ready", "start") and os.path.exists(session_file):
        with open(session_file) as f:
            session = f.read().strip() or None
    d = Driver(driver_url, session)
    need = {"ready": 1, "start": 3, "get": 1, "js": 1, "wait": 2, "logs": 0, "screenshot": 1, "fullshot": 1,
            "window": 2, "quit": 0}
    if cmd not in need or len(args) < need[cmd] or (cmd not in ("js", "wait") and len(args) != need[cmd]):
        print("webdriver.py: bad command: %s (run without arguments for help)" % " ".join(argv), file=sys.stderr)
        return 2
    try:
        if cmd == "ready":
            d.ready(float(args[0]))
        elif cmd == "start":
            sid = d.start(args[0], int(args[1]), int(args[2]))
            if session_file:
                with open(session_file, "w") as f:
                    f.write(sid + "\n")
            print(sid)
        elif cmd == "get":
            d.get(args[0])
        elif cmd == "js":
            print(json.dumps(d.js(args[0], args[1:])))
        elif cmd == "wait":
            ms, v, ok = d.wait(float(args[0]), args[1], args[2:])
            print(ms, json.dumps(v))
            if not ok:
                print("webdriver: condition not met within %s s; last result: %s" % (args[0], json.dumps(v)),
                      file=sys.stderr)
                return 1
        elif cmd == "logs":
            for e in d.logs():
                print(json.dumps(e))
        elif cmd == "screenshot":
            n = d.screenshot(args[0])
            print("%s (%d bytes)" % (args[0], n))
        elif cmd == "fullshot":
            n = d.fullshot(args[0])
            print("%s (%d bytes)" % (args[0], n))
        elif cmd == "window":
            d.window(int(args[0]), int(args[1]))
        elif cmd == "quit":
            d.quit()
            if session_file and os.path.exists(session_file):
                os.unlink(session_file)
    except WebDriverError as e:
        print("webdriver.py %s: %s" % (cmd, e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
