#!/usr/bin/env python3
"""cdp.py: drives headless Chromium through the DevTools protocol over a pipe
(--remote-debugging-pipe: commands on fd 3, answers on fd 4, each message JSON ended by
a NUL byte), with nothing but the standard library.

    b = Browser(profile_dir); page = b.new_page()
    page.go(url); page.eval("document.title"); page.click("#id"); page.screenshot(path)
"""
import base64, fcntl, json, os, select, subprocess, time


class Browser:
    def __init__(self, profile, extra=()):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def child():
            # Both ends above 10 first: a pipe end may itself be fd 3 or 4 (dup2 onto
            # itself would keep its close-on-exec flag, and the second dup2 could
            # overwrite the first's source).
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", *extra],
            preexec_fn=child, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "HOME": profile})
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._next = 0
        self.events = []

    def _read(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            r, _, _ = select.select([self._res_r], [], [], left)
            if r:
                d = os.read(self._res_r, 1 << 20)
                if not d:
                    raise EOFError("Chromium closed its pipe (it exited)")
                self._buf += d
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=60):
        self._next += 1
        m = {"id": self._next, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        os.write(self._cmd_w, json.dumps(m).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            r = self._read(deadline)
            if r.get("id") == self._next:
                if "error" in r:
                    raise RuntimeError(f"{method}: {r['error']}")
                return r.get("result", {})
            self.events.append(r)

    def wait_event(self, method, session=None, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method and (session is None or e.get("sessionId") == session):
                    del self.events[i]
                    return e.get("params", {})
            self.events.append(self._read(deadline))

    def new_page(self):
        t = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = self.send("Target.attachToTarget", {"targetId": t, "flatten": True})["sessionId"]
        p = Page(self, s)
        p.send("Page.enable")
        p.send("Emulation.setDeviceMetricsOverride",
               {"width": 1280, "height": 1800, "deviceScaleFactor": 1, "mobile": False})
        return p

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Page:
    def __init__(self, browser, session):
        self.b, self.s = browser, session

    def send(self, method, params=None, timeout=60):
        return self.b.send(method, params, self.s, timeout)

    def _loaded(self, timeout):
        self.b.wait_event("Page.loadEventFired", self.s, timeout)

    def go(self, url, timeout=120):
        self.b.events.clear()
        r = self.send("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise RuntimeError(f"{url}: {r['errorText']}")
        self._loaded(timeout)

    def reload(self, timeout=120):
        self.b.events.clear()
        self.send("Page.reload", {"ignoreCache": True})
        self._loaded(timeout)

    def eval(self, expr):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def html(self):
        return self.eval("document.documentElement.outerHTML")

    def click_and_wait(self, selector, timeout=120):
        """Clicks the element (a form's button) and waits for the page it leads to."""
        self.b.events.clear()
        ok = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                       " if (!e) return false; e.click(); return true; })()")
        if not ok:
            raise RuntimeError(f"no element {selector}")
        self._loaded(timeout)

    def screenshot(self, path):
        d = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as f:
            f.write(base64.b64decode(d["data"]))
