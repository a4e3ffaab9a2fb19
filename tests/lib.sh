# Shared helpers for the dm-remap VM tests (kselftest style, KTAP output).
# Source it, call ktap_plan N, report each case, end with ktap_finish.
# shellcheck shell=bash

KTAP_N=0 KTAP_PASS=0 KTAP_FAIL=0 KTAP_SKIP=0
PREFIX=${PREFIX:-dmrt_}
WORK=${WORK:-$(mktemp -d /tmp/dmrt.XXXXXX)}
# mkloop runs in $(...), a subshell: it records each loop device it attaches in this
# file (an array would not reach this shell), and teardown detaches them.
LOOPS_FILE=$WORK/.loops
DMDEVS=()

KTAP_PLAN=
ktap_plan() { KTAP_PLAN=$1; echo "KTAP version 1"; echo "1..$1"; }
ktap_pass() { KTAP_N=$((KTAP_N + 1)); KTAP_PASS=$((KTAP_PASS + 1)); echo "ok $KTAP_N $*"; }
ktap_fail() { KTAP_N=$((KTAP_N + 1)); KTAP_FAIL=$((KTAP_FAIL + 1)); echo "not ok $KTAP_N $*"; }
ktap_skip() { KTAP_N=$((KTAP_N + 1)); KTAP_SKIP=$((KTAP_SKIP + 1)); echo "ok $KTAP_N $* # SKIP"; }
diag() { echo "# $*"; }
# ktap_check <description> <command...>: pass if the command succeeds.
# Returns the command's success, so that a case the rest depends on can bail: `|| bail`.
ktap_check() { local d=$1; shift; if "$@"; then ktap_pass "$d"; else ktap_fail "$d"; return 1; fi; }
# bail [why]: stop after a failed case that the rest of the script depends on (the
# teardown trap still runs: devices are resumed, removed and detached).
bail() { diag "Bail out! ${1:-the steps after the failed case depend on it}"; exit 1; }
# fail <what>: a step the script cannot go on without failed (setup, a reload, a
# mount): report it as a failed case and bail. Not for use inside $(...).
fail() { ktap_fail "$*"; bail; }
ktap_finish() {
  echo "# Totals: pass:$KTAP_PASS fail:$KTAP_FAIL skip:$KTAP_SKIP"
  # A case that was planned and never ran (a loop cut short, a branch not taken) is a
  # failure too.
  if [ -n "$KTAP_PLAN" ] && [ "$KTAP_N" != "$KTAP_PLAN" ]; then
    diag "planned $KTAP_PLAN cases, ran $KTAP_N"
    exit 1
  fi
  [ "$KTAP_FAIL" = 0 ] || exit 1
  exit 0
}
# skip_all <reason>: the whole script cannot run here (kselftest's exit 4).
skip_all() { echo "KTAP version 1"; echo "1..0 # SKIP $*"; exit 4; }
need() { for c in "$@"; do command -v "$c" >/dev/null || skip_all "missing $c"; done; }

# mkloop <size_MiB>: a loop device over a fresh image; prints its path. Call it as
# `dev=$(mkloop 64) || fail "..."`; teardown detaches the device.
mkloop() {
  local img dev
  img=$(mktemp "$WORK/img.XXXXXX") && truncate -s "${1}M" "$img" || return 1
  dev=$(losetup -f --show "$img") || return 1
  echo "$dev" >> "$LOOPS_FILE"
  echo "$dev"
}

# dm_create <name> <table>: create with the prefix; the device is removed on exit.
dm_create() {
  local n=$PREFIX$1; shift
  dmsetup create "$n" --table "$*" || return 1
  DMDEVS+=("$n")
}
dm_path() { echo "/dev/mapper/$PREFIX$1"; }

# linear_spare <name> <base>: a 16 MiB dm-linear device over <base>, a spare that can
# be killed (kill_spare <name> <base>: its table swapped live to a dm-flakey failing
# every read, write and flush).
linear_spare() {
  dmsetup create "$PREFIX$1" --table "0 32768 linear $2 0" || return 1
  DMDEVS+=("$PREFIX$1")
}
kill_spare() {
  dmsetup suspend "$PREFIX$1" &&
    dmsetup reload "$PREFIX$1" --table "0 32768 flakey $2 0 0 3600 2 error_reads error_writes" &&
    dmsetup resume "$PREFIX$1"
}

# status_field <name> <n>: the n-th field (1-based) of the target's status parameters.
status_field() { dmsetup status "$PREFIX$1" | awk -v n="$2" '{ print $(3 + n) }'; }

