#!/usr/bin/env bash
# status-nonblocking: `dmsetup status`, and the `spare_stats` and `spare_list` messages
# monitoring reads, answer at once while the worker is stuck in slow synchronous
# retries on a dying disk (they must never wait behind I/O).
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd timeout
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 5

base=$(mkloop 64) || exit 1
spare=$(mkloop 16) || exit 1
bad=$(mkfaulty slowbad "$base" 131072 wfail:8000:8) || exit 1
# Every write to the main device takes 5 s (reads are fast).
slow=${PREFIX}slow
dmsetup create "$slow" --table "0 131072 delay $bad 0 0 $bad 0 5000" || exit 1
DMDEVS+=("$slow")
dm_create t "0 131072 remap /dev/mapper/$slow $spare" || exit 1
dev=$(dm_path t)
head -c 4096 /dev/urandom > "$WORK/a"
# The write fails after 5 s; the worker then retries it on main (5 s more) under its
# lock before remapping it.
blk_write "$dev" 1000 "$WORK/a" &
writer=$!
sleep 6.5
start=$(date +%s%N)
dmsetup status "${PREFIX}t" >/dev/null
took=$(( ($(date +%s%N) - start) / 1000000 ))
diag "status took $took ms while the worker was retrying"
ktap_check "status answers within 1.5 s while the worker retries" test "$took" -lt 1500
for m in spare_stats spare_list; do
  start=$(date +%s%N)
  a=$(dmsetup message "${PREFIX}t" 0 "$m")
  took=$(( ($(date +%s%N) - start) / 1000000 ))
  diag "$m took $took ms while the worker was retrying: $a"
  ktap_check "$m answers within 1.5 s while the worker retries, with spare 0" \
    bash -c "test $took -lt 1500 && grep -q '^spare=0 dev=' <<<'$a'"
done
ktap_check "the write succeeds (remapped)" wait "$writer"
ktap_check "one block remapped" test "$(info t remapped)" = 1
ktap_finish
