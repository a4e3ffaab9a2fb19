#!/usr/bin/env bash
# monitor: `remapctl monitor --program HOOK` sleeps on device-mapper events (no polling:
# it uses no CPU while nothing happens) and runs the hook, with the event in its
# environment and the target's status as JSON on its standard input, when a target
# appears, remaps a block, enters mode failed (a remap storm), leaves it
# (clear_failed), and goes. With --http it serves the metrics on a loopback address:
# a scrape passes promtool and follows the target's figures.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd python3 timeout promtool lsblk
ktap_plan 14
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

base=$(mkloop 64) && spare=$(mkloop 16) || fail "loop devices"
# Blocks 100-103 fail writes.
main=$(mkfaulty faulty "$base" 131072 wfail:800:32) || fail "faulty main device"
n=${PREFIX}mon
cat > "$WORK/hook.sh" <<EOF
#!/bin/sh
echo "\$DMREMAP_EVENT \$DMREMAP_TARGET \$DMREMAP_MODE \$DMREMAP_PREV_MODE \$DMREMAP_REMAPPED" >> "$WORK/events"
cat > "$WORK/last.json"
EOF
chmod +x "$WORK/hook.sh"
ip link set lo up 2>/dev/null || true
"$REMAPCTL" monitor --program "$WORK/hook.sh" --http 127.0.0.1:9577 > "$WORK/mon.log" 2>&1 &
mon=$!
# The case's exit status must survive the kill (teardown exits with the status it finds).
trap 'rc=$?; kill $mon 2>/dev/null; (exit $rc); teardown' EXIT
# Waits up to 20 s for a line of the hook's event file.
saw() { local i; for i in $(seq 1 40); do grep -qx "$1" "$WORK/events" 2>/dev/null && return 0; sleep 0.5; done
  diag "events so far: $(tr '\n' ';' < "$WORK/events" 2>/dev/null)"; return 1; }

"$REMAPCTL" create "$n" --main "$main" --spare "$spare" --max-remap-rate 2 >/dev/null &&
  DMDEVS+=("$n") || fail "create the target"
ktap_check "a new target: the hook runs (event new, mode ok)" saw "new $n ok  0"
cpu() { awk '{ print $14 + $15 }' "/proc/$mon/stat"; }
# The hook's line can come before the monitor has finished with the event (it still
# waits for the hook to exit; under TCG beside another VM that takes a while): first up
# to 10 s for a quiet second, then the 3 s that must cost no CPU tick at all.
for _ in $(seq 10); do c0=$(cpu); sleep 1; [ "$(cpu)" = "$c0" ] && break; done
c0=$(cpu); sleep 3; c1=$(cpu)
ktap_check "while nothing happens the monitor uses no CPU (it sleeps in poll)" test "$c0" = "$c1" ||
  diag "CPU ticks $c0 -> $c1; the log's last lines: $(tail -3 "$WORK/mon.log" | tr '\n' ';')"

head -c 16384 /dev/urandom > "$WORK/d"
# One failing block: remapped (the write succeeds), and the remap is an event.
dd if="$WORK/d" of="/dev/mapper/$n" bs=4k seek=100 count=1 oflag=direct conv=notrunc status=none ||
  fail "write one failing block"
ktap_check "a remap: the hook runs (mode ok, 1 remapped)" saw "event $n ok ok 1"
# A scrape of the monitor's /metrics (what Prometheus does).
scrape() { python3 -c '
import sys, urllib.request
r = urllib.request.urlopen("http://127.0.0.1:9577" + sys.argv[1], timeout=10)
assert r.status == 200, r.status
sys.stdout.write(r.read().decode())' "${1:-/metrics}"; }
scrape_ok() {
  local m err
  m=$(scrape) || { diag "no answer from http://127.0.0.1:9577/metrics"; return 1; }
  err=$(promtool check metrics <<<"$m" 2>&1) || { diag "promtool: $err"; return 1; }
  grep -qx "dmremap_remapped_blocks{target=\"$n\",device=\"dm-$(dmsetup info -c --noheadings -o minor "$n" | tr -d ' ')\"} 1" <<<"$m" ||
    { diag "scrape: $(grep "^dmremap_remapped_blocks" <<<"$m")"; return 1; }
}
ktap_check "--http: /metrics passes promtool and shows the remap (1 block)" scrape_ok
# Per spare: its used blocks and its state, labelled by place and device number.
spare_series() {
  local m l
  m=$(scrape) || return 1
  l="target=\"$n\",device=\"dm-$(dmsetup info -c --noheadings -o minor "$n" | tr -d ' ')\",spare_index=\"0\",spare_device=\"$(lsblk -dno MAJ:MIN "$spare" | tr -d ' ')\""
  grep -qx "dmremap_spare_device_used_blocks{$l} 1" <<<"$m" &&
    grep -qx "dmremap_spare_device_state{$l,state=\"active\"} 1" <<<"$m" &&
    grep -qx "dmremap_spare_device_state{$l,state=\"failed\"} 0" <<<"$m" &&
    grep -qx "dmremap_spare_device_errors_total{$l} 0" <<<"$m" ||
    { diag "want {$l}; scrape: $(grep "^dmremap_spare_device" <<<"$m" | tr '\n' ';')"; return 1; }
}
ktap_check "--http: per-spare series (1 used block on spare 0, state active, 0 errors)" spare_series
# Blocks 100-103 in one write: 3 new remaps, more than max_remap_rate 2 leaves.
dd if="$WORK/d" of="/dev/mapper/$n" bs=16k seek=25 count=1 oflag=direct conv=notrunc status=none 2>/dev/null
ktap_check "a remap storm: the hook runs with mode failed (was ok)" saw "event $n failed ok 1"
ktap_check "its standard input is the target's status as JSON" python3 - "$WORK/last.json" "$n" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
assert t["name"] == sys.argv[2] and t["status"]["mode"] == "failed", t
assert t["table"]["uuid"] and "max_remap_rate 2" in t["table"]["options"], t
EOF
dmsetup message "$n" 0 clear_failed || fail "clear_failed"
ktap_check "clear_failed: the hook runs with mode ok (was failed)" saw "event $n ok failed 1"
"$REMAPCTL" remove "$n" >/dev/null || fail "remove"
ktap_check "the target goes: the hook runs (event gone)" saw "gone $n  ok "
ktap_check "--http: once it is gone the scrape has no series of it" \
  bash -c "m=\$(python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:9577/metrics\", timeout=10).read().decode())') &&
    ! grep -q 'target=\"$n\"' <<<\"\$m\""
ktap_check "--http refuses an address that is not loopback (exit 2)" \
  bash -c "out=\$('$REMAPCTL' monitor --http 0.0.0.0:9578 --once 2>&1); test \$? = 2 &&
    grep -q 'only a loopback address is served' <<<\"\$out\""
ktap_check "the monitor's log names each event" \
  bash -c "grep -q '^$n: event, event [0-9]* (mode ok -> failed): mode failed' $WORK/mon.log &&
    grep -q '^$n: gone' $WORK/mon.log"
ktap_check "the monitor is still running" kill -0 "$mon"
ktap_check "its log names the metrics address" grep -q 'serving metrics on http://127.0.0.1:9577/metrics' "$WORK/mon.log"
ktap_finish