# The offline checker, built on the host by `cargo build` (make check builds it).
REMAPCTL=${REMAPCTL:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/rust/target/debug/remapctl}

# meta_check_spare <maj:min>: run `remapctl meta check` on a spare after its target is
# gone; prints the verdict and fails unless the metadata is clean.
meta_check_spare() {
  local node="$WORK/spare.${1/:/_}"
  [ -b "$node" ] || mknod "$node" b "${1%%:*}" "${1##*:}" || return 1
  "$REMAPCTL" meta check "$node" | sed 's/^/# meta check: /'
  return "${PIPESTATUS[0]}"
}

# dm_ours: the device-mapper devices whose name has this run's prefix.
dm_ours() { dmsetup ls 2>/dev/null | awk -v p="$PREFIX" 'index($1, p) == 1 { print $1 }'; }

# dm_unstick <name>: a device left suspended (a failed reload, a test that stopped
# between suspend and resume) would hang every I/O and refuse removal while any is
# queued: drop an inactive table and resume it with the live one.
dm_unstick() {
  dmsetup info "$1" 2>/dev/null | grep -q '^State: *SUSPENDED' || return 0
  echo "# teardown: $1 was left suspended; resuming it" >&2
  dmsetup clear "$1" >/dev/null 2>&1
  dmsetup resume "$1"
}

