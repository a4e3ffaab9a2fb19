#!/usr/bin/env bash
# scan: the background scan finds the blocks of the main device that no longer read
# (dm-dust bad blocks: recorded pending, reads fail, the next write remaps them) and the
# blocks that read far slower than the rest (a dm-delay range: weak, copied to the spare
# and remapped while still readable, their data intact); its position is committed to
# the metadata and a pass resumes after a table reload; it yields to a foreground fio
# verify run that races it over blocks it finds bad; what it finds raises a dm event;
# module parameters refuse bad values.
# timeout: 900
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp fio python3
grep -qw dust <(dmsetup targets) || modprobe dm-dust 2>/dev/null || true
grep -qw dust <(dmsetup targets) || skip_all "dm-dust not available"
grep -qw delay <(dmsetup targets) || modprobe dm-delay 2>/dev/null || true
grep -qw delay <(dmsetup targets) || skip_all "dm-delay not available"
ktap_plan 37
load_module || fail "the dm-remap module loads"

params=/sys/module/dm_remap/parameters
jq_num() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# Module parameters: readable, validated on write.
ktap_check "module parameters show the defaults" \
  test "$(cat $params/scan_rate_min_kib) $(cat $params/scan_rate_max_kib) $(cat $params/scan_interval_s)" = "1024 65536 0"
bad_param() { ! echo "$2" > "$params/$1" 2>/dev/null && [ "$(cat "$params/$1")" = "$3" ]; }
ktap_check "scan_rate_min_kib 63 is refused and changes nothing" bad_param scan_rate_min_kib 63 1024
ktap_check "scan_rate_max_kib 4194305 is refused" bad_param scan_rate_max_kib 4194305 65536
ktap_check "scan_interval_s -1 is refused" bad_param scan_interval_s -1 0
ktap_check "scan_interval_s junk is refused" bad_param scan_interval_s 5x 0
ktap_check "a valid write is taken" bash -c "echo 2048 > $params/scan_rate_min_kib && test \"\$(cat $params/scan_rate_min_kib)\" = 2048"
echo 1024 > "$params/scan_rate_min_kib" || fail "restore scan_rate_min_kib"

# Table options.
t=$(mkloop 8) || fail "loop device"
ts=$(mkloop 16) || fail "loop device"
fails_with "Invalid argument" dm_create bad "0 16384 remap $t $ts 2 scan_rate 10" &&
  ktap_pass "scan_rate 10 is refused" || ktap_fail "scan_rate 10 is refused"
logged_bad() { dmesg | grep -F 'device-mapper: table:' | tail -3 | grep -qF "$1"; }
ktap_check "with the reason in the kernel log" logged_bad "Invalid scan_rate (64..4194304 KiB/s)"

# The main device: 32 MiB over dm-dust (bad blocks 100, 5000 and 7000 of 4 KiB) with
# blocks 2000..2003 behind dm-delay (2 s per I/O; 8 s on a debug kernel, whose norm
# under emulation, with other VMs beside it, can put 2 s within the scan's
# 16 x norm + 0.5 s: the pass of 2026-12-04 on a debug kernel beside three other VMs
# found no weak block at 2 s).
base=$(mkloop 32) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
head -c $((32 << 20)) /dev/urandom > "$WORK/data"
dd if="$WORK/data" of="$base" bs=1M oflag=direct status=none || fail "fill the main device"
dust_name=${PREFIX}dust
dmsetup create "$dust_name" --table "0 65536 dust $base 0 4096" || fail "dm-dust"
DMDEVS+=("$dust_name")
dust() { dmsetup message "$dust_name" 0 "$@"; }
dust addbadblock 100 && dust addbadblock 5000 && dust addbadblock 7000 && dust enable ||
  fail "dm-dust bad blocks"
slow_name=${PREFIX}slow
delay_ms=2000
[ -e /proc/lockdep ] && delay_ms=8000
printf '%s\n' "0 16000 linear /dev/mapper/$dust_name 0" \
  "16000 32 delay /dev/mapper/$dust_name 16000 $delay_ms" \
  "16032 49504 linear /dev/mapper/$dust_name 16032" | dmsetup create "$slow_name" ||
  fail "dm-delay over blocks 2000..2003"
