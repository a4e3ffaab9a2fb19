#!/usr/bin/env bash
# spare-loss: a pool of three spares loses the second one (its table swapped live to
# dm-flakey failing every read, write and flush). The target stays in mode ok; the spare is recorded failed
# (spare_list, spare_stats), the loss is counted (`spares_lost`), logged and raised as a
# dm event; the blocks that lived on it return read errors (no data invented) until
# they are written again, and then live on the third spare; a write already sent to
# the lost spare when it died completes on another one; a partial write leaves the rest
# of its block lost. The blocks on the first spare and on the main device read back.
# `remapctl spare-remove` moves the lost spare's entries off it without reading it and
# reloads without it; the other spares' metadata then checks clean and the lost blocks
# stay lost across the reload. Before that the machine "restarts" without the dead
# spare's device: `remapctl assemble` brings the pool back with an error device standing
# in for the lost spare, and `remapctl spare-remove` of it removes that device too. A
# spare that dies idle and is first met by a commit (a remap to another spare) is
# recorded lost the same way, and the commit made again without it; one first met by a
# remap's data write: recorded lost, the block placed on another spare. A write on its
# way to a spare when the spare is recorded lost completes on another spare. A spare
# with one bad spot (it still answers) is no lost spare: mode failed, as with one spare.
# timeout: 600
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp mknod python3
ktap_plan 50
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

# Blocks 0..199 (sectors 0..1599) fail all I/O (dm-error, which passes flushes):
# written once, they are remapped.
base=$(mkloop 64) || fail "loop device for the main device"
main=$(mkfaulty faulty "$base" 131072 error:0:1600) || fail "faulty main device"
# 5 MiB: 128 data blocks after the 9216 metadata sectors; 16 MiB: 2944.
spa=$(mkloop 5) || fail "loop device for the first spare"
bbase=$(mkloop 16) || fail "loop device under the second spare"
spc=$(mkloop 16) || fail "loop device for the third spare"
# pool2 <t> <order> <block>: target <t> over a fresh main device with two 16 MiB
# spares, a loop device and the linear spare <t>sp (over a loop device, left in
# ${t}base), the linear one second (order plain-first) or first (linear-first); block
# <block> written and remapped (to the first spare).
pool2() {
  local t=$1 order=$2 blk=$3 plain base m spares
  plain=$(mkloop 16) && base=$(mkloop 16) && m=$(mkloop 64) || return 1
  linear_spare "${t}sp" "$base" || return 1
  printf -v "${t}base" '%s' "$base"
  spares="$plain /dev/mapper/$PREFIX${t}sp"
  [ "$order" = linear-first ] && spares="/dev/mapper/$PREFIX${t}sp $plain"
  dm_create "$t" "0 131072 remap $m $spares" || return 1
  blk_write "$(dm_path "$t")" "$blk" "$WORK/new150" &&
    dmsetup message "$PREFIX$t" 0 remap "$blk" >/dev/null
}
# drop_target <t>: removes target <t> before the teardown, whose metadata check of its
# first spare cannot read a dead one.
drop_target() {
  local d keep=()
  dmsetup remove "$PREFIX$1" || fail "remove target $1"
  for d in "${DMDEVS[@]}"; do [ "$d" = "$PREFIX$1" ] || keep+=("$d"); done
  DMDEVS=("${keep[@]}")
}
bname=${PREFIX}spb
linear_spare spb "$bbase" || fail "the second spare (linear)"
spb=/dev/mapper/$bname
na=$(devno "$spa") nb=$(devno "$spb") nc=$(devno "$spc")
dm_create x "0 131072 remap $main $spa $spb $spc 2 max_remap_rate 0" ||
  fail "create a target with three spares"
dev=$(dm_path x)

head -c $((300 * 4096)) /dev/urandom > "$WORK/data" || fail "random data"
dd if="$WORK/data" of="$dev" bs=4096 oflag=direct conv=notrunc status=none ||
  fail "write 300 blocks (the first 200 over write-failing blocks)"
