#!/usr/bin/env bash
# spare_remove: a spare's blocks move to the other spares and the spare is marked
# draining; a table without it then loads (the record is dropped) and the data reads
# back. Refused with a reason, changing nothing, for a spare that is not in the pool,
# the last active one, and blocks that do not fit the other spares. A write error on
# the destination stops the move (mode failed; the spare stays draining, and sending
# the message again carries on); so does a spare that does not read at all (mode ok).
# A metadata write failure during the move's commit fences the moved blocks (their I/O
# fails, mode failed) until a later commit lands (clear_failed): they then read from
# their new places. Blocks that do not read whole on the spare being removed move with
# the unreadable sectors recorded lost. A second removal (`remapctl spare-remove`) runs
# while fio writes and verifies the blocks being moved.
# timeout: 600
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp fio
ktap_plan 40
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

# Blocks 4096..4395 (300 blocks) fail writes on main; reads pass.
base=$(mkloop 64) || fail "loop device for the main device"
la=$(mkloop 5) || fail "loop device for spare A"   # 128 data blocks
lb=$(mkloop 16) || fail "loop device for spare B"  # 2944 data blocks
lc=$(mkloop 8) || fail "loop device for spare C"   # 896 data blocks
main=$(mkfaulty faulty "$base" 131072 wfail:32768:2400) || fail "faulty main device"
# The spares are dm devices over their loops, so parts of them can fail later.
sa=10240 sb=32768
dmsetup create "${PREFIX}spa" --table "0 $sa linear $la 0" || fail "spare A"
DMDEVS+=("${PREFIX}spa")
dmsetup create "${PREFIX}spb" --table "0 $sb linear $lb 0" || fail "spare B"
DMDEVS+=("${PREFIX}spb")
sc=16384
dmsetup create "${PREFIX}spc" --table "0 $sc linear $lc 0" || fail "spare C"
DMDEVS+=("${PREFIX}spc")
spa=/dev/mapper/${PREFIX}spa spb=/dev/mapper/${PREFIX}spb spc=/dev/mapper/${PREFIX}spc
swap() { # swap <dm name> <table>
  dmsetup suspend "$1" && dmsetup reload "$1" --table "$2" && dmsetup resume "$1"
}
na=$(devno "$spa") nb=$(devno "$spb") nc=$(devno "$spc")

dm_create x "0 131072 remap $main $spa $spb 2 max_remap_rate 0" ||
  fail "create a target with spares A and B"
dev=$(dm_path x)
head -c $((300 * 4096)) /dev/urandom > "$WORK/data" || fail "random data"
dd if="$WORK/data" of="$dev" bs=4096 seek=4096 oflag=direct conv=notrunc status=none ||
  fail "write 300 blocks over the write-failing blocks"
readback() {
  dd if="$dev" of="$WORK/back" bs=4096 skip=4096 count=300 iflag=direct status=none &&
    cmp -s "$WORK/data" "$WORK/back"
}
sstats() { dmsetup message "${PREFIX}x" 0 spare_stats | awk '{ print $3, $4, $7 }' | tr '\n' ' '; }
ktap_check "300 blocks remapped: A full (128), 172 on B" \
  test "$(info x remapped) $(sstats)" = \
  "300 blocks=128 used=128 state=active blocks=2944 used=172 state=active "

# Refusals change nothing.
dmesg_mark
before=$(dmsetup status "${PREFIX}x")
ktap_check "spare_remove of a spare that is not in the pool is refused" \
  fails_with "Invalid argument" dmsetup message "${PREFIX}x" 0 spare_remove 2
ktap_check "... saying so" logged "spare_remove: refused: no such spare in the pool"
ktap_check "spare_remove of a device that is not in the pool is refused" \
  fails_with "Invalid argument" dmsetup message "${PREFIX}x" 0 spare_remove "$nc"
ktap_check "spare_remove with a malformed spare is refused" \
  fails_with "Invalid argument" dmsetup message "${PREFIX}x" 0 spare_remove 7:x
dmesg_mark
ktap_check "removing B (172 blocks) when A has no free block is refused" \
  fails_with "No space left on device" dmsetup message "${PREFIX}x" 0 spare_remove "$nb"
ktap_check "... saying why" logged "its 172 block(s) do not fit the 0 free block(s) of the other spares"
ktap_check "the refusals changed nothing (status, both spares active)" \
  eval 'test "$(dmsetup status "${PREFIX}x")" = "$before" && test "$(sstats)" = "blocks=128 used=128 state=active blocks=2944 used=172 state=active "'

# B's data area fails: the first move's copies cannot be written. The spare is
# draining (committed before the move), its blocks where they were.
swap "${PREFIX}spb" "0 9216 linear $lb 0
9216 $((sb - 9216)) error" || fail "fail B's data area"
ktap_check "spare_remove of A fails when B's data area fails writes" \
  fails_with "Input/output error" dmsetup message "${PREFIX}x" 0 spare_remove 0
