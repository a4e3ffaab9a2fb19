#!/usr/bin/env bash
# spare-faults: faults of the spare device, each of which puts the target in mode
# failed, says why in the kernel log, raises a dm event (`dmsetup wait` wakes) and never
# acknowledges a write whose data or mapping is not durable: a write to a remapped
# block that fails on the spare; a spare data write of a new remap that fails; a
# metadata commit that fails before any copy is known written (the block fenced until
# a later commit succeeds, last_commit = -EIO);
# one that fails after three of five copies landed (kept, found again after a
# reload); an `unremap` that cannot read the block's spare copy; a write to a lost
# sector when the spare cannot read the rest of the block; a full spare.
# (A read of a remapped block that fails on the spare is tests/92-spare-failure.sh; a
# full metadata copy tests/88-metadata-full.sh; a remap storm tests/90-storm.sh.)
# timeout: 480
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp timeout
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 54

recreate() {
  dmsetup remove "$PREFIX$1" || return 1
  DMDEVS=("${DMDEVS[@]/$PREFIX$1}")
  dm_create "$1" "$2"
}

base=$(mkloop 64) || fail "loop device for the main device"
sbase=$(mkloop 16) || fail "loop device for the spare"
# Blocks 300, 310 and 320 of the main device fail writes (reads pass); the first
# sector of block 330 fails everything.
head -c 4096 /dev/urandom > "$WORK/h330" || fail "random data"
dd if="$WORK/h330" of="$base" bs=4096 seek=330 oflag=direct conv=notrunc status=none ||
  fail "data under block 330"
main=$(mkfaulty faulty "$base" 131072 wfail:2400:8 wfail:2480:8 wfail:2560:8 error:2640:1) ||
  fail "faulty main device"
faulty_lines=$(dmsetup table "${PREFIX}faulty")$'\n' || fail "faulty table"
# The spare is a dm device whose table each case swaps: "ok"; "data": its data area
# fails writes; "rdata": its data area fails reads; "meta": its metadata area (copies
# 0-4) fails writes; "tail": copies 3 and 4 fail writes (a commit writes copies 0, 1, 2
# first).
sp=${PREFIX}sp
spare_table() {
  case $1 in
    ok) echo "0 32768 linear $sbase 0" ;;
    data) printf '0 9216 linear %s 0\n9216 23552 flakey %s 9216 0 3600 1 error_writes\n' "$sbase" "$sbase" ;;
    rdata) printf '0 9216 linear %s 0\n9216 23552 flakey %s 9216 0 3600 1 error_reads\n' "$sbase" "$sbase" ;;
    meta) printf '0 9216 flakey %s 0 0 3600 1 error_writes\n9216 23552 linear %s 9216\n' "$sbase" "$sbase" ;;
    tail) printf '0 4096 linear %s 0\n4096 5120 flakey %s 4096 0 3600 1 error_writes\n9216 23552 linear %s 9216\n' \
            "$sbase" "$sbase" "$sbase" ;;
  esac
}
set_spare() {
  dmsetup suspend "$sp" && spare_table "$1" | dmsetup reload "$sp" && dmsetup resume "$sp"
}
spare_table ok | dmsetup create "$sp" || fail "spare dm device"
DMDEVS+=("$sp")
table="0 131072 remap $main /dev/mapper/$sp"
dm_create x "$table" || fail "create the target"
dev=$(dm_path x)
x=${PREFIX}x
heal() { set_spare ok && dmsetup message "$x" 0 clear_failed >/dev/null && test "$(info x mode)" = ok; }

# A. A write to a remapped block fails on the spare (its only copy).
head -c 4096 /dev/urandom > "$WORK/a" || fail "random data"
blk_write "$dev" 5 "$WORK/a" && dmsetup message "$x" 0 remap 5 >/dev/null || fail "remap block 5"
v=$(info x meta_version) e=$(counter x spare_errors)
arm_wait x || fail "event counter"
set_spare data || fail "spare data area fails writes"
dmesg_mark
ktap_check "A: a write to a remapped block failing on the spare returns EIO" \
  fails_with "Input/output error" blk_write "$dev" 5 "$WORK/a"