stats=$(dmsetup message "${PREFIX}x" 0 spare_stats)
printf '%s\n' "$stats" | sed 's/^/# spare_stats: /'
ktap_check "200 blocks remapped: 128 on the first spare, 72 on the second" \
  test "$(info x remapped) $(awk '{ print $4 }' <<<"$stats" | tr '\n' ' ')" = \
  "200 used=128 used=72 used=0 "
query() { dmsetup message "${PREFIX}x" 0 query "$1"; }
diag "block 150: $(query 150)"
ktap_check "block 150 lives on the second spare" grep -q ' spare=1 ' <<<"$(query 150) "

# The second spare dies. The first I/O that meets it is a write of block 150: it
# fails there and goes to the worker, which finds the spare gone, records the loss
# and writes the block to the third spare.
dmesg_mark
arm_wait x || fail "dmsetup wait armed"
kill_spare spb "$bbase" || fail "swap the second spare to a dm-flakey that fails everything"
head -c 4096 /dev/urandom > "$WORK/new150" || fail "random block"
ktap_check "a write of a block on the lost spare succeeds" blk_write "$dev" 150 "$WORK/new150"
ktap_check "and reads back what was written" \
  eval 'blk_read "$dev" 150 "$WORK/b150" && cmp -s "$WORK/new150" "$WORK/b150"'
diag "block 150: $(query 150)"
ktap_check "block 150 now lives on the third spare, nothing lost" \
  grep -q ' spare=2 .*lost_sectors=0' <<<"$(query 150)"
ktap_check "mode stays ok" test "$(info x mode)" = ok
ktap_check "an fsync of the device succeeds (its flush leaves the lost spare out)" \
  python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.fsync(fd)' "$dev"
list=$(dmsetup message "${PREFIX}x" 0 spare_list)
printf '%s\n' "$list" | sed 's/^/# spare_list: /'
ktap_check "spare_list: the second spare is failed, the others active" \
  test "$(sed -n 's/.* state=\([a-z]*\).*/\1/p' <<<"$list" | tr '\n' ' ')" = "active failed active "
ktap_check "the loss is counted" test "$(counter x spares_lost)" = 1
ktap_check "the spare's errors are counted" \
  test "$(dmsetup message "${PREFIX}x" 0 spare_stats | sed -n 2p | sed 's/.* errors=\([0-9]*\).*/\1/')" -ge 1
ktap_check "the kernel log names the lost spare" logged "spare 1 lost"
ktap_check "dmsetup wait woke up on the dm event" woke

# The other blocks of the lost spare: read errors, not data.
ktap_check_fails "a read of another block of the lost spare fails" blk_read "$dev" 151 "$WORK/x"
diag "block 151: $(query 151)"
ktap_check "block 151 is recorded with all 8 sectors lost" \
  grep -q ' spare=1 .*lost_sectors=8' <<<"$(query 151)"
ktap_check "the first spare's blocks and the main device's read back" eval \
  'dd if="$dev" of="$WORK/back" bs=4096 count=128 iflag=direct status=none &&
   cmp -s "$WORK/back" <(head -c $((128 * 4096)) "$WORK/data") &&
   dd if="$dev" of="$WORK/back2" bs=4096 skip=200 count=100 iflag=direct status=none &&
   cmp -s "$WORK/back2" <(tail -c $((100 * 4096)) "$WORK/data")'
# A partial write of a lost block: the sector written reads back, the rest is lost.
head -c 512 /dev/urandom > "$WORK/s160" || fail "random sector"
ktap_check "a one-sector write into a lost block succeeds" \
  dd if="$WORK/s160" of="$dev" bs=512 seek=$((160 * 8 + 3)) count=1 oflag=direct conv=notrunc status=none
ktap_check "that sector reads back" eval \
  'dd if="$dev" of="$WORK/r160" bs=512 skip=$((160 * 8 + 3)) count=1 iflag=direct status=none &&
   cmp -s "$WORK/s160" "$WORK/r160"'
