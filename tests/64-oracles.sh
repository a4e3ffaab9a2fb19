#!/usr/bin/env bash
# oracles: data integrity under remapping, judged by checkers this project did not
# write. fio verify (crc32c, 4 jobs, block sizes 512 B to 1 MiB) over a main device
# whose bad blocks keep appearing while it runs (the lower table is reloaded with one
# more write-failing block every second); btrfs (data and metadata checksums) on a
# main device with scattered bad blocks: `btrfs scrub` finds no error after a
# remap-heavy workload, before and after a reload (its bad blocks fail reads and writes:
# btrfs flushes its cache, which a write-failing dm-flakey range would fail too);
# dm-integrity (a checksum per
# sector) stacked on dm-remap: everything written reads back through it.
# timeout: 900
. "$(dirname "$0")/lib.sh"
need dmsetup losetup fio mkfs.btrfs btrfs mountpoint findmnt sha256sum python3
grep -qw integrity <(dmsetup targets) || modprobe dm-integrity 2>/dev/null || true
grep -qw integrity <(dmsetup targets) || skip_all "dm-integrity not available"
grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null || true
grep -qw btrfs /proc/filesystems || skip_all "btrfs not available"
ktap_plan 17
load_module || fail "the dm-remap module loads"

# 1. fio verify while bad blocks appear (direct I/O, no flush).
base=$(mkloop 64) || fail "loop device"
spare=$(mkloop 32) || fail "loop device for the spare"
low=${PREFIX}low
faulty_create low wfail "$base" 131072 || fail "lower device"
dm_create v "0 131072 remap /dev/mapper/$low $spare" || fail "create the target"
dev=$(dm_path v)
fio --name=v --filename="$dev" --rw=randwrite --bsrange=512-1m --numjobs=4 --size=12M \
  --offset_increment=16M --direct=1 --ioengine=libaio --iodepth=4 --verify=crc32c \
  --do_verify=1 --verify_fatal=1 --verify_state_save=0 --randrepeat=0 --group_reporting \
  --output="$WORK/fio" >/dev/null 2>&1 &
fio_pid=$!
bad=()
grow=0
while kill -0 "$fio_pid" 2>/dev/null && [ "$grow" -lt 40 ]; do
  # One more bad block in one of the four 12 MiB regions fio writes.
  bad+=($(( (RANDOM % 4) * 4096 + RANDOM % 3072 )))
  if faulty_table wfail "$base" 131072 "${bad[@]}" > "$WORK/t" &&
     dmsetup reload "$low" "$WORK/t" && dmsetup resume "$low"; then
    grow=$((grow + 1))
  else
    diag "reloading the lower device failed"; dmsetup resume "$low"; break
  fi
  sleep 0.3
done
wait "$fio_pid"
fio_rc=$?
diag "$grow bad blocks appeared during the run; remapped $(info v remapped), write errors hidden: $(counter v write_errors_hidden)"
[ "$fio_rc" = 0 ] || tail -20 "$WORK/fio" | sed 's/^/# /'
ktap_check "fio verify (crc32c, 512 B - 1 MiB, 4 jobs): no error" test "$fio_rc" = 0
ktap_check "bad blocks appeared during the run" test "$grow" -ge 3
ktap_check "writes onto them were remapped" test "$(info v remapped)" -ge 1
ktap_check "no write error reached fio, mode ok" test "$(info v write_errors) $(info v mode)" = "0 ok"
dmsetup remove "${PREFIX}v" || fail "remove"
DMDEVS=("$low")

