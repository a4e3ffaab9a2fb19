#!/usr/bin/env bash
# reload: `dmsetup table` output reloads byte for byte across suspend/reload/resume,
# data and remaps made before survive, and a reload that contradicts the spare's
# metadata is refused with the old table still live.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup
load_module || skip_all "dm-remap not loadable"
ktap_plan 10

base=$(mkloop 64) spare=$(mkloop 16)
main=$(mkfaulty faulty "$base" 131072 error:4000:16)
dm_create r "0 131072 remap $main $spare 4 read_retries 2 block_size 8192"
n=${PREFIX}r
t1=$(dmsetup table "$n")
diag "table: $t1"
set -- $t1
ktap_check "table fields: start len target" test "$1 $2 $3" = "0 131072 remap"
uuid=${*: -1}
ktap_check "table fields: options in canonical order, then the setup uuid" \
  test "${*:6}" = "6 block_size 8192 read_retries 2 uuid $uuid"
head -c 1M /dev/urandom > "$WORK/data"
dd if="$WORK/data" of="$(dm_path r)" bs=1M oflag=direct status=none
head -c 8192 /dev/urandom > "$WORK/bad"
dd if="$WORK/bad" of="$(dm_path r)" bs=8192 seek=250 oflag=direct status=none
ktap_check "a write to the bad block was remapped" test "$(info r remapped)" = 1
dmsetup suspend "$n" && dmsetup reload "$n" --table "$t1" && dmsetup resume "$n"
t2=$(dmsetup table "$n")
ktap_check "table identical after suspend/reload/resume" test "$t1" = "$t2"
ktap_check "data intact after reload" cmp -s -n 1048576 "$WORK/data" "$(dm_path r)"
dd if="$(dm_path r)" of="$WORK/bad.back" bs=8192 skip=250 count=1 iflag=direct status=none
ktap_check "the remap survives the reload" test "$(info r remapped)" = 1 -a "$(cmp "$WORK/bad" "$WORK/bad.back" && echo same)" = same
dmsetup suspend "$n" && dmsetup resume "$n"
ktap_check "table identical after suspend/resume" test "$t1" = "$(dmsetup table "$n")"
ktap_check_fails "a reload with another block_size is refused (the map uses 8192)" \
  dmsetup reload "$n" --table "0 131072 remap $main $spare"
ktap_check "and the old table is still live" test "$t1" = "$(dmsetup table "$n")"
dmsetup reload "$n" --table "0 131072 remap $main $spare 2 block_size 8192" && dmsetup resume "$n"
ktap_check "reload without read_retries prints only block_size and the uuid" \
  test "$(dmsetup table "$n" | cut -d' ' -f6-)" = "4 block_size 8192 uuid $uuid"
ktap_finish
