#!/usr/bin/env bash
# timeout: 600
# corrupt-copies: the metadata survives damage to any 1-4 of its 5 copies (the kernel
# loads the newest valid copy and rewrites the others), refuses to load when all 5 are
# damaged (overwriting nothing), refuses foreign data unless told to format, refuses a
# spare that belongs to another main device, and `remapctl meta` dump/restore brings a
# destroyed metadata area back.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp sha256sum
[ -x "$REMAPCTL" ] || skip_all "remapctl not built ($REMAPCTL)"
ktap_plan 29
load_module || fail "the dm-remap module loads"

base=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
main=$(mkfaulty faulty "$base" 131072 error:800:8 error:1600:8 error:2400:8) || fail "faulty main device"
table="0 131072 remap $main $spare"
copies=(0 1024 2048 4096 8192)

# Three remapped blocks with known data.
dm_create r "$table" || fail "create the target"
for b in 100 200 300; do
  head -c 4096 /dev/urandom > "$WORK/d$b" || fail "random data"
  blk_write "$(dm_path r)" $b "$WORK/d$b" || fail "write to bad block $b"
done
ktap_check "three blocks remapped" test "$(info r remapped)" = 3
dmsetup remove "${PREFIX}r" || fail "remove the target"
"$REMAPCTL" meta check "$spare" > "$WORK/check" 2>&1
ktap_check "remapctl meta check: clean after remove" grep -q ": clean" "$WORK/check"
"$REMAPCTL" meta dump "$spare" > "$WORK/backup.json" || fail "remapctl meta dump"
ktap_check "remapctl meta dump: 3 remapped entries" \
  test "$(grep -c '"state": "remapped"' "$WORK/backup.json")" = 3

# corrupt <copy index>...: overwrite 16 bytes of each named copy's first section (the
# copy is small: 3 entries fit its first sector).
corrupt() {
  local i
  for i in "$@"; do
    dd if=/dev/urandom of="$spare" bs=1 seek=$((copies[i] * 512 + 200)) count=16 conv=notrunc,fsync status=none
  done
}
verify_data() {
  local b
  for b in 100 200 300; do
    blk_read "$(dm_path r)" $b "$WORK/got" && cmp -s "$WORK/d$b" "$WORK/got" || return 1
  done
}

for set in "0" "1 3" "0 2 4" "1 2 3 4"; do
  # shellcheck disable=SC2086
  corrupt $set
  n=$(wc -w <<<"$set")
  "$REMAPCTL" meta check "$spare" > "$WORK/check"; rc=$?
  named=$(grep -c "checksum" "$WORK/check")
  ktap_check "$n damaged copies ($set): meta check exits 1 and names $n" test "$rc:$named" = "1:$n"
  dmesg_mark
  dm_create r "$table" || fail "$n damaged copies: create the target"
  ktap_check "$n damaged copies: the target loads, rewrites them, keeps 3 remaps and every byte" \
    bash -c "test \"\$(dmesg_since_mark | grep -c 'rewriting')\" = $n && \
             test \"$(info r remapped)\" = 3" 
  verify_data || ktap_fail "data after loading with $n damaged copies"
  dmsetup remove "${PREFIX}r" || fail "remove the target"
  DMDEVS=("${DMDEVS[@]/${PREFIX}r}")
  "$REMAPCTL" meta check "$spare" > /dev/null
  ktap_check "$n damaged copies: clean again after the kernel's repair" test $? = 0
done

# All five damaged: refused, and nothing on the spare changes.
corrupt 0 1 2 3 4
before=$(dd if="$spare" bs=1M count=5 status=none | sha256sum)
dmesg_mark
ktap_check_fails "all 5 copies damaged: create is refused" dmsetup create "${PREFIX}r" --table "$table"
ktap_check "the refusal names each copy in the kernel log" \
  test "$(dmesg_since_mark | grep -c 'metadata copy [0-4] at sector')" = 5
after=$(dd if="$spare" bs=1M count=5 status=none | sha256sum)
ktap_check "the metadata area is unchanged" test "$before" = "$after"
"$REMAPCTL" meta check "$spare" > /dev/null
ktap_check "meta check exits 2" test $? = 2
"$REMAPCTL" meta repair "$spare" > /dev/null 2>&1
ktap_check "meta repair refuses (exit 2) and writes nothing" \
  test "$?:$(dd if="$spare" bs=1M count=5 status=none | sha256sum)" = "2:$before"

# The backup restores it.
ktap_check "meta restore writes the backup" "$REMAPCTL" meta restore "$WORK/backup.json" "$spare"
dm_create r "$table" || fail "create the target after the restore"
ktap_check "after restore: 3 remaps and every byte" bash -c "test \"$(info r remapped)\" = 3"
verify_data && ktap_pass "after restore: data verifies" || ktap_fail "after restore: data verifies"
ktap_check_fails "meta restore refuses a spare in use" "$REMAPCTL" meta restore "$WORK/backup.json" "$spare"
dmsetup remove "${PREFIX}r" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}r}")

# Foreign data is refused unless format_spare is given.
spare2=$(mkloop 16) || fail "loop device for the second spare"
dd if=/dev/urandom of="$spare2" bs=1M count=5 conv=notrunc status=none || fail "foreign data"
before=$(dd if="$spare2" bs=1M count=5 status=none | sha256sum)
ktap_check_fails "a spare holding foreign data is refused" \
  dmsetup create "${PREFIX}f" --table "0 131072 remap $main $spare2"
ktap_check "and left untouched" test "$(dd if="$spare2" bs=1M count=5 status=none | sha256sum)" = "$before"
ktap_check "format_spare formats it" dm_create f "0 131072 remap $main $spare2 1 format_spare"
dmsetup remove "${PREFIX}f" || fail "remove the formatted target"
DMDEVS=("${DMDEVS[@]/${PREFIX}f}")

# A spare of another main device (different size) is refused.
base3=$(mkloop 32) || fail "loop device for another main device"
ktap_check_fails "a spare that belongs to another main device is refused" \
  dmsetup create "${PREFIX}o" --table "0 65536 remap $base3 $spare"
ktap_check "the refusal says why" bash -c "dmesg | tail -5 | grep -q \"Main device size differs from the spare's metadata\""
ktap_finish
