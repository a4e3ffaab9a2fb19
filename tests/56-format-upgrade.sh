#!/usr/bin/env bash
# format-upgrade: a spare written in metadata format 1 (tests/fixtures/v1-spare.img.gz,
# made by the module that wrote format 1) loads with its map and data, and the first
# resume upgrades it: one commit (version 7 -> 8) writes all five copies in format 2,
# with neighbouring remapped blocks as one run. A reload then loads format 2.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cksum gzip
[ -x "$REMAPCTL" ] || skip_all "remapctl not built (cargo build)"
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 16
fixture=$(cd "$(dirname "$0")" && pwd)/fixtures/v1-spare.img.gz
img=$WORK/v1-spare.img
gzip -dc "$fixture" > "$img" || fail "unpack the fixture"
jq_num() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
ktap_check "the fixture is format 1, version 7" \
  test "$("$REMAPCTL" meta dump "$img" | jq_num 'd["format_version"], d["version"]' | tr '\n' ' ')" = "1 7 "
spare=$(losetup -f --show "$img") && echo "$spare" >> "$LOOPS_FILE" || fail "loop device for the spare"
main=$(mkloop 16) || fail "loop device for the main device"
dmesg_mark
ktap_check "a table over the format 1 spare loads" dm_create up "0 32768 remap $main $spare"
ktap_check "the kernel log says it upgrades" logged "metadata version 7 is in format 1: upgrading to format 2"
dev=$(dm_path up)
expect_block() { # <block> <char>
  head -c 4096 /dev/zero | tr '\0' "$2" > "$WORK/want"
  blk_read "$dev" "$1" "$WORK/got" && cmp -s "$WORK/want" "$WORK/got"
}
ktap_check "block 3 reads from the spare" expect_block 3 3
ktap_check "block 5 reads from the spare" expect_block 5 5
ktap_check "block 10 reads from the spare" expect_block 10 :
ktap_check "block 200 reads from the spare" expect_block 200 8
ktap_check "block 300 is pending" bash -c "dmsetup message ${PREFIX}up 0 query 300 | grep -q state=pending"
ktap_check_fails "block 400's lost sector still fails to read" \
  dd if="$dev" of=/dev/null bs=512 skip=3203 count=1 iflag=direct status=none
ktap_check "status: 6 remapped, 1 pending, metadata version 8" \
  test "$(info up remapped) $(info up pending) $(info up meta_version)" = "6 1 8"
dump=$("$REMAPCTL" meta dump "$spare")
ktap_check "the spare now holds format 2, version 8" \
  test "$(echo "$dump" | jq_num 'd["format_version"], d["version"]' | tr '\n' ' ')" = "2 8 "
ktap_check "blocks 3..5 are one run, the rest singles" \
  test "$(echo "$dump" | jq_num 'd["counts"]["runs"], d["counts"]["singles"]' | tr '\n' ' ')" = "1 3 "
ktap_check "all five copies are clean" bash -c "'$REMAPCTL' meta check '$spare' | grep -q clean"
dmsetup remove "${PREFIX}up" || fail "remove"
DMDEVS=()
dmesg_mark
ktap_check "a reload loads format 2 without upgrading again" \
  bash -c "dmsetup create ${PREFIX}up --table '0 32768 remap $main $spare' && ! dmesg_since_mark | grep -q 'in format 1'"
DMDEVS=(up)
ktap_check "and reads the same data" expect_block 4 4
ktap_check "with the same map" test "$(info up remapped) $(info up pending) $(info up meta_version)" = "6 1 8"
ktap_finish
