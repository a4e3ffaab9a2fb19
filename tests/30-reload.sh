#!/usr/bin/env bash
# reload: `dmsetup table` output reloads byte for byte across suspend/reload/resume, and
# data written before survives.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup
load_module || skip_all "dm-remap not loadable"
ktap_plan 6

main=$(mkloop 64) spare=$(mkloop 16)
dm_create r "0 131072 remap $main $spare 4 read_retries 2 block_size 8192"
n=${PREFIX}r
t1=$(dmsetup table "$n")
diag "table: $t1"
set -- $t1
ktap_check "table fields: start len target" test "$1 $2 $3" = "0 131072 remap"
ktap_check "table fields: options in canonical order" test "${*:6}" = "4 block_size 8192 read_retries 2"
head -c 1M /dev/urandom > "$WORK/data"
dd if="$WORK/data" of="$(dm_path r)" bs=1M oflag=direct status=none
dmsetup suspend "$n" && dmsetup reload "$n" --table "$t1" && dmsetup resume "$n"
t2=$(dmsetup table "$n")
ktap_check "table identical after suspend/reload/resume" test "$t1" = "$t2"
ktap_check "data intact after reload" cmp -s -n 1048576 "$WORK/data" "$(dm_path r)"
dmsetup suspend "$n" && dmsetup resume "$n"
ktap_check "table identical after suspend/resume" test "$t1" = "$(dmsetup table "$n")"
dmsetup reload "$n" --table "0 131072 remap $main $spare" && dmsetup resume "$n"
ktap_check "reload with defaults prints no options" test "$(dmsetup table "$n" | wc -w)" = 5
ktap_finish
