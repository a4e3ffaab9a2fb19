#!/usr/bin/env python3
"""Power-cut campaign for dm-remap (host side).

Boots the test VM repeatedly with main and spare as virtio disks backed by image files.
Each boot first verifies what the previous boot acknowledged, then writes until the
host kills QEMU at a random moment (a power cut). An acknowledged (O_DSYNC) write must
survive every cut; a write that was in flight may or may not.

    tests/powercut/run.py [--cuts N] [--seed S] [--spares N [--add-spare] [--remove-spare]]

The first boot ends cleanly (remove, then exit: a clean reboot); then come N cut boots
and a final verifying boot. After every boot the host runs `remapctl meta check` on
the spare image: it must load (exit 0, or 1 when the cut landed inside a commit and
the next load repairs the torn copy).

A cut comes only after the boot has acknowledged MIN_ACKS writes, one of them a remap
(the first write to an injected bad block). Odd-numbered cuts then fall at a random
moment up to 4 s later; even-numbered ones aim inside a commit: the host watches the
`version` of the five metadata copies in the spare image (QEMU's writes reach the
image file as the guest issues them) and cuts as soon as copy k (random, 0-3) holds a
newer version than copy 4: the commit has written copies 0..k and not yet the last. A boot fails when
  - what it read back differs from what was acknowledged (VERIFY), or an acknowledged
    write is not the plan's;
  - a write failed (WRITE-ERROR: a remap that returned EIO, or a tripped storm guard);
  - the target is not in mode ok when the next boot loads it (STATUS);
  - the kernel logged an oops, BUG, WARNING, lockdep or RCU splat, or a hung task
    (KMSG lines, which the guest prints from /dev/kmsg at level warning or worse);
  - the guest fell silent for STALL seconds when the cut was due (a hang that the cut
    would otherwise hide: a cut otherwise waits for a console line under a second
    old), or the cut never came;
  - the metadata does not load after it.
The campaign fails too when no cut landed inside a commit (meta check exit 1: copies of
different versions), with at least 4 cuts.

With --spares N the target has a pool of N spares (one image each; a commit writes the
five copies of every spare, spare after spare): aimed cuts fall between any two of the
5N copy writes, and `meta check` judges the pool. The first spare is small (48 data
blocks) and the clean boot writes 60 blocks, not 150, so remapped blocks spill onto the
next spare (the campaign fails when none did). With --add-spare as well, the clean
first boot runs with the first spare only and the first cut boot adds the others after
MIN_ACKS writes (a table reload naming them, as `remapctl spare-add` does), the cut
falling up to ADD_CUT seconds after the guest starts the reload: inside the add's
commits or the writes after them. Every later boot names the whole pool.

With --remove-spare (and --spares 2 or more) the first spare leaves the pool in the
boot after the add (or in the first cut boot): after MIN_ACKS writes the guest sends
`spare_remove 0` (its blocks move to the others, beside the writes) and reloads the
table without it, the cut falling up to REMOVE_CUT seconds after it starts: inside the
moves, their commits, the reload and its commit, or after. Every later boot tries the
table without the first spare and, when that is refused, loads it with it and removes
it again. From the removing boot on, the metadata must check as the whole pool or as
the pool without the first spare (once a boot has removed it: without it), and the
campaign fails unless the removal completed. (A later boot that finds the removal
unfinished finishes it before it verifies and writes, so it is not cut during it.)

Exit status 0 when every boot passed.
"""
import argparse
import itertools
import os
import random
import re
import select
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "out", "powercut")


REMAPCTL = os.path.join(ROOT, "rust", "target", "debug", "remapctl")
# Writes after the last ACK the host saw that may have reached the disk.
HORIZON = 64
# A cut comes after this many acknowledged writes of the boot, one of them a remap.
MIN_ACKS = 4
# Seconds of console silence before a cut that count as a hung guest.
STALL = 10.0
# Kernel messages that fail a boot whatever else happened.
SPLAT = re.compile(r"BUG:|WARNING:|Oops|Call Trace|general protection|kernel BUG|"
                   r"rcu.*stall|blocked for more than|possible circular locking|"
                   r"inconsistent lock state|UBSAN|KASAN|refcount_t|list_(add|del) corruption|"
                   r"Kernel panic")