ktap_check "A: mode failed, the spare error counted" \
  test "$(info x mode)" = failed -a "$(counter x spare_errors)" -gt "$e"
ktap_check "A: dmsetup wait woke on the dm event" woke
ktap_check "A: the kernel log names the cause" logged "spare I/O error"
ktap_check "A: the mode is committed (one new version, last_commit 0)" \
  test "$(info x meta_version) $(info x last_commit)" = "$((v + 1)) 0"
set_spare ok || fail "spare back"
recreate x "$table" || fail "create the target again"
ktap_check "A: after remove/create the mode is still failed" test "$(info x mode)" = failed
ktap_check "A: clear_failed brings it back" heal

# B. The spare data write of a new remap fails: the write is not acknowledged and no
#    mapping is made.
r=$(info x remapped) u=$(info x spare_used) e=$(counter x spare_errors)
arm_wait x || fail "event counter"
set_spare data || fail "spare data area fails writes"
dmesg_mark
ktap_check "B: a failing write whose spare copy fails returns EIO" \
  fails_with "Input/output error" blk_write "$dev" 300 "$WORK/a"
ktap_check "B: mode failed, the spare error counted" \
  test "$(info x mode)" = failed -a "$(counter x spare_errors)" -gt "$e"
ktap_check "B: no mapping: block 300 stays on main, spare use unchanged" \
  test "$(dmsetup message "$x" 0 query 300) $(info x remapped) $(info x spare_used)" = \
       "block=300 state=main $r $u"
ktap_check "B: dmsetup wait woke on the dm event" woke
ktap_check "B: the kernel log names the cause" logged "spare or metadata write failed"
ktap_check "B: clear_failed brings it back" heal

# C. The metadata commit of a new remap fails before any copy is known written. The
#    failed copy write may still have reached the disk whole, so the next load may map
#    the block to the spare or not: it is fenced. No I/O to it completes (a write
#    acknowledged from main would be lost if the next load chose the spare, one
#    acknowledged from the spare if it chose main) and its spare block stays allocated,
#    until a commit succeeds: then it lives on main, which holds its last acknowledged
#    data, and the spare block is free again.
head -c 4096 /dev/urandom > "$WORK/old" || fail "random data"
dd if="$WORK/old" of="$base" bs=4096 seek=310 oflag=direct conv=notrunc status=none ||
  fail "old data under block 310"
r=$(info x remapped) u=$(info x spare_used)
arm_wait x || fail "event counter"
set_spare meta || fail "spare metadata area fails writes"
dmesg_mark
ktap_check "C: a failing write whose commit fails returns EIO (not acknowledged)" \
  fails_with "Input/output error" blk_write "$dev" 310 "$WORK/a"
ktap_check "C: last_commit is -5 (EIO), mode failed" \
  test "$(info x last_commit) $(info x mode)" = "-5 failed"
ktap_check "C: fenced: block 310 not counted remapped, its spare block kept, status counts it" \
  test "$(dmsetup message "$x" 0 query 310) $(info x remapped) $(info x spare_used) $(info x fenced)" = \
       "block=310 state=fenced $r $((u + 1)) 1"
ktap_check "C: dmsetup wait woke on the dm event" woke
ktap_check "C: the kernel log names the failed copy write" logged "metadata write of spare 0 copy 0"
ktap_check "C: the kernel log says the block is fenced" logged "1 block(s) fenced"
ktap_check "C: a read of the fenced block fails (main still holds its old data)" \
  fails_with "Input/output error" blk_read "$dev" 310 "$WORK/x"
# Main takes writes to block 310 again: the fence, not main, must refuse them.
dmsetup suspend "${PREFIX}faulty" && echo "0 131072 linear $base 0" | dmsetup reload "${PREFIX}faulty" &&
  dmsetup resume "${PREFIX}faulty" || fail "main device without faults"
