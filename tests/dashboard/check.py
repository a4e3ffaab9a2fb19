#!/usr/bin/env python3
"""Checks a dm-remap dashboard page (HTML on stdin): python3 check.py NAME REMAPPED.

Used on the page as the monitor serves it (tests/16-dashboard.sh, in the VM) and on
the DOM headless Chromium builds from the live page (tests/dashboard/live, on the host): the
target's remapped count and mode, its first spare's use, one red mark per remapped
block on its remap map (other targets on the page have their own), the health chart with at least 2 samples, and the monitor's
"new" event for the target. Exit 1 naming what is missing.
"""
import html.parser, re, sys
name, want_remapped = sys.argv[1], int(sys.argv[2])
dom = sys.stdin.read()
class P(html.parser.HTMLParser):
    def __init__(s):
        super().__init__(); s.ids = {}; s.cur = None; s.marks = 0; s.in_map = False
        s.chart = False; s.events = []; s.in_events = False; s.in_li = False; s.spare = ""
        s.in_spare = False; s.in_target = False
    def handle_starttag(s, tag, a):
        a = dict(a)
        if "id" in a: s.cur = a["id"]; s.ids.setdefault(a["id"], "")
        if a.get("id") == f"t-{name}-spare-0": s.in_spare = True
        if tag == "section": s.in_target = a.get("id") == f"t-{name}"
        if tag == "svg" and a.get("class") == "map" and s.in_target: s.in_map = True
        if s.in_map and tag == "rect" and a.get("fill") == "#c0392b": s.marks += 1
        if tag == "div" and a.get("class") == "chart": s.chart = True
        if a.get("id") == "events": s.in_events = True
        if s.in_events and tag == "li": s.in_li = True; s.events.append("")
    def handle_endtag(s, tag):
        if tag == "svg": s.in_map = False
        if tag == "section": s.in_target = False
        if tag == "tr": s.in_spare = False
        if tag == "li": s.in_li = False
        s.cur = None
    def handle_data(s, d):
        if s.cur: s.ids[s.cur] += d
        if s.in_spare: s.spare += d
        if s.in_li: s.events[-1] += d
p = P(); p.feed(dom)
checks = {
  "remapped": p.ids.get(f"t-{name}-remapped") == str(want_remapped),
  "mode": p.ids.get(f"t-{name}-mode") == "ok",
  "spare": re.search(rf"(?<![0-9]){want_remapped} of [0-9]", p.spare) is not None,
  "marks": p.marks == want_remapped,
  "chart": p.chart and int(p.ids.get(f"t-{name}-samples", "0 ").split()[0]) >= 2,
  "events": any(f"{name}: new" in e for e in p.events),
}
bad = [k for k, v in checks.items() if not v]
if bad:
    print(f"# failed: {bad}; ids={ {k: v for k, v in p.ids.items() if k.startswith('t-')} } spare={p.spare!r} marks={p.marks} events={p.events[:3]}")
    sys.exit(1)
