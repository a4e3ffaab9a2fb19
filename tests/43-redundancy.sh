#!/usr/bin/env bash
# redundancy: with `redundancy 2` every remapped block has two copies, on two spares of
# the pool. Three spares; 200 blocks of the main device fail their writes and are
# remapped, each to the first spare and to the second. fio writes and verifies those
# blocks (crc32c) while the first spare dies (its table swapped live to dm-flakey
# failing every read, write and flush): no verify error, mode ok, the loss recorded, and
# every block still reads what fio last wrote, from the second copy. `remapctl
# spare-remove` of the dead spare then gives each block a new second copy on the third
# spare, copied from the one left; after the reload every block has two copies again,
# fio's data verifies, and the two spares' metadata checks clean. A reload of the table
# keeps the copies. (Without redundancy the blocks of a lost spare read as errors until
# written again: tests/44-spare-loss.sh.)
# timeout: 900
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp fio
ktap_plan 15
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

# Blocks 0..199 (sectors 0..1599) fail all I/O: written once, they are remapped.
base=$(mkloop 64) || fail "loop device for the main device"
main=$(mkfaulty faulty "$base" 131072 error:0:1600) || fail "faulty main device"
# 16 MiB spares: 2944 data blocks each. The first is a dm-linear that can be killed.
abase=$(mkloop 16) || fail "loop device under the first spare"
dmsetup create "${PREFIX}spa" --table "0 32768 linear $abase 0" || fail "the first spare"
DMDEVS+=("${PREFIX}spa")
spa=/dev/mapper/${PREFIX}spa
spb=$(mkloop 16) || fail "loop device for the second spare"
spc=$(mkloop 16) || fail "loop device for the third spare"
na=$(devno "$spa") nb=$(devno "$spb") nc=$(devno "$spc")
dm_create x "0 131072 remap $main $spa $spb $spc 4 max_remap_rate 0 redundancy 2" ||
  fail "create a target with three spares and redundancy 2"
dev=$(dm_path x)
ktap_check "dmsetup table prints redundancy 2" grep -q " redundancy 2 " <<<"$(dmsetup table "${PREFIX}x") "

head -c $((300 * 4096)) /dev/urandom > "$WORK/data" || fail "random data"
dd if="$WORK/data" of="$dev" bs=4096 oflag=direct conv=notrunc status=none ||
  fail "write 300 blocks (the first 200 over write-failing blocks)"
sstats() { dmsetup message "${PREFIX}x" 0 spare_stats | awk '{ printf "%s ", $4 }'; }
query() { dmsetup message "${PREFIX}x" 0 query "$1"; }
diag "spare_stats: $(sstats); block 150: $(query 150)"
ktap_check "200 blocks remapped, each with two copies: 200 blocks on the first spare, 200 on the second" \
  test "$(info x remapped) $(sstats)" = "200 used=200 used=200 used=0 "
ktap_check "block 150: first copy on spare 0, second on spare 1" \
  grep -q 'state=remapped spare=0 .* mirror=1 ' <<<"$(query 150) "
ktap_check "the 300 blocks read back" \
  cmp -s "$WORK/data" <(dd if="$dev" bs=4096 count=300 iflag=direct status=none)

# A reload keeps the copies (the metadata records them).
suspend_reload_resume "${PREFIX}x" "$(dmsetup table "${PREFIX}x")" || fail "reload"
ktap_check "after a reload block 150 still has both copies" \
  grep -q 'state=remapped spare=0 .* mirror=1 ' <<<"$(query 150) "

# fio writes and verifies the 200 remapped blocks; the first spare dies meanwhile.
dmesg_mark
fio --name=verify --filename="$dev" --direct=1 --ioengine=libaio --iodepth=4 \
  --rw=randwrite --bs=4k --size=$((200 * 4096)) --loops=12 \
  --verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=1 --verify_state_save=0 \
  --rate_iops=300 --output="$WORK/fio.log" >/dev/null 2>&1 &
fio_pid=$!
sleep 4
dmsetup suspend "${PREFIX}spa" &&
  dmsetup reload "${PREFIX}spa" --table "0 32768 flakey $abase 0 0 3600 2 error_reads error_writes" &&
  dmsetup resume "${PREFIX}spa" || fail "swap the first spare to a dm-flakey that fails everything"
wait "$fio_pid"
rc=$?
[ "$rc" = 0 ] || tail -20 "$WORK/fio.log" | sed 's/^/# /'
ktap_check "fio's writes before, during and after the loss of a spare verify (crc32c)" test "$rc" = 0
ktap_check "mode ok, the first spare recorded lost" eval \
  'test "$(info x mode) $(counter x spares_lost)" = "ok 1" &&
   dmsetup message "${PREFIX}x" 0 spare_list | grep -q "^spare=0 .* state=failed"'
ktap_check "the kernel log says no block was lost with it" \
  eval 'logged "spare 0 lost" && logged "): 0 block(s) on it"'
ktap_check "the blocks fio did not write read back" \
  cmp -s <(tail -c $((100 * 4096)) "$WORK/data") \
    <(dd if="$dev" bs=4096 skip=200 count=100 iflag=direct status=none)
# What fio left (its last pass verified it), read from the second copies.
ktap_check "the 200 blocks fio wrote read, from the second copies" \
  dd if="$dev" of="$WORK/after" bs=4096 count=200 iflag=direct status=none

# The admin takes the dead spare out: each block's copy on it is made again on the
# third spare, from its copy on the second.
out=$("$REMAPCTL" spare-remove "${PREFIX}x" "$spa" 2>&1)
diag "remapctl spare-remove: $(tail -2 <<<"$out" | tr '\n' ' ')"
ktap_check "remapctl spare-remove takes the lost spare out" \
  test "$(dmsetup message "${PREFIX}x" 0 spare_list | wc -l)" = 2
diag "spare_stats: $(sstats); block 150: $(query 150)"
ktap_check "every block has two copies again: 200 on each of the two spares left" \
  test "$(info x remapped) $(sstats)" = "200 used=200 used=200 "
ktap_check "block 150: copies on spares 0 and 1" \
  grep -Eq 'state=remapped spare=[01] .* mirror=[01] ' <<<"$(query 150) "
ktap_check "after the move the 200 blocks read what fio left" \
  cmp -s "$WORK/after" <(dd if="$dev" bs=4096 count=200 iflag=direct status=none)
dmsetup remove "${PREFIX}x" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}x}")
# shellcheck disable=SC2046
"$REMAPCTL" meta check $(nodes "$nb" "$nc") | sed 's/^/# /'
# shellcheck disable=SC2046
ktap_check "the two spares' metadata checks clean" "$REMAPCTL" meta check $(nodes "$nb" "$nc")
: "$na"
ktap_finish
