#!/usr/bin/env bash
# messages-data: the messages that move data. `remap` copies a block to the spare and
# `unremap` copies it back (each one commit); `unremap` is refused for a block that is
# not remapped, whose main block still fails writes, or that lost sectors; `list` pages
# with next=; `clear confirm` moves every block back and stops at the first that cannot
# move. Every refused or malformed message (a block beyond the target, 2^64, a negative
# number) fails, says why in the kernel log, and changes nothing: the whole `list`, the
# metadata version and the status are compared before and after.
# timeout: 480
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp
grep -qw dust <(dmsetup targets) || skip_all "dm-dust not available"
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 76

base=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
# The main device: dm-dust fails reads of blocks 500 and 3100 until a write reaches
# them; over it, blocks 1000-1069 and 3000 fail writes (dm-flakey error_writes; reads
# and flushes pass). `mkmain_table mid` fails writes of block 3000 only, `mkmain_table
# clean` of none.
dust=${PREFIX}dust
dust_create dust "$base" 131072 500 3100 || fail "dm-dust device with bad blocks 500 and 3100"
mkmain_table() {
  local d=/dev/mapper/$dust
  case ${1:-} in
    clean) echo "0 131072 linear $d 0" ;;
    mid) printf '0 24000 linear %s 0\n24000 8 flakey %s 24000 0 3600 1 error_writes\n24008 107064 linear %s 24008\n' \
           "$d" "$d" "$d" ;;
    wide) printf '0 40000 linear %s 0\n40000 2400 flakey %s 40000 0 3600 1 error_writes\n42400 88672 linear %s 42400\n' \
           "$d" "$d" "$d" ;;
    *) printf '%s\n' "0 8000 linear $d 0" "8000 560 flakey $d 8000 0 3600 1 error_writes" \
         "8560 15440 linear $d 8560" "24000 8 flakey $d 24000 0 3600 1 error_writes" \
         "24008 107064 linear $d 24008" ;;
  esac
}
set_main() {
  dmsetup suspend "${PREFIX}main" && mkmain_table "$1" | dmsetup reload "${PREFIX}main" &&
    dmsetup resume "${PREFIX}main"
}
mkmain_table | dmsetup create "${PREFIX}main" || fail "faulty main device"
DMDEVS+=("${PREFIX}main")
main=/dev/mapper/${PREFIX}main
dm_create m "0 131072 remap $main $spare" || fail "create the target"
n=${PREFIX}m
dev=$(dm_path m)
msg() { dmsetup message -- "$n" 0 "$@"; }
# list_all: every page of `list`, following next= until end.
list_all() {
  local from=0 out last
  while :; do
    out=$(msg list "$from") || return 1
    printf '%s\n' "$out" | grep '^block='
    last=$(printf '%s\n' "$out" | tail -1)
    case $last in
      end) return 0 ;;
      next=*) from=${last#next=} ;;
      *) diag "list $from ended with '$last'"; return 1 ;;
    esac
  done
}
snap() { list_all; dmsetup status "$n"; }
spare_blk() { msg query "$1" | sed -n 's/.*spare_block=\([0-9]*\).*/\1/p'; }
# on_spare <block> <file>: the block's data area on the spare holds <file>.
on_spare() {
  local s
  s=$(spare_blk "$1") && [ -n "$s" ] || { diag "block $1 has no spare block"; return 1; }
  dd if="$spare" bs=512 skip=$((9216 + s * 8)) count=8 iflag=direct status=none | cmp -s - "$2"
}
# on_main <block> <file>: the main device's block holds <file> (read under dm-remap).
on_main() { dd if="$base" bs=4096 skip="$1" count=1 iflag=direct status=none | cmp -s - "$2"; }
# refused <errtext> <logtext> <message...>: the message fails with <errtext>, the
# kernel log says <logtext>, and nothing changed.
refused() {
  local err want=$1 why=$2 before; shift 2
  before=$(snap)
  dmesg_mark
  if err=$(msg "$@" 2>&1); then
    ktap_fail "'$*' is refused (it answered: $err)"
  else
    ktap_check "'$*' is refused with $want" grep -qF "$want" <<<"$err" || diag "dmsetup said: $err"
  fi
  ktap_check "kernel log: '$why'" logged "$why"
  unchanged() { test "$(snap)" = "$before"; }
  ktap_check "nothing changed after '$*' (list, status)" unchanged
}