# Warnings shown in the report (the others are the boot's own).
STORAGE = re.compile(r"device-mapper|dm[-_]remap|\bvd[ab]\b|I/O error|EXT4|blk_")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guest import BAD, plan, sha  # noqa: E402  (the guest's write plan, recomputed here)


def spare_images(n):
    """The spare images of a pool of n, in the table's order."""
    return [os.path.join(OUT, "spare.img" if i == 0 else f"spare{i}.img") for i in range(n)]


def meta_check(n, skip_first=False):
    """`remapctl meta check` of the spare images (a pool's check for several), without
    the first with `skip_first`: (exit code, first line)."""
    p = subprocess.run([REMAPCTL, "meta", "check", *spare_images(n)[int(skip_first):]],
                       capture_output=True, text=True)
    return p.returncode, (p.stdout.splitlines() or ["?"])[0]


# Sectors of the five metadata copies and the offset of `version` in a copy's header
# (Documentation/on-disk-format.md).
COPY_SECTORS = (0, 1024, 2048, 4096, 8192)
VERSION_AT = 48
# Seconds after arming an aimed cut waits for a commit before it cuts anyway.
AIM_GIVE_UP = 20.0
# A spare-adding boot's cut falls up to this many seconds after "ADDING".
ADD_CUT = 4.0
# A spare-removing boot's cut falls up to this many seconds after "REMOVING".
REMOVE_CUT = 6.0


# A copy's log (Documentation/on-disk-format.md §8): records after the base, each
# starting on a 512-byte boundary at least, with this magic, its length at 8, its
# version at 16 and the version it applies to at 24.
RECORD_MAGIC = b"DMRLOG02"
COPY_BYTES = 1024 * 512


