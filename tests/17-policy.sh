#!/usr/bin/env bash
# policy: `remapctl monitor --policy FILE` applies an admin's rules by itself: when a
# target's free spare falls under half it adds the first device of its pool directory
# that can join (entries in name order; the one before it cannot: skipped, with the
# reason; a hidden entry is not tried), and a program rule runs
# once when its condition starts to hold, not at every event after; a proactive-off rule
# reloads the table with proactive_remap off, and a mail rule hands sendmail -oi -t a
# message naming the target and rule with its status. A policy file with an error is
# refused at start with its line and the reason (exit 2).
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd python3
ktap_plan 10
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

# A 5 MiB spare holds 128 data blocks of 4 KiB.
base=$(mkloop 32) && spare=$(mkloop 5) && extra=$(mkloop 16) || fail "loop devices"
n=${PREFIX}pol
"$REMAPCTL" create "$n" --main "$base" --spare "$spare" --max-remap-rate 1000 >/dev/null &&
  DMDEVS+=("$n") || fail "create the target"

printf '%s\n' '[[rule]]' 'when = "spare_free_percent < 50"' 'action = "spare-add"' \
  'devices = ["/dev/null"]' '' '[[rule]]' 'when = "remapped >= lots"' 'action = "scan-start"' \
  > "$WORK/bad.toml"
ktap_check "a policy with an error is refused at start: its line and the reason, exit 2" bash -c "
  out=\$('$REMAPCTL' monitor --policy $WORK/bad.toml --once 2>&1); rc=\$?
  test \$rc = 2 && grep -q 'bad.toml: line 6: rule 2: when \"remapped >= lots\": \"lots\" is not a whole number' <<<\"\$out\""

printf '#!/bin/sh\necho "$DMREMAP_EVENT $DMREMAP_TARGET $DMREMAP_REMAPPED" >> %s\n' "$WORK/ran" \
  > "$WORK/hook.sh"
chmod +x "$WORK/hook.sh"
# A stand-in for the MTA's sendmail: what it was called with, and the message.
printf '#!/bin/sh
echo "$*" > %s
cat > %s
' "$WORK/mail.args" "$WORK/mail.msg" > "$WORK/sendmail"
chmod +x "$WORK/sendmail"
# The pool directory, filled after the monitor has read the policy: a file that is not
# a device first, then a link to the spare device, and a hidden entry.
mkdir -p "$WORK/pool.d"
printf '%s\n' '# Grow the pool when under half of the spare is free.' '[[rule]]' \
  'when = "spare_free_percent < 50"' 'action = "spare-add"' \
  "pool = \"$WORK/pool.d\"" "target = \"$n\"" '' \
  '[[rule]]' 'when = "remapped >= 10"' 'action = "exec"' "program = \"$WORK/hook.sh\"" '' \
  '[[rule]]' 'when = "remapped >= 75"' 'action = "proactive-off"' '' \
  '[[rule]]' 'when = "remapped >= 75"' 'action = "mail"' 'to = ["root", "ops@example.com"]' \
  "sendmail = \"$WORK/sendmail\"" \
  > "$WORK/policy.toml"
"$REMAPCTL" monitor --policy "$WORK/policy.toml" > "$WORK/mon.log" 2>&1 &
mon=$!
# The case's exit status must survive the kill (teardown exits with the status it finds).
trap 'rc=$?; kill $mon 2>/dev/null; (exit $rc); teardown' EXIT
for _ in $(seq 40); do grep -q "policy .*4 rule(s)" "$WORK/mon.log" && break; sleep 0.5; done
ktap_check "the monitor reads the policy (4 rules)" grep -q "policy $WORK/policy.toml: 4 rule(s)" "$WORK/mon.log"
: > "$WORK/pool.d/a-not-a-device"
ln -s "$extra" "$WORK/pool.d/b-spare"
ln -s /dev/null "$WORK/pool.d/.hidden"

dd if=/dev/urandom of="/dev/mapper/$n" bs=1M count=1 oflag=direct status=none || fail "write"
# 65 remaps, one message (and one dm event) each: 63 of 128 spare blocks stay free
# (49%). No more until the spare is added: a message to the target is refused while
# the reload has it suspended.
for b in $(seq 0 64); do
  dmsetup message "$n" 0 remap "$b" >/dev/null || fail "remap $b"
done
spares() { dmsetup message "$n" 0 spare_list | grep -c '^spare='; }
for _ in $(seq 60); do [ "$(spares)" = 2 ] && break; sleep 0.5; done
devno() { printf '%d:%d' "0x$(stat -c %t "$1")" "0x$(stat -c %T "$1")"; }
ktap_check "under half free: the policy added the pool's device as the second spare" \
  test "$(dmsetup message "$n" 0 spare_list | sed -n 's/^spare=1 dev=\([0-9:]*\) .*/\1/p')" = "$(devno "$extra")"
ktap_check "its log names the rule, the device that could not join and the one that did" \
  bash -c "grep '^$n: policy rule 1 (line 2, spare_free_percent < 50): $n: .* added as spare 1 of 2 (skipped: ' $WORK/mon.log |
    grep '$WORK/pool.d/a-not-a-device' | grep -qv hidden" || diag "monitor log: $(grep policy "$WORK/mon.log")"
ktap_check "the data reads back through the grown pool" \
  dd if="/dev/mapper/$n" of=/dev/null bs=1M count=1 iflag=direct status=none
for _ in $(seq 20); do [ -s "$WORK/ran" ] && break; sleep 0.5; done
sleep 2
ktap_check "the program rule ran once, when remapped reached 10 (not at every later event)" \
  bash -c "test \$(wc -l < $WORK/ran) = 1 && awk -v n=$n '\$1 == \"policy\" && \$2 == n && \$3 >= 10 { ok = 1 } END { exit !ok }' $WORK/ran"
# More remaps: spare use is under half now, so no second spare-add. The last one
# makes 75 remapped blocks: the proactive-off and mail rules act.
for b in $(seq 100 109); do dmsetup message "$n" 0 remap "$b" >/dev/null || fail "remap $b"; done
for _ in $(seq 40); do grep -q "mailed root" "$WORK/mon.log" && dmsetup table "$n" | grep -q 'proactive_remap off' && break; sleep 0.5; done
ktap_check "with the pool grown the rule does not act again (still 2 spares)" test "$(spares)" = 2
ktap_check "at 75 remapped the proactive-off rule reloaded the table with proactive_remap off" \
  bash -c "dmsetup table $n | grep -q ' proactive_remap off ' &&
    grep -q '^$n: policy rule 3 (line 13, remapped >= 75): $n: proactive remapping turned off' $WORK/mon.log" ||
  diag "table: $(dmsetup table "$n"); log: $(grep 'rule 3' "$WORK/mon.log")"
ktap_check "and the mail rule ran sendmail -oi -t with a message about the target and its status" python3 - "$WORK" "$n" <<'EOF'
import json, sys
w, n = sys.argv[1], sys.argv[2]
assert open(f"{w}/mail.args").read().split() == ["-oi", "-t"]
head, body = open(f"{w}/mail.msg").read().split("\n\n", 1)
h = dict(l.split(": ", 1) for l in head.splitlines())
assert h["To"] == "root, ops@example.com", h
assert h["Subject"].endswith(f": {n}: remapped >= 75"), h
st = json.loads(body.split("--json:\n", 1)[1])
assert st["name"] == n and st["status"]["remapped"] == 75, st["status"]
assert "mailed root, ops@example.com" in open(f"{w}/mon.log").read()
EOF
ktap_check "the monitor is still running" kill -0 "$mon"
ktap_finish