DMDEVS+=("$slow_name")
main=/dev/mapper/$slow_name
mm=$(dmsetup info -c --noheadings -o major,minor "$slow_name" | tr -d ' ')
sm=$(stat -L -c '%t:%T' "$spare" | python3 -c "import sys; a,b=sys.stdin.read().split(':'); print(f'{int(a,16)}:{int(b,16)}')")

dm_create s "0 65536 remap $main $spare 4 scan_rate 65536 proactive_remap on" || fail "create the target"
dev=$(dm_path s)
uuid=$(dmsetup table "${PREFIX}s" | awk '{ print $NF }')
ktap_check "the table prints the scan options back" \
  test "$(dmsetup table "${PREFIX}s")" = "0 65536 remap $mm $sm 6 scan_rate 65536 proactive_remap on uuid $uuid"
ktap_check "status has the scan fields: idle, position 0, no pass" \
  test "$(info s scan_state) $(info s scan_cursor) $(info s scan_passes)" = "idle 0 0"
ktap_check "scan status: idle, 8192 blocks, interval 0" \
  bash -c "dmsetup message ${PREFIX}s 0 scan status | grep -q '^state=idle cursor=0 blocks=8192 passes=0 .*interval_s=0 rate_kibs='"

dmesg_mark
arm_wait s || fail "event counter"
out=$(dmsetup message "${PREFIX}s" 0 scan start) || fail "scan start"
diag "scan start: $out"
ktap_check "a pass completes" wait_passes s 1 400
ktap_check "dmsetup wait woke on a dm event the scan raised" woke
ktap_check "it read every block but the ones it recorded (8192 - 3 - 4 remapped on the way)" \
  bash -c "[ \"\$(dmsetup message ${PREFIX}s 0 scan status | tr ' ' '\n' | sed -n 's/^scanned=//p')\" -ge 8185 ]"
ktap_check "3 unreadable blocks found, recorded pending" \
  test "$(scan_field s unreadable) $(info s pending)" = "3 3"
ktap_check "query: block 5000 pending" bash -c "dmsetup message ${PREFIX}s 0 query 5000 | grep -q state=pending"
ktap_check "the kernel log names the unreadable block" logged "scan: block 7000 is unreadable"
ktap_check "4 weak (slow) blocks found" test "$(scan_field s weak) $(scan_field s slow)" = "4 4"
ktap_check "and remapped proactively" \
  test "$(scan_field s proactive_remaps) $(info s remapped)" = "4 4"
ktap_check "query: block 2001 remapped" bash -c "dmsetup message ${PREFIX}s 0 query 2001 | grep -q state=remapped"
ktap_check "their data moved intact (blocks 1998..2005 read as written, fast)" \
  bash -c "timeout 5 dd if='$dev' bs=4096 skip=1998 count=8 iflag=direct status=none | cmp -s - <(dd if='$WORK/data' bs=4096 skip=1998 count=8 status=none)"
ktap_check "a read of a pending block fails with EIO" fails_with "Input/output error" blk_read "$dev" 100 "$WORK/x"
head -c 4096 /dev/urandom > "$WORK/a"
ktap_check "a write to it remaps it" bash -c "dd if='$WORK/a' of='$dev' bs=4096 seek=100 count=1 oflag=direct conv=notrunc status=none && test \"\$(dmsetup message ${PREFIX}s 0 query 100 | grep -c state=remapped)\" = 1"
ktap_check "status: idle after one pass (interval 0), 1 pass" \
  test "$(info s scan_state) $(info s scan_passes)" = "idle 1"
ktap_check "the target is fine: mode ok" test "$(info s mode)" = ok