# remap / unremap of one block.
head -c 4096 /dev/urandom > "$WORK/d10" || fail "random data"
blk_write "$dev" 10 "$WORK/d10" || fail "write block 10"
v0=$(info m meta_version)
ktap_check "remap 10 answers 'block=10 remapped'" test "$(msg remap 10)" = "block=10 remapped"
ktap_check "query 10: remapped, no lost sectors" \
  bash -c "dmsetup message $n 0 query 10 | grep -qE '^block=10 state=remapped spare=0 spare_block=[0-9]+ lost_sectors=0\$'"
ktap_check "the block's data was copied to its spare block" on_spare 10 "$WORK/d10"
ktap_check "status: remapped 1, spare_used 1, remaps 1, one commit" \
  test "$(info m remapped) $(info m spare_used) $(info m remaps) $(info m meta_version)" = "1 1 1 $((v0 + 1))"
refused "File exists" "remap 10: refused: the block is already remapped" remap 10
head -c 4096 /dev/urandom > "$WORK/d10b"
blk_write "$dev" 10 "$WORK/d10b" || fail "write block 10 again"
new_on_spare() { on_spare 10 "$WORK/d10b" && on_main 10 "$WORK/d10"; }
ktap_check "a write to the remapped block goes to the spare, not to main" new_on_spare
v1=$(info m meta_version)
ktap_check "unremap 10 answers 'block=10 unremapped'" test "$(msg unremap 10)" = "block=10 unremapped"
ktap_check "query 10: state=main" test "$(msg query 10)" = "block=10 state=main"
ktap_check "the block's current data was copied back to main" on_main 10 "$WORK/d10b"
blk_read "$dev" 10 "$WORK/back" || fail "read block 10"
ktap_check "and reads back through the target" cmp -s "$WORK/d10b" "$WORK/back"
ktap_check "status: remapped 0, spare_used 0, one commit" \
  test "$(info m remapped) $(info m spare_used) $(info m meta_version)" = "0 0 $((v1 + 1))"
refused "No such file or directory" "unremap 11: refused: the block is not remapped" unremap 11

# list pages of 64 entries with next=: a pending block and 70 remapped blocks (one
# 280 KiB write over blocks that fail writes: the worker remaps them in one batch).
fails_with "Input/output error" blk_read "$dev" 500 "$WORK/x" || fail "read of block 500 fails"
head -c $((70 * 4096)) /dev/urandom > "$WORK/big" || fail "random data"
dd if="$WORK/big" of="$dev" bs=$((70 * 4096)) count=1 seek=$((1000 * 4096)) \
  oflag=direct,seek_bytes conv=notrunc status=none || fail "write blocks 1000-1069"
test "$(info m remapped)" = 70 || fail "blocks 1000-1069 remapped by the write ($(info m remapped) remapped)"
set_main mid || fail "reload the main device: blocks 1000-1069 take writes again"
p1=$(msg list) || fail "list"
ktap_check "list: 64 entries, the pending block first, then next=1063" \
  test "$(grep -c '^block=' <<<"$p1") $(head -1 <<<"$p1") $(tail -1 <<<"$p1")" = \
       "64 block=500 state=pending next=1063"
p2=$(msg list 1063) || fail "list 1063"
ktap_check "list 1063: the last 7 entries, then end" \
  test "$(grep -c '^block=' <<<"$p2") $(head -1 <<<"$p2" | cut -d' ' -f1) $(tail -1 <<<"$p2")" = \
       "7 block=1063 end"
want_list() { echo 500; seq 1000 1069; }
got_list() { list_all | sed 's/^block=\([0-9]*\) .*/\1/'; }
ktap_check "the pages together list each special block once, in order" \
  test "$(got_list)" = "$(want_list)"
ktap_check "list from a block between entries starts at the next one" \
  test "$(msg list 501 | head -1 | cut -d' ' -f1)" = block=1000
ktap_check "list from the last block of the target: end" test "$(msg list 16383)" = end

# unremap refusals: main still fails the write; sectors were lost.
head -c 4096 /dev/urandom > "$WORK/d3000"
blk_write "$dev" 3000 "$WORK/d3000" || fail "write to the write-failing block 3000"
ktap_check "the write-failing block 3000 is remapped by a write" \
  bash -c "dmsetup message $n 0 query 3000 | grep -q state=remapped"
refused "Input/output error" "unremap 3000: failed (-5): the copy back or its commit failed" unremap 3000
ktap_check "block 3000 still reads back" \
  bash -c "dd if=$dev bs=4096 skip=3000 count=1 iflag=direct status=none | cmp -s - $WORK/d3000"
ktap_check "remap of an unreadable block answers remapped" test "$(msg remap 3100)" = "block=3100 remapped"
ktap_check "query 3100: 8 lost sectors" \
  bash -c "dmsetup message $n 0 query 3100 | grep -q 'state=remapped .* lost_sectors=8\$'"
