#!/usr/bin/env bash
# repair: a load that rewrites damaged copies reproduces the selected copy exactly (same
# version, same content), and a table line that changes the configuration commits a new
# version, so the copies never disagree at one version. `format_spare` never formats
# over valid dm-remap metadata (a grown or different main device is refused instead).
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd sha256sum
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
[ -x "$REMAPCTL" ] || skip_all "remapctl not built ($REMAPCTL)"
ktap_plan 8

main=$(mkloop 64) || exit 1
spare=$(mkloop 16) || exit 1
dm_create p "0 131072 remap $main $spare 2 read_retries 2" || exit 1
dmsetup message "${PREFIX}p" 0 remap 10 >/dev/null || exit 1
v=$(info p meta_version)
dmsetup remove "${PREFIX}p" || exit 1
DMDEVS=()
# Damage copy 3 (sector 4096), then load with another read_retries.
dd if=/dev/urandom of="$spare" bs=512 seek=$((4096 + 0)) count=1 conv=notrunc,fsync status=none || exit 1
ktap_check "the damaged setup loads with read_retries 5" dm_create p "0 131072 remap $main $spare 2 read_retries 5"
ktap_check "the configuration change is a new version ($v -> $((v + 1)))" test "$(info p meta_version)" = $((v + 1))
dmsetup remove "${PREFIX}p" || exit 1
DMDEVS=()
"$REMAPCTL" meta check "$spare" > "$WORK/check" 2>&1
sed 's/^/# /' "$WORK/check"
ktap_check "all five copies current and clean" \
  test "$(grep -c "ok (version $((v + 1)))" "$WORK/check")" = 5
ktap_check "the metadata records read_retries 5" \
  bash -c "'$REMAPCTL' meta dump '$spare' | grep -q '\"read_retries\": 5'"
ktap_check "and loads again" dm_create p "0 131072 remap $main $spare 2 read_retries 5"
ktap_check "block 10 still remapped" bash -c "dmsetup message ${PREFIX}p 0 query 10 | grep -q state=remapped"
dmsetup remove "${PREFIX}p" || exit 1
DMDEVS=()

# format_spare with a main device of another size: refused, the spare untouched.
bigger=$(mkloop 80) || exit 1
sum=$(sha256sum "$spare" | cut -d' ' -f1)
ktap_check_fails "format_spare does not format over valid metadata of another main device" \
  dmsetup create "${PREFIX}q" --table "0 163840 remap $bigger $spare 1 format_spare"
ktap_check "the spare is untouched" test "$sum" = "$(sha256sum "$spare" | cut -d' ' -f1)"
ktap_finish