def copy_version(extent):
    """The version a copy's extent holds: its base's, or its log's last record's. This
    follows the chain of versions only (no checksums): enough to see a commit land."""
    version = int.from_bytes(extent[VERSION_AT:VERSION_AT + 8], "little")
    off = (int.from_bytes(extent[16:20], "little") + 511) // 512 * 512
    while 0 < off <= len(extent) - 32:
        if extent[off:off + 8] == RECORD_MAGIC and \
                int.from_bytes(extent[off + 24:off + 32], "little") == version:
            version = int.from_bytes(extent[off + 16:off + 24], "little")
            length = int.from_bytes(extent[off + 8:off + 12], "little")
            off += max(512, (length + 511) // 512 * 512)
        else:
            off += 512
    return version


def base_versions(f):
    """The version of each copy's base (not its log's last record) as the image holds
    it now."""
    return [int.from_bytes(os.pread(f.fileno(), 8, sec * 512 + VERSION_AT), "little")
            for sec in COPY_SECTORS]


def copy_versions(f):
    """The version each copy holds as the image holds it now."""
    out = []
    for sec in COPY_SECTORS:
        f.seek(sec * 512)
        out.append(copy_version(f.read(COPY_BYTES)))
    return out


def qemu_under(root):
    """The pids of the QEMU processes descending from `root`."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/comm") as f:
                comm = f.read().strip()
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append((int(d), comm))
    found, todo = [], [root]
    while todo:
        for pid, comm in children.get(todo.pop(), []):
            if comm.startswith("qemu-system"):
                found.append(pid)
            todo.append(pid)
    return found


def kill(pids):
    """SIGKILLs `pids`; returns whether one was hit."""
    hit = False
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            hit = True
        except ProcessLookupError:
            pass
    return hit


def boot(expect_path, seed, kill_after, limit=0, fresh=frozenset(), aim=None, nspares=1,
         add_at=0, remove=0, watch_first=True):
    """Runs one VM boot; returns its output lines, whether it was cut, and the seconds
    of console silence before the cut (None without a cut).

    The cut is armed once MIN_ACKS writes were acknowledged, one of them to a block of
    `fresh` (bad blocks never written before: the write remaps). Then it falls
    `kill_after` seconds later, or, when `aim` is a copy number k (of the 5 x nspares
    copies in commit order), as soon as copy k holds a newer version than the last
    copy (inside a commit), or AIM_GIVE_UP seconds after arming if no commit was seen
    (the first spare's copies are not watched without `watch_first`).
    With `add_at` the guest adds the pool's other spares before that write: the cut is
    armed by its "ADDING" line instead, `kill_after` seconds later; with `remove` 1 (the
    guest removes the first spare) by its "REMOVING" line."""
    env = dict(os.environ)
    env["VM_QEMU_OPTS"] = " ".join(
        f"-drive file={img},format=raw,if=virtio,cache=writeback"
        for img in [os.path.join(OUT, "main.img"), *spare_images(nspares)])
    env["VM_TIMEOUT"] = "300"
    cmd = [os.path.join(ROOT, "scripts", "vm-run"), "/usr/bin/python3", "tests/powercut/guest.py",
           os.path.relpath(expect_path, ROOT), str(seed), str(limit), str(nspares), str(add_at),
           str(remove)]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    lines = []
    deadline = None
    cut = False
    silent = None
    fd = p.stdout.fileno()
    buf = ""
    eof = False
    acks, remapped, armed = 0, 0, False
    qemu = []
    # The images whose copies an aimed cut watches: the pool's (not a removed first
    # spare's, whose copies no longer change).
    spares = [open(img, "rb") for img in spare_images(nspares)[int(not watch_first):]]
    fresh = set(fresh)
    need_remap = bool(fresh)
    last_line = time.time()
    while not eof:
        r, _, _ = select.select([fd], [], [], 0.001)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                eof = True
            buf += chunk.decode("utf-8", "replace")
            *done, buf = buf.split("\n")
            for line in done:
                lines.append(line)
                last_line = time.time()
                if limit or deadline is not None:
                    continue
                by_line = add_at or remove == 1
                if by_line and line.startswith("ADDING" if add_at else "REMOVING") \
                        and not armed:
                    armed = True
                    deadline = time.time() + (kill_after if aim is None else AIM_GIVE_UP)
                    qemu = qemu_under(p.pid)
                m = re.match(r"(ACK|INTENT) \d+ (\d+) ", line)
                if not m or by_line:
                    continue
                blk = int(m.group(2))
                if m.group(1) == "ACK":
                    acks += 1
                    if blk in fresh:
                        remapped += 1
                        fresh.discard(blk)
                    # (Once every injected bad block has been written, in a long
                    # campaign, no write remaps any more: then acks alone arm.)
                    if not armed and acks >= MIN_ACKS and (remapped or not need_remap):
                        armed = True
                        deadline = time.time() + (kill_after if aim is None else AIM_GIVE_UP)
                        # Found now: walking /proc at the cut takes long enough for a
                        # commit to finish in the meantime.
                        qemu = qemu_under(p.pid)
        in_commit = False
        if armed and aim is not None and deadline != float("inf"):
            if add_at:
                # The add's commit writes the joining spares first (in list order),
                # then the first spare: copy `aim` of that order is written and the
                # next one is not yet.
                # (The add writes whole bases everywhere: the bases' versions, read
                # alone, show its progress, and reading them is fast enough to see it.)
                order = spares[1:] + spares[:1]
                v = [x for f in order for x in base_versions(f)]
                # Only that commit writes a joining spare before the first spare: while
                # it runs, some joining copy is newer than the first spare's last one.
                joining = v[:-5]
                in_commit = v[aim] > v[aim + 1] and max(joining) > v[-1]
                if in_commit:
                    lines.append(f"HOST cut inside the add's commit: copy versions {v} "
                                 f"(joining spares first)")
            else:
                v = [x for f in spares for x in copy_versions(f)]
                in_commit = v[aim] > v[-1]
                if in_commit:
                    lines.append(f"HOST cut inside a commit: copy versions {v}")
        # The cut waits for a console line less than a second old (or for the image
        # to show a commit in progress): a guest that is silent for STALL seconds
        # instead is hung (the report says so), and cut then.
        # (While the guest adds spares it prints nothing until the reload is done: the
        # cut does not wait for a line then.)
        fresh_line = STALL if add_at or remove == 1 else 1.0
        if in_commit or deadline is not None and time.time() >= deadline and (
                time.time() - last_line < fresh_line or time.time() - last_line >= STALL):
            # The power cut: SIGKILL this boot's QEMU (only this one: other VMs may be
            # running on the machine), nothing gets flushed.
            silent = time.time() - last_line
            cut = kill(qemu or qemu_under(p.pid))
            deadline = float("inf")
    p.wait()
    for f in spares:
        f.close()
    lines.extend(buf.split("\n"))
    return lines, cut, silent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cuts", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--spares", type=int, default=1)
    ap.add_argument("--add-spare", action="store_true")
    ap.add_argument("--remove-spare", action="store_true")
    args = ap.parse_args()
    if (args.add_spare or args.remove_spare) and args.spares < 2:
        ap.error("--add-spare and --remove-spare need --spares 2 or more")
    remove_trial = (2 if args.add_spare else 1) if args.remove_spare else None
    if remove_trial is not None and args.cuts < remove_trial:
        ap.error(f"--remove-spare needs --cuts {remove_trial} or more")
    removed = False  # a boot took the first spare out of the pool
    rng = random.Random(args.seed)
    os.makedirs(OUT, exist_ok=True)
    # In a pool the first spare is small (48 data blocks after the 4.5 MiB of metadata)
    # and the clean first boot writes 60 blocks (about 30 remaps, on the first spare
    # alone with --add-spare), so that remaps spill onto the next spare within a few
    # boots.
    pool = args.spares > 1
    clean_writes = 60 if pool else 150
    sizes = [(os.path.join(OUT, "main.img"), 64 << 10)]
    for i, img in enumerate(spare_images(args.spares)):
        sizes.append((img, 4608 + 192 if i == 0 and pool else 16 << 10))
    for path, kib in sizes:
        with open(path, "wb") as f:
            f.truncate(kib << 10)
    for stale in spare_images(16)[args.spares:]:
        if os.path.exists(stale):
            os.unlink(stale)
    zero = sha(bytes(4096))
    unreadable = sha(b"")  # what the guest sees for a bad block nobody has written
    allowed = {}  # block -> set of contents acceptable after the next cut
    expect_path = os.path.join(OUT, "expect")
    failures = 0
    acked_total = 0
    torn = 0
    add_torn = 0  # cuts inside the add's commit
    aimed = aimed_torn = 0
    remaps_total = 0
    pool_used = []  # blocks in use per spare, as the last boot's spare_stats said
    spilled = False  # some boot saw blocks on a spare after the first
    # Bad blocks that no write of an earlier boot may have touched: a write to one
    # remaps (and commits). A write that may have landed (INTENT) counts as touched.
    fresh = set(BAD)
    prev_remapped = None
    if not os.access(REMAPCTL, os.X_OK):
        print(f"# {REMAPCTL} missing: build it with `cd rust && cargo build`")
        return 1
    for trial in range(args.cuts + 2):
        with open(expect_path, "w") as f:
            for blk in sorted(allowed):
                f.write(f"{blk} {' '.join(sorted(allowed[blk]))}\n")
        clean = trial == 0
        last = trial == args.cuts + 1
        kill_after = rng.uniform(0.0, 4.0) if not last else 0.0
        seed = rng.randrange(1 << 15)
        aim = (rng.randrange(5 * (args.spares - removed) - 1)
               if not clean and not last and trial % 2 == 0 else None)
        # --add-spare: boot 0 has the first spare only, boot 1 adds the others.
        adding = args.add_spare and trial == 1 and not last
        nspares = 1 if args.add_spare and clean else args.spares
        if adding:
            # Aimed at the add's own commit (the joining spares are written first).
            aim, kill_after = rng.randrange(5 * args.spares - 1), rng.uniform(0.0, ADD_CUT)
        remove = 0
        if remove_trial is not None and trial >= remove_trial:
            remove = 1 if trial == remove_trial else 2
        if remove == 1:
            aim, kill_after = None, rng.uniform(0.0, REMOVE_CUT)
        was_removed = removed
        lines, cut, silent = boot(expect_path, seed, kill_after, clean_writes if clean else 0,
                                  frozenset(fresh), aim, nspares, MIN_ACKS if adding else 0,
                                  remove, watch_first=not removed)
        if any(l.startswith(("REMOVED", "REMOVED-AT-LOAD")) for l in lines):
            removed = True
        if not clean and not cut:
            failures += 1
            print(f"# boot {trial}: the power cut did not happen (no QEMU found to kill, or the "
                  f"boot never acknowledged {MIN_ACKS} writes and a remap)")
        if silent is not None and silent >= STALL:
            failures += 1
            print(f"# boot {trial}: the guest was silent for {silent:.1f} s before the cut (hung)")
        code, verdict = meta_check(nspares, skip_first=removed)
        if remove and not removed and code not in (0, 1):
            # Cut during the removal: the drained list may be committed already (then
            # the pool loads without the first spare, which its list no longer names).
            code, verdict = meta_check(nspares, skip_first=True)
            verdict += " (without the first spare)"
        # (After a boot cut while adding spares, a spare that never got its copies
        # needs them too: exit 1 as well, not counted as a torn commit.)
        if code == 1 and not adding:
            torn += 1
            aimed_torn += aim is not None
        add_torn += adding and any(l.startswith("HOST cut inside the add's commit")
                                   for l in lines)
        aimed += aim is not None and not adding
        if code not in (0, 1) or (clean and code != 0):
            failures += 1
            print(f"# boot {trial}: remapctl meta check FAILED ({code}): {verdict}")
        if clean and not any(l.startswith("CLEAN") for l in lines):
            failures += 1
            print("# boot 0: the clean run did not finish")
        verify = [l for l in lines if l.startswith("VERIFY ")]
        mism = [l for l in lines if l.startswith("MISMATCH")]
        status = next((l for l in lines if l.startswith("STATUS ")), "STATUS ?")
        for l in lines:
            if l.startswith("HOST "):
                print(f"# boot {trial}: {l[5:]}")
            if l.startswith("POOL "):
                print(f"# boot {trial}: {l}")
                pool_used = [int(u) for u in re.findall(r"used=(\d+)", l)]
                # Blocks on a spare after the first: spilled there, or (once the
                # first spare is out of the pool) moved there by its removal.
                spilled |= any(pool_used[1:]) or (was_removed and any(pool_used))
            if l.startswith("ADD-FAILED"):
                failures += 1
                print(f"# boot {trial}: adding the spares failed: {l}")
            if l.startswith("REMOVE-FAILED"):
                failures += 1
                print(f"# boot {trial}: removing the first spare failed: {l}")
            if l.startswith(("REMOVE-MOVED", "REMOVED-AT-LOAD")):
                print(f"# boot {trial}: {l}")
        # "STATUS <start> <len> remap <field 1> ...": 10 remapped, 17 mode.
        fields = status.split()
        if len(fields) < 21 or fields[3] != "remap" or fields[20] != "ok":
            failures += 1
            print(f"# boot {trial}: the target is not in mode ok: {status}")
        else:
            now = int(fields[13])
            if prev_remapped is not None:
                remaps_total += now - prev_remapped
            prev_remapped = now
        for l in lines:
            if l.startswith("WRITE-ERROR"):
                failures += 1
                print(f"# boot {trial}: a write failed: {l}")
            if l.startswith("KMSG "):
                bad = SPLAT.search(l)
                failures += bool(bad)
                # The boot's own warnings (timer calibration, 9p) are not shown.
                if bad or (STORAGE.search(l) and "taints kernel" not in l):
                    print(f"# boot {trial}: {'KERNEL SPLAT: ' if bad else 'kernel: '}{l[5:]}")
        if not verify or not verify[0].startswith("VERIFY ok"):
            failures += 1
            print(f"# boot {trial}: verification FAILED: {verify[:1]} {mism[:5]}")
            for l in lines[-30:]:
                print("#   " + l)
        else:
            print(f"# boot {trial}: verified {verify[0].split()[-1]} blocks; {status}")
        # What this boot observed becomes the baseline...
        for l in lines:
            m = re.match(r"SEEN (\d+) ([0-9a-f]+)", l)
            if m:
                allowed[int(m.group(1))] = {m.group(2)}
        # ...then what it wrote: an acknowledged write must be there; any later write
        # of the plan may be. The console's tail can be lost at the cut (QEMU holds
        # output the guest already counts as sent), so the plan, not the INTENT lines,
        # says what may have been in flight: the next HORIZON writes after the last ACK.
        acked = {}
        for l in lines:
            m = re.match(r"ACK (\d+) (\d+) ([0-9a-f]{16})\s*$", l)
            if m:
                acked[int(m.group(1))] = (int(m.group(2)), m.group(3))
        last_ack = max(acked, default=-1)
        end = last_ack + 1 + HORIZON
        if clean:
            end = min(end, clean_writes)
        writes = [(b, sha(d)) for b, d in itertools.islice(plan(seed), end)]
        for i, (blk, h) in enumerate(writes):
            fresh.discard(blk)
            if i in acked:
                if acked[i] != (blk, h):
                    failures += 1
                    print(f"# boot {trial}: ACK {i} {acked[i]} is not write {i} of the plan {blk, h}")
                allowed[blk] = {h}
            else:
                allowed.setdefault(blk, {zero, unreadable}).add(h)
        acks = len(acked)
        acked_total += acks
        if clean:
            print(f"# boot {trial}: clean shutdown after {acks} acknowledged writes; meta check: {verdict}")
        elif not last:
            when = (f"aimed after copy {aim} of the add's commit (joining spares first; "
                    f"{'added' if any(l.startswith('ADDED') for l in lines) else 'not added'})"
                    if adding else f"aimed after copy {aim} of a commit" if aim is not None
                    else f"{kill_after:.1f} s after starting to remove the first "
                    f"spare ({'removed' if removed else 'not removed'})"
                    if remove == 1 else f"{kill_after:.1f} s after arming")
            print(f"# boot {trial}: power cut {when}, {acks} acknowledged writes; "
                  f"meta check: {verdict}")
    if args.spares > 1 and not spilled:
        failures += 1
        print(f"# no remapped block landed on a spare after the first: {pool_used}")
    if args.remove_spare and not removed:
        failures += 1
        print("# the first spare was never removed from the pool")
    if args.cuts >= 4 and torn == 0:
        failures += 1
        print("# no cut landed inside a commit: the campaign did not test torn commits")
    print(f"# {args.cuts} power cuts ({aimed} aimed at a commit), {args.spares} spare(s)"
          f"{f' (added in boot 1, {add_torn} cut inside the add commit)' if args.add_spare else ''}"
          f"{f' (the first removed from boot {remove_trial} on)' if args.remove_spare else ''}"
          f", {acked_total} acknowledged "
          f"writes, {remaps_total} remaps, {torn} cuts inside a commit ({aimed_torn} of them "
          f"aimed), {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
