#!/usr/bin/env bash
# predict: the kernel samples the target's statistics (I/O and error counts, latency
# percentiles from the hot path's histogram, remapped/pending/free levels) every
# sample_interval_s and runs the failure prediction on them: reads through dm-delay
# show their latency in the samples, dm-dust read errors are counted, an exhausted
# spare raises an emergency at once (status, `alerts`, kernel log, dm event), and the
# samples dumped with `samples` give remapctl predict the same alerts as the kernel
# raised; the history is kept on every spare of a pool. Module parameter and message
# input is validated.
# timeout: 600
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd python3
grep -qw dust <(dmsetup targets) || modprobe dm-dust 2>/dev/null || true
grep -qw dust <(dmsetup targets) || skip_all "dm-dust not available"
grep -qw delay <(dmsetup targets) || modprobe dm-delay 2>/dev/null || true
grep -qw delay <(dmsetup targets) || skip_all "dm-delay not available"
ktap_plan 32
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

params=/sys/module/dm_remap/parameters
bad_param() { ! echo "$2" > "$params/$1" 2>/dev/null && [ "$(cat "$params/$1")" = "$3" ]; }
ktap_check "sample_interval_s defaults to an hour" test "$(cat $params/sample_interval_s)" = 3600
dmesg_mark
ktap_check "sample_interval_s 0 is refused and changes nothing" bad_param sample_interval_s 0 3600
ktap_check "sample_interval_s 86401 is refused" bad_param sample_interval_s 86401 3600
ktap_check "sample_interval_s junk is refused" bad_param sample_interval_s 1s 3600
ktap_check "with the reason in the kernel log" \
  logged "parameter sample_interval_s: invalid value (a decimal number 1..86400)"
echo 1 > "$params/sample_interval_s" || fail "sample_interval_s 1"

# The main device: 16 MiB over dm-dust (reads of its bad blocks fail) under dm-delay
# (reads take 40 ms, writes none); a 5 MiB spare holds 128 data blocks of 4 KiB.
base=$(mkloop 16) || fail "loop device for the main device"
spare=$(mkloop 5) || fail "loop device for the spare"
dust_name=${PREFIX}dust
dmsetup create "$dust_name" --table "0 32768 dust $base 0 4096" || fail "dm-dust"
DMDEVS+=("$dust_name")
dust() { dmsetup message "$dust_name" 0 "$@"; }
slow_name=${PREFIX}slow
dmsetup create "$slow_name" --table "0 32768 delay /dev/mapper/$dust_name 0 40 /dev/mapper/$dust_name 0 0" ||
  fail "dm-delay over the main device"
DMDEVS+=("$slow_name")
dm_create p "0 32768 remap /dev/mapper/$slow_name $spare" || fail "create the target"
dev=$(dm_path p)
name=${PREFIX}p

ktap_check "a new target reports health 100, level info, no forecast" \
  test "$(info p health_score) $(info p alert) $(info p ttf_s)" = "100 info -"

# samples_dump <file>: every sample the target holds, paging through `samples`.
samples_dump() {
  local from=0 out line
  echo "t_s,reads,read_errors,writes,write_errors,lat_p50_us,lat_p99_us,remapped_total,pending_total,spare_free_blocks" > "$1"
  while :; do
    out=$(dmsetup message "$name" 0 samples "$from") || return 1
    [ "$(head -1 <<<"$out")" = "$(head -1 "$1")" ] || { diag "no trace header: $out"; return 1; }
    line=$(tail -1 <<<"$out")
    sed '1d;$d' <<<"$out" >> "$1"
    case $line in
      end) return 0 ;;
      next=*) from=${line#next=} ;;
      *) diag "samples answer ends with '$line'"; return 1 ;;
    esac
  done
}
# wait_samples <n>: until the target has taken n samples (at most 30 s).
wait_samples() {
  local i
  for ((i = 0; i < 30; i++)); do
    [ "$(info p samples)" -ge "$1" ] && return 0
    sleep 1
  done
  return 1
}
ktap_check "samples are taken every second" wait_samples 2

# Idle, then reads through the 40 ms delay (about 5 s), then idle again.
sleep 3
t_read0=$(date +%s)
dd if="$dev" of=/dev/null bs=4096 count=100 iflag=direct status=none || fail "reads"
t_read1=$(date +%s)
sleep 3
samples_dump "$WORK/a.csv" || fail "dump the samples"
diag "samples during the reads ($t_read0..$t_read1):"
awk -F, -v a="$t_read0" -v b="$t_read1" 'NR > 1 && $1 > a && $1 <= b + 1' "$WORK/a.csv" | sed 's/^/# /'
# A sample wholly inside the read phase saw only 40 ms reads: p50 and p99 near 40 ms
# (dm-delay's timer counts jiffies: a read may come back up to a jiffy, 4 ms at
# HZ=250, early; the histogram reports a bucket's middle, within 3.2%; TCG adds its
# own delay).
ktap_check "a sample inside the read phase has p50 and p99 of 35..200 ms" \
  awk -F, -v a="$t_read0" -v b="$t_read1" \
  'NR > 1 && $1 > a + 1 && $1 < b && $2 > 0 && $6 >= 35000 && $6 <= 200000 && $7 >= 35000 && $7 <= 200000 { ok = 1 } END { exit !ok }' "$WORK/a.csv"
