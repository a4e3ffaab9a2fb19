#!/usr/bin/env bash
# reload: `dmsetup table` output reloads byte for byte across suspend/reload/resume,
# data and remaps made before survive, and a reload that contradicts the spare's
# metadata is refused with the old table still live. Every suspend, reload and resume
# is checked: a failed one fails the test, and teardown resumes the device (a device
# left suspended would hang the next read).
. "$(dirname "$0")/lib.sh"
need dmsetup losetup cmp
ktap_plan 18
load_module || fail "the dm-remap module loads"

base=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
main=$(mkfaulty faulty "$base" 131072 error:4000:16) || fail "faulty main device"
dm_create r "0 131072 remap $main $spare 4 read_retries 2 block_size 8192" || fail "create the target"
n=${PREFIX}r dev=$(dm_path r)
t1=$(dmsetup table "$n") || fail "dmsetup table"
diag "table: $t1"
set -- $t1
ktap_check "table fields: start len target" test "$1 $2 $3" = "0 131072 remap"
uuid=${*: -1}
ktap_check "table fields: options in canonical order, then the setup uuid" \
  test "${*:6}" = "6 block_size 8192 read_retries 2 uuid $uuid"
head -c 1M /dev/urandom > "$WORK/data" || fail "random data"
ktap_check "1 MiB written through the target" \
  dd if="$WORK/data" of="$dev" bs=1M oflag=direct status=none || bail
head -c 8192 /dev/urandom > "$WORK/bad" || fail "random data"
ktap_check "a write to the bad block succeeds" \
  dd if="$WORK/bad" of="$dev" bs=8192 seek=250 oflag=direct status=none
ktap_check "and was remapped" test "$(info r remapped)" = 1

ktap_check "suspend, reload the printed table, resume" suspend_reload_resume "$n" "$t1" || bail
ktap_check "the device is active, with no inactive table" dm_live "$n"
ktap_check "table identical after suspend/reload/resume" test "$t1" = "$(dmsetup table "$n")"
ktap_check "data intact after reload" cmp -s -n 1048576 "$WORK/data" "$dev"
remap_back() {
  dd if="$dev" of="$WORK/bad.back" bs=8192 skip=250 count=1 iflag=direct status=none &&
    cmp -s "$WORK/bad" "$WORK/bad.back" && test "$(info r remapped)" = 1
}
ktap_check "the remap survives the reload" remap_back

suspend_resume() { dmsetup suspend "$1" && dmsetup resume "$1"; }
ktap_check "suspend, resume" suspend_resume "$n" || bail
ktap_check "table identical after suspend/resume" test "$t1" = "$(dmsetup table "$n")"

# A refused reload: dmsetup says EINVAL, the kernel log gives the reason, and the old
# table stays live (no inactive table, not suspended).
dmesg_mark
ktap_check "a reload with another block_size is refused (the map uses 8192)" \
  fails_with "failed: Invalid argument" dmsetup reload "$n" --table "0 131072 remap $main $spare"
refusal_reason() {   # the errno as a number, or its name with CONFIG_SYMBOLIC_ERRNAME
  dmesg_since_mark | grep -qE ": remap: block_size differs from the spare's metadata \((-22|-EINVAL)\)$" &&
    return 0
  dmesg_since_mark | tail -5 | sed 's/^/# /'
  return 1
}
ktap_check "the kernel log says the block_size differs from the metadata" refusal_reason
old_live() { test "$t1" = "$(dmsetup table "$n")" && dm_live "$n"; }
ktap_check "and the old table is still live, alone, device not suspended" old_live

reload_resume() { dmsetup reload "$1" --table "$2" && dmsetup resume "$1"; }
ktap_check "reload without read_retries, resume" \
  reload_resume "$n" "0 131072 remap $main $spare 2 block_size 8192" || bail
ktap_check "the table prints only block_size and the uuid" \
  test "$(dmsetup table "$n" | cut -d' ' -f6-)" = "4 block_size 8192 uuid $uuid"
all_intact() { cmp -s -n 1048576 "$WORK/data" "$dev" && remap_back; }
ktap_check "data and remap intact after it" all_intact
ktap_finish