# 2. btrfs scrub after a remap-heavy workload.
base2=$(mkloop 256) || fail "loop device"
spare2=$(mkloop 64) || fail "loop device for the spare"
blocks=()
for i in $(seq 1 300); do blocks+=($(( 2048 + i * 200 + RANDOM % 150 ))); done
low2=${PREFIX}low2
faulty_create low2 error "$base2" 524288 "${blocks[@]}" || fail "lower device with 300 bad blocks"
dm_create b "0 524288 remap /dev/mapper/$low2 $spare2" || fail "create the btrfs target"
bdev=$(dm_path b) mnt=$WORK/mnt
mkdir -p "$mnt" || fail "mount point"
# must_mount for btrfs, whose mounts carry an anonymous device number: the source
# /proc/mounts names for the mount point must be this device.
mount_btrfs() {
  mount "$bdev" "$mnt" || return 1
  mountpoint -q "$mnt" || { diag "$mnt is not a mount point after mount"; return 1; }
  local src; src=$(findmnt -n -o SOURCE --mountpoint "$mnt")
  [ "$(readlink -f "$src")" = "$(readlink -f "$bdev")" ] ||
    { diag "$mnt holds $src, not $bdev"; return 1; }
  [ "$(findmnt -n -o FSTYPE --mountpoint "$mnt")" = btrfs ]
}
ktap_check "mkfs.btrfs" mkfs.btrfs -q -f -m single -d single "$bdev" || bail
ktap_check "btrfs mounts" mount_btrfs || bail
write_files() {
  local i
  for i in $(seq 1 40); do head -c $((i * 100000)) /dev/urandom > "$mnt/f$i" || return 1; done
  (cd "$mnt" && sha256sum f* > "$WORK/sums") && sync -f "$mnt"
}
ktap_check "40 files (82 MB) written and synced" write_files || bail
diag "remapped $(info b remapped) blocks under btrfs"
ktap_check "the workload was remap-heavy (50 or more blocks remapped)" test "$(info b remapped)" -ge 50
# scrub_clean: btrfs scrub finds no checksum error. Scrub reads whole 64 KiB stripes,
# unused blocks included, so a bad block btrfs never wrote (dm-remap returns its read
# error honestly and records it pending) can make a stripe read fail: such read errors
# are allowed, but only when every bad block in the failing stripes was one btrfs had
# never written when the scrub started (main or pending then; none remapped), each is
# pending or remapped now (the failed read was recorded), and the summary has nothing
# but reads. The state before the scrub is what counts: btrfs may allocate the free
# block whose read failed and write it before the scrub ends or soon after (a commit),
# and that write remaps it (seen: block 1468 read-failed at 379.69 s, written at
# 385.75 s, 2 s after the scrub finished; query then says remapped).
# table_states: the remap table, one `block=N state=...` line per special block.
table_states() {
  local from=0 out
  while :; do
    out=$(dmsetup message "${PREFIX}b" 0 list "$from") || return 1
    grep '^block=' <<<"$out"
    from=$(sed -n 's/^next=//p' <<<"$out")
    [ -n "$from" ] || return 0
  done
}
scrub_clean() {
  local out b x q was summary pending=0 other=0 before
  before=$(table_states) || { diag "list failed"; return 1; }
  dmesg_mark
  out=$(btrfs scrub start -B "$mnt" 2>&1); local rc=$?
  printf '%s\n' "$out" | sed 's/^/# scrub: /'
  [ "$rc" = 0 ] && grep -q 'Error summary: *no errors found' <<<"$out" && return 0
  summary=$(sed -n 's/.*Error summary: *//p' <<<"$out")
  [[ $summary =~ ^read=[0-9]+$ ]] || { diag "errors other than reads: $summary"; return 1; }
  # The 64 KiB stripes (16 blocks, aligned) the kernel log names.
  for b in $(dmesg_since_mark | sed -n 's/.*BTRFS.* physical \([0-9]*\).*/\1/p' |
             awk '{ print int($1 / 65536) * 16 }' | sort -un); do
    for x in "${blocks[@]}"; do
      [ "$x" -ge "$b" ] && [ "$x" -lt $((b + 16)) ] || continue
      q=$(dmsetup message "${PREFIX}b" 0 query "$x")
      was=$(grep "^block=$x " <<<"$before" || echo "block=$x state=main")
      diag "stripe at block $b: bad block $x: before the scrub: $was; now: $q"
      if [[ $was != *state=remapped* ]] &&
         [[ $q == *state=pending* || $q == *state=remapped* ]]; then
        pending=$((pending + 1))
      else
        other=$((other + 1))
      fi
    done
  done
  [ "$pending" -gt 0 ] && [ "$other" = 0 ] && diag "read errors only from $pending bad block(s) btrfs had not written before the scrub"
}
ktap_check "btrfs scrub: no checksum error; read errors only from bad blocks never written" scrub_clean
ktap_check "umount" must_umount "$mnt" || bail
tbl=$(dmsetup table "${PREFIX}b" | cut -d' ' -f3-)
suspend_reload_resume "${PREFIX}b" "0 524288 $tbl" || fail "reload"
ktap_check "mounts again after a reload" mount_btrfs || bail
# btrfs logs scrub errors through a rate limit (10 lines per 5 s): a second scrub within
# seconds of the first logs none, and scrub_clean could not tell which stripes failed.
sleep 6
ktap_check "btrfs scrub after the reload: the same" scrub_clean
ktap_check "every file verifies" bash -c "cd '$mnt' && sha256sum -c --quiet '$WORK/sums'"
ktap_check "umount" must_umount "$mnt" || bail
dmsetup remove "${PREFIX}b" || fail "remove"
DMDEVS=("$low" "$low2")

# 3. dm-integrity on top: every sector carries a crc32c that dm-integrity checks on read.
# Direct mode (D: no journal), direct I/O and a commit interval longer than the test:
# no cache flush, which the write-failing blocks (dm-flakey) would fail.
base3=$(mkloop 64) || fail "loop device"
spare3=$(mkloop 16) || fail "loop device for the spare"
low3=${PREFIX}low3
faulty_table wfail "$base3" 131072 $(seq 100 97 16000) | dmsetup create "$low3" || fail "lower device"
DMDEVS+=("$low3")
dm_create i "0 131072 remap /dev/mapper/$low3 $spare3" || fail "create the target"
idev=$(dm_path i)
it=${PREFIX}integ
# A first table of one sector formats the device; status then gives its data size.
dmsetup create "$it" --table "0 1 integrity $idev 0 4 D 2 internal_hash:crc32c commit_time:3600000" || fail "dm-integrity format"
size=$(dmsetup status "$it" | awk '{ print $5 }')
dmsetup remove "$it" || fail "remove the one-sector dm-integrity table"
[ "${size:-0}" -gt 65536 ] 2>/dev/null || fail "dm-integrity data size ($size sectors)"
dmsetup create "$it" --table "0 $size integrity $idev 0 4 D 2 internal_hash:crc32c commit_time:3600000" || fail "dm-integrity"
DMDEVS+=("$it")
head -c $((size / 2 * 512 / 1048576 * 1048576)) /dev/urandom > "$WORK/idata"
ktap_check "$(( $(stat -c %s "$WORK/idata") >> 20 )) MiB written through dm-integrity" \
  dd if="$WORK/idata" of="/dev/mapper/$it" bs=1M oflag=direct status=none
ktap_check "dm-remap remapped the blocks whose writes failed" test "$(info i remapped)" -ge 10
ktap_check "everything reads back through dm-integrity (no checksum error)" \
  bash -c "dd if=/dev/mapper/$it bs=1M count=$(( $(stat -c %s "$WORK/idata") >> 20 )) iflag=direct status=none | cmp - '$WORK/idata'"
ktap_finish
