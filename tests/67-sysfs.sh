#!/usr/bin/env bash
# sysfs: /sys/kernel/dm_remap/dm-N/ shows every target's figures (the fields of its status
# line: mode, health, scan, stats, spares) and has two validated knobs, scan/action
# (start|stop) and scan/rate_max_kibs. A bad write gets EINVAL, a log line, and changes
# nothing; a read-only table refuses to start a scan. The directory is the md's: it
# stays across a reload and then shows the new table, and goes with the device. Reading
# the files while the device is suspended, reloaded and removed leaves no splat.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd
ktap_plan 15
load_module || fail "the dm-remap module loads"

base=$(mkloop 32) && spare=$(mkloop 8) || fail "loop devices"
n=sys
dm_create "$n" "0 65536 remap $base $spare 2 scan_rate 256" || fail "create the target"
# (ktap_check's description is its local `d`: the directory is `sd`.)
sd=/sys/kernel/dm_remap/dm-$(dmsetup info -c --noheadings -o minor "$PREFIX$n" | tr -d ' ')
layout() {
  local g
  for g in health scan stats spares; do [ -d "$sd/$g" ] || { diag "no $sd/$g"; return 1; }; done
  [ -f "$sd/mode" ] && [ "$(cat "$sd/name")" = "$PREFIX$n" ] ||
    { diag "$sd: $(ls "$sd" | tr '\n' ' '); name: $(cat "$sd/name")"; return 1; }
}
ktap_check "the directory and its groups: $sd/{health,scan,stats,spares}, the name" layout

dd if=/dev/urandom of="$(dm_path "$n")" bs=64k count=4 oflag=direct status=none || fail "write"
dd if="$(dm_path "$n")" of=/dev/null bs=4k count=3 iflag=direct status=none || fail "read"
for b in 10 20; do dmsetup message "$PREFIX$n" 0 remap "$b" >/dev/null || fail "remap $b"; done
# Each file against its field of the status line (1-based, as status_field counts).
same() {
  local f=$1 k=$2 got want
  got=$(cat "$sd/$f") && want=$(status_field "$n" "$k") || return 1
  [ "$want" = - ] && want=none
  [ "$got" = "$want" ] || { diag "$f: $got, status field $k: $want"; return 1; }
}
all_same() {
  local bad=0 p
  for p in mode:17 block_size:1 spares/blocks:2 stats/reads:3 stats/writes:4 stats/flushes:5 \
      stats/read_sectors:6 stats/write_sectors:7 stats/read_errors:8 stats/write_errors:9 \
      spares/remapped:10 spares/pending:11 spares/used:12 spares/free:13 stats/remaps:14 \
      spares/metadata_version:15 spares/last_commit:16 scan/action:18 scan/cursor:19 \
      scan/passes:20 scan/unreadable:21 scan/weak:22 scan/proactive_remaps:23 \
      spares/fenced:24 health/score:25 health/alert:26 health/ttf_s:27 health/samples:28; do
    same "${p%%:*}" "${p#*:}" || bad=1
  done
  return $bad
}
ktap_check "every file shows its status field (28 files)" all_same
ktap_check "the figures are the target's: 2 remapped, 3 reads, mode ok" \
  test "$(cat $sd/spares/remapped) $(cat $sd/stats/reads) $(cat $sd/mode)" = "2 3 ok"

ktap_check "scan/rate_max_kibs reads the table's scan_rate (256)" test "$(cat $sd/scan/rate_max_kibs)" = 256
ktap_check "a valid rate is taken (1024)" \
  bash -c "echo 1024 > $sd/scan/rate_max_kibs && test \"\$(cat $sd/scan/rate_max_kibs)\" = 1024"
# bad_write <file> <value> <kept>: refused with EINVAL, the value kept, a log line.
bad_write() {
  local err
  dmesg_mark
  if err=$( { printf '%s' "$2" > "$sd/$1"; } 2>&1); then diag "$1 took '$2'"; return 1; fi
  grep -q "Invalid argument" <<<"$err" || { diag "$1 '$2': $err"; return 1; }
  [ "$(cat "$sd/$1")" = "$3" ] || { diag "$1 is now $(cat "$sd/$1")"; return 1; }
  dmesg_since_mark | grep -q "device-mapper: remap: .*: $1: " ||
    { diag "no log line for $1 '$2'"; return 1; }
}
bad_rates() {
  local v
  # (An empty write never reaches the file: sysfs drops it.)
  for v in 63 4194305 abc -1 " 1024" 1024x 99999999999999999999999; do
    bad_write scan/rate_max_kibs "$v" 1024 || return 1
  done
}
ktap_check "bad rates are refused with EINVAL and a log line, the rate kept (7 values)" bad_rates
ktap_check "scan/action: a bad word is refused" bad_write scan/action go idle
ktap_check "scan/action start: the scan runs (state running or a pass done)" bash -c "
  echo start > $sd/scan/action &&
  for i in \$(seq 60); do s=\$(cat $sd/scan/action); p=\$(cat $sd/scan/passes)
    [ \"\$s\" = running ] || [ \"\$p\" -ge 1 ] && exit 0; sleep 0.5; done; exit 1"
ktap_check "scan/action stop: the scan stops" bash -c "echo stop > $sd/scan/action && test \"\$(cat $sd/scan/action)\" = stopped"

# A reload: the same directory, now showing the new table (its scan_rate; the knob's
# earlier value is gone with the old table).
suspend_reload_resume "$PREFIX$n" "0 65536 remap $base $spare 2 scan_rate 512" || bail
ktap_check "after a reload the directory shows the new table (rate 512, 2 remapped, reads from 0)" \
  test "$(cat $sd/scan/rate_max_kibs) $(cat $sd/spares/remapped) $(cat $sd/stats/reads)" = "512 2 0"

# A read-only table refuses to start a scan.
ro=ro
base2=$(mkloop 16) && spare2=$(mkloop 8) || fail "loop devices for the read-only target"
dm_create ro0 "0 32768 remap $base2 $spare2" || fail "create the second target"
dmsetup remove "${PREFIX}ro0" || fail "remove it (its spare is formatted now)"
DMDEVS=("${DMDEVS[@]/${PREFIX}ro0}")
dmsetup create "$PREFIX$ro" --readonly --table "0 32768 remap $base2 $spare2" && DMDEVS+=("$PREFIX$ro") ||
  fail "create a read-only target"
dro=/sys/kernel/dm_remap/dm-$(dmsetup info -c --noheadings -o minor "$PREFIX$ro" | tr -d ' ')
ktap_check "two targets, two directories" bash -c "test -d $dro && test $dro != $sd"
ktap_check "a read-only table: scan/action start gets EROFS" fails_with "Read-only file system" \
  bash -c "echo start > $dro/scan/action"

# Reads racing suspend, reload, resume and remove.
( end=$((SECONDS + 8)); while [ $SECONDS -lt $end ]; do cat "$sd"/*/* "$sd/mode" >/dev/null 2>&1; done ) &
reader=$!
for i in 1 2 3 4 5; do
  suspend_reload_resume "$PREFIX$n" "0 65536 remap $base $spare 2 scan_rate $((256 * i))" || bail
done
ktap_check "reads during five suspend/reload/resume cycles: the last table's rate (1280)" \
  test "$(cat $sd/scan/rate_max_kibs)" = 1280
dmsetup remove "$PREFIX$n" || fail "remove"
DMDEVS=("${DMDEVS[@]/$PREFIX$n}")
wait "$reader"
ktap_check "the directory goes with the device" test ! -e "$sd"
ktap_check "the read-only target's directory stays" test -f "$dro/mode"
ktap_finish
