#!/usr/bin/env bash
# Mixed stress (`make stress`, outside make check): for STRESS_SECONDS (default 600),
# fio verify runs on top of dm-remap while, underneath and around it,
#   - write-failing blocks appear under it every second (the lower table reloaded),
#   - a message storm asks query / list / remap / unremap / stats,
#   - the device is suspended and resumed, and its table reloaded (the printed line),
#   - the background scan runs pass after pass,
#   - status is polled.
# Then: fio saw no verify error, the target is in mode ok, the spare's metadata is
# clean, and the kernel log has no splat (run-all's check, which runs after it).
. "$(dirname "$0")/../lib.sh"
need dmsetup losetup fio python3
secs=${STRESS_SECONDS:-600}
ktap_plan 6
load_module || fail "the dm-remap module loads"

base=$(mkloop 256) || fail "loop device for the main device"
spare=$(mkloop 64) || fail "loop device for the spare"
low=${PREFIX}low
faulty_create low wfail "$base" 524288 || fail "lower device"
dm_create s "0 524288 remap /dev/mapper/$low $spare 4 scan_interval 1 scan_rate 8192" ||
  fail "create the target"
n=${PREFIX}s dev=$(dm_path s)
end=$(( $(date +%s) + secs ))
running() { [ "$(date +%s)" -lt "$end" ]; }

# fio: 4 jobs with verify, each over its own 48 MiB, mixed block sizes, looping until the
# time is up (each loop writes its region and verifies it).
fio --name=stress --filename="$dev" --rw=randwrite --bsrange=4k-256k --numjobs=4 --size=48M \
  --offset_increment=56M --direct=1 --ioengine=libaio --iodepth=4 --verify=crc32c \
  --do_verify=1 --verify_fatal=1 --verify_state_save=0 --randrepeat=0 --loops=100000 \
  --runtime="$secs" --group_reporting --output="$WORK/fio" >/dev/null 2>&1 &
fio_pid=$!

# Write-failing blocks appear in the regions fio writes (reads pass: a disk that keeps
# its old data readable; fio issues no flush, which dm-flakey would fail).
(
  bad=()
  while running; do
    bad+=($(( (RANDOM % 4) * 14336 + RANDOM % 12288 )))
    faulty_table wfail "$base" 524288 "${bad[@]}" > "$WORK/t" &&
      dmsetup reload "$low" "$WORK/t" && dmsetup resume "$low" ||
      echo "reload of the lower device failed" >> "$WORK/errors"
    sleep 1
  done
  echo "${#bad[@]}" > "$WORK/bad"
) &
bad_pid=$!

# Message storm.
(
  i=0
  while running; do
    b=$(( RANDOM * 4 % 57344 ))
    case $((i % 5)) in
      0) dmsetup message "$n" 0 query "$b" ;;
      1) dmsetup message "$n" 0 list "$b" ;;
      2) dmsetup message "$n" 0 remap "$b" ;;
      3) dmsetup message "$n" 0 unremap "$b" ;;
      4) dmsetup message "$n" 0 stats ;;
    esac >/dev/null 2>&1
    i=$((i + 1))
  done
  echo "$i" > "$WORK/messages"
) &
msg_pid=$!

# Suspend/resume and reloads of the printed table.
(
  i=0
  while running; do
    sleep 5
    if [ $((i % 2)) = 0 ]; then
      dmsetup suspend "$n" && dmsetup resume "$n" || echo "suspend/resume $i failed" >> "$WORK/errors"
    else
      t=$(dmsetup table "$n") &&
        dmsetup reload "$n" --table "$t" && dmsetup resume "$n" ||
        echo "reload $i failed" >> "$WORK/errors"
    fi
    i=$((i + 1))
  done
  echo "$i" > "$WORK/cycles"
) &
cycle_pid=$!

# Status polling.
polls=0
while running; do
  dmsetup status "$n" > /dev/null || echo "status failed" >> "$WORK/errors"
  polls=$((polls + 1))
  sleep 0.2
done
wait "$bad_pid" "$msg_pid" "$cycle_pid"
# fio ends its current loop; give it the time it needs.
wait "$fio_pid"
fio_rc=$?
diag "fio: $(grep -E 'write: IOPS|read: IOPS' "$WORK/fio" | tr -s ' ' | tr '\n' ';')"
diag "bad blocks appeared $(cat "$WORK/bad" 2>/dev/null), messages $(cat "$WORK/messages" 2>/dev/null), suspend/reload cycles $(cat "$WORK/cycles" 2>/dev/null), status polls $polls"
diag "status: $(dmsetup status "$n")"
diag "scan: $(dmsetup message "$n" 0 scan status)"
diag "stats: $(dmsetup message "$n" 0 stats)"
[ "$fio_rc" = 0 ] || tail -20 "$WORK/fio" | sed 's/^/# /'
ktap_check "fio verify: no error over ${secs} s" test "$fio_rc" = 0
ktap_check "every suspend, resume, reload and status succeeded" test ! -s "$WORK/errors"
[ -s "$WORK/errors" ] && sed 's/^/# /' "$WORK/errors" | head
ktap_check "blocks were remapped on the way" test "$(info s remapped)" -ge 1
ktap_check "the scan completed passes meanwhile" test "$(info s scan_passes)" -ge 1
ktap_check "mode ok" test "$(info s mode)" = ok
sm=$(dmsetup table "$n" | awk '{ print $5 }')
dmsetup remove "$n" || fail "remove"
DMDEVS=("$low")
ktap_check "the spare's metadata is clean" meta_check_spare "$sm"
ktap_finish