ktap_check "C: a write of the fenced block fails though main would take it" \
  fails_with "Input/output error" blk_write "$dev" 310 "$WORK/a"
ktap_check "C: remap of the fenced block is refused (EBUSY)" \
  fails_with "Device or resource busy" dmsetup message "$x" 0 remap 310
ktap_check "C: clear_failed is refused while the metadata cannot be written" \
  fails_with "Input/output error" dmsetup message "$x" 0 clear_failed
ktap_check "C: and the mode stays failed, last_commit -5, the block fenced" \
  test "$(info x mode) $(info x last_commit) $(dmsetup message "$x" 0 query 310)" = "failed -5 block=310 state=fenced"
set_spare ok || fail "spare back"
dmesg_mark
ktap_check "C: clear_failed succeeds with the spare back" \
  dmsetup message "$x" 0 clear_failed
ktap_check "C: block 310 on main, its spare block free again, nothing fenced" \
  test "$(dmsetup message "$x" 0 query 310) $(info x spare_used) $(info x mode) $(info x fenced)" = "block=310 state=main $u ok 0"
ktap_check "C: the kernel log says the fence was released" logged "1 fenced block(s) released"
ktap_check "C: block 310 reads the old data, not the unacknowledged write" \
  bash -c "dd if=$dev bs=4096 skip=310 count=1 iflag=direct status=none | cmp -s - $WORK/old"
recreate x "$table" || fail "create the target again"
ktap_check "C: after remove/create block 310 is not remapped and reads the old data" \
  bash -c "test \"\$(dmsetup message $x 0 query 310)\" = 'block=310 state=main' &&
    dd if=$dev bs=4096 skip=310 count=1 iflag=direct status=none | cmp -s - $WORK/old"
dmsetup suspend "${PREFIX}faulty" && printf '%s' "$faulty_lines" | dmsetup reload "${PREFIX}faulty" &&
  dmsetup resume "${PREFIX}faulty" || fail "main device with its faults again"

# D. The commit fails after copies 0-2 landed: the new map is kept (the next load may
#    select it), the write still fails (the commit did not complete).
head -c 4096 /dev/urandom > "$WORK/d" || fail "random data"
r=$(info x remapped)
arm_wait x || fail "event counter"
set_spare tail || fail "copies 3 and 4 fail writes"
dmesg_mark
ktap_check "D: a failing write whose commit fails half-way returns EIO" \
  fails_with "Input/output error" blk_write "$dev" 320 "$WORK/d"
ktap_check "D: last_commit -5, mode failed" test "$(info x last_commit) $(info x mode)" = "-5 failed"
ktap_check "D: dmsetup wait woke on the dm event" woke
ktap_check "D: the kernel log names the failed copy write" logged "metadata write of spare 0 copy 3"
ktap_check "D: the new mapping is kept in memory" \
  bash -c "dmsetup message $x 0 query 320 | grep -q state=remapped"
set_spare ok || fail "spare back"
recreate x "$table" || fail "create the target again"
ktap_check "D: after remove/create block 320 is remapped (a landed copy was selected)" \
  test "$(dmsetup message "$x" 0 query 320 | cut -d' ' -f2) $(info x remapped)" = "state=remapped $((r + 1))"
ktap_check "D: and holds the data, which was durable before the first copy" \
  bash -c "dd if=$dev bs=4096 skip=320 count=1 iflag=direct status=none | cmp -s - $WORK/d"
dmsetup message "$x" 0 clear_failed >/dev/null || fail "clear_failed"

# G. `unremap` cannot read the block's only copy from the spare: refused, the block
#    stays remapped, and like any spare I/O error it enters mode failed.
head -c 4096 /dev/urandom > "$WORK/g" || fail "random data"
blk_write "$dev" 7 "$WORK/g" && dmsetup message "$x" 0 remap 7 >/dev/null || fail "remap block 7"
e=$(counter x spare_errors)
arm_wait x || fail "event counter"
set_spare rdata || fail "spare data area fails reads"
dmesg_mark
ktap_check "G: unremap of a block whose spare copy cannot be read is refused with EIO" \
  fails_with "Input/output error" dmsetup message "$x" 0 unremap 7