ktap_check_fails "the block's other sectors still fail" blk_read "$dev" 160 "$WORK/x"
ktap_check "block 160 is on the third spare with 7 sectors lost" \
  grep -q ' spare=2 .*lost_sectors=7' <<<"$(query 160)"
ktap_check "new remaps go to the third spare" \
  eval 'dmsetup message "${PREFIX}x" 0 remap 5000 && grep -q " spare=2 " <<<"$(query 5000) "'

# A reload that still names the lost spare (which does not read at all) loads: the
# metadata records it lost. A spare that does not read and is not recorded lost is
# refused (a new pool with one: nothing is formatted over it).
table=$(dmsetup table "${PREFIX}x")
dmesg_mark
ktap_check "a reload still naming the lost spare loads" suspend_reload_resume "${PREFIX}x" "$table"
ktap_check "after it the spare is failed, block 151 lost, block 150 reads back" eval \
  'dmsetup message "${PREFIX}x" 0 spare_list | grep -q "^spare=1 .* state=failed" &&
   ! blk_read "$dev" 151 "$WORK/x" 2>/dev/null &&
   blk_read "$dev" 150 "$WORK/b150" && cmp -s "$WORK/new150" "$WORK/b150" &&
   logged "spare 1 is recorded lost: it is not written"'
zs=$(mkloop 16) || fail "loop device for z's spare"
zm=$(mkloop 64) || fail "loop device for z's main device"
dmsetup create "${PREFIX}zerr" --table "0 32768 error" || fail "a spare that does not read"
DMDEVS+=("${PREFIX}zerr")
dmesg_mark
ktap_check_fails "a new pool naming a spare that does not read is refused" \
  dm_create z "0 131072 remap $zm $zs /dev/mapper/${PREFIX}zerr"
ktap_check "the log says why" logged "does not read at all"

# A restart without the dead disk: the target goes, and so does the lost spare's
# device. `remapctl assemble` finds the pool on the two other spares; the record the
# metadata holds lost has no device, so an error device of its size stands in for it.
u=$(dmsetup table "${PREFIX}x" | sed -n 's/.* uuid \([0-9a-f-]*\).*/\1/p')
dmsetup remove "${PREFIX}x" || fail "remove the target"
dmsetup remove "$bname" && losetup -d "$bbase" || fail "the dead spare's devices go"
out=$("$REMAPCTL" assemble --uuid "$u" --name "${PREFIX}x" --main "$main" 2>&1)
printf '%s\n' "$out" | sed 's/^/# remapctl assemble: /'
standin=/dev/mapper/${PREFIX}x-lost1
diag "tables: $(dmsetup table "${PREFIX}x-lost1") / $(dmsetup table "${PREFIX}x")"
ktap_check "remapctl assemble brings the pool back, an error device standing in for the lost spare" \
  eval 'grep -q "error device $standin stands in" <<<"$out" &&
   test "$(dmsetup table "${PREFIX}x-lost1" | awk "{ print \$1, \$2, \$3, NF }")" = "0 32768 error 3" &&
   grep -q " remap [0-9]*:[0-9]* $na $(devno "$standin") $nc " <<<"$(dmsetup table "${PREFIX}x")"'
ktap_check "the spare is still failed, block 151 lost, the written blocks read back" eval \
  'dmsetup message "${PREFIX}x" 0 spare_list | grep -q "^spare=1 .* state=failed" &&
   ! blk_read "$dev" 151 "$WORK/x" 2>/dev/null &&
   blk_read "$dev" 150 "$WORK/b150" && cmp -s "$WORK/new150" "$WORK/b150" &&
   dd if="$dev" of="$WORK/r160" bs=512 skip=$((160 * 8 + 3)) count=1 iflag=direct status=none &&
   cmp -s "$WORK/s160" "$WORK/r160"'

