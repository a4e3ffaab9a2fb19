#!/usr/bin/env bash
# commit-log: a commit appends a record to each copy's log instead of rewriting the
# map. Over a spare whose map holds 20,000 remapped blocks (a base of 240 KB per copy,
# restored with remapctl), one remap writes a few sectors of metadata per copy, not
# the map; a reload replays the records; after 64 records a copy gets a new base;
# remapctl reads the same state as the kernel. The figures (metadata sectors written
# per commit, with records and with whole copies) are printed for the docs.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup python3
[ -x "$REMAPCTL" ] || skip_all "remapctl not built (cargo build)"
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 10
main=$(mkloop 256) || fail "loop device for the main device"
spare=$(mkloop 128) || fail "loop device for the spare"
msectors=$(blockdev --getsz "$main") ssectors=$(blockdev --getsz "$spare")
# A map of 20,000 isolated blocks (every third one), restored offline.
python3 - "$msectors" "$ssectors" > "$WORK/map.json" <<'PY' || fail "map JSON"
import json, sys
m, s = int(sys.argv[1]), int(sys.argv[2])
data_start = 9216
print(json.dumps({
  "format_version": 2, "uuid": "5e1f0000-0000-4000-8000-000000000001", "version": 1,
  "fingerprint": {"main_sectors": m, "logical_block_bytes": 512, "physical_block_bytes": 512, "identity": "none"},
  "config": {"block_bytes": 4096, "read_retries": 1, "target_sectors": m, "flags": 0,
             "scan_interval_s": 0, "scan_rate_kibs": 0, "predict_interval_s": 0, "alert_min_level": 0},
  "spares": [{"uuid": "5e1f0000-0000-4000-8000-000000000002", "sectors": s, "data_start": data_start,
              "data_blocks": (s - data_start) // 8, "role": 0, "priority": 0, "state": 0, "logical_block_bytes": 512}],
  "scan": {"cursor_block": 0, "passes": 0, "last_pass_end_s": 0},
  "entries": [{"block": 3 * i + 1, "state": "remapped", "spare": 0, "spare_block": i} for i in range(20000)],
}))
PY
"$REMAPCTL" meta restore "$WORK/map.json" "$spare" >/dev/null || fail "restore the map"
dm_create c "0 $msectors remap $main $spare" || fail "create"
n=${PREFIX}c
ktap_check "the map loads: 20,000 remapped" test "$(info c remapped)" = 20000
written() { awk '{ print $7 }' "/sys/block/$(basename "$spare")/stat"; }
# Ten remaps of isolated blocks (between the mapped ones): ten commits.
before=$(written)
for i in $(seq 10); do dmsetup message "$n" 0 remap $((3 * i + 2)) >/dev/null || fail "remap"; done
per=$(( ($(written) - before) / 10 ))
diag "metadata and data sectors written per remap with records: $per (the data block: 8)"
ktap_check "a remap writes under 40 sectors to the spare (five records and the data block)" \
  test "$per" -lt 40
check=$("$REMAPCTL" meta check "$spare")
ktap_check "remapctl sees the records: copies at version 11, 10 log records each" \
  bash -c "[ \$(grep -c 'ok (version 11) (10 log records)' <<<'$check') = 5 ]"
ktap_check "remapctl reads the kernel's state" \
  test "$("$REMAPCTL" meta dump "$spare" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["remapped"])')" = 20010
t=$(dmsetup table "$n")
suspend_reload_resume "$n" "$t" || fail "reload"
ktap_check "a reload replays the records: 20,010 remapped, version 11" \
  test "$(info c remapped) $(info c meta_version)" = "20010 11"
ktap_check "block 5 (remapped by a record) is still remapped" \
  bash -c "dmsetup message $n 0 query 5 | grep -q state=remapped"
# Past 64 records each copy gets a new base: 60 more commits.
before=$(written)
for i in $(seq 11 70); do dmsetup message "$n" 0 remap $((3 * i + 2)) >/dev/null || fail "remap"; done
per=$(( ($(written) - before) / 60 ))
diag "sectors written per remap over 60 commits (one of them rewrites all five copies): $per"
check=$("$REMAPCTL" meta check "$spare")
ktap_check "every copy now has a new base (version 66) and a log of 5 records" \
  test "$(grep -c 'ok (version 71) (5 log records)' <<<"$check")" = 5 || diag "$check"
suspend_reload_resume "$n" "$t" || fail "reload"
ktap_check "a reload loads version 71 with 20,070 remapped" \
  test "$(info c remapped) $(info c meta_version)" = "20070 71"
# For comparison: a change of configuration is not a record: every copy gets a base.
before=$(written)
suspend_reload_resume "$n" "0 $msectors remap $main $spare 2 read_retries 2" || fail "reload"
full=$(( $(written) - before ))
diag "sectors written by a commit of whole copies (240 KB map): $full"
ktap_check "a whole-copy commit writes far more (over 2,000 sectors)" test "$full" -gt 2000
ktap_check "and the state is intact" test "$(info c remapped)" = 20070
ktap_finish