# (B's block whose write failed stays allocated until the next load: a retry takes
# another.)
ktap_check "A is draining, every block where it was, mode failed (a spare write error)" \
  test "$(sstats)$(info x remapped) $(info x mode)" = \
  "blocks=128 used=128 state=draining blocks=2944 used=173 state=active 300 failed"
swap "${PREFIX}spb" "0 $sb linear $lb 0" || fail "B whole again"
ktap_check "the data reads back; clear_failed" \
  eval 'readback && dmsetup message "${PREFIX}x" 0 clear_failed'

# B's metadata area fails writes: the move's copies land on B's data area, its commit
# fails on B's first copy (a draining spare is written last; outcome unknown): the
# moved blocks are fenced at their new places.
swap "${PREFIX}spb" "0 9216 error
9216 $((sb - 9216)) linear $lb 9216" || fail "fail B's metadata area"
dmesg_mark
ktap_check "spare_remove of A fails when its commit cannot be written" \
  fails_with "Input/output error" dmsetup message "${PREFIX}x" 0 spare_remove "$na"
ktap_check "128 blocks fenced, mode failed" \
  test "$(info x fenced) $(info x mode)" = "128 failed"
ktap_check "a fenced block's reads fail" \
  fails_with "Input/output error" dd if="$dev" of=/dev/null bs=4096 skip=4096 count=1 iflag=direct status=none
ktap_check "query names its new place" \
  eval 'dmsetup message "${PREFIX}x" 0 query 4096 | grep -q "^block=4096 state=fenced spare=1 "'
ktap_check "spare_remove of A is refused while the moved blocks are fenced" \
  fails_with "Device or resource busy" dmsetup message "${PREFIX}x" 0 spare_remove 0
swap "${PREFIX}spb" "0 $sb linear $lb 0" || fail "B whole again"
ktap_check "clear_failed commits and lifts the fences" \
  eval 'dmsetup message "${PREFIX}x" 0 clear_failed && test "$(info x fenced) $(info x mode)" = "0 ok"'
ktap_check "the moved block lives on B" \
  eval 'dmsetup message "${PREFIX}x" 0 query 4096 | grep -q "^block=4096 state=remapped spare=1 "'
ktap_check "the data reads back" readback
ktap_check "spare_remove of A again: nothing left to move" \
  eval 'dmsetup message "${PREFIX}x" 0 spare_remove 0 | grep -q "^spare=0 moved=0 state=draining"'
ktap_check "A holds no block (its fenced blocks freed), B all 300 (+1: the failed write's)" \
  test "$(sstats)" = "blocks=128 used=0 state=draining blocks=2944 used=301 state=active "

ktap_check "removing B while every other spare drains is refused" \
  fails_with "Invalid argument" dmsetup message "${PREFIX}x" 0 spare_remove 1

# A table without A loads: the drained record is dropped and committed.
table=$(dmsetup table "${PREFIX}x")
dmesg_mark
suspend_reload_resume "${PREFIX}x" "${table/ $na / }" || fail "reload without A"
ktap_check "the load drops the drained spare" logged "dropping drained spare"
ktap_check "the pool is B alone, 300 remapped, mode ok" \
  test "$(sstats)$(info x remapped) $(info x mode)" = "blocks=2944 used=300 state=active 300 ok"
ktap_check "the data reads back" readback
ktap_check "the table names B alone" \
  eval 'dmsetup table "${PREFIX}x" | grep -q " remap [0-9]*:[0-9]* $nb [0-9]"'

# Spare C joins (a reload); then `remapctl spare-remove` takes B out (the message, a
# reload without it, its metadata zeroed) while fio writes and verifies 150 of its
# blocks (those fio does not touch hold the first data; two of them do not read
# whole on B).
table=$(dmsetup table "${PREFIX}x")
suspend_reload_resume "${PREFIX}x" "${table/ $nb / $nb $spc }" || fail "reload with C"
ktap_check "C joined the pool" \
  test "$(sstats)" = "blocks=2944 used=300 state=active blocks=896 used=0 state=active "
# B marked draining, its blocks still on it: the first move's copies cannot be written
# on C (its data area fails; mode failed, cleared once C is whole).
swap "${PREFIX}spc" "0 9216 linear $lc 0
9216 $((sc - 9216)) error" || fail "fail C's data area"
ktap_check "spare_remove of B stops (EIO) when C's data area fails writes" \
  fails_with "Input/output error" dmsetup message "${PREFIX}x" 0 spare_remove 0
