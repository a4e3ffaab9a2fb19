#!/usr/bin/env bash
# dashboard: `remapctl monitor --http` serves a page with every target's figures, its
# spare pool with a usage bar, the remap map with a mark per remapped block, the health
# history drawn from the kernel's samples, and the monitor's recent events; after one
# more remap the page shows it. Names are escaped; the page is read-only.
# The two pages are kept in out/dashboard/. tests/dashboard/live drives a real browser
# against a live page (and the actions of --actions).
# timeout: 600
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd python3
ktap_plan 7
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"
params=/sys/module/dm_remap/parameters
old_interval=$(cat "$params/sample_interval_s")
echo 1 > "$params/sample_interval_s" || fail "sample_interval_s 1"
pages=out/dashboard
rm -rf "$pages"; mkdir -p "$pages"

base=$(mkloop 32) && spare=$(mkloop 8) || fail "loop devices"
n=${PREFIX}dash
"$REMAPCTL" create "$n" --main "$base" --spare "$spare" >/dev/null && DMDEVS+=("$n") ||
  fail "create the target"
dd if=/dev/urandom of="/dev/mapper/$n" bs=64k count=16 oflag=direct status=none || fail "write"
for b in 100 2000 6000; do dmsetup message "$n" 0 remap "$b" >/dev/null || fail "remap $b"; done
ip link set lo up 2>/dev/null || true
port=9579
"$REMAPCTL" monitor --http "127.0.0.1:$port" > "$WORK/mon.log" 2>&1 &
mon=$!
# The case's exit status must survive the kill and the parameter's reset.
# dmsetup mangles a name with markup in it ("\x3c"): remapctl removes that target.
odd="${PREFIX}<i>odd"
trap 'rc=$?; kill $mon 2>/dev/null; "$REMAPCTL" remove "$odd" >/dev/null 2>&1
  echo "$old_interval" > "$params/sample_interval_s"; (exit $rc); teardown' EXIT
# Samples are taken every second: wait for a few.
for _ in $(seq 30); do
  [ "$(dmsetup status "$n" | awk '{print $NF}')" -ge 3 ] && break; sleep 1
done
fetch() { python3 -c "
import sys, urllib.request
r = urllib.request.urlopen('http://127.0.0.1:$port/', timeout=60)
assert r.status == 200 and r.headers['Content-Type'].startswith('text/html'), r.status
sys.stdout.write(r.read().decode())" > "$1"; }
ktap_check "the monitor serves the page" fetch "$pages/before.html"
ktap_check "the page: 3 remapped, mode ok, spare use, 3 marks on the map, the health chart, the events" \
  python3 tests/dashboard/check.py "$n" 3 < "$pages/before.html"
dmsetup message "$n" 0 remap 7000 >/dev/null || fail "one more remap"
fetch "$pages/after.html" || diag "no second page"
ktap_check "after one more remap the page shows 4 (remapped, spare use, marks)" \
  python3 tests/dashboard/check.py "$n" 4 < "$pages/after.html"
echo "$n" > "$pages/target"
ktap_check "the dashboard is read-only: no forms, a POST to / or /action is refused (405)" python3 -c "
import urllib.request, urllib.error
for path in ('/', '/action'):
    try:
        urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:$port' + path, data=b'x', method='POST'), timeout=30)
    except urllib.error.HTTPError as e:
        assert e.code == 405, (path, e.code)
    else:
        raise SystemExit('POST accepted')
p = open('$pages/after.html').read()
assert '<form' not in p and 'token' not in p, 'forms on a read-only page'"
# A device-mapper name may hold markup: the page shows it as text.
base2=$(mkloop 16) && spare2=$(mkloop 8) || fail "loop devices for the second target"
"$REMAPCTL" create "$odd" --main "$base2" --spare "$spare2" >/dev/null ||
  fail "create a target named $odd"
ktap_check "a target name with markup in it is escaped" python3 -c "
import urllib.request
p = urllib.request.urlopen('http://127.0.0.1:$port/', timeout=60).read().decode()
assert '${PREFIX}&lt;i&gt;odd' in p and '${PREFIX}<i>' not in p, p[:300]"
ktap_check "the monitor is still running" kill -0 "$mon"
ktap_check "no panic or error in the monitor's log" bash -c "! grep -qiE 'panic|error' $WORK/mon.log"
ktap_finish