ktap_check "its lost sectors read as errors" fails_with "Input/output error" blk_read "$dev" 3100 "$WORK/x"
refused "Device or resource busy" "unremap 3100: refused: sectors of the block were lost (write them first)" unremap 3100

# clear confirm stops at the first block that cannot move back (3000).
dmesg_mark
ktap_check_fails "clear confirm fails at block 3000" msg clear confirm
ktap_check "kernel log: 'clear: block 3000 cannot move back (-5); 71 cleared'" \
  logged "clear: block 3000 cannot move back (-5); 71 cleared"
ktap_check "only 3000 and 3100 are left, still remapped" \
  test "$(got_list | tr '\n' ' ')" = "3000 3100 "
all_back() {
  dd if="$base" bs=4096 skip=1000 count=70 iflag=direct status=none | cmp -s - "$WORK/big"
}
ktap_check "the 70 cleared blocks' data is back on main" all_back
ktap_check "status: remapped 2, pending 0, spare_used 2" \
  test "$(info m remapped) $(info m pending) $(info m spare_used)" = "2 0 2"

# Out-of-range and malformed blocks: the target has 16384 blocks.
refused "Invalid argument" "block 16384 is beyond the target (16384 blocks)" remap 16384
refused "Invalid argument" "block 16384 is beyond the target (16384 blocks)" unremap 16384
refused "Invalid argument" "message: Number out of range" remap 18446744073709551616
refused "Invalid argument" "message: Number out of range" unremap 18446744073709551616
refused "Invalid argument" "message: Number out of range" list 18446744073709551616
refused "Invalid argument" "message: Invalid number" remap -1
refused "Invalid argument" "message: Invalid number" unremap -1
refused "Invalid argument" "message: Invalid number" list -5
refused "Invalid argument" "message: Wrong number of message arguments" clear
ktap_check "the last block of the target (16383) can be remapped and moved back" \
  test "$(msg remap 16383) $(msg unremap 16383)" = "block=16383 remapped block=16383 unremapped"

# The main device heals: clear confirm moves the rest back once 3100 is rewritten whole.
set_main clean || fail "reload the main device without faults"
head -c 4096 /dev/urandom > "$WORK/d3100"
blk_write "$dev" 3100 "$WORK/d3100" || fail "rewrite block 3100"
ktap_check "clear confirm answers cleared=2" test "$(msg clear confirm)" = cleared=2
ktap_check "list is empty" test "$(msg list)" = end
both_back() { on_main 3000 "$WORK/d3000" && on_main 3100 "$WORK/d3100"; }
ktap_check "both blocks' data is on main" both_back
ktap_check "status: remapped 0, spare_used 0, mode ok" \
  test "$(info m remapped) $(info m spare_used) $(info m mode)" = "0 0 ok"

# unremap of a pending block forgets it (dm-dust still fails reads of block 500).
fails_with "Input/output error" blk_read "$dev" 500 "$WORK/x" || fail "read of block 500 fails again"
v=$(info m meta_version)
ktap_check "unremap of the pending block 500 answers 'block=500 unremapped'" \
  test "$(msg unremap 500)" = "block=500 unremapped"
ktap_check "query 500: state=main, pending 0, one commit" \
  test "$(msg query 500) $(info m pending) $(info m meta_version)" = "block=500 state=main 0 $((v + 1))"

# clear moves blocks back a step at a time (up to 128: one busy publication, one drain,
# the copies, one commit): 300 remapped blocks leave the table in 3 commits, not 300.
set_main wide || fail "main device failing writes of blocks 5000-5299"
head -c $((300 * 4096)) /dev/urandom > "$WORK/wide"
dd if="$WORK/wide" of="$dev" bs=4096 seek=5000 count=300 oflag=direct status=none ||
  fail "write blocks 5000-5299"
ktap_check "300 blocks remapped by the writes" test "$(info m remapped)" = 300
set_main clean || fail "reload the main device without faults"
v=$(info m meta_version)
ktap_check "clear confirm answers cleared=300" test "$(msg clear confirm)" = cleared=300
diag "clear of 300 blocks: $(( $(info m meta_version) - v )) commits"
ktap_check "in 3 commits" test "$(( $(info m meta_version) - v ))" = 3
wide_back() {
  dd if="$base" bs=4096 skip=5000 count=300 iflag=direct status=none | cmp -s - "$WORK/wide" &&
    test "$(msg list)" = end
}
ktap_check "their data is on main, the table empty" wide_back
ktap_check "status: remapped 0, spare_used 0, mode ok" \
  test "$(info m remapped) $(info m spare_used) $(info m mode)" = "0 0 ok"
ktap_finish
