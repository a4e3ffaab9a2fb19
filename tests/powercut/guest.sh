#!/usr/bin/env bash
# Power-cut trial, guest side (run by tests/powercut/run.py through scripts/vm-run).
# Disks: /dev/vda = main (with injected bad blocks), /dev/vdb = spare; both are host
# image files, so killing QEMU is a power cut.
#   guest.sh <expect-file> <seed> [<limit>]
# 1. Assembles main and dm-remap (the metadata must load), checks every block in the
#    expect file ("<block> <sha> [<sha>...]": the content must be one of them) and prints
#    "SEEN <block> <sha>" for each, then "VERIFY <ok|FAIL> <n>".
# 2. Writes random 4 KiB blocks with O_DIRECT|O_DSYNC forever, printing "INTENT" before
#    and "ACK" after each write, until the host kills the VM; with a non-zero limit,
#    after that many writes it removes the devices and prints "CLEAN" (a clean reboot).
set -u
expect=$1 seed=$2 limit=${3:-0}
export DM_DISABLE_UDEV=1
modprobe dm-remap || exit 1
blocks=16384                 # 64 MiB main
nsect=$((blocks * 8))
table=""
pos=0
# 1223 bad blocks (every 13th from 100): remaps, and so metadata commits, keep
# happening in every boot, so cuts land inside commits too.
for b in $(seq 100 13 16000); do
  s=$((b * 8))
  table+="$pos $((s - pos)) linear /dev/vda $pos"$'\n'"$s 8 error"$'\n'
  pos=$((s + 8))
done
table+="$pos $((nsect - pos)) linear /dev/vda $pos"$'\n'
printf '%s' "$table" | dmsetup create pc_main || exit 1
if ! dmsetup create pc --table "0 $nsect remap /dev/mapper/pc_main /dev/vdb"; then
  echo "VERIFY FAIL create"; dmesg | tail -5; exit 1
fi
dev=/dev/mapper/pc
fail=0 n=0
if [ -s "$expect" ]; then
  while read -r blk allowed; do
    got=$(dd if=$dev bs=4096 skip="$blk" count=1 iflag=direct status=none 2>/dev/null | sha256sum | cut -c1-16)
    echo "SEEN $blk $got"
    n=$((n + 1))
    case " $allowed " in *" $got "*) ;; *) echo "MISMATCH $blk got=$got allowed=$allowed"; fail=$((fail + 1)) ;; esac
  done < "$expect"
fi
if [ "$fail" = 0 ]; then echo "VERIFY ok $n"; else echo "VERIFY FAIL $fail"; fi
echo "STATUS $(dmsetup status pc)"
RANDOM=$seed
i=0
while [ "$limit" = 0 ] || [ "$i" -lt "$limit" ]; do
  # Half of the writes go to the injected bad blocks, half anywhere.
  if [ $((RANDOM % 2)) = 0 ]; then blk=$((100 + 13 * (RANDOM % 1223))); else blk=$(( (RANDOM * 32768 + RANDOM) % blocks )); fi
  head -c 4096 /dev/urandom > /tmp/pc.blk
  sha=$(sha256sum < /tmp/pc.blk | cut -c1-16)
  echo "INTENT $blk $sha"
  if dd if=/tmp/pc.blk of=$dev bs=4096 seek="$blk" count=1 oflag=direct,dsync conv=notrunc status=none; then
    echo "ACK $blk $sha"
  else
    echo "WRITE-ERROR $blk"
  fi
  i=$((i + 1))
done
dmsetup remove pc && dmsetup remove pc_main && echo CLEAN
