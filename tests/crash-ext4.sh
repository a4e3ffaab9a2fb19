#!/usr/bin/env bash
# crash-ext4: ext4 on dm-remap through a lost volatile write cache. Writers replace
# files atomically (fsync + rename + directory fsync) while journal blocks go bad; the
# dm-log-writes log is replayed into crash images, each of which must mount with
# every fsync'd file intact and pass e2fsck. Logic: tests/crash/replay.py --mode ext4.
# Not part of make check (about 8 minutes under TCG); run it with
# `make vm-test TESTS=tests/crash-ext4.sh` (CRASH_SEED, CRASH_TRIALS).
# timeout: 2400
. "$(dirname "$0")/lib.sh"
need dmsetup losetup python3 mkfs.ext4 debugfs e2fsck mount
load_module || fail "the dm-remap module loads"
grep -qw log-writes <(dmsetup targets) || modprobe dm-log-writes 2>/dev/null || true
grep -qw log-writes <(dmsetup targets) || skip_all "kernel has no dm-log-writes"
[ -x "$REMAPCTL" ] || skip_all "remapctl not built (cd rust && cargo build)"
python3 "$(dirname "$0")/crash/replay.py" --mode ext4 --work "$WORK" --remapctl "$REMAPCTL" \
  --prefix "${PREFIX}ce_" --seed "${CRASH_SEED:-1}" --trials "${CRASH_TRIALS:-30}" --writes 20