ktap_check "G: the block stays remapped" \
  bash -c "dmsetup message $x 0 query 7 | grep -q state=remapped"
g_failed() {
  local m c
  m=$(info x mode) c=$(counter x spare_errors)
  [ "$m" = failed ] && [ "$c" -gt "$e" ] && return 0
  diag "mode $m, spare_errors $c (was $e)"
  return 1
}
ktap_check "G: mode failed, the spare error counted" g_failed
ktap_check "G: dmsetup wait woke on the dm event" woke
set_spare ok || fail "spare back"
ktap_check "G: the block still reads back its data" \
  bash -c "dd if=$dev bs=4096 skip=7 count=1 iflag=direct status=none | cmp -s - $WORK/g"
dmsetup message "$x" 0 clear_failed >/dev/null || fail "clear_failed"

# H. A write to a lost sector of a remapped block needs the rest of the block from the
#    spare; when the spare fails that read, the write fails (a spare I/O error) and the
#    block's other sectors are neither zeroed nor recorded lost: once the spare reads
#    again they hold their data.
ktap_check "H: remap of block 330 copies 7 sectors, its first is lost" \
  bash -c "dmsetup message $x 0 remap 330 >/dev/null && dmsetup message $x 0 query 330 | grep -q 'lost_sectors=1\$'"
e=$(counter x spare_errors)
set_spare rdata || fail "spare data area fails reads"
head -c 512 /dev/urandom > "$WORK/h512" || fail "random data"
dmesg_mark
ktap_check "H: a write to the lost sector fails when the spare cannot read the rest" \
  fails_with "Input/output error" dd if="$WORK/h512" of="$dev" bs=512 seek=2640 count=1 oflag=direct conv=notrunc status=none
ktap_check "H: mode failed, the spare error counted" g_failed
ktap_check "H: the kernel log says why" logged "spare read error while rewriting a remapped block"
ktap_check "H: clear_failed once the spare reads again" heal
ktap_check "H: still one lost sector" \
  bash -c "dmsetup message $x 0 query 330 | grep -q 'lost_sectors=1\$'"
ktap_check "H: the other 7 sectors read their data" \
  bash -c "cmp -s <(dd if=$dev bs=512 skip=2641 count=7 iflag=direct status=none) <(dd if=$WORK/h330 bs=512 skip=1 count=7 status=none)"

# E. Spare full: a spare with room for two blocks.
base2=$(mkloop 64) || fail "loop device for the second main device"
sbase2=$(mkloop 16) || fail "loop device for the small spare"
main2=$(mkfaulty faulty2 "$base2" 131072 wfail:800:8) || fail "second faulty main device"
echo "0 9232 linear $sbase2 0" | dmsetup create "${PREFIX}tiny" || fail "two-block spare"
DMDEVS+=("${PREFIX}tiny")
dm_create e "0 131072 remap $main2 /dev/mapper/${PREFIX}tiny" || fail "create the target"
ktap_check "E: the spare has 2 data blocks" test "$(info e spare_blocks)" = 2
dmsetup message "${PREFIX}e" 0 remap 1 >/dev/null && dmsetup message "${PREFIX}e" 0 remap 2 >/dev/null ||
  fail "remap blocks 1 and 2"
ktap_check "E: both are used" test "$(info e spare_used) $(info e spare_free)" = "2 0"
arm_wait e || fail "event counter"
dmesg_mark
ktap_check "E: a failing write with the spare full returns EIO" \
  fails_with "Input/output error" blk_write "$(dm_path e)" 100 "$WORK/a"
ktap_check "E: mode failed, nothing remapped" \
  test "$(info e mode) $(info e remapped) $(info e spare_used)" = "failed 2 2"
ktap_check "E: dmsetup wait woke on the dm event" woke
ktap_check "E: the kernel log says why" logged "spare full: no free spare block"

ktap_finish
