#!/usr/bin/env bash
# crash-replay: crash consistency against a drive that loses its volatile write cache.
# Main and spare sit on dm-log-writes; the write log of a multi-writer, remap-heavy
# run is replayed into crash images (every write up to the last flush, FUA writes, a
# random subset of unflushed ones), each of which must load with no acknowledged
# write lost. The logic is in tests/crash/replay.py; CRASH_TRIALS sets the
# count (60 by default; `make check` replays 12, `make crash-replay` CRASH_TRIALS).
# timeout: 1800
. "$(dirname "$0")/lib.sh"
need dmsetup losetup python3
load_module || fail "the dm-remap module loads"
grep -qw log-writes <(dmsetup targets) || modprobe dm-log-writes 2>/dev/null || true
grep -qw log-writes <(dmsetup targets) || skip_all "kernel has no dm-log-writes"
[ -x "$REMAPCTL" ] || skip_all "remapctl not built (cd rust && cargo build)"
python3 "$(dirname "$0")/crash/replay.py" --work "$WORK" --remapctl "$REMAPCTL" \
  --prefix "${PREFIX}cr_" --seed "${CRASH_SEED:-1}" --trials "${CRASH_TRIALS:-60}"
