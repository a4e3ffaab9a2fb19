#!/usr/bin/env bash
# input-fuzz: random and mutated table lines, messages and module-parameter writes
# against the live module (tests/fuzz/inputs.py). Every refused input gets EINVAL (or a
# device lookup's errno) and a kernel log line, and changes nothing (the live target's
# status, table and event counter, both spares' metadata bytes, the parameters); every
# accepted table prints a canonical form that loads as itself, and loading writes
# nothing; no splat; the live target's data reads back as written before the run.
# FUZZ_INPUTS (1000 by default; `make check` runs 300, `make fuzz-inputs` 10,000) and FUZZ_SEED (1) choose the run.
# timeout: 1200
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd sha256sum python3
INPUTS=${FUZZ_INPUTS:-1000} SEED=${FUZZ_SEED:-1}
ktap_plan 9
load_module || fail "the dm-remap module loads"
main=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
main2=$(mkloop 64) || fail "loop device for the second main device"
spare2=$(mkloop 16) || fail "loop device for the second spare"
back() { losetup -nO BACK-FILE "$1" | sed 's/[[:space:]]*$//'; }

# The second pair is a set-up, detached spare: table loads reach the metadata checks.
dm_create fzb "0 131072 remap $main2 $spare2" || fail "create the second setup"
uuid=$(dmsetup table "${PREFIX}fzb" | sed -n 's/.* uuid \([0-9a-f-]*\).*/\1/p')
dmsetup remove "${PREFIX}fzb" || fail "remove the second setup"
[ -n "$uuid" ] || fail "the second setup's uuid"

dm_create fz "0 131072 remap $main $spare 2 max_remap_rate 0" || fail "create the live target"
dev=$(dm_path fz)
dd if=/dev/urandom of="$WORK/data" bs=1M count=64 status=none || fail "random data"
dd if="$WORK/data" of="$dev" bs=1M oflag=direct status=none || fail "write the data"
for b in 12 13 14 900; do dmsetup message "${PREFIX}fz" 0 remap "$b" >/dev/null || fail "remap $b"; done
want=$(sha256sum < "$WORK/data")

diag "fuzzing $INPUTS inputs, seed $SEED"
python3 "$(dirname "$0")/fuzz/inputs.py" --inputs "$INPUTS" --seed "$SEED" \
  --live "${PREFIX}fz" --scratch "${PREFIX}fzt" --main "$main" --spare "$spare" \
  --spare-img "$(back "$spare")" --main2 "$main2" --spare2 "$spare2" \
  --spare2-img "$(back "$spare2")" --spare2-uuid "$uuid" --blocks 16384 \
  --summary "$WORK/summary.json"
rc=$?
ktap_check "the fuzzer ran to the end" test "$rc" = 0
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$WORK/summary.json"; }
ktap_check "all $INPUTS inputs were fed" test "$(field 'd["counts"]["inputs"]')" = "$INPUTS"
ktap_check "no input broke a rule (refusal errno/log/no change, canonical form, params)" \
  test "$(field 'sum(d["failures"].values())')" = 0
ktap_check "no oops, warning, KASAN/UBSAN report or lockdep splat" \
  test "$(field 'len(d["splats"])')" = 0
# The run reaches both sides of each parser, or it proves little.
ktap_check "some of each kind were refused and some accepted" \
  test "$(field 'all(d["counts"][k] > 0 and d["counts"][k + "_accepted"] < d["counts"][k] for k in ("tables", "messages", "params")) and all(d["counts"][k + "_accepted"] > 0 for k in ("tables", "messages", "params"))')" = True
ktap_check "the live target is still in mode ok" \
  test "$(info fz mode)" = ok
ktap_check "the live target's data reads back as written" \
  test "$(dd if="$dev" bs=1M iflag=direct status=none | sha256sum)" = "$want"
dmsetup remove "${PREFIX}fz" || fail "remove the live target"
DMDEVS=()
ktap_check "the live target's spare metadata is clean" meta_check_spare "$(lsblk -dno MAJ:MIN "$spare" | tr -d ' ')"
ktap_check "the second spare's metadata is clean" meta_check_spare "$(lsblk -dno MAJ:MIN "$spare2" | tr -d ' ')"
ktap_finish
