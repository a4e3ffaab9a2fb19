#!/usr/bin/python3
"""Power-cut trial, guest side (run by tests/powercut/run.py through scripts/vm-run).

Disks: /dev/vda = main (with injected bad blocks), /dev/vdb (and /dev/vdc, ... with a
pool) = the spares; all are host image files, so killing QEMU is a power cut.

    guest.py <expect-file> <seed> [<limit> [<spares> [<add-at> [<remove>]]]]

With <spares> > 1 the table names a pool of that many spares; with <add-at> > 0 it
starts with the first spare only and, before write number <add-at>, adds the others by
reloading the table with all of them (a spare_add as `remapctl spare-add` makes it:
"ADDING", reload, resume, "ADDED"), the writes going on after it.

With <remove> 1 the first spare leaves the pool as `remapctl spare-remove` takes it
out, beside the writes: after MIN_ACKS writes a thread prints "REMOVING", sends
`spare_remove 0` (its blocks move to the other spares), reloads the table without it
and resumes, then prints "REMOVED". With <remove> 2 a removal may have been cut
before: the table without the first spare is tried first ("REMOVED-AT-LOAD" when it
loads); when it is refused (the spare still holds blocks, or the drained list was not
committed), the table with it loads and the removal runs again, before the
verification and the writes.

1. Assembles main and dm-remap (the metadata must load), checks every block in the
   expect file ("<block> <sha> [<sha>...]": the content must be one of them), prints
   "SEEN <block> <sha>" for each, then "VERIFY <ok|FAIL> <n>".
2. Writes the seed's planned 4 KiB blocks (plan()) with O_DIRECT|O_DSYNC, printing
   "INTENT <i> <block> <sha>" before and "ACK <i> <block> <sha>" after each write, until
   the host kills the VM; with a non-zero limit, after that many
   writes it removes the devices and prints "CLEAN" (a clean reboot).

Every line is drained to the console before the next disk write, so the host never
misses an INTENT whose write may have reached the disk.

From the start a thread follows the kernel log (/dev/kmsg, the boot's messages
included) and prints every message of level warning or worse as "KMSG <level> <text>":
an oops or a lockdep splat after VERIFY would otherwise look like the power cut that
ends the boot.
"""
import hashlib
import mmap
import os
import random
import subprocess
import sys
import termios
import threading
import time

BLOCKS = 16384          # 64 MiB main
NSECT = BLOCKS * 8
# 1223 bad blocks (every 13th from 100): remaps, and so metadata commits, keep
# happening in every boot, so cuts can land inside commits.
BAD = list(range(100, 16001, 13))
DEV = "/dev/mapper/pc"
# Writes acknowledged before a removal starts (as the host's MIN_ACKS).
REMOVE_AT = 4


def plan(seed):
    """The boot's writes, (block, 4 KiB), a pure function of the seed: the host
    recomputes them, so it knows what a write lost with the console's tail held."""
    rng = random.Random(seed)
    while True:
        # Half of the writes go to the injected bad blocks, half anywhere.
        blk = rng.choice(BAD) if rng.randrange(2) == 0 else rng.randrange(BLOCKS)
        yield blk, rng.randbytes(4096)


_console = threading.Lock()


def say(line, drain=True):
    """One whole line on the console (the kernel-log thread prints too)."""
    with _console:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        if not drain:
            return
        try:
            termios.tcdrain(sys.stdout.fileno())
        except (termios.error, OSError):
            pass  # not a terminal: flush() already handed the bytes on