# The admin removes the lost spare: its entries move without a read, the table is
# reloaded without it, and the error device standing in for it goes.
out=$("$REMAPCTL" spare-remove "${PREFIX}x" "$standin" 2>&1)
diag "remapctl spare-remove: $(tail -1 <<<"$out")"
ktap_check "remapctl spare-remove takes the lost spare out" \
  eval 'grep -q "state=failed" <<<"$out" && test "$(dmsetup message "${PREFIX}x" 0 spare_list | wc -l)" = 2'
ktap_check "and removes the error device that stood in for it" \
  eval 'grep -q "error device ${PREFIX}x-lost1 standing in for it is removed" <<<"$out" &&
   ! dmsetup info "${PREFIX}x-lost1" >/dev/null 2>&1'
ktap_check "dmsetup table names the two other spares" \
  grep -q " remap [0-9]*:[0-9]* $na $nc " <<<"$(dmsetup table "${PREFIX}x")"
ktap_check_fails "after the reload a lost block still fails its reads" blk_read "$dev" 151 "$WORK/x"
ktap_check "and the written ones read back" eval \
  'blk_read "$dev" 150 "$WORK/b150" && cmp -s "$WORK/new150" "$WORK/b150" &&
   dd if="$dev" of="$WORK/r160" bs=512 skip=$((160 * 8 + 3)) count=1 iflag=direct status=none &&
   cmp -s "$WORK/s160" "$WORK/r160"'
# shellcheck disable=SC2046
"$REMAPCTL" meta check $(nodes "$na" "$nc") | sed 's/^/# /'
# shellcheck disable=SC2046
ktap_check "the two spares' metadata checks clean" "$REMAPCTL" meta check $(nodes "$na" "$nc")
dmsetup remove "${PREFIX}x" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}x}")

# A spare that holds no block dies (the allocator fills the first spare first): the
# first I/O to meet it is a flush. The fsync succeeds and the loss is recorded.
pool2 w plain-first 3 || fail "target w with two spares, block 3 on the first"
wdev=$(dm_path w)
kill_spare wsp "$wbase" || fail "w's second spare fails everything"
ktap_check "an fsync meeting a spare that just died succeeds" \
  python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.fsync(fd)' "$wdev"
ktap_check "that flush had the spare recorded lost, mode ok" eval \
  'test "$(info w mode) $(counter w spares_lost)" = "ok 1" &&
   dmsetup message "${PREFIX}w" 0 spare_list | grep -q "^spare=1 .* state=failed"'

# The same, but the first thing to meet the dead spare is a commit: a remap to the
# first spare commits to both. The commit fails on the dead spare, which is found lost
# and recorded so, and the commit is made again on the first spare alone.
pool2 v plain-first 3 || fail "target v with two spares, block 3 on the first"
kill_spare vsp "$vbase" || fail "v's second spare fails everything"
dmesg_mark
ktap_check "a remap whose commit meets a spare that just died succeeds" \
  dmsetup message "${PREFIX}v" 0 remap 9
diag "v: mode $(info v mode), spares_lost $(counter v spares_lost); $(dmsetup message "${PREFIX}v" 0 query 9)"
ktap_check "the spare is recorded lost, mode ok, block 9 on the first spare" eval \
  'test "$(info v mode) $(counter v spares_lost)" = "ok 1" &&
   dmsetup message "${PREFIX}v" 0 spare_list | grep -q "^spare=1 .* state=failed" &&
   grep -q " spare=0 " <<<"$(dmsetup message "${PREFIX}v" 0 query 9) "'
ktap_check "the log says a commit met it and was made again" eval \
  'logged "spare 1 lost (its device no longer answers; a metadata commit met it): 0 block(s)" &&
   logged "the commit was made again on the other spares"'

# A remap whose data write is the first to meet the dead spare (the first spare, where
# the allocator puts new blocks): the spare is found lost there, and the block is
# placed on the second spare instead; the remap succeeds.
pool2 u linear-first 3 || fail "target u with two spares, block 3 on the first"
kill_spare usp "$ubase" || fail "u's first spare fails everything"
dmesg_mark
ktap_check "a remap whose data write meets a spare that just died succeeds" \
  dmsetup message "${PREFIX}u" 0 remap 9