# The position is in the metadata: a slow pass, stopped half way, resumes after a reload.
tbl="0 65536 remap $main $spare 4 scan_rate 256 uuid $uuid"
suspend_reload_resume "${PREFIX}s" "$tbl" || fail "reload with scan_rate 256"
dmsetup message "${PREFIX}s" 0 scan start >/dev/null || fail "scan start"
sleep 12
dmsetup message "${PREFIX}s" 0 scan stop >/dev/null || fail "scan stop"
c1=$(scan_field s cursor)
diag "stopped at block $c1"
ktap_check "scan stop: state stopped, position kept" test "$(scan_field s state)" = stopped -a "$c1" -gt 0
sleep 2
ktap_check "a stopped scan does not move" test "$(scan_field s cursor)" = "$c1"
suspend_reload_resume "${PREFIX}s" "$tbl" || fail "reload"
sleep 1
c2=$(scan_field s cursor)
ktap_check "after a reload the pass goes on from there (not from 0)" test "$c2" -ge "$c1"
ktap_check "and is running" test "$(scan_field s state)" = running
dmsetup message "${PREFIX}s" 0 scan stop >/dev/null || fail "scan stop"
c3=$(scan_field s cursor)
dmsetup remove "${PREFIX}s" || fail "remove"
DMDEVS=("$dust_name" "$slow_name")
dump=$("$REMAPCTL" meta dump "$spare") || fail "remapctl meta dump"
ktap_check "the metadata holds the position, 1 pass, and the scan_rate" \
  test "$(echo "$dump" | jq_num 'd["scan"]["cursor_block"], d["scan"]["passes"], d["config"]["scan_rate_kibs"]' | tr '\n' ' ')" = "$c3 1 256 "
ktap_check "the spare's metadata is clean" bash -c "'$REMAPCTL' meta check '$spare' | grep -q clean"

# Foreground I/O during a scan at full rate: fio verify over the first 8 MiB, where
# dm-dust has fresh bad blocks that fio's writes repair while the scan may be finding
# them. No verify error; the scan reads at the lower rate while fio runs.
dm_create s "0 65536 remap $main $spare 4 scan_rate 2048 uuid $uuid" || fail "create again (2 MiB/s idle: a pass lasts 16 s, while fio runs)"
dmsetup message "${PREFIX}s" 0 scan start >/dev/null || fail "scan start"
ktap_check "the stopped pass resumes and completes" wait_passes s 2 400
dust addbadblock 300 && dust addbadblock 301 && dust addbadblock 1500 || fail "more bad blocks"
# Four rounds of write-then-verify: a round may take under a second in the VM.
fio --name=v --filename="$dev" --rw=randwrite --bs=4k --size=8M --loops=4 --direct=1 --ioengine=psync \
  --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0 --randrepeat=0 --output="$WORK/fio" >/dev/null 2>&1 &
fio_pid=$!
# The pass starts once fio's writes reach the target. The rate is chosen as each scan
# step starts, from whether the target had I/O since the previous step, so the first
# step already sees fio's; started before fio, the pass could run its course while fio
# starts up, which takes seconds on a loaded machine (seen: every sample at 2048).
w0=$(status_field s 4)
for _ in $(seq 600); do
  [ "$(status_field s 4)" != "$w0" ] || ! kill -0 "$fio_pid" 2>/dev/null && break
  sleep 0.1
done
dmsetup message "${PREFIX}s" 0 scan start >/dev/null || fail "scan start"
# Samples while the pass runs, every 0.1 s.
rates=""
while kill -0 "$fio_pid" 2>/dev/null; do
  [ "$(scan_field s state)" = running ] && rates+="$(scan_field s rate_kibs) "
  sleep 0.1
done
wait "$fio_pid"
fio_rc=$?
diag "scan rate while fio ran: $(tr ' ' '\n' <<<"$rates" | sort | uniq -c | tr -s ' \n' ' ')"
[ "$fio_rc" = 0 ] || sed 's/^/# /' "$WORK/fio" | tail -20
ktap_check "fio verify over blocks the scan finds bad: no error" test "$fio_rc" = 0
ktap_check "the scan read at scan_rate_min_kib (1024 KiB/s) while fio ran" grep -qw 1024 <<<"$rates"
ktap_check "the pass completes" wait_passes s 3 400
not_pending() { local q; q=$(dmsetup message "${PREFIX}s" 0 query "$1") && ! grep -q state=pending <<<"$q"; }
fio_blocks_clear() { not_pending 300 && not_pending 301 && not_pending 1500 && [ "$(info s pending)" = 2 ]; }
ktap_check "no block fio wrote is pending (only 5000 and 7000 of the first pass)" fio_blocks_clear
ktap_check "mode ok, metadata commits fine" test "$(info s mode) $(info s last_commit)" = "ok 0"
ktap_finish
