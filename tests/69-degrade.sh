#!/usr/bin/env bash
# Degradation scenarios: a main device whose blocks degrade while the target runs.
#   Latency first: blocks 2000..2003 read slowly (dm-delay, 2 s per I/O); the scan finds
#     them weak and copies them to the spare; then they fail outright (their range of
#     the main device becomes dm-error): reads through the target still return their
#     data, without an error.
#   Intermittent errors: blocks 4000..4003 fail every read for a while (dm-flakey,
#     error_reads); the scan records them pending and their reads fail (EIO); the device
#     recovers (dm-flakey replaced by dm-linear); the next pass reads the pending blocks
#     again and, with proactive_remap on, copies them to the spare and remaps them, their
#     data intact; with proactive_remap off, block 6000 is no longer pending and reads
#     from the main device again.
#   Bad blocks that keep appearing (dm-dust blocks added in waves): each pass records
#     the new ones pending, the application's rewrites remap them, and the spare fills;
#     the failure prediction raises a warning (spare low) while the spare still has
#     room; the last wave outgrows the spare and the target fails (mode failed, spare
#     full). The warning came first, and every block remapped reads as written.
# timeout: 900
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp python3
for t in delay flakey dust; do
  grep -qw "$t" <(dmsetup targets) || modprobe "dm-$t" 2>/dev/null || true
  grep -qw "$t" <(dmsetup targets) || skip_all "dm-$t not available"
done
ktap_plan 30
load_module || fail "the dm-remap module loads"

base=$(mkloop 32) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
head -c $((32 << 20)) /dev/urandom > "$WORK/data"
dd if="$WORK/data" of="$base" bs=1M oflag=direct status=none || fail "fill the main device"

# main_table <slow> <flaky> <flaky6000>: the main device's table; <slow> is "delay" or
# "error" for blocks 2000..2003, <flaky> and <flaky6000> are "flakey" or "linear" for
# blocks 4000..4003 and block 6000.
main_table() {
  local seg
  seg() {
    case $1 in
      delay) echo "$2 $3 delay $base $2 2000" ;;
      error) echo "$2 $3 error" ;;
      flakey) echo "$2 $3 flakey $base $2 0 1 1 error_reads" ;;
      linear) echo "$2 $3 linear $base $2" ;;
    esac
  }
  echo "0 16000 linear $base 0"
  seg "$1" 16000 32
  echo "16032 15968 linear $base 16032"
  seg "$2" 32000 32
  echo "32032 15968 linear $base 32032"
  seg "$3" 48000 8
  echo "48008 17528 linear $base 48008"
}
mname=${PREFIX}main
main_table delay flakey linear | dmsetup create "$mname" || fail "the main device (dm-delay, dm-flakey)"
DMDEVS+=("$mname")
main=/dev/mapper/$mname
reload_main() {
  main_table "$@" > "$WORK/mt" && dmsetup suspend "$mname" && dmsetup reload "$mname" "$WORK/mt" &&
    dmsetup resume "$mname"
}
same() { # same <dev> <first block> <count>: the blocks read back as written
  timeout 30 dd if="$1" bs=4096 skip="$2" count="$3" iflag=direct status=none |
    cmp -s - <(dd if="$WORK/data" bs=4096 skip="$2" count="$3" status=none)
}
state() { dmsetup message "${PREFIX}d" 0 query "$1" | tr ' ' '\n' | sed -n 's/^state=//p'; }

dm_create d "0 65536 remap $main $spare 4 scan_rate 65536 proactive_remap on" || fail "create the target"
dev=$(dm_path d)
uuid=$(dmsetup table "${PREFIX}d" | awk '{ print $NF }')
dmesg_mark
dmsetup message "${PREFIX}d" 0 scan start >/dev/null || fail "scan start"
wait_passes d 1 400 || fail "the first pass completes"
ktap_check "pass 1: the slow blocks are weak and moved to the spare (4 remapped)" \
  test "$(scan_field d weak) $(scan_field d proactive_remaps) $(info d remapped) $(state 2001)" = "4 4 4 remapped"
ktap_check "pass 1: the flaky blocks are unreadable, recorded pending" \
  test "$(scan_field d unreadable) $(info d pending) $(state 4002)" = "4 4 pending"