diag "u: mode $(info u mode), spares_lost $(counter u spares_lost); $(dmsetup message "${PREFIX}u" 0 query 9)"
ktap_check "the block is on the second spare, the first recorded lost, mode ok" eval \
  'test "$(info u mode) $(counter u spares_lost)" = "ok 1" &&
   dmsetup message "${PREFIX}u" 0 spare_list | grep -q "^spare=0 .* state=failed" &&
   grep -q " spare=1 .*lost_sectors=0" <<<"$(dmsetup message "${PREFIX}u" 0 query 9)" &&
   logged "spare 0 lost (its device no longer answers; a remap wrote a block to it)"'
ktap_check_fails "block 3, on the lost spare, fails its reads" blk_read "$(dm_path u)" 3 "$WORK/x"
drop_target u

# The same through a bio: a write to a main block that fails writes is remapped, and
# the remap's data write is the first to meet the dead first spare.
sbase=$(mkloop 16) && splain=$(mkloop 16) && smb=$(mkloop 64) || fail "loop devices for s"
smain=$(mkfaulty sfault "$smb" 131072 wfail:80:8) || fail "s's main device, block 10 failing writes"
linear_spare ssp "$sbase" || fail "s's first spare"
dm_create s "0 131072 remap $smain /dev/mapper/${PREFIX}ssp $splain 2 max_remap_rate 0" ||
  fail "target s with two spares"
kill_spare ssp "$sbase" || fail "s's first spare fails everything"
head -c 4096 /dev/urandom > "$WORK/new10" || fail "random block"
ktap_check "a write whose remap meets a spare that just died succeeds" \
  blk_write "$(dm_path s)" 10 "$WORK/new10"
diag "s: mode $(info s mode), spares_lost $(counter s spares_lost); $(dmsetup message "${PREFIX}s" 0 query 10)"
ktap_check "it reads back, from the second spare, the first recorded lost" eval \
  'blk_read "$(dm_path s)" 10 "$WORK/b10" && cmp -s "$WORK/new10" "$WORK/b10" &&
   grep -q " spare=1 .*lost_sectors=0" <<<"$(dmsetup message "${PREFIX}s" 0 query 10)" &&
   test "$(info s mode) $(counter s spares_lost)" = "ok 1"'
drop_target s

# A remap whose data went to a spare whose metadata area then fails (its data area
# still works): the commit meets that spare, which does not answer at its copies, but
# the block's data is there, so the commit is not made again without it: the remap
# fails (nothing acknowledged lives on a spare recorded lost).
pool2 t linear-first 3 || fail "target t with two spares, block 3 on the first"
printf '0 9216 error\n9216 23552 linear %s 9216\n' "$tbase" |
  { dmsetup suspend "${PREFIX}tsp" && dmsetup reload "${PREFIX}tsp" && dmsetup resume "${PREFIX}tsp"; } ||
  fail "t's first spare loses its metadata area"
dmesg_mark
ktap_check_fails "a remap whose commit meets the spare its data went to fails" \
  dmsetup message "${PREFIX}t" 0 remap 9
diag "t: mode $(info t mode), spares_lost $(counter t spares_lost); $(dmsetup message "${PREFIX}t" 0 query 9)"
ktap_check_fails "that commit was not made again without the spare" \
  logged "the commit was made again on the other spares"
drop_target t

# A write already on its way to a spare when a commit records that spare lost: target
# h's first spare loses its metadata area while its data area takes writes 3 s late
# (dm-delay). A write of block 3 (on that spare) is sent; while it waits there, an
# `unremap` of a pending block (a commit with no data) meets the dead metadata area, and
# the spare is recorded lost. The write then completes on the lost spare: it must not
# be acknowledged from there, but be placed on the other spare.
hbase=$(mkloop 16) && hplain=$(mkloop 16) && hmb=$(mkloop 64) || fail "loop devices for h"
hmain=$(mkfaulty hfault "$hmb" 131072 error:160:8) || fail "h's main device, block 20 failing"
linear_spare hsp "$hbase" || fail "h's first spare"
dm_create h "0 131072 remap $hmain /dev/mapper/${PREFIX}hsp $hplain" || fail "target h with two spares"
hdev=$(dm_path h)
blk_write "$hdev" 3 "$WORK/new150" && dmsetup message "${PREFIX}h" 0 remap 3 >/dev/null ||
  fail "block 3 remapped to h's first spare"
