#!/usr/bin/env bash
# proactive: what proactive remapping may spend and how far it reaches. A weak block
# (a dm-delay block, 2 s per read) found by the scan moves alone while the alert level
# is below warning; at warning (the spare over 80% used) the readable blocks of its
# region (`proactive_region` on either side) follow it; `proactive_reserve` keeps its
# share of the pool free (nothing moves below it); `proactive_region 0` moves the weak
# block alone. The module parameters that give these defaults and the prediction's
# tunables (read when a target is made, shown by `health`) refuse bad values.
# timeout: 600
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp python3
grep -qw delay <(dmsetup targets) || modprobe dm-delay 2>/dev/null || true
grep -qw delay <(dmsetup targets) || skip_all "dm-delay not available"
ktap_plan 30
load_module || fail "the dm-remap module loads"

params=/sys/module/dm_remap/parameters
names=(sample_interval_s proactive_reserve_pct proactive_region_blocks predict_unusable_ppm
       predict_warning_days predict_critical_days predict_min_confidence
       predict_raise_hold_s predict_lower_hold_s)
declare -A saved
for p in "${names[@]}"; do saved[$p]=$(cat "$params/$p") || fail "read parameter $p"; done
# The parameters are the module's: later cases get them back as they were.
restore_params() { local p; for p in "${names[@]}"; do echo "${saved[$p]}" > "$params/$p"; done; }
trap 'rc=$?; restore_params; (exit $rc); teardown' EXIT

shown() { local p out=""; for p in "$@"; do out+="$(cat "$params/$p") "; done; echo "${out% }"; }
ktap_check "the proactive and prediction parameters show their defaults" \
  test "$(shown "${names[@]:1}")" = "25 4 1000 90 7 600 7200 172800"
bad_param() { ! echo "$2" > "$params/$1" 2>/dev/null && [ "$(cat "$params/$1")" = "$3" ]; }
dmesg_mark
ktap_check "proactive_reserve_pct 101 is refused and changes nothing" bad_param proactive_reserve_pct 101 25
ktap_check "with the reason in the kernel log" \
  logged "parameter proactive_reserve_pct: invalid value (a decimal number 0..100)"
ktap_check "proactive_region_blocks 65 is refused" bad_param proactive_region_blocks 65 4
ktap_check "predict_unusable_ppm 0 and 1000001 are refused" \
  bash -c "$(declare -f bad_param); params=$params; bad_param predict_unusable_ppm 0 1000 && bad_param predict_unusable_ppm 1000001 1000"
ktap_check "predict_warning_days 0 and 3651 are refused" \
  bash -c "$(declare -f bad_param); params=$params; bad_param predict_warning_days 0 90 && bad_param predict_warning_days 3651 90"
ktap_check "predict_critical_days junk is refused" bad_param predict_critical_days 7d 7
ktap_check "predict_min_confidence 1001 is refused" bad_param predict_min_confidence 1001 600
ktap_check "predict_raise_hold_s -1 and predict_lower_hold_s 2592001 are refused" \
  bash -c "$(declare -f bad_param); params=$params; bad_param predict_raise_hold_s -1 7200 && bad_param predict_lower_hold_s 2592001 172800"

# Table options.
t=$(mkloop 8) || fail "loop device"
ts=$(mkloop 16) || fail "loop device"
logged_bad() { dmesg | grep -F 'device-mapper: table:' | tail -3 | grep -qF "$1"; }
fails_with "Invalid argument" dm_create bad "0 16384 remap $t $ts 2 proactive_reserve 101" &&
  logged_bad "Invalid proactive_reserve (0..100 percent)" &&
  ktap_pass "proactive_reserve 101 is refused, with the reason in the log" ||
  ktap_fail "proactive_reserve 101 is refused, with the reason in the log"
fails_with "Invalid argument" dm_create bad "0 16384 remap $t $ts 2 proactive_region 65" &&
  logged_bad "Invalid proactive_region (0..64 blocks)" &&
  ktap_pass "proactive_region 65 is refused, with the reason in the log" ||
  ktap_fail "proactive_region 65 is refused, with the reason in the log"

# Parameters for the next target: samples every second, a raised level reported at
# once; the prediction's tunables changed (a critical horizon beyond the warning one
# is taken as the warning one).
echo 1 > "$params/sample_interval_s" && echo 0 > "$params/predict_raise_hold_s" &&
  echo 500 > "$params/predict_unusable_ppm" && echo 30 > "$params/predict_warning_days" &&
  echo 40 > "$params/predict_critical_days" && echo 700 > "$params/predict_min_confidence" &&
  echo 3600 > "$params/predict_lower_hold_s" || fail "set the parameters"