ktap_check "a read of a flaky block fails (EIO)" fails_with "Input/output error" blk_read "$dev" 4001 "$WORK/x"

# The slow blocks now fail outright.
reload_main error flakey linear || fail "blocks 2000..2003 fail on the main device"
ktap_check "the main device fails a read of block 2001 now" \
  fails_with "Input/output error" blk_read "$main" 2001 "$WORK/x"
errs=$(info d read_errors)
ktap_check "through the target, blocks 1998..2005 read as written" same "$dev" 1998 8
ktap_check "and no read of the target failed" test "$(info d read_errors)" = "$errs"

# The intermittent device recovers: the next pass reads the pending blocks again.
reload_main error linear linear || fail "blocks 4000..4003 read again on the main device"
ktap_check "the main device reads block 4001 again" same "$main" 4001 1
arm_wait d || fail "event counter"
dmsetup message "${PREFIX}d" 0 scan start >/dev/null || fail "scan start"
wait_passes d 2 400 || fail "the second pass completes"
ktap_check "pass 2: the 4 pending blocks read again, copied to the spare and remapped" \
  test "$(scan_field d recovered) $(info d pending) $(info d remapped) $(state 4000) $(state 4003)" = "4 0 8 remapped remapped"
ktap_check "the kernel log says so" logged "scan: pending block 4002 reads again: copied to the spare and remapped"
ktap_check "dmsetup wait woke on the event" woke
ktap_check "through the target, blocks 3998..4005 read as written" same "$dev" 3998 8

# proactive_remap off: a pending block that reads again is only no longer pending.
suspend_reload_resume "${PREFIX}d" "0 65536 remap $main $spare 6 scan_rate 65536 proactive_remap off uuid $uuid" ||
  fail "reload with proactive_remap off"
reload_main error linear flakey || fail "block 6000 fails its reads"
p=$(scan_field d passes)
dmsetup message "${PREFIX}d" 0 scan start >/dev/null || fail "scan start"
wait_passes d $((p + 1)) 400 || fail "a pass completes (the new table's first)"
ktap_check "block 6000 is found unreadable, recorded pending" test "$(state 6000) $(info d pending)" = "pending 1"
reload_main error linear linear || fail "block 6000 reads again"
dmsetup message "${PREFIX}d" 0 scan start >/dev/null || fail "scan start"
wait_passes d $((p + 2)) 400 || fail "the next pass completes"
ktap_check "proactive_remap off: block 6000 is no longer pending, nor remapped" \
  test "$(scan_field d recovered) $(info d pending) $(info d remapped) $(state 6000)" = "1 0 8 main"
ktap_check "the kernel log says so" logged "scan: pending block 6000 reads again: no longer pending"
ktap_check "it reads as written (from the main device)" same "$dev" 5999 3
ktap_check "mode ok, metadata commits fine" test "$(info d mode) $(info d last_commit)" = "ok 0"
dmsetup remove "${PREFIX}d" || fail "remove"
DMDEVS=("$mname")
ktap_check "the spare's metadata is clean" bash -c "'$REMAPCTL' meta check '$spare' | grep -q clean"

# Bad blocks that keep appearing. Samples every second, and a raised level reported at
# once (the module's parameters, restored at the end), so the prediction's threshold
# model judges each wave as it lands.
params=/sys/module/dm_remap/parameters
saved_interval=$(cat "$params/sample_interval_s") && saved_hold=$(cat "$params/predict_raise_hold_s") ||
  fail "read the parameters"