swap "${PREFIX}spc" "0 $sc linear $lc 0" || fail "C whole again"
ktap_check "B draining with its 300 blocks; clear_failed" \
  eval 'test "$(sstats)" = "blocks=2944 used=300 state=draining blocks=896 used=1 state=active " &&
    dmsetup message "${PREFIX}x" 0 clear_failed'
# B does not read at all (gone for a moment): the move stops rather than record its
# blocks lost.
swap "${PREFIX}spb" "0 $sb error" || fail "fail B whole"
ktap_check "spare_remove of B stops (EIO) while B does not read at all, mode ok" \
  eval 'fails_with "Input/output error" dmsetup message "${PREFIX}x" 0 spare_remove 0 &&
    test "$(info x mode) $(sstats)" = "ok blocks=2944 used=300 state=draining blocks=896 used=1 state=active "'
# B back, but half of block 4100's copy (its last 4 sectors) and all of block 4101's
# do not read: they move with those sectors recorded lost.
spare_sector() {
  echo $((9216 + $(dmsetup message "${PREFIX}x" 0 query "$1" | sed -n 's/.* spare_block=\([0-9]*\).*/\1/p') * 8))
}
s4100=$(spare_sector 4100) s4101=$(spare_sector 4101)
[ "$s4101" = $((s4100 + 8)) ] || fail "blocks 4100 and 4101 are neighbours on B"
swap "${PREFIX}spb" "0 $((s4100 + 4)) linear $lb 0
$((s4100 + 4)) 12 error
$((s4100 + 16)) $((sb - s4100 - 16)) linear $lb $((s4100 + 16))" ||
  fail "make blocks 4100 (half) and 4101 unreadable on B"
fio --name=verify --filename="$dev" --direct=1 --ioengine=libaio --iodepth=4 \
  --rw=randwrite --bs=4k --offset=$((4160 * 4096)) --size=$((150 * 4096)) --loops=40 \
  --verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=1 --verify_state_save=0 \
  --rate_iops=400 --output="$WORK/fio.log" >/dev/null 2>&1 &
fio_pid=$!
sleep 3
out=$("$REMAPCTL" spare-remove "${PREFIX}x" "$spb" 2>&1)
diag "remapctl spare-remove: $out"
ktap_check "remapctl spare-remove takes B out during the writes, moving its 300 blocks" \
  grep -q "moved=300 state=draining" <<<"$out"
wait "$fio_pid"
rc=$?
[ "$rc" = 0 ] || tail -20 "$WORK/fio.log" | sed 's/^/# /'
ktap_check "fio's writes before, during and after the move verify (crc32c)" test "$rc" = 0
ktap_check "the pool is C alone, all 300 blocks on it (the next load recounts)" \
  test "$(sstats)$(info x remapped)" = "blocks=896 used=300 state=active 300"
cmp -s <(head -c $((4 * 4096)) "$WORK/data") \
  <(dd if="$dev" bs=4096 skip=4096 count=4 iflag=direct status=none) &&
  cmp -s <(tail -c +$((6 * 4096 + 1)) "$WORK/data" | head -c $((58 * 4096))) \
    <(dd if="$dev" bs=4096 skip=4102 count=58 iflag=direct status=none) &&
  cmp -s <(tail -c $((86 * 4096)) "$WORK/data") \
    <(dd if="$dev" bs=4096 skip=4310 count=86 iflag=direct status=none)
ktap_check "the blocks fio did not write read back (but blocks 4100 and 4101)" test $? = 0
ktap_check "block 4101, of which nothing read on B (B read otherwise), moved with 8 sectors lost" \
  eval 'dmsetup message "${PREFIX}x" 0 query 4101 | grep -q "state=remapped spare=0 .* lost_sectors=8"'
ktap_check "block 4100 moved with its 4 unreadable sectors recorded lost; its reads fail" \
  eval 'dmsetup message "${PREFIX}x" 0 query 4100 | grep -q "state=remapped spare=0 .* lost_sectors=4" &&
    fails_with "Input/output error" dd if="$dev" of=/dev/null bs=4096 skip=4100 count=1 iflag=direct status=none'
tail -c +$((4 * 4096 + 1)) "$WORK/data" | head -c 4096 > "$WORK/b4100"
ktap_check "once written, block 4100 reads back" \
  eval 'blk_write "$dev" 4100 "$WORK/b4100" && blk_read "$dev" 4100 "$WORK/r4100" && cmp -s "$WORK/b4100" "$WORK/r4100"'
ktap_check "B's metadata area is zeroed" \
  test "$(head -c $((9216 * 512)) "$spb" | tr -d '\0' | wc -c)" = 0
ktap_check "removing the last spare is refused" \
  fails_with "Invalid argument" dmsetup message "${PREFIX}x" 0 spare_remove 0
dmsetup remove "${PREFIX}x" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}x}")
ktap_check "C's metadata checks clean alone" "$REMAPCTL" meta check "$spc"
ktap_finish
