#!/usr/bin/python3
"""Crash consistency by write-log replay (run in the test VM by tests/95-crash-replay.sh).

The power-cut campaign (tests/powercut) kills QEMU, but QEMU's writes already sit in
the host's page cache, so it cannot show what a drive that loses its volatile write
cache does to dm-remap. This test can: main and spare each sit on a dm-log-writes
device, which logs every write in the order it became stable (writes are logged at
the flush that made them durable; FUA writes at once; marks where user space asks).

    main  = faulty(lw_main)   linear segments with dm-error holes (the bad blocks)
    spare = lw_spare
    remap = remap(main, spare)

1. Workload (--mode): THREADS writers, after each acknowledged write, put the mark
   "w<i>" into both logs (under a lock, so both logs see the marks in one order).
   block: each writer owns the blocks congruent to its number and writes 4 KiB blocks
   with O_DIRECT, half with O_DSYNC, half followed by fdatasync, many to bad blocks
   (remaps, so metadata commits).
   ext4: ext4 on dm-remap, writers replace their files atomically (write, fsync,
   rename, fsync the directory); bad blocks include the start of the journal, so the
   FUA journal commit blocks that fsync waits for get remapped.
2. Crash images: for a trial, pick a mark m (the crash happens after the m-th mark and
   before the next), and in each log independently a crash point k inside that window.
   The device then holds every logged write up to the last flush before k, the FUA
   writes after it, and a random subset of the other (not yet flushed) writes after it:
   what a drive with a volatile cache may hold after losing power. A third of the
   trials crash right after the acknowledgement of a write that took a metadata commit
   (a remap), a third inside such a commit.
3. Each image pair is assembled like the original: the metadata must load; every
   acknowledged write must read back (the last acknowledged data of the block, or the
   data of its owner's write in flight; for ext4: the file system mounts, the files
   read back so, and `e2fsck -fn` is clean after unmount); after removal
   `remapctl meta check` must be clean (the load repaired what the cut left).

Output is KTAP. Layouts: in the block workload nothing written to one device depends on
a write to the other (failed main writes never reach a log), so main and spare get a
log each and their crash points are drawn independently; a flush that dm-remap does not
pass to the spare then shows. ext4's journal does create such dependencies (a commit
block on main after journal blocks remapped to the spare), so there both devices sit on
one logged disk and a crash point is a single place in one order of all writes.
"""
import argparse
import hashlib
import mmap
import os
import random
import struct
import subprocess
import sys
import threading

BS = 4096
MAIN_BLOCKS = 16384                    # 64 MiB
SPARE_SECTORS = 16 * 2048              # 16 MiB
META_SECTORS = (0, 1024, 2048, 4096, 8192)
LOG_MAGIC = 0x6A736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8


def run(*cmd, stdin=None, check=True):
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


class Ktap:
    def __init__(self, plan):
        self.n = self.failed = 0
        print("KTAP version 1")
        print(f"1..{plan}", flush=True)

    def check(self, ok, desc):
        self.n += 1
        if not ok:
            self.failed += 1
        print(f"{'ok' if ok else 'not ok'} {self.n} {desc}", flush=True)

    @staticmethod
    def diag(msg):
        print(f"# {msg}", flush=True)


class Stack:
    """Loop devices and dm devices of one assembly; removed in reverse order of creation
    (a loop device may sit on a dm device and the other way round)."""

    def __init__(self, prefix):
        self.prefix, self.items = prefix, []

    def loop(self, path, offset=None, size=None):
        extent = ([f"--offset={offset}", f"--sizelimit={size}", "--direct-io=on"]
                  if size is not None else [])
        dev = run("losetup", "-f", "--show", *extent, path).stdout.strip()
        self.items.append(("loop", dev))
        return dev

    def dm(self, name, table):
        name = self.prefix + name
        run("dmsetup", "create", name, stdin=table)
        self.items.append(("dm", name))
        return "/dev/mapper/" + name

    def remove(self, name):
        name = self.prefix + name
        run("dmsetup", "remove", "--retry", name, check=False)
        if ("dm", name) in self.items:
            self.items.remove(("dm", name))

    def close(self):
        for kind, name in reversed(self.items):
            if kind == "dm":
                run("dmsetup", "remove", "--retry", name, check=False)
            else:
                run("losetup", "-d", name, check=False)
        self.items = []