ktap_check "the samples of the read phase count its 100 reads" \
  awk -F, -v a="$t_read0" -v b="$t_read1" 'NR > 1 && $1 >= a && $1 <= b + 1 { r += $2 } END { exit !(r >= 100 && r <= 120) }' "$WORK/a.csv"
ktap_check "an idle sample shows no I/O and no latency" \
  awk -F, -v a="$t_read0" 'NR > 1 && $1 < a && $2 == 0 && $4 == 0 && $6 == 0 && $7 == 0 { ok = 1 } END { exit !ok }' "$WORK/a.csv"
ktap_check "the spare's 128 free blocks are in every sample" \
  awk -F, 'NR > 1 && $10 != 128 { bad = 1 } END { exit bad }' "$WORK/a.csv"

# Read errors: two dm-dust bad blocks, read (each read fails: pending).
dust addbadblock 10 && dust addbadblock 11 && dust enable || fail "dm-dust bad blocks"
dd if="$dev" of=/dev/null bs=4096 skip=10 count=1 iflag=direct status=none 2>/dev/null
dd if="$dev" of=/dev/null bs=4096 skip=11 count=1 iflag=direct status=none 2>/dev/null
ktap_check "the stats count the main device's read errors" test "$(counter p main_read_errors)" -ge 2
sleep 2
samples_dump "$WORK/b.csv" || fail "dump the samples"
ktap_check "the samples count the read errors and the 2 pending blocks" \
  awk -F, 'NR > 1 { e += $3; if ($9 == 2) p = 1 } END { exit !(e >= 2 && p) }' "$WORK/b.csv"
ktap_check "pending blocks alone stay below a reported alert (held 2 h first)" \
  test "$(info p alert)" = info

# Exhaust the spare: `remap` 128 blocks. An exhausted spare is an emergency, reported
# at the next sample. Events: each remap raises its own (d_remap, measured on the
# 127th); the level change must add one more after the last remap.
dmesg_mark
events() { dmsetup info -c --noheadings -o events "$name"; }
for ((b = 0; b < 126; b++)); do
  dmsetup message "$name" 0 remap $((100 + b)) >/dev/null || { diag "remap $((100 + b)) refused"; break; }
done
e1=$(events)
dmsetup message "$name" 0 remap 226 >/dev/null || diag "remap 226 refused"
d_remap=$(($(events) - e1))
ev0=$(events)
dmsetup message "$name" 0 remap 227 >/dev/null || diag "remap 227 refused"
ktap_check "the spare is full" test "$(info p spare_free)" = 0
emergency() { wait_alert p emergency && [ "$(info p health_score)" -le 9 ] && [ "$(info p ttf_s)" = 0 ]; }
ktap_check "status reports emergency, health score 0..9, time to failure 0" emergency
diag "events: $d_remap per remap; $ev0 before the last remap, $(events) now"
ktap_check "the level change raised a dm event" test "$(events)" = $((ev0 + d_remap + 1))
ktap_check "the kernel log has the alert" logged "health alert: t_s="
ktap_check "the log line names the emergency and its reason" \
  bash -c "dmesg_since_mark | grep -F 'health alert:' | grep -F 'level=emergency' | grep -qF 'reason=spare_exhausted'"
dmsetup message "$name" 0 alerts > "$WORK/alerts" || fail "alerts"
sed 's/^/# alerts: /' "$WORK/alerts"
ktap_check "alerts lists the change to emergency" grep -q 'level=emergency .*reason=spare_exhausted' "$WORK/alerts"
health=$(dmsetup message "$name" 0 health) || fail "health"
sed 's/^/# health: /' <<<"$health"
health_ok() {
  [ "$(wc -l <<<"$health")" = 6 ] &&
    head -1 <<<"$health" | grep -q 'level=emergency .*samples=[0-9]* refused=0 interval_s=1 alerts=1 history_errors=0 unusable_ppm=1000 warning_days=90 critical_days=7 min_confidence=600 raise_hold_s=7200 lower_hold_s=172800$' &&
    [ "$(grep -c '^model=' <<<"$health")" = 5 ]
}
ktap_check "health answers the state and five model verdicts" health_ok

# The same samples, replayed by remapctl predict, give the same alerts.
sleep 1
samples_dump "$WORK/all.csv" || fail "dump the samples"
held=$(($(wc -l < "$WORK/all.csv") - 1))
diag "$held samples dumped; the target took $(info p samples)"
"$REMAPCTL" predict --trace "$WORK/all.csv" --json > "$WORK/replay.json" || fail "remapctl predict"
python3 - "$WORK/replay.json" > "$WORK/replayed" <<'EOF' || fail "convert the replay"
import json, sys
def o(v):
    return "-" if v is None else str(v)
