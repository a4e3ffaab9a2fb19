#!/usr/bin/env bash
# status-nonblocking: `dmsetup status`, and the `spare_stats` and `spare_list` messages
# monitoring reads, answer at once while the worker is stuck in slow synchronous
# retries on a dying disk (they must never wait behind I/O). Each answer may take at
# most 1.5 s more than the slowest of three taken beforehand with the worker idle (on
# a debug kernel under TCG starting dmsetup alone can take more than a second); one
# that waited behind the worker would take 3.5 s more.
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
# ms one command takes with the worker idle: the slowest of three.
idle_ms() {
  local i start took max=0
  for i in 1 2 3; do
    start=$(date +%s%N)
    "$@" >/dev/null || return 1
    took=$(( ($(date +%s%N) - start) / 1000000 ))
    [ "$took" -gt "$max" ] && max=$took
  done
  echo "$max"
}
idle_status=$(idle_ms dmsetup status "${PREFIX}t") || exit 1
idle_stats=$(idle_ms dmsetup message "${PREFIX}t" 0 spare_stats) || exit 1
idle_list=$(idle_ms dmsetup message "${PREFIX}t" 0 spare_list) || exit 1
diag "idle: status $idle_status ms, spare_stats $idle_stats ms, spare_list $idle_list ms"
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
ktap_check "status answers within 1.5 s (more than idle) while the worker retries" \
  test "$took" -lt $((idle_status + 1500))
for m in spare_stats spare_list; do
  if [ "$m" = spare_stats ]; then idle=$idle_stats; else idle=$idle_list; fi
  start=$(date +%s%N)
  a=$(dmsetup message "${PREFIX}t" 0 "$m")
  took=$(( ($(date +%s%N) - start) / 1000000 ))
  diag "$m took $took ms while the worker was retrying: $a"
  ktap_check "$m answers within 1.5 s (more than idle) while the worker retries, with spare 0" \
    bash -c "test $took -lt $((idle + 1500)) && grep -q '^spare=0 dev=' <<<'$a'"
done
ktap_check "the write succeeds (remapped)" wait "$writer"
ktap_check "one block remapped" test "$(info t remapped)" = 1
ktap_finish
