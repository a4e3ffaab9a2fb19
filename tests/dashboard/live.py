#!/usr/bin/env python3
"""live.py DIR PORT: the host half of tests/dashboard/live. Headless Chromium, driven
through the DevTools protocol (cdp.py), loads the dashboard the monitor in the VM serves
(QEMU forwards 127.0.0.1:PORT to it), checks what it shows (figures, remaps, and an
alert: a second target in emergency), has the guest remap one more
block and sees the page follow, uses the page's forms (start the scan, add a spare), and
shows that a form on another page (a file, another port) cannot act even with the
token. KTAP lines; exit 1
when a check fails."""
import json, os, pathlib, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))
from cdp import Browser

d, port = pathlib.Path(sys.argv[1]), int(sys.argv[2])
here = pathlib.Path(__file__).resolve().parent
root = here.parent.parent
base = f"http://127.0.0.1:{port}/"
n_checks, failed = 10, 0
print(f"1..{n_checks}", flush=True)
k = 0


def check(desc, ok, why=""):
    global k, failed
    k += 1
    print(f"{'ok' if ok else 'not ok'} {k} - {desc}", flush=True)
    if not ok:
        failed += 1
        for l in str(why).splitlines()[:20]:
            print(f"# {l}", flush=True)


def wait_file(p, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if p.exists():
            return True
        if (d / "vm-exited").exists():
            return False
        time.sleep(0.5)
    return False


if not wait_file(d / "ready", 900) or not (d / "ready").read_text().strip():
    print("Bail out! the guest never got ready (out/live/vm.log)")
    sys.exit(1)
n, spare2, worn = (d / "ready").read_text().split()


def page_check(html, remapped):
    r = subprocess.run([sys.executable, str(here / "check.py"), n, str(remapped)],
                       input=html, capture_output=True, text=True)
    return r.returncode == 0, r.stdout + r.stderr


def events(p):
    return p.eval("[...document.querySelectorAll('#events li')].map(e => e.textContent)") or []


# The profile (it ends up holding the page and its token) and the forged page live
# under out/live/, which the wrapper removes at exit.
profile = tempfile.mkdtemp(prefix="chromium-", dir=d)
b = Browser(profile)
try:
    p = b.new_page()
    p.go(base)
    ok, why = page_check(p.html(), 3)
    check("Chromium loads the live page: 3 remapped, mode ok, spare use, 3 marks, chart, events", ok, why)
    alert = p.eval(f"(document.getElementById('t-{worn}-alert') || {{}}).textContent")
    changes = p.eval(f"[...document.querySelectorAll('#t-{worn} .alerts li')].map(e => e.textContent)") or []
    check("the target whose spare is exhausted shows alert level emergency and the level change",
          alert == "emergency" and any("level=emergency" in c for c in changes),
          f"alert={alert!r} changes={changes[:3]}")
    forms = p.eval(f"document.querySelectorAll('#t-{n} form[action=\"/action\"]').length")
    token = p.eval("(document.querySelector('input[name=token]') || {}).value || ''")
    check("with --actions the target has its 3 forms, each with the 64-digit token",
          forms == 3 and len(token) == 64, f"forms={forms} token={token!r}")

    (d / "remap-now").touch()
    if wait_file(d / "remapped", 120):
        p.reload()
    ok, why = page_check(p.html(), 4)
    check("after the guest remaps one more block, a reload shows 4", ok, why)

    p.click_and_wait(f"#t-{n}-act-scan-start")
    ev = events(p)
    check("the Start scan button: the scan starts, the page says so in its events",
          p.eval("location.pathname") == "/" and any(f"{n}: dashboard: scan start" in e and "refused" not in e for e in ev),
          json.dumps(ev[:5]))

    p.eval(f"document.querySelector('#t-{n}-act-device').value = {json.dumps(spare2)}")
    p.click_and_wait(f"#t-{n}-act-spare-add")
    ev = events(p)
    has_row = p.eval(f"!!document.getElementById('t-{n}-spare-1')")
    check("the Add spare form: the blank device joins as spare 1 of 2 and its row appears",
          has_row and any("added as spare 1 of 2" in e for e in ev), f"row={has_row} " + json.dumps(ev[:5]))

    # Another page (here a file: page, origin "null") that knows even the token.
    forged = pathlib.Path(profile) / "forged.html"
    forged.write_text(
        f'<form id="f" method="post" action="{base}action">'
        f'<input name="token" value="{token}"><input name="target" value="{n}">'
        f'<input name="do" value="scan-stop"></form>'
        '<script>document.getElementById("f").submit()</script>')
    p.go(forged.as_uri())
    if p.eval("location.href").startswith("file:"):
        p.b.wait_event("Page.loadEventFired", p.s, 60)
    body = p.eval("document.body.innerText")
    check("a form on another page is refused (403), the token alone does not act",
          'origin "null" is refused' in body, body)
    # And a page of another server on this host (another port: what an origin check
    # by host name alone would let through).
    import functools, http.server, threading
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        functools.partial(http.server.SimpleHTTPRequestHandler, directory=profile))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    other = f"http://127.0.0.1:{srv.server_address[1]}"
    p.go(f"{other}/forged.html")
    if p.eval("location.href").startswith(other):
        p.b.wait_event("Page.loadEventFired", p.s, 60)
    body = p.eval("document.body.innerText")
    srv.shutdown()
    check("a form served by another port of 127.0.0.1 is refused (403) too",
          f'origin "{other}" is refused' in body, body)
    p.go(base)
    ev = events(p)
    check("the refusal is in the events, and no scan stop was done",
          any("action refused (403 Forbidden)" in e for e in ev)
          and not any("dashboard: scan stop" in e for e in ev), json.dumps(ev[:5]))

    shot = root / "out" / "dashboard-live.png"
    p.screenshot(shot)
    check(f"screenshot of the live page: {shot.relative_to(root)}",
          shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n")
finally:
    b.close()
sys.exit(1 if failed else 0)
