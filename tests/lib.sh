# Shared helpers for the dm-remap VM tests (kselftest style, KTAP output).
# Source it, call ktap_plan N, report each case, end with ktap_finish.
# shellcheck shell=bash

KTAP_N=0 KTAP_PASS=0 KTAP_FAIL=0 KTAP_SKIP=0
PREFIX=${PREFIX:-dmrt_}
WORK=${WORK:-$(mktemp -d /tmp/dmrt.XXXXXX)}
LOOPS=()
DMDEVS=()

ktap_plan() { echo "KTAP version 1"; echo "1..$1"; }
ktap_pass() { KTAP_N=$((KTAP_N + 1)); KTAP_PASS=$((KTAP_PASS + 1)); echo "ok $KTAP_N $*"; }
ktap_fail() { KTAP_N=$((KTAP_N + 1)); KTAP_FAIL=$((KTAP_FAIL + 1)); echo "not ok $KTAP_N $*"; }
ktap_skip() { KTAP_N=$((KTAP_N + 1)); KTAP_SKIP=$((KTAP_SKIP + 1)); echo "ok $KTAP_N $* # SKIP"; }
diag() { echo "# $*"; }
# ktap_check <description> <command...>: pass if the command succeeds.
ktap_check() { local d=$1; shift; if "$@"; then ktap_pass "$d"; else ktap_fail "$d"; fi; }
ktap_finish() {
  echo "# Totals: pass:$KTAP_PASS fail:$KTAP_FAIL skip:$KTAP_SKIP"
  [ "$KTAP_FAIL" = 0 ] || exit 1
  exit 0
}
# skip_all <reason>: the whole script cannot run here (kselftest's exit 4).
skip_all() { echo "KTAP version 1"; echo "1..0 # SKIP $*"; exit 4; }
need() { for c in "$@"; do command -v "$c" >/dev/null || skip_all "missing $c"; done; }

# mkloop <size_MiB>: a loop device over a fresh image; prints its path.
mkloop() {
  local img; img=$(mktemp "$WORK/img.XXXXXX")
  truncate -s "${1}M" "$img"
  local dev; dev=$(losetup -f --show "$img") || return 1
  LOOPS+=("$dev")
  echo "$dev"
}

# dm_create <name> <table>: create with the prefix; the device is removed on exit.
dm_create() {
  local n=$PREFIX$1; shift
  dmsetup create "$n" --table "$*" || return 1
  DMDEVS+=("$n")
}
dm_path() { echo "/dev/mapper/$PREFIX$1"; }

# status_field <name> <n>: the n-th field (1-based) of the target's status parameters.
status_field() { dmsetup status "$PREFIX$1" | awk -v n="$2" '{ print $(3 + n) }'; }

teardown() {
  local i
  for ((i = ${#DMDEVS[@]} - 1; i >= 0; i--)); do
    dmsetup remove --retry "${DMDEVS[$i]}" >/dev/null 2>&1
  done
  for d in "${LOOPS[@]}"; do losetup -d "$d" 2>/dev/null; done
  rm -rf "$WORK"
}
trap teardown EXIT

load_module() {
  modprobe dm-remap 2>/dev/null || insmod "${DM_REMAP_KO:?}" 2>/dev/null || \
    grep -q '^dm_remap ' /proc/modules
}

# dmesg_since_mark: kernel messages after the last dmesg_mark.
dmesg_mark() { DMESG_LINES=$(dmesg | wc -l); }
dmesg_since_mark() { dmesg | tail -n +"$((DMESG_LINES + 1))"; }
