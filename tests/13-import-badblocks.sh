#!/usr/bin/env bash
# import-badblocks: a list made by running the real tools over a device with bad blocks
# — `badblocks -o` and a GNU ddrescue mapfile — is imported into a live target with
# `remapctl import-badblocks`: every block it names is remapped before anything
# writes it, what still reads is copied to the spare, what does not is recorded lost
# (reads of it fail, nothing is invented), and a write then heals it. A second import
# changes nothing; a list of another device (past the end) is refused.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp badblocks ddrescue
ktap_plan 13
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

# Two main devices with the same faults: blocks 1000 and 2000-2002 unreadable, and
# sectors 2-3 of block 3000 (the rest of that block reads).
faults="error:8000:8 error:16000:24 error:24002:2"
mkmain() {
  local base
  base=$(mkloop 64) || return 1
  dd if=/dev/urandom of="$base" bs=1M count=64 oflag=direct status=none || return 1
  dd if="$base" of="$WORK/$1.img" bs=1M status=none || return 1
  # shellcheck disable=SC2086
  mkfaulty "$1" "$base" 131072 $faults
}
bad1=$(mkmain f1) || fail "faulty main device 1"
bad2=$(mkmain f2) || fail "faulty main device 2"
spare1=$(mkloop 16) && spare2=$(mkloop 16) || fail "spares"

badblocks -b 4096 -o "$WORK/bb.txt" "$bad1" 2>/dev/null || fail "badblocks runs"
diag "badblocks found: $(tr '\n' ' ' < "$WORK/bb.txt")"
ktap_check "badblocks lists the 5 bad 4 KiB blocks" \
  test "$(tr '\n' ' ' < "$WORK/bb.txt")" = "1000 2000 2001 2002 3000 "
ddrescue -n -q "$bad2" "$WORK/rescued.img" "$WORK/map" 2>/dev/null
grep -q '^0x[0-9A-Fa-f]* *0x[0-9A-Fa-f]* *-' "$WORK/map" || fail "ddrescue made a mapfile with bad areas"

n1=${PREFIX}ib1 n2=${PREFIX}ib2
"$REMAPCTL" create "$n1" --main "$bad1" --spare "$spare1" >/dev/null && DMDEVS+=("$n1") &&
  "$REMAPCTL" create "$n2" --main "$bad2" --spare "$spare2" >/dev/null && DMDEVS+=("$n2") ||
  fail "create the targets"

out=$("$REMAPCTL" import-badblocks "$n1" "$WORK/bb.txt" --badblocks-block-size 4096) ||
  fail "import the badblocks list"
diag "$out"
ktap_check "badblocks list: 5 blocks remapped, all 5 with lost sectors" \
  grep -q "imported: 5 block(s) remapped (5 with sectors that did not read" <<<"$out"
ktap_check "the target says 5 remapped, mode ok" test "$(info ib1 remapped) $(info ib1 mode)" = "5 ok"
ktap_check "block 3000: 2 sectors lost, the rest copied" \
  test "$(dmsetup message "$n1" 0 query 3000)" = "block=3000 state=remapped spare=0 spare_block=4 lost_sectors=2"
dd if="/dev/mapper/$n1" of="$WORK/s" bs=512 skip=24000 count=2 iflag=direct status=none
ktap_check "its readable sectors read back the main device's data" \
  cmp -s "$WORK/s" <(dd if="$WORK/f1.img" bs=512 skip=24000 count=2 status=none)
ktap_check "its lost sectors read as errors (nothing invented)" \
  fails_with "Input/output error" dd if="/dev/mapper/$n1" of=/dev/null bs=512 skip=24002 count=1 iflag=direct status=none
ktap_check "a read of block 1000 fails: none of it read" \
  fails_with "Input/output error" blk_read "/dev/mapper/$n1" 1000 "$WORK/x"
head -c 4096 /dev/urandom > "$WORK/new"
blk_write "/dev/mapper/$n1" 1000 "$WORK/new" || fail "write block 1000"
blk_read "/dev/mapper/$n1" 1000 "$WORK/new.back"
ktap_check "a write heals block 1000 (reads back, no lost sector)" \
  bash -c "cmp -s $WORK/new $WORK/new.back && dmsetup message $n1 0 query 1000 | grep -q 'lost_sectors=0'"
out=$("$REMAPCTL" import-badblocks "$n1" "$WORK/bb.txt" --badblocks-block-size 4096) ||
  fail "import again"
ktap_check "a second import remaps nothing" \
  grep -q "imported: 0 block(s) remapped (0 with sectors that did not read, recorded lost), 5 already remapped" <<<"$out"

out=$("$REMAPCTL" import-badblocks "$n2" "$WORK/map") || fail "import the ddrescue mapfile"
diag "$out"
ktap_check "ddrescue mapfile (format guessed): the same 5 blocks remapped" \
  grep -q "imported: 5 block(s) remapped" <<<"$out"
ktap_check "the same blocks as from the badblocks list" \
  test "$(dmsetup message "$n2" 0 list | grep -o '^block=[0-9]*' | tr '\n' ' ')" = \
       "block=1000 block=2000 block=2001 block=2002 block=3000 "
ktap_check "and block 3000 holds main's readable sectors" \
  cmp -s <(dd if="/dev/mapper/$n2" bs=512 skip=24000 count=2 iflag=direct status=none) \
         <(dd if="$WORK/f2.img" bs=512 skip=24000 count=2 status=none)

echo 40000 > "$WORK/far.txt"
far_refused() {
  local err rc
  err=$("$REMAPCTL" import-badblocks "$n2" "$WORK/far.txt" --badblocks-block-size 4096 2>&1 >/dev/null)
  rc=$?
  [ "$rc" = 1 ] && grep -q "past the end of the target" <<<"$err" && [ "$(info ib2 remapped)" = 5 ]
}
ktap_check "a list past the end of the target is refused (exit 1), nothing remapped" far_refused
ktap_finish
