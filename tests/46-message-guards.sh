#!/usr/bin/env bash
# message-guards: messages that move data are refused (with the reason in the kernel
# log) while the device is suspended and on a read-only table, and change nothing; a
# read-only table never formats a spare; an answer longer than dmsetup's first buffer
# comes back whole (dm core asks again with a larger buffer).
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 9

main=$(mkloop 64) || exit 1
spare=$(mkloop 16) || exit 1
dm_create g "0 131072 remap $main $spare" || exit 1
n=${PREFIX}g
snap() { dmsetup message "$n" 0 list; info g meta_version; }
before=$(snap)
dmsetup suspend "$n" || exit 1
dmesg_mark
ktap_check_fails "remap on a suspended device is refused" dmsetup message "$n" 0 remap 7
ktap_check "the kernel log says why" bash -c "dmesg_since_mark | grep -q 'remap: refused: the device is suspended'"
dmsetup resume "$n" || exit 1
ktap_check "nothing changed (table and metadata version)" test "$before" = "$(snap)"

# A read-only table over the same devices: nothing that writes.
dmsetup remove "$n" || exit 1
DMDEVS=()
dmsetup create "$n" --readonly --table "0 131072 remap $main $spare" || exit 1
DMDEVS+=("$n")
dmesg_mark
ktap_check_fails "remap on a read-only table is refused" dmsetup message "$n" 0 remap 7
ktap_check "the kernel log says why" bash -c "dmesg_since_mark | grep -q 'remap: refused: the table is read-only'"
ktap_check "nothing changed" test "$before" = "$(snap)"
blank=$(mkloop 16) || exit 1
ktap_check_fails "a read-only table does not format a blank spare" \
  dmsetup create "${PREFIX}ro2" --readonly --table "0 131072 remap $main $blank"
ktap_check "the blank spare is untouched" cmp -s -n 8388608 "$blank" /dev/zero
dmsetup remove "$n" || exit 1
DMDEVS=()

# 200 remapped blocks: `list` answers 64 lines and next=, more than 4 KiB.
dm_create g "0 131072 remap $main $spare" || exit 1
for b in $(seq 1000 1199); do dmsetup message "$n" 0 remap "$b" >/dev/null || exit 1; done
out=$(dmsetup message "$n" 0 list)
lines=$(printf '%s\n' "$out" | grep -c '^block=')
diag "list answered $lines entries, $(printf '%s' "$out" | wc -c) bytes, last line: $(printf '%s\n' "$out" | tail -1)"
ktap_check "a long list answer comes back whole (64 entries and next=1064)" \
  test "$lines" = 64 -a "$(printf '%s\n' "$out" | tail -1)" = next=1064
ktap_finish