teardown() {
  local i rc=$? d spare m left=()
  # A case that stopped half-way may leave a filesystem mounted under $WORK.
  for m in $(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  for d in $(dm_ours); do dm_unstick "$d"; done
  # Devices go in reverse order of creation, so a remap device goes before the devices
  # under it; right after a remap device is removed, its spare's metadata must be clean.
  for ((i = ${#DMDEVS[@]} - 1; i >= 0; i--)); do
    d=${DMDEVS[$i]}
    [ -n "$d" ] || continue
    spare=$(dmsetup table "$d" 2>/dev/null | awk '$3 == "remap" { print $5; exit }')
    dmsetup remove --retry "$d" >/dev/null 2>&1
    if [ -n "$spare" ] && [ -x "$REMAPCTL" ] && ! meta_check_spare "$spare"; then
      echo "not ok $((KTAP_N + 1)) metadata of spare $spare is clean after teardown"
      rc=1
    fi
  done
  # Devices made in subshells (mkfaulty) are not in DMDEVS: sweep the prefix.
  for i in 1 2 3; do
    for d in $(dm_ours); do
      dmsetup remove "$d" >/dev/null 2>&1
    done
  done
  # Every loop device made here is detached. `losetup -d` of a device still open (held
  # by a dm device that could not be removed) only marks it to go at the last close:
  # check that each one is really gone (given a moment for the last close).
  if [ -f "$LOOPS_FILE" ]; then
    while read -r d; do losetup -d "$d" 2>/dev/null; done < "$LOOPS_FILE"
    while read -r d; do
      for i in 1 2 3 4 5 6 7 8 9 10; do
        losetup "$d" >/dev/null 2>&1 || continue 2
        sleep 0.2
      done
      left+=("$d")
    done < "$LOOPS_FILE"
  fi
  if [ ${#left[@]} -gt 0 ] || [ -n "$(dm_ours)" ]; then
    echo "# left behind: loop devices: ${left[*]:-none}; dm devices: $(dm_ours | tr '\n' ' ')"
    echo "not ok $((KTAP_N + 1)) teardown leaves no loop or dm device behind"
    rc=1
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap teardown EXIT

# devno <path>: the block device's MAJ:MIN (following a symlink such as /dev/mapper/x).
devno() { printf '%d:%d' $((0x$(stat -L -c %t "$1"))) $((0x$(stat -L -c %T "$1"))); }

# nodes <maj:min>...: device nodes in $WORK for the given numbers (for tools that want
# paths, such as `remapctl meta check` of a pool after its target is gone).
nodes() {
  local n out=()
  for n in "$@"; do
    [ -b "$WORK/n$n" ] || mknod "$WORK/n$n" b "${n%%:*}" "${n##*:}" || return 1
    out+=("$WORK/n$n")
  done
  echo "${out[@]}"
}

load_module() {
  modprobe dm-remap 2>/dev/null || insmod "${DM_REMAP_KO:?}" 2>/dev/null || \
    grep -q '^dm_remap ' /proc/modules
}

# counter <name> <key>: one counter of the target's `stats` message.
counter() { dmsetup message "$PREFIX$1" 0 stats | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# dmesg_since_mark: kernel messages after the last dmesg_mark.
# dmesg_mark / dmesg_since_mark: a marker line written to the kernel log, and what the
# log holds after it. (Counting lines breaks once the ring buffer wraps: a test that
# floods the log, such as the input fuzzing, would leave every later mark empty.)
dmesg_mark() {
  DMESG_MARK="dmrt-mark-$$-$SRANDOM"
  export DMESG_MARK
  echo "$DMESG_MARK" > /dev/kmsg
}
dmesg_since_mark() { dmesg | awk -v m="$DMESG_MARK" 'f { print } index($0, m) { f = 1 }'; }
export -f dmesg_since_mark
# logged <text>: the kernel log since the mark has a dm-remap line with <text>.
logged() {
  dmesg_since_mark | grep -F 'device-mapper: remap: ' | grep -qF -- "$1" && return 0
  diag "kernel log since the mark has no line with '$1':"
  dmesg_since_mark | tail -5 | sed 's/^/# /'
  return 1
}

# arm_wait <name>: a background `dmsetup wait` for the target's next event, as a
# monitor would run it; woke: it returned because the event came (not the timeout).
arm_wait() {
  local ev
  ev=$(dmsetup info -c --noheadings -o events "$PREFIX$1") || return 1
  # 30 s; on a debug kernel (lockdep), which runs several times slower, 90 s.
  local limit=30
  [ -e /proc/lockdep ] && limit=90
  timeout "$limit" dmsetup wait "$PREFIX$1" "$ev" >/dev/null 2>&1 &
  waiter=$!
}
woke() { wait "$waiter"; }

# mkfaulty <name> <base_dev> <len_sectors> <kind:start:len>...: a dm device over base
# that passes I/O through except for the listed ranges: kind "error" fails all I/O
# (dm-error), kind "wfail" fails writes only (dm-flakey error_writes, reads pass).
mkfaulty() {
  local name=$PREFIX$1 base=$2 len=$3; shift 3
  local pos=0 table="" spec kind start n
  for spec in "$@"; do
    IFS=: read -r kind start n <<<"$spec"
    [ "$start" -gt "$pos" ] && table+="$pos $((start - pos)) linear $base $pos"$'\n'
    case $kind in
      error) table+="$start $n error"$'\n' ;;
      wfail) table+="$start $n flakey $base $start 0 3600 1 error_writes"$'\n' ;;
    esac
    pos=$((start + n))
  done
  [ "$len" -gt "$pos" ] && table+="$pos $((len - pos)) linear $base $pos"$'\n'
  printf '%s' "$table" | dmsetup create "$name" || return 1
  DMDEVS+=("$name")
  echo "/dev/mapper/$name"
}

# faulty_create <name> <kind> <base> <len> <block>...: a dm device (this run's prefix +
# name) with faulty_table's table; removed on exit.
faulty_create() {
  local n=$PREFIX$1; shift
  faulty_table "$@" | dmsetup create "$n" || return 1
  DMDEVS+=("$n")
}

# dust_create <name> <base> <sectors> <block>...: dm-dust (4 KiB blocks) over base, its
# reads of the given blocks failing until a write reaches them; removed on exit.
dust_create() {
  local n=$PREFIX$1 base=$2 len=$3 b; shift 3
  dmsetup create "$n" --table "0 $len dust $base 0 4096" || return 1
  DMDEVS+=("$n")
  for b in "$@"; do dmsetup message "$n" 0 addbadblock "$b" || return 1; done
  dmsetup message "$n" 0 enable
}

# faulty_table <kind> <base> <len> <block>...: linear over base, except at the given
# 4 KiB blocks: kind "wfail" fails their writes (dm-flakey error_writes; reads pass, as
# on a disk whose bad sectors still read their old data; it fails cache flushes too, so
# only for users that issue none), kind "error" fails all their I/O and passes flushes
# (dm-error).
faulty_table() {
  local kind=$1 base=$2 len=$3 pos=0 b s; shift 3
  for b in $(printf '%s\n' "$@" | sort -n -u); do
    s=$((b * 8))
    [ "$s" -gt "$pos" ] && echo "$pos $((s - pos)) linear $base $pos"
    case $kind in
      wfail) echo "$s 8 flakey $base $s 0 3600 1 error_writes" ;;
      *) echo "$s 8 error" ;;
    esac
    pos=$((s + 8))
  done
  [ "$len" -gt "$pos" ] && echo "$pos $((len - pos)) linear $base $pos"
}

# info <name> <field>: a named field of the remap status line.
#   block_size spare_blocks reads writes flushes read_sectors write_sectors read_errors
#   write_errors remapped pending spare_used spare_free remaps meta_version last_commit mode
#   scan_state scan_cursor scan_passes scan_unreadable scan_weak proactive_remaps fenced
info() {
  local names=(block_size spare_blocks reads writes flushes read_sectors write_sectors
               read_errors write_errors remapped pending spare_used spare_free remaps
               meta_version last_commit mode scan_state scan_cursor scan_passes
               scan_unreadable scan_weak proactive_remaps fenced health_score alert
               ttf_s samples) i
  for i in "${!names[@]}"; do
    [ "${names[$i]}" = "$2" ] && { status_field "$1" $((i + 1)); return; }
  done
  return 1
}

# wait_alert <name> <level>: until the target's status reports that alert level (20 s).
wait_alert() {
  local i
  for ((i = 0; i < 20; i++)); do
    [ "$(info "$1" alert)" = "$2" ] && return 0
    sleep 1
  done
  diag "status: $(dmsetup status "$PREFIX$1")"
  return 1
}

# scan_field <name> <key>: one key of the target's `scan status` answer.
scan_field() { dmsetup message "$PREFIX$1" 0 scan status | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# wait_passes <name> <n> <seconds>: until the scan has completed n passes.
wait_passes() {
  local i
  for ((i = 0; i < $3; i++)); do
    [ "$(scan_field "$1" passes)" -ge "$2" ] 2>/dev/null && return 0
    sleep 1
  done
  diag "scan status after $3 s: $(dmsetup message "$PREFIX$1" 0 scan status)"
  return 1
}

# blk_write <dev> <block> <file> / blk_read <dev> <block> <out>: 4 KiB direct I/O.
blk_write() { dd if="$3" of="$1" bs=4096 seek="$2" count=1 oflag=direct conv=notrunc status=none; }
blk_read() { dd if="$1" of="$3" bs=4096 skip="$2" count=1 iflag=direct status=none; }
# ktap_check_fails <description> <command...>: pass if the command fails.
ktap_check_fails() { local d=$1; shift; if "$@" 2>/dev/null; then ktap_fail "$d"; else ktap_pass "$d"; fi; }

# fails_with <text> <command...>: pass if the command fails and its error output says
# <text> (e.g. "Input/output error"). A negative check must not pass because the
# command failed for another reason (a wrong path, a device that is not there).
fails_with() {
  local want=$1 err; shift
  if err=$("$@" 2>&1 >/dev/null); then diag "succeeded; expected a failure: $want"; return 1; fi
  grep -qF -- "$want" <<<"$err" && return 0
  diag "failed, but not with '$want': $err"
  return 1
}

# dm_live <name>: the device is active (not suspended) with a live table and no
# inactive one.
dm_live() {
  local out
  out=$(dmsetup info "$1") || return 1
  grep -q '^State: *ACTIVE$' <<<"$out" && grep -q '^Tables present: *LIVE$' <<<"$out" && return 0
  printf '%s\n' "$out" | sed 's/^/# dmsetup info: /'
  return 1
}

# suspend_reload_resume <name> <table>: the three steps, each checked; says which one
# failed. The caller bails on failure and teardown resumes the device.
suspend_reload_resume() {
  dmsetup suspend "$1" || { diag "dmsetup suspend $1 failed"; return 1; }
  dmsetup reload "$1" --table "$2" || { diag "dmsetup reload $1 failed"; return 1; }
  dmsetup resume "$1" || { diag "dmsetup resume $1 failed"; return 1; }
}

# must_mount <dev> <dir> [mount options...]: mount, then check in /proc/mounts (through
# mountpoint) that <dir> is a mount point and that <dev> is what is mounted there: an
# exit status of 0 alone does not show that the filesystem is there.
must_mount() {
  local dev=$1 dir=$2; shift 2
  mount "$@" "$dev" "$dir" || return 1
  mountpoint -q "$dir" || { diag "$dir is not a mount point after mount"; return 1; }
  [ "$(mountpoint -d "$dir")" = "$(mountpoint -x "$dev")" ] ||
    { diag "$dir holds $(mountpoint -d "$dir"), not $dev ($(mountpoint -x "$dev"))"; return 1; }
}
# must_umount <dir>: unmount and check that <dir> is no longer a mount point.
must_umount() {
  umount "$1" || return 1
  ! mountpoint -q "$1" || { diag "$1 is still a mount point after umount"; return 1; }
}
