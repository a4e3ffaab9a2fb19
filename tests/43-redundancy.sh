#!/usr/bin/env bash
# redundancy: with `redundancy 2` every remapped block has two copies, on two spares of
# the pool. Three spares; 200 blocks of the main device fail their writes and are
# remapped, each to the first spare and to the second; a reload keeps both copies.
# Ten of them are written again (both copies), ten are left as they were. The first
# spare dies while idle (its table swapped live to dm-flakey failing every read, write
# and flush): the next read of a block on it fails there and is served from the second
# copy, the loss is recorded with no block lost, mode stays ok, and every block reads
# what was last written. `remapctl spare-remove` of the dead spare gives each block a
# new copy on the third spare, copied from the one left, and the pool's metadata checks
# clean. Then fio writes and verifies (crc32c) 180 of the blocks while the third spare,
# which now holds their first copies, dies: no verify error, mode ok, and the blocks
# fio did not touch still read back. Taking that spare out leaves one spare: each block
# keeps the copy it has there, and reads what it held. (Without redundancy the blocks of a lost spare
# read as errors until written again: tests/44-spare-loss.sh.)
# timeout: 900
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp fio
ktap_plan 23
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

# Blocks 0..199 (sectors 0..1599) fail all I/O: written once, they are remapped.
base=$(mkloop 64) || fail "loop device for the main device"
main=$(mkfaulty faulty "$base" 131072 error:0:1600) || fail "faulty main device"
# 16 MiB spares: 2944 data blocks each. The first and the third are dm-linear devices
# that can be killed (`linear_spare`, `kill_spare`).
abase=$(mkloop 16) && linear_spare spa "$abase" || fail "the first spare"
spa=/dev/mapper/${PREFIX}spa
spb=$(mkloop 16) || fail "loop device for the second spare"
cbase=$(mkloop 16) && linear_spare spc "$cbase" || fail "the third spare"
spc=/dev/mapper/${PREFIX}spc
nb=$(devno "$spb") nc=$(devno "$spc")
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
suspend_reload_resume "${PREFIX}x" "$(dmsetup table "${PREFIX}x")" || fail "reload"
ktap_check "after a reload block 150 still has both copies" \
  grep -q 'state=remapped spare=0 .* mirror=1 ' <<<"$(query 150) "

# Blocks 180..189 written again: both copies take the new data. 190..199 stay.
head -c $((10 * 4096)) /dev/urandom > "$WORK/new" || fail "random data"
dd if="$WORK/new" of="$dev" bs=4096 seek=180 oflag=direct conv=notrunc status=none ||
  fail "write blocks 180..189 again"
# Block 250 (main reads and writes it) moved by the `remap` message: two copies too.
ktap_check "remap 250 gives it two copies" eval \
  'dmsetup message "${PREFIX}x" 0 remap 250 >/dev/null &&
   grep -q "state=remapped spare=0 .* mirror=1 " <<<"$(query 250) "'
cp "$WORK/data" "$WORK/want" &&
  dd if="$WORK/new" of="$WORK/want" bs=4096 seek=180 conv=notrunc status=none || fail "expected data"

# The first spare dies while idle; the first I/O to meet it is a read.
dmesg_mark
kill_spare spa "$abase" || fail "swap the first spare to a dm-flakey that fails everything"
ktap_check "a read of blocks 180..199 succeeds: the rewritten ones and the untouched ones, from the second copies" \
  cmp -s <(tail -c +$((180 * 4096 + 1)) "$WORK/want" | head -c $((20 * 4096))) \
    <(dd if="$dev" bs=4096 skip=180 count=20 iflag=direct status=none)
ktap_check "mode ok, the first spare recorded lost" eval \
  'test "$(info x mode) $(counter x spares_lost)" = "ok 1" &&
   dmsetup message "${PREFIX}x" 0 spare_list | grep -q "^spare=0 .* state=failed"'
ktap_check "the kernel log says no block was lost with it" \
  eval 'logged "spare 0 lost" && logged "): 0 block(s) on it"'
ktap_check "all 300 blocks read what was last written" \
  cmp -s "$WORK/want" <(dd if="$dev" bs=4096 count=300 iflag=direct status=none)