def follow_kmsg():
    """Prints the kernel's messages of level warning (4) or worse, as they come."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY)
    except OSError as e:
        say(f"KMSG 0 cannot open /dev/kmsg: {e}")
        return
    while True:
        try:
            rec = os.read(fd, 8192).decode("utf-8", "replace")
        except BrokenPipeError:
            continue  # records were overwritten before we read them
        except OSError as e:
            say(f"KMSG 0 reading /dev/kmsg failed: {e}")
            return
        head, _, text = rec.partition(";")
        try:
            level = int(head.split(",")[0]) & 7
        except ValueError:
            continue
        if level <= 4:
            say(f"KMSG {level} {text.splitlines()[0] if text else ''}")


def sha(data):
    return hashlib.sha256(data).hexdigest()[:16]


def dmsetup(*args, table=None):
    return subprocess.run(["dmsetup", *args], input=table, capture_output=True, text=True)


def remove_first(spares):
    """Takes the first spare out of the pool, as `remapctl spare-remove` does."""
    say("REMOVING")
    r = dmsetup("message", "pc", "0", "spare_remove", "0")
    if r.returncode != 0:
        say(f"REMOVE-FAILED {r.stderr.strip()}")
        return
    say(f"REMOVE-MOVED {r.stdout.strip()}")
    r = dmsetup("reload", "pc", "--table",
                f"0 {NSECT} remap /dev/mapper/pc_main {' '.join(spares[1:])}")
    r2 = dmsetup("resume", "pc")
    if r.returncode != 0 or r2.returncode != 0:
        say(f"REMOVE-FAILED {r.stderr.strip()} {r2.stderr.strip()}")
    else:
        say("REMOVED " + dmsetup("status", "pc").stdout.strip())


def main():
    expect, seed = sys.argv[1], int(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    nspares = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    add_at = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    remove = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    spares = [f"/dev/vd{chr(ord('b') + i)}" for i in range(nspares)]
    os.environ["DM_DISABLE_UDEV"] = "1"
    threading.Thread(target=follow_kmsg, daemon=True).start()
    if subprocess.run(["modprobe", "dm-remap"]).returncode != 0:
        say("VERIFY FAIL modprobe")
        return 1
    table, pos = [], 0
    for b in BAD:
        s = b * 8
        table.append(f"{pos} {s - pos} linear /dev/vda {pos}")
        table.append(f"{s} 8 error")
        pos = s + 8
    table.append(f"{pos} {NSECT - pos} linear /dev/vda {pos}")
    r = dmsetup("create", "pc_main", table="\n".join(table) + "\n")
    if r.returncode != 0:
        say(f"VERIFY FAIL pc_main: {r.stderr.strip()}")
        return 1
    first = spares[:1] if add_at else spares
    remove_at = REMOVE_AT if remove else -1
    r = None
    if remove == 2:
        r = dmsetup("create", "pc", "--table",
                    f"0 {NSECT} remap /dev/mapper/pc_main {' '.join(spares[1:])}")
        if r.returncode == 0:
            say("REMOVED-AT-LOAD")
            remove_at = -1
    if r is None or r.returncode != 0:
        r = dmsetup("create", "pc", "--table",
                    f"0 {NSECT} remap /dev/mapper/pc_main {' '.join(first)}")
    if r.returncode != 0:
        say(f"VERIFY FAIL create: {r.stderr.strip()}")
        say(subprocess.run(["dmesg"], capture_output=True, text=True).stdout[-2000:])
        return 1
    if remove == 2 and remove_at >= 0:
        # The table without the first spare was refused: finish its removal now, before
        # the verification reads through the table without it.
        remove_first(spares)
        remove_at = -1

    buf = mmap.mmap(-1, 4096)  # page aligned, as O_DIRECT wants
    fd = os.open(DEV, os.O_RDWR | os.O_DIRECT)
    fails = n = 0
    if os.path.exists(expect):
        with open(expect) as f:
            for line in f:
                blk, *allowed = line.split()
                try:
                    got = os.preadv(fd, [buf], int(blk) * 4096)
                    h = sha(buf[:got])
                except OSError:
                    h = sha(b"")
                say(f"SEEN {blk} {h}", drain=False)
                n += 1
                if h not in allowed:
                    say(f"MISMATCH {blk} got={h} allowed={' '.join(allowed)}", drain=False)
                    fails += 1
    say(f"VERIFY ok {n}" if fails == 0 else f"VERIFY FAIL {fails}")
    say("STATUS " + dmsetup("status", "pc").stdout.strip())
    if nspares > 1:
        stats = dmsetup("message", "pc", "0", "spare_stats").stdout.split("\n")
        say("POOL " + " | ".join(l.strip() for l in stats if l.strip()))
    os.close(fd)

    fd = os.open(DEV, os.O_RDWR | os.O_DIRECT | os.O_DSYNC)
    for i, (blk, data) in enumerate(plan(seed)):
        if limit and i >= limit:
            break
        if i == remove_at:
            threading.Thread(target=remove_first, args=(spares,), daemon=True).start()
        if add_at and i == add_at:
            say("ADDING")
            # The host arms an aimed cut on this line: give the console a moment to
            # carry it there before the add's commit starts.
            time.sleep(1.0)
            table = f"0 {NSECT} remap /dev/mapper/pc_main {' '.join(spares)}"
            r = dmsetup("reload", "pc", "--table", table)
            r2 = dmsetup("resume", "pc")
            if r.returncode != 0 or r2.returncode != 0:
                say(f"ADD-FAILED {r.stderr.strip()} {r2.stderr.strip()}")
            else:
                say("ADDED " + dmsetup("status", "pc").stdout.strip())
        buf[:] = data
        h = sha(data)
        say(f"INTENT {i} {blk} {h}")
        try:
            os.pwritev(fd, [buf], blk * 4096)
            say(f"ACK {i} {blk} {h}")
        except OSError as e:
            say(f"WRITE-ERROR {i} {blk} {e.errno}")
    os.close(fd)
    if dmsetup("remove", "pc").returncode == 0 and dmsetup("remove", "pc_main").returncode == 0:
        say("CLEAN")
    return 0


if __name__ == "__main__":
    sys.exit(main())