for a in json.load(open(sys.argv[1])):
    print(f"t_s={a['t_s']} level={a['level']} ttf_s={o(a['ttf_s'])} tts_s={o(a['tts_s'])} "
          f"confidence={round(a['confidence'] * 1000)} model={a['model']} "
          f"reason={a['reason_id']} detail={a['detail']}")
EOF
sed 's/ score=[0-9]*//' "$WORK/alerts" > "$WORK/kernel"
sed 's/^/# replayed: /' "$WORK/replayed"
ktap_check "remapctl predict over the dumped samples raises exactly the kernel's alerts" \
  cmp -s "$WORK/kernel" "$WORK/replayed"

# The history on the spare: written after every sample, not while suspended, replayed
# by the next table (a reload, or a new create as after a reboot).
slots() { dd if="$spare" bs=512 skip=5120 count=256 iflag=direct status=none | md5sum; }
h0=$(slots); sleep 2
ktap_check "the history slots change with the samples" test "$(slots)" != "$h0"
n1=$(info p samples)
dmsetup suspend "$name" || fail "suspend"
h0=$(slots); sleep 3
ktap_check "no history write while suspended" test "$(slots)" = "$h0"
table=$(dmsetup table "$name")
dmesg_mark
dmsetup reload "$name" --table "$table" && dmsetup resume "$name" || fail "reload"
restored_ok() {
  local n
  n=$(info p samples)
  [ "$n" -ge "$1" ] || { diag "$n samples after the reload, $1 before"; return 1; }
  dmsetup message "$name" 0 alerts | grep -q 'level=emergency .*reason=spare_exhausted'
}
ktap_check "a reloaded table restores the samples and the alerts" restored_ok "$n1"
ktap_check "the kernel log says so" logged "samples restored from spare 0; alert level emergency"
samples_dump "$WORK/after.csv" || fail "dump the samples"
ktap_check "the restored samples are the ones taken before" \
  cmp -s <(head -"$(wc -l < "$WORK/all.csv")" "$WORK/after.csv") "$WORK/all.csv"
# As after a reboot: the target removed and created again, one slot damaged.
dmsetup remove "$name" || fail "remove"
n2=$(python3 - "$spare" <<'EOF2'
import struct, sys
with open(sys.argv[1], "rb") as f:
    gens = []
    for sector in (5120, 5248):
        f.seek(sector * 512)
        h = f.read(64)
        gens.append((struct.unpack_from("<Q", h, 16)[0], struct.unpack_from("<I", h, 12)[0], sector))
gens.sort()
# Damage the newer slot; the older one holds one sample fewer.
with open(sys.argv[1], "r+b") as f:
    f.seek(gens[1][2] * 512 + 100)
    f.write(b"\xff" * 8)
print(gens[0][1])
EOF2
) || fail "damage a history slot"
dm_create p "$table" || fail "create again"
ktap_check "with the newer slot damaged, the older one is restored" restored_ok "$n2"
dmsetup remove "$name" || fail "remove"
dd if=/dev/zero of="$spare" bs=512 seek=5120 count=256 conv=notrunc status=none || fail "zero the slots"
dmesg_mark
dm_create p "$table" || fail "create again"
afresh() { [ "$(info p samples)" -le 1 ] && ! dmesg_since_mark | grep -q "health history:"; }
ktap_check "without history the engine starts afresh" afresh

# Bad message input.
ktap_check_fails "samples x is refused" dmsetup message "$name" 0 samples x
ktap_check_fails "health with an argument is refused" dmsetup message "$name" 0 health now

# A pool: every spare holds the history, so it survives the loss of the first's.
pa=$(mkloop 32) && pb=$(mkloop 8) && pc=$(mkloop 8) || fail "loop devices for the pool"
dm_create pool "0 65536 remap $pa $pb $pc" || fail "create a target with two spares"
for _ in $(seq 30); do [ "$(info pool samples)" -ge 3 ] && break; sleep 1; done
np=$(info pool samples)
ptable=$(dmsetup table "${PREFIX}pool")
dmsetup remove "${PREFIX}pool" || fail "remove the pool target"
dd if=/dev/zero of="$pb" bs=512 seek=5120 count=256 conv=notrunc status=none || fail "zero spare 0's slots"
dmesg_mark
dm_create pool "$ptable" || fail "create the pool target again"
pool_restored() {
  [ "$np" -ge 3 ] && [ "$(info pool samples)" -ge "$np" ] || { diag "$np samples before, $(info pool samples) after"; return 1; }
  dmesg_since_mark | grep -q "health history: [0-9]* samples restored from spare 1;"
}
ktap_check "a pool whose first spare lost its history slots restores from the second" pool_restored

echo 3600 > "$params/sample_interval_s" || fail "restore sample_interval_s"
ktap_finish