def assemble(st, devs, layout):
    """(main, spare) over the per-device disks ("split") or one shared disk. On the
    shared disk they are two loop devices over its two halves, not dm-linear devices:
    dm-remap refuses a spare on a device stacked (as dm stacks, through holder links)
    on the main device's disk, whatever the sectors, and a loop device is no holder."""
    if layout == "split":
        return devs["main"], devs["spare"]
    disk = devs["disk"]
    main_bytes = MAIN_BLOCKS * BS
    main = st.loop(disk, 0, main_bytes)
    spare = st.loop(disk, main_bytes, SPARE_SECTORS * 512)
    return main, spare


def faulty_table(base, bad):
    """linear over base with one-block dm-error holes at the bad blocks."""
    lines, pos = [], 0
    for b in bad:
        s = b * 8
        if s > pos:
            lines.append(f"{pos} {s - pos} linear {base} {pos}")
        lines.append(f"{s} 8 error")
        pos = s + 8
    if pos < MAIN_BLOCKS * 8:
        lines.append(f"{pos} {MAIN_BLOCKS * 8 - pos} linear {base} {pos}")
    return "\n".join(lines) + "\n"


def payload(seed, i, blk):
    """The 4 KiB written by write i: unique per write, self-describing."""
    head = struct.pack("<QQQ", 0x646D72637261736B, i, blk)
    body = hashlib.sha256(f"{seed}:{i}:{blk}".encode()).digest() * (BS // 32)
    return head + body[len(head):]


# ---------------------------------------------------------------- workloads
#
# A workload is a list of writes (index, owner thread, key, content). Each thread
# performs its own in order; after each is acknowledged it calls mark(index). A crash
# image must then show, for every key with an acknowledged write, the content of the
# last one, or of the write its owner had in flight.

class BlockMode:
    """4 KiB O_DIRECT writes to the device: half O_DSYNC, half followed by fdatasync."""
    name = "block"
    layout = "split"

    def __init__(self, args, rng):
        self.args = args
        self.bad = sorted(rng.sample(range(16, MAIN_BLOCKS), 32))

    def plan(self, rng):
        a, bad = self.args, set(self.bad)
        writes = []
        for t in range(a.threads):
            own_bad = [b for b in self.bad if b % a.threads == t]
            own_ok = [b for b in range(t, MAIN_BLOCKS, a.threads) if b not in bad][:64]
            for _ in range(a.writes):
                pool = own_bad if own_bad and rng.random() < 0.35 else own_ok
                blk = rng.choice(pool)
                i = len(writes)
                writes.append((i, t, blk, payload(a.seed, i, blk), rng.random() < 0.5))
        return writes

    def setup(self, dev):
        self.dev = dev

    def thread(self, mine, mark):
        flags = os.O_RDWR | os.O_DIRECT
        fd_sync = os.open(self.dev, flags | os.O_DSYNC)
        fd = os.open(self.dev, flags)
        buf = mmap.mmap(-1, BS)
        try:
            for i, _, blk, data, fua in mine:
                buf.seek(0)
                buf.write(data)
                if fua:
                    os.pwrite(fd_sync, buf, blk * BS)
                else:
                    os.pwrite(fd, buf, blk * BS)
                    os.fdatasync(fd)
                mark(i)
        finally:
            os.close(fd_sync)
            os.close(fd)

    def teardown(self):
        pass

    def verify(self, dev, allowed):
        """Problems found in a crash image assembled at dev."""
        fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, BS)
        bad = []
        try:
            for blk, ok in sorted(allowed.items()):
                try:
                    n = os.preadv(fd, [buf], blk * BS)
                    got = bytes(buf[:n])
                except OSError as e:
                    got = f"error {e.errno}".encode()
                if got not in ok:
                    bad.append(blk)
        finally:
            os.close(fd)
        return [f"blocks {bad[:8]} lost acknowledged data"] if bad else []