blk_read "$hdev" 20 "$WORK/x" 2>/dev/null && fail "block 20 should fail its reads"
for _ in $(seq 40); do
  grep -q "state=pending" <<<"$(dmsetup message "${PREFIX}h" 0 query 20)" && break
  sleep 0.5
done
diag "h: $(dmsetup message "${PREFIX}h" 0 query 3); $(dmsetup message "${PREFIX}h" 0 query 20)"
modprobe dm-delay 2>/dev/null || true
# Writes 3 s late, reads and flushes not: a delayed flush would hold the commit back
# until the write had completed, before the loss.
printf '0 9216 error\n9216 23552 delay %s 9216 0 %s 9216 3000 %s 9216 0\n' "$hbase" "$hbase" "$hbase" |
  { dmsetup suspend "${PREFIX}hsp" && dmsetup reload "${PREFIX}hsp" && dmsetup resume "${PREFIX}hsp"; } ||
  fail "h's first spare: metadata area dead, data area writing 3 s late"
head -c 4096 /dev/urandom > "$WORK/new3" || fail "random block"
blk_write "$hdev" 3 "$WORK/new3" &
hpid=$!
sleep 1
dmesg_mark
ktap_check "a commit during that write records the spare lost and is made again" eval \
  'dmsetup message "${PREFIX}h" 0 unremap 20 &&
   dmsetup message "${PREFIX}h" 0 spare_list | grep -q "^spare=0 .* state=failed" &&
   logged "the commit was made again on the other spares"'
ktap_check "the write that was on its way to the lost spare succeeds" wait "$hpid"
diag "h: mode $(info h mode), spares_lost $(counter h spares_lost); $(dmsetup message "${PREFIX}h" 0 query 3)"
ktap_check "it lives on the other spare, whole, and reads back" eval \
  'grep -q "state=remapped spare=1 .*lost_sectors=0" <<<"$(dmsetup message "${PREFIX}h" 0 query 3)" &&
   blk_read "$hdev" 3 "$WORK/b3" && cmp -s "$WORK/new3" "$WORK/b3" &&
   test "$(info h mode) $(counter h spares_lost)" = "ok 1"'
drop_target h

# A spare with one bad spot still answers: that is no lost spare. Target y's first
# spare (allocated first) is a linear device; block 7 goes to its first data block
# (sectors 9216..9223), which then fails.
pool2 y linear-first 7 || fail "target y with two spares, block 7 on the first"
ydev=$(dm_path y)
yname=${PREFIX}ysp
diag "y block 7: $(dmsetup message "${PREFIX}y" 0 query 7)"
dmesg_mark
printf '0 9216 linear %s 0\n9216 8 error\n9224 23544 linear %s 9224\n' "$ybase" "$ybase" |
  { dmsetup suspend "$yname" && dmsetup reload "$yname" && dmsetup resume "$yname"; } ||
  fail "one bad spot on y's first spare"
ktap_check_fails "a read of the block on the bad spot fails" blk_read "$ydev" 7 "$WORK/x"
# The worker checks the spare after the read has failed: wait for its verdict.
for _ in $(seq 40); do [ "$(info y mode)" = failed ] && break; sleep 0.5; done
ktap_check "the spare still answers: mode failed, no spare lost" eval \
  'test "$(info y mode) $(counter y spares_lost)" = "failed 0" &&
   test "$(dmsetup message "${PREFIX}y" 0 spare_list | sed -n "s/.* state=\([a-z]*\).*/\1/p" | tr "\n" " ")" = "active active "'
ktap_check "the kernel log says why" logged "the spare still answers"
ktap_finish