# The main device: 32 MiB of known data; one block (BLK) behind dm-delay, 2 s per I/O.
# The spare: 5 MiB, 128 data blocks of 4 KiB.
base=$(mkloop 32) || fail "loop device for the main device"
spare=$(mkloop 5) || fail "loop device for the spare"
head -c $((32 << 20)) /dev/urandom > "$WORK/data"
dd if="$WORK/data" of="$base" bs=1M oflag=direct status=none || fail "fill the main device"
slow_name=${PREFIX}slow
slow_table() {
  local s=$(($1 * 8))
  printf '%s\n' "0 $s linear $base 0" "$s 8 delay $base $s 2000" \
    "$((s + 8)) $((65536 - s - 8)) linear $base $((s + 8))"
}
slow_table 2000 | dmsetup create "$slow_name" || fail "dm-delay over block 2000"
DMDEVS+=("$slow_name")
# slow_at <block>: the delay moves to another block (the lower table reloaded).
slow_at() { slow_table "$1" | dmsetup reload "$slow_name" && dmsetup resume "$slow_name"; }
main=/dev/mapper/$slow_name
name=${PREFIX}r

dm_create r "0 65536 remap $main $spare 4 scan_rate 65536 proactive_reserve 0" || fail "create the target"
dev=$(dm_path r)
uuid=$(dmsetup table "$name" | awk '{ print $NF }')
ktap_check "the table prints proactive_reserve back" \
  bash -c "dmsetup table $name | grep -q ' 6 scan_rate 65536 proactive_reserve 0 uuid '"
ktap_check "health shows the tunables the parameters gave (critical capped at warning)" \
  bash -c "dmsetup message $name 0 health | head -1 | grep -q ' unusable_ppm=500 warning_days=30 critical_days=30 min_confidence=700 raise_hold_s=0 lower_hold_s=3600$'"
ktap_check "scan status shows the reserve (table) and the region (parameter)" \
  test "$(scan_field r proactive_reserve) $(scan_field r proactive_region)" = "0 4"

# pass: one scan pass from the start, to its end.
pass() {
  local n i
  n=$(scan_field r passes)
  dmsetup message "$name" 0 scan start >/dev/null || return 1
  for ((i = 0; i < 120; i++)); do
    [ "$(scan_field r passes)" -gt "$n" ] && return 0
    sleep 1
  done
  diag "scan status: $(dmsetup message "$name" 0 scan status)"
  return 1
}
state() { dmsetup message "$name" 0 query "$1" | grep -o 'state=[a-z]*' | cut -d= -f2; }
states() { local b out=""; for b in "$@"; do out+="$(state "$b") "; done; echo "${out% }"; }
same_data() {
  cmp -s <(dd if="$dev" bs=4096 skip="$1" count="$2" iflag=direct status=none) \
    <(dd if="$WORK/data" bs=4096 skip="$1" count="$2" status=none)
}

# Below warning: the weak block moves alone.
ktap_check "a pass at level info completes" pass
ktap_check "it found block 2000 weak and moved it alone" \
  test "$(scan_field r weak) $(scan_field r proactive_remaps) $(states 1999 2000 2001)" = "1 1 main remapped main"

# Warning: 103 blocks remapped by hand leave 24 of 128 free (81% used).
for ((b = 5000; b < 5103; b++)); do
  dmsetup message "$name" 0 remap "$b" >/dev/null || { diag "remap $b refused"; break; }
done
ktap_check "81% of the spare used: alert level warning" wait_alert r warning
slow_at 3000 || fail "move the delay to block 3000"
dmesg_mark
ktap_check "a pass at level warning completes" pass
ktap_check "block 3000 moved with the 4 blocks on either side (9 proactive remaps)" \
  test "$(scan_field r proactive_remaps) $(states 2995 2996 2999 3000 3001 3004 3005)" = "10 main remapped remapped remapped remapped remapped main"
ktap_check "the kernel log says 8 blocks moved with it" \
  logged "alert level warning or above: 8 blocks around weak block 3000 moved with it"
ktap_check "the region's data moved intact (blocks 2990..3010)" same_data 2990 21
ktap_check "15 spare blocks left" test "$(info r spare_free)" = 15

# The reserve: 15 free of 128 is below 50%: a weak block is found and left in place.
tbl() { echo "0 65536 remap $main $spare $1 scan_rate 65536 $2 uuid $uuid"; }
suspend_reload_resume "$name" "$(tbl 8 'proactive_reserve 50 proactive_region 4')" ||
  fail "reload with proactive_reserve 50"
slow_at 4000 || fail "move the delay to block 4000"
ktap_check "with proactive_reserve 50 a pass completes" pass
ktap_check "block 4000 is found weak but stays on the main device" \
  test "$(scan_field r weak) $(scan_field r proactive_remaps) $(state 4000) $(info r spare_free)" = "1 0 main 15"
ktap_check "and still reads as written" same_data 3996 9

# proactive_region 0: at warning, the weak block moves alone.
suspend_reload_resume "$name" "$(tbl 8 'proactive_reserve 0 proactive_region 0')" ||
  fail "reload with proactive_region 0"
ktap_check "the alert level is still warning after the reload" wait_alert r warning
slow_at 6000 || fail "move the delay to block 6000"
ktap_check "with proactive_region 0 a pass completes" pass
ktap_check "block 6000 moved alone" \
  test "$(scan_field r proactive_remaps) $(states 5999 6000 6001) $(info r spare_free)" = "1 main remapped main 14"
ktap_check "the target is fine: mode ok" test "$(info r mode)" = ok
ktap_check "and its data reads as written (blocks 5998..6002)" same_data 5998 5
ktap_finish