ktap_check "unremap 250 copies it back to main from its second copy" eval \
  'dmsetup message "${PREFIX}x" 0 unremap 250 >/dev/null &&
   grep -q "state=main" <<<"$(query 250)" &&
   cmp -s <(tail -c +$((250 * 4096 + 1)) "$WORK/want" | head -c 4096) \
     <(dd if="$dev" bs=4096 skip=250 count=1 iflag=direct status=none)'

# The admin takes the dead spare out: each block's copy on it is made again on the
# third spare, from its copy on the second.
out=$("$REMAPCTL" spare-remove "${PREFIX}x" "$spa" 2>&1)
diag "remapctl spare-remove: $(tail -2 <<<"$out" | tr '\n' ' ')"
ktap_check "remapctl spare-remove takes the lost spare out" \
  test "$(dmsetup message "${PREFIX}x" 0 spare_list | wc -l)" = 2
diag "spare_stats: $(sstats); block 150: $(query 150)"
ktap_check "every block has two copies again: 200 on each of the two spares left" \
  test "$(info x remapped) $(sstats)" = "200 used=200 used=200 "
ktap_check "block 150: first copy on the third spare (now 1), second on the second (now 0)" \
  grep -q 'state=remapped spare=1 .* mirror=0 ' <<<"$(query 150) "
ktap_check "the 300 blocks read back" \
  cmp -s "$WORK/want" <(dd if="$dev" bs=4096 count=300 iflag=direct status=none)
# shellcheck disable=SC2046
"$REMAPCTL" meta check $(nodes "$nb" "$nc") | sed 's/^/# /'
# shellcheck disable=SC2046
ktap_check "the two spares' metadata checks clean" "$REMAPCTL" meta check $(nodes "$nb" "$nc")

# fio writes and verifies blocks 0..179 (new data every pass); the third spare, which
# holds their first copies, dies meanwhile.
fio --name=verify --filename="$dev" --direct=1 --ioengine=libaio --iodepth=4 \
  --rw=randwrite --bs=4k --size=$((180 * 4096)) --loops=30 --randrepeat=0 \
  --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
  --rate_iops=300 --output="$WORK/fio.log" >/dev/null 2>&1 &
fio_pid=$!
sleep 3
kill_spare spc "$cbase" || fail "swap the third spare to a dm-flakey that fails everything"
ktap_check "fio was still running when the spare died" kill -0 "$fio_pid"
wait "$fio_pid"
rc=$?
[ "$rc" = 0 ] || tail -20 "$WORK/fio.log" | sed 's/^/# /'
ktap_check "fio's writes before, during and after the loss verify (crc32c)" test "$rc" = 0
ktap_check "mode ok, the spare recorded lost" eval \
  'test "$(info x mode)" = ok &&
   dmsetup message "${PREFIX}x" 0 spare_list | grep -q "^spare=1 .* state=failed"'
ktap_check "the blocks fio did not write read back" \
  cmp -s <(tail -c +$((180 * 4096 + 1)) "$WORK/want") \
    <(dd if="$dev" bs=4096 skip=180 count=120 iflag=direct status=none)
# The dead spare out again: no spare is left besides the one holding the other copies,
# so each block keeps that copy alone.
dd if="$dev" of="$WORK/fio-left" bs=4096 count=180 iflag=direct status=none ||
  fail "read what fio left"
out=$("$REMAPCTL" spare-remove "${PREFIX}x" "$spc" 2>&1)
diag "remapctl spare-remove: $(tail -2 <<<"$out" | tr '
' ' ')"
ktap_check "remapctl spare-remove takes the second lost spare out, the pool one spare" \
  test "$(dmsetup message "${PREFIX}x" 0 spare_list | wc -l)" = 1
diag "spare_stats: $(sstats); block 150: $(query 150)"
ktap_check "each block keeps its one copy left" eval \
  'test "$(info x remapped) $(sstats)" = "200 used=200 " &&
   grep -q "state=remapped spare=0 .*lost_sectors=0\$" <<<"$(query 150)"'
ktap_check "and every block reads what it held" \
  eval 'cmp -s "$WORK/fio-left" <(dd if="$dev" bs=4096 count=180 iflag=direct status=none) &&
   cmp -s <(tail -c +$((180 * 4096 + 1)) "$WORK/want") \
     <(dd if="$dev" bs=4096 skip=180 count=120 iflag=direct status=none)'
dmsetup remove "${PREFIX}x" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}x}")
ktap_check "the second spare's metadata checks clean" meta_check_spare "$nb"
ktap_finish