trap 'rc=$?; echo "$saved_interval" > "$params/sample_interval_s"; echo "$saved_hold" > "$params/predict_raise_hold_s"; (exit $rc); teardown' EXIT
echo 1 > "$params/sample_interval_s" && echo 0 > "$params/predict_raise_hold_s" || fail "set the parameters"
# The main device: 16 MiB over dm-dust (4 KiB blocks); the spare: 5 MiB, 128 data blocks.
wbase=$(mkloop 16) || fail "loop device for the main device"
wspare=$(mkloop 5) || fail "loop device for the spare"
dd if="$WORK/data" of="$wbase" bs=1M count=16 oflag=direct status=none || fail "fill the main device"
dust_name=${PREFIX}wdust
dmsetup create "$dust_name" --table "0 32768 dust $wbase 0 4096" || fail "dm-dust"
DMDEVS+=("$dust_name")
dmsetup message "$dust_name" 0 enable || fail "dm-dust enable"
dm_create w "0 32768 remap /dev/mapper/$dust_name $wspare 2 scan_rate 65536" || fail "create the target"
wdev=$(dm_path w)
head -c $((16 << 20)) /dev/urandom > "$WORK/new"
level() { info w alert; }
below_warning() { case $(level) in info | notice) return 0 ;; *) diag "level $(level)"; return 1 ;; esac; }
# wave <first> <n>: n blocks from <first>, every third block, go bad on the main device;
# a pass records them pending; then the application rewrites them (new data).
waves=0
wave() {
  local b i
  for ((i = 0; i < $2; i++)); do
    dmsetup message "$dust_name" 0 addbadblock $(($1 + 3 * i)) >/dev/null || return 1
  done
  waves=$((waves + 1))
  dmsetup message "${PREFIX}w" 0 scan start >/dev/null || return 1
  wait_passes w "$waves" 400 || return 1
  [ "$(info w pending)" = "$2" ] || { diag "pending $(info w pending), not $2"; return 1; }
  for ((i = 0; i < $2; i++)); do
    b=$(($1 + 3 * i))
    dd if="$WORK/new" of="$wdev" bs=4096 skip="$b" seek="$b" count=1 oflag=direct conv=notrunc status=none ||
      { WRITE_FAILED=$b; return 0; }
  done
}
# rewritten <first> <n>: those blocks read back as rewritten, through the target.
rewritten() {
  local i b
  for ((i = 0; i < $2; i++)); do
    b=$(($1 + 3 * i))
    timeout 30 dd if="$wdev" bs=4096 skip="$b" count=1 iflag=direct status=none |
      cmp -s - <(dd if="$WORK/new" bs=4096 skip="$b" count=1 status=none) || { diag "block $b"; return 1; }
  done
}
dmesg_mark
figures() { echo "$(info w remapped) $(info w pending) $(info w spare_free)"; }
is() { [ "$1" = "$2" ] || { diag "found '$1', expected '$2'"; return 1; }; }
wave 100 40 || fail "wave 1"
ktap_check "wave 1: 40 new bad blocks found by the scan and remapped by their rewrites (40 of 128 used)" \
  is "$(figures)" "40 0 88"
ktap_check "below warning (31% of the spare used)" below_warning
wave 300 40 || fail "wave 2"
ktap_check "wave 2: 40 more (80 of 128 used)" is "$(figures)" "80 0 48"
ktap_check "still below warning (62% used)" below_warning
arm_wait w || fail "event counter"
wave 500 25 || fail "wave 3"
ktap_check "wave 3: 25 more (105 of 128 used: 82%)" is "$(figures)" "105 0 23"
ktap_check "a warning is raised (spare low), before the spare runs out" wait_alert w warning
ktap_check "dmsetup wait woke" woke
ktap_check "the kernel log has the warning" \
  bash -c "dmesg_since_mark | grep -F 'health alert:' | grep -F level=warning | grep -qF reason=spare_low"
# The scripted failure: the last wave outgrows the spare's 23 free blocks.
WRITE_FAILED=
wave 700 40 || fail "wave 4"
ktap_check "wave 4: the spare runs out: a rewrite fails (EIO), the target enters mode failed" \
  is "${WRITE_FAILED:+a write failed} $(info w mode) $(info w spare_free)" "a write failed failed 0"
ktap_check "the kernel log says why" logged "spare full: no free spare block"
ktap_check "the level is emergency (spare exhausted)" wait_alert w emergency
dmsetup message "${PREFIX}w" 0 alerts > "$WORK/walerts" || fail "alerts"
sed 's/^/# alerts: /' "$WORK/walerts"
ktap_check "the alerts list the warning before the emergency" \
  awk '/level=warning .*reason=spare_low/ && !w { w = NR } /level=emergency/ && !e { e = NR } END { exit !(w && e && w < e) }' "$WORK/walerts"
ktap_check "every block remapped before the failure reads as rewritten" \
  eval "rewritten 100 40 && rewritten 300 40 && rewritten 500 25 && rewritten 700 23"
ktap_finish
