#!/usr/bin/env bash
# create: a target over loop devices; table, status and messages field by field; remove.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup blockdev taskset python3
ktap_plan 13
load_module || fail "the dm-remap module loads"

main=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
mm=$(lsblk -dno MAJ:MIN "$main" | tr -d ' ') sm=$(lsblk -dno MAJ:MIN "$spare" | tr -d ' ')
ktap_check "create with defaults" dm_create a "0 131072 remap $main $spare"
ktap_check "size is the table length" test "$(blockdev --getsz "$(dm_path a)")" = 131072
uuid=$(dmsetup table "${PREFIX}a" | awk '{ print $NF }')
ktap_check "table prints major:minor and only the setup uuid" \
  test "$(dmsetup table "${PREFIX}a")" = "0 131072 remap $mm $sm 2 uuid $uuid" -a "${#uuid}" = 36
# INFO: block_size spare_data_blocks reads writes flushes read_sectors write_sectors read_errors write_errors
ktap_check "status block_size field" test "$(status_field a 1)" = 4096
ktap_check "status spare data blocks = (16MiB - 4.5MiB)/4KiB" test "$(status_field a 2)" = 2944
dd if=/dev/zero of="$(dm_path a)" bs=4096 count=3 oflag=direct status=none || fail "3 writes"
dd if="$(dm_path a)" of=/dev/null bs=4096 count=5 iflag=direct status=none || fail "5 reads"
ktap_check "status counts 3 writes of 24 sectors" \
  test "$(status_field a 4) $(status_field a 7)" = "3 24"
ktap_check "status counts 5 reads" test "$(status_field a 3)" = 5
out=$(dmsetup message "${PREFIX}a" 0 stats) || fail "message stats"
diag "stats: $out"
ktap_check "message stats returns counters" grep -q 'writes=3 .*write_sectors=24' <<<"$out"
ktap_check "message help lists verbs" bash -c "dmsetup message ${PREFIX}a 0 HELP | grep -q '^stats'"
dmsetup message "${PREFIX}a" 0 clear_stats || fail "message clear_stats"
ktap_check "clear_stats zeroes counters" test "$(status_field a 3) $(status_field a 4)" = "0 0"
# The per-bio counters are kept per CPU: reads made on each CPU this test may run on,
# in turn, all count, from zero again after clear_stats.
cpus=$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))') || fail "CPU list"
ncpu=$(wc -w <<<"$cpus") i=0
for c in $cpus; do
  i=$((i + 1))
  taskset -c "$c" dd if="$(dm_path a)" of=/dev/null bs=4096 count=2 skip=$((i * 2)) \
    iflag=direct status=none || fail "reads on CPU $c"
done
ktap_check "reads on each of the $ncpu CPU(s) count, after clear_stats" \
  test "$(status_field a 3) $(status_field a 6) $(status_field a 4)" = "$((2 * ncpu)) $((16 * ncpu)) 0"
# Its own devices: a's are held by a (a table naming them is refused, 53-spare-sharing).
main2=$(mkloop 16) || fail "loop device for the second main device"
spare2=$(mkloop 16) || fail "loop device for the second spare"
ktap_check "create with all options" dm_create b "0 32768 remap $main2 $spare2 5 block_size 512 read_retries 3 format_spare"
ktap_check "remove" bash -c "dmsetup remove ${PREFIX}a && dmsetup remove ${PREFIX}b && ! dmsetup info ${PREFIX}a >/dev/null 2>&1"
DMDEVS=()
ktap_finish