class Ext4Mode:
    """ext4 (data=ordered) on the device; writers replace files atomically (write a
    temporary file, fsync, rename, fsync the directory). Bad blocks include a band at
    the start of the journal (remapped when mkfs writes the journal): the journal's
    writes, commit blocks among them (REQ_PREFLUSH | REQ_FUA, after which fsync returns
    with no further flush), then go to the spare."""
    name = "ext4"
    layout = "shared"
    # The journal is written in full by mkfs: a bad journal block that was never
    # written reads as an error (dm-remap does not invent data), and jbd2 recovery
    # fails on a read error while it scans for the end of the log.
    MKFS = ["mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0"]

    def __init__(self, args, rng):
        self.args = args
        probe = os.path.join(args.work, "probe.img")
        with open(probe, "wb") as f:
            f.truncate(MAIN_BLOCKS * BS)
        run(*self.MKFS, probe)
        out = run("debugfs", "-R", "bmap <8> 0", probe).stdout.split()
        os.unlink(probe)
        j0 = int(out[-1])
        band = rng.sample(range(j0 + 1, j0 + 200), 20)
        rest = rng.sample([b for b in range(16, MAIN_BLOCKS) if abs(b - j0) > 1100], 12)
        self.bad = sorted(band + rest)
        self.journal = j0

    def plan(self, rng):
        a = self.args
        writes = []
        for t in range(a.threads):
            for _ in range(a.writes):
                name = f"f{t}_{rng.randrange(4)}"
                i = len(writes)
                size = BS * rng.randint(1, 6) + rng.randrange(BS)
                data = (payload(a.seed, i, t) * 7)[:size]
                writes.append((i, t, name, data, None))
        return writes

    def setup(self, dev):
        self.dev = dev
        self.mnt = os.path.join(self.args.work, "mnt")
        os.makedirs(self.mnt, exist_ok=True)
        run(*self.MKFS, dev)
        run("mount", "-t", "ext4", dev, self.mnt)

    def thread(self, mine, mark):
        for i, _, name, data, _ in mine:
            tmp = os.path.join(self.mnt, name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, os.path.join(self.mnt, name))
            dfd = os.open(self.mnt, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            mark(i)

    def teardown(self):
        run("umount", self.mnt, check=False)

    def verify(self, dev, allowed):
        r = run("mount", "-t", "ext4", dev, self.mnt, check=False)
        if r.returncode != 0:
            log = run("dmesg", check=False).stdout.strip().splitlines()[-8:]
            return [f"mount failed: {r.stderr.strip()} | " + " | ".join(log)]
        bad = []
        try:
            for name, ok in sorted(allowed.items()):
                try:
                    with open(os.path.join(self.mnt, name), "rb") as f:
                        got = f.read()
                except OSError as e:
                    got = f"error {e.errno}".encode()
                if got not in ok:
                    bad.append(name)
        finally:
            run("umount", self.mnt, check=False)
        out = [f"files {bad[:8]} lost acknowledged data"] if bad else []
        r = run("e2fsck", "-fn", dev, check=False)
        if r.returncode != 0:
            out.append(f"e2fsck -fn exit {r.returncode}: {r.stdout.strip()[-300:]}")
        return out


def workload(mode, writes, threads, lw_names):
    order, errors = [], []
    lock = threading.Lock()

    def mark(i):
        with lock:
            for lw in lw_names:
                run("dmsetup", "message", lw, "0", "mark", f"w{i}")
            order.append(i)

    def body(t):
        try:
            mode.thread([w for w in writes if w[1] == t], mark)
        except (OSError, RuntimeError) as e:
            errors.append(f"writer {t}: {e}")

    ths = [threading.Thread(target=body, args=(t,)) for t in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return order, errors


# ---------------------------------------------------------------- the log

class Entry:
    __slots__ = ("sector", "nr", "flags", "data", "mark")

    def __init__(self, sector, nr, flags, data, mark):
        self.sector, self.nr, self.flags, self.data, self.mark = sector, nr, flags, data, mark


def read_log(path):
    with open(path, "rb") as f:
        raw = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    magic, version, nr_entries, ssize = struct.unpack_from("<QQQI", raw, 0)
    if magic != LOG_MAGIC or version != 1:
        raise ValueError(f"{path}: not a dm-log-writes log (magic {magic:#x})")
    entries, off = [], ssize
    for _ in range(nr_entries):
        sector, nr, flags, dlen = struct.unpack_from("<QQQQ", raw, off)
        mark, data = None, b""
        off += ssize                           # the entry's own sector
        if flags & MARK:
            mark = bytes(raw[off - ssize + 32: off - ssize + 32 + dlen]).decode()
        elif not flags & DISCARD:
            data = bytes(raw[off: off + nr * ssize])
            if len(data) != nr * ssize:
                raise ValueError(f"{path}: log truncated")
            off += nr * ssize
        entries.append(Entry(sector * ssize, nr * ssize, flags, data, mark))
    return entries


def crash_state(entries, k, rng):
    """The writes a volatile-cache drive may hold when it loses power after the first k
    log entries: all up to the last flush among them, the FUA ones after it, and a
    random subset of the others after it."""
    last_flush = -1
    for j in range(k):
        if entries[j].flags & FLUSH:
            last_flush = j
    out = []
    for j in range(k):
        e = entries[j]
        if e.flags & MARK or (e.nr == 0 and not e.flags & DISCARD):
            continue
        if j <= last_flush or e.flags & FUA or rng.random() < 0.5:
            out.append(e)
    return out


def is_meta_write(e, base=0):
    """A write into a metadata copy's extent (1024 sectors from each copy sector): a
    base, or a record appended to the copy's log; base: the spare's byte offset in the
    logged device. Every commit writes exactly one of them per copy."""
    if e.flags & MARK or e.nr == 0 or e.sector < base:
        return False
    s = (e.sector - base) // 512
    return any(m <= s < m + 1024 for m in META_SECTORS)


def apply(path, size, writes):
    with open(path, "wb") as f:
        f.truncate(size)
        for e in writes:
            f.seek(e.sector)
            if e.flags & DISCARD:
                f.write(bytes(e.nr))
            else:
                f.write(e.data)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("block", "ext4"), default="block")
    ap.add_argument("--work", required=True)
    ap.add_argument("--remapctl", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--writes", type=int, default=40, help="per thread")
    ap.add_argument("--prefix", default="dmrt_cr_")
    args = ap.parse_args()
    os.environ["DM_DISABLE_UDEV"] = "1"
    rng = random.Random(args.seed * 7919)
    mode = (BlockMode if args.mode == "block" else Ext4Mode)(args, rng)
    writes = mode.plan(rng)
    w = args.work
    kt = Ktap(7)
    kt.diag(f"{mode.name}: seed {args.seed}, {args.threads} writers x {args.writes} writes, "
            f"{len(mode.bad)} bad blocks, {args.trials} crash images")

    # 1. The logged run. Layout "split": main and spare each on a log of its own (flushes
    # are per device, so a flush that does not reach the spare shows). Layout "shared":
    # both on one logged disk (one order of all writes: needed when writes to one
    # device depend on writes to the other, as the ext4 journal's do).
    st = Stack(args.prefix)
    main_bytes, spare_bytes = MAIN_BLOCKS * BS, SPARE_SECTORS * 512
    if mode.layout == "split":
        disks = {"main": main_bytes, "spare": spare_bytes}
    else:
        disks = {"disk": main_bytes + spare_bytes}
    spare_log, spare_base = ("spare", 0) if mode.layout == "split" else ("disk", main_bytes)
    paths = {}
    for name, size in disks.items():
        paths[name + ".img"], paths[name + ".log"] = (os.path.join(w, name + ".img"),
                                                      os.path.join(w, name + ".log"))
        for n, sz in ((name + ".img", size), (name + ".log", 512 << 20)):
            with open(paths[n], "wb") as f:
                f.truncate(sz)
    order, errors, status = [], [], []
    lw_names = [args.prefix + "lw_" + name for name in disks]
    try:
        lws = {}
        for name, size in disks.items():
            img, log = st.loop(paths[name + ".img"]), st.loop(paths[name + ".log"])
            lws[name] = st.dm("lw_" + name, f"0 {size // 512} log-writes {img} {log}\n")
        main_base, spare_dev = assemble(st, lws, mode.layout)
        main_dev = st.dm("main", faulty_table(main_base, mode.bad))
        remap = st.dm("remap", f"0 {MAIN_BLOCKS * 8} remap {main_dev} {spare_dev}\n")
        try:
            mode.setup(remap)
            order, errors = workload(mode, writes, args.threads, lw_names)
        except (OSError, RuntimeError) as e:
            errors.append(f"setup: {e}")
        finally:
            mode.teardown()
        status = run("dmsetup", "status", args.prefix + "remap").stdout.split()
        st.remove("remap")
        for lw in lw_names:
            run("dmsetup", "message", lw, "0", "mark", "end")
    finally:
        st.close()
    kt.diag(f"{len(order)} writes acknowledged; status: "
            f"remapped {status[2 + 10] if len(status) > 12 else '?'}, "
            f"meta_version {status[2 + 15] if len(status) > 17 else '?'}")
    for e in errors:
        kt.diag(e)
    kt.check(not errors and len(order) == len(writes), "workload: every write acknowledged")

    logs = {}
    try:
        logs = {name: read_log(paths[name + ".log"]) for name in disks}
    except (ValueError, struct.error) as e:
        kt.diag(str(e))
    for name, ents in logs.items():
        kt.diag(f"{name} log: {len(ents)} entries, "
                f"{sum(1 for e in ents if e.flags & FLUSH)} flushes, "
                f"{sum(1 for e in ents if e.flags & FUA)} FUA"
                + (f", {sum(1 for e in ents if is_meta_write(e, spare_base))} metadata copy writes"
                   if name == spare_log else ""))
    pos = {}
    marks_ok = len(logs) == len(disks)
    want = [f"w{i}" for i in order] + ["end"]
    for name, ents in logs.items():
        pos[name] = {e.mark: j for j, e in enumerate(ents) if e.mark}
        seen = [m for m in sorted(pos[name], key=pos[name].get) if m != "dm-log-writes-end"]
        if seen != want:
            first = next((j for j, (a, b) in enumerate(zip(seen, want)) if a != b), None)
            kt.diag(f"{name} log: {len(seen)} marks, {len(want)} expected, first difference at {first}")
            marks_ok = False
    kt.check(marks_ok, "the write logs hold every mark, in the writers' order")
    meta_in_log = sum(1 for e in logs.get(spare_log, []) if is_meta_write(e, spare_base))
    kt.check(meta_in_log >= 10, "the workload committed metadata (remaps happened)")
    if not marks_ok:
        for _ in range(4):
            kt.check(False, "crash images (not run: no usable log)")
        return 1

    # 2./3. Crash images.
    by_index = {x[0]: x for x in writes}
    thread_writes = [[x[0] for x in writes if x[1] == t] for t in range(args.threads)]
    marks = ["w%d" % i for i in order] + ["end"]
    # Marks acknowledging a write whose completion took a metadata commit (a remap).
    sp, slog = pos[spare_log], logs[spare_log]
    remap_marks = [j for j in range(len(order))
                   if any(is_meta_write(slog[x], spare_base)
                          for x in range(sp[marks[j - 1]] + 1 if j else 0, sp[marks[j]]))]
    kt.diag(f"{len(remap_marks)} acknowledgements followed a metadata commit")
    load_fail, lost, unclean, inside_commit = [], [], [], 0
    for trial in range(args.trials):
        trng = random.Random(args.seed * 1000003 + trial)
        # Crash after mark m (-1: before the first). A third of the trials crash right
        # after a write that took a remap was acknowledged; a third inside a commit.
        kind = trial % 3
        if kind == 1 and remap_marks:
            m = trng.choice(remap_marks)
        elif kind == 2 and remap_marks:
            m = trng.choice(remap_marks) - 1      # the window holding that commit
        else:
            m = trng.randrange(-1, len(order))
        ks, problems = {}, []
        for name, ents in logs.items():
            lo = pos[name][marks[m]] + 1 if m >= 0 else 0
            hi = pos[name][marks[m + 1]]      # the next mark is not reached
            meta = ([j for j in range(lo, hi) if is_meta_write(ents[j], spare_base)]
                    if name == spare_log else [])
            if kind == 2 and meta:
                ks[name] = trng.choice(meta) + trng.randrange(2)
            else:
                ks[name] = trng.randint(lo, hi)
        state = {n: crash_state(logs[n], ks[n], trng) for n in logs}
        partial = sum(1 for e in state[spare_log] if is_meta_write(e, spare_base)) % 5 != 0
        inside_commit += partial
        for name, size in disks.items():
            apply(paths[name + ".img"], size, state[name])
        # What must be there: per key, the last acknowledged write, or the write its
        # owner had in flight.
        acked = set(order[: m + 1])
        allowed = {}
        for t in range(args.threads):
            for i in thread_writes[t]:
                if i in acked:
                    allowed[by_index[i][2]] = {by_index[i][3]}
            rest = [i for i in thread_writes[t] if i not in acked]
            if rest and by_index[rest[0]][2] in allowed:
                allowed[by_index[rest[0]][2]].add(by_index[rest[0]][3])
        tag = f"trial {trial}: mark {m}, k " + " ".join(f"{n} {k}" for n, k in ks.items())
        if partial:
            tag += " (inside a commit)"
        st = Stack(args.prefix + "t_")
        try:
            base = {name: st.loop(paths[name + ".img"]) for name in disks}
            lm, ls = assemble(st, base, mode.layout)
            mdev = st.dm("main", faulty_table(lm, mode.bad))
            try:
                rdev = st.dm("remap", f"0 {MAIN_BLOCKS * 8} remap {mdev} {ls}\n")
            except RuntimeError as e:
                load_fail.append(f"{tag}: {e}")
                continue
            # Before the first mark the workload's setup (mkfs) may be unfinished:
            # then only the metadata has to load.
            problems = mode.verify(rdev, allowed) if m >= 0 or mode.name == "block" else []
            lost += [f"{tag}: {x}" for x in problems]
            st.remove("remap")
            r = run(args.remapctl, "meta", "check", ls, check=False)
            if r.returncode != 0:
                unclean.append(f"{tag}: {r.stdout.strip()} {r.stderr.strip()}")
        finally:
            st.close()
        kt.diag(f"{tag}: {len(allowed)} {'blocks' if mode.name == 'block' else 'files'} checked"
                + (" PROBLEM" if problems else ""))
    for x in load_fail + lost + unclean:
        kt.diag(x)
    nlost = len({x.split(":")[0] for x in lost})
    kt.check(not load_fail, f"metadata loads in every crash image ({args.trials - len(load_fail)}/{args.trials})")
    kt.check(not lost, f"no acknowledged write lost in any crash image ({nlost} images with problems)")
    kt.check(not unclean, "metadata is clean after each image was loaded and removed")
    kt.diag(f"{inside_commit} images were cut inside a metadata commit")
    kt.check(inside_commit > 0, "some crash images were cut inside a metadata commit")
    print(f"# Totals: pass:{kt.n - kt.failed} fail:{kt.failed} skip:0")
    return 1 if kt.failed else 0


if __name__ == "__main__":
    sys.exit(main())
